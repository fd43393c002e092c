"""HMR's training augmentation as a function of its random draws.

The original's input code (`src/data_loader.py`, `image_preprocessing`, and
`src/util/data_utils.py` in akanazawa/hmr) does, per training image at
record scale 1, with B = the crop side (its `img_size`, 224):

  1. j = (jx, jy): integers drawn uniformly from [-trans_max, trans_max - 1]
     (`tf.random_uniform` with int32 excludes maxval); centre c + j, c the
     record's integer centre;
  2. s: drawn uniformly from [scale_min, scale_max); the image is resized
     to floor(W s) x floor(H s) (`tf.to_int32` truncates), so the real
     factors are f = (floor(W s) / W, floor(H s) / H), one per axis;
     keypoints p -> p f; centre -> trunc((c + j) f);
  3. edge padding, then the B x B slice starting at
     start = trunc((c + j) f) - floor(B / 2) (scaled pixels);
  4. keypoints -> p f - start; the flip (a uniform draw < 0.5) reverses the
     crop's columns and maps x -> B - 1 - x, swapping left and right;
  5. labels 2 x / B - 1, multiplied by the visibility (> 0): a keypoint
     outside the crop stays visible;
  6. the image from [0, 1] to [-1, 1]: (x - 0.5) * 2.

So a stored point p gets the label 2 (p f - start) / B - 1 =
(p - c_eff) * 2 / window per axis, with window = B / f (stored pixels) and
c_eff = (start + B / 2) / f. `window` computes exactly these from the
draws; the parser crops that window (one bilinear warp, hmr_tf.geometry.crop)
and makes the labels from it, so the geometry (window, centre, labels) is
the original's number for number. hmr_tf's records may be stored at a
`scale` r other than 1 (the synthetic set): everything above then applies
to the record as if resized by r first (f = floor((W, H) r s) / (W, H),
j / r stored pixels); r = 1 is the original.

What differs, deliberately (see the README's faithfulness notes):
  * pixels: crop pixel u shows the point whose label is 2 (u + 0.5) / S - 1
    (hmr_tf's convention, shared with the demo, the export and the
    pictures); the original's pixel u showed label 2 u / B - 1 (TF1's
    resize without half-pixel centres, then an integer slice). For the
    same labels, hmr_tf's crop is the original's moved half an output pixel
    up and left; beyond the image the edge pixel repeats (the original
    repeated the resized image's edge);
  * the flip: both reverse the crop's columns; in hmr_tf's convention that
    is exactly x -> -x, in the original's it was x -> -x - 2 / B;
  * a record's crop may be resampled to S != B pixels (--img_size with
    --base_crop_size); the original had S = B.
"""

from typing import Dict

import tensorflow as tf

Draws = Dict[str, tf.Tensor]
# Uniform numbers one example's augmentation uses: scale, jx, jy, flip.
NUM_UNIFORMS = 4


def draws_from_uniforms(uniforms: tf.Tensor, config) -> Draws:
  """The augmentation's draws from uniform numbers in [0, 1).

  Args:
    uniforms: float32 [..., 4] in [0, 1).
    config: a `configs.DataConfig` (scale_min, scale_max, trans_max,
      flip_prob).

  Returns:
    {'scale': [...] in [scale_min, scale_max), 'translation': [..., 2]
    whole numbers in [-T, T - 1] with T = floor(trans_max) (each equally
    likely), 'flip': bool [...] true with probability flip_prob}.
  """
  uniforms = tf.convert_to_tensor(uniforms, tf.float32)
  scale = config.scale_min + (config.scale_max -
                              config.scale_min) * uniforms[..., 0]
  whole = float(int(config.trans_max))
  translation = tf.floor(uniforms[..., 1:3] * (2.0 * whole)) - whole
  # A uniform draw just below 1 must not reach T (float32 rounding).
  translation = tf.minimum(translation, tf.maximum(whole - 1.0, 0.0))
  return {'scale': scale, 'translation': translation,
          'flip': uniforms[..., 3] < config.flip_prob}


def draw(seed: tf.Tensor, config) -> Draws:
  """One example's draws from a stateless seed (int [2])."""
  return draws_from_uniforms(
      tf.random.stateless_uniform([NUM_UNIFORMS], seed=seed), config)


def window(center: tf.Tensor, record_scale: tf.Tensor, image_hw: tf.Tensor,
           draws: Draws, base_crop_size: float):
  """The original's crop window for given draws (module docstring).

  Args:
    center: float32 [2] (x, y), the record's centre in stored pixels.
    record_scale: float32 [], the record's `scale` (1 for the original's
      records).
    image_hw: int or float [2], the stored image's (height, width).
    draws: `draw`'s output ('scale' [], 'translation' [2]).
    base_crop_size: B, the window side in scaled pixels.

  Returns:
    (c_eff float32 [2], window float32 [2]): labels are
    (p - c_eff) * 2 / window per axis, in stored pixels.
  """
  size_xy = tf.cast(tf.reverse(image_hw, [0]), tf.float32)
  record_scale = tf.cast(record_scale, tf.float32)
  total = record_scale * tf.cast(draws['scale'], tf.float32)
  factor = tf.floor(size_xy * total) / size_xy
  jittered = tf.cast(center, tf.float32) + tf.cast(
      draws['translation'], tf.float32) / record_scale
  # The original casts the scaled centre to int32 (toward zero) and starts
  # its slice floor(B / 2) before it.
  scaled = jittered * factor
  start = (tf.math.sign(scaled) * tf.floor(tf.abs(scaled)) -
           float(int(base_crop_size // 2)))
  return (start + base_crop_size / 2.0) / factor, base_crop_size / factor
