"""Turns a decoded record into one model input: crop, jitter, flip, normalise.

Follows the decoder -> parser split: `decoder.decode_image_example` gives the
stored image and labels in stored pixels; `parse_fn(config, is_training)`
returns a function that crops the person, applies HMR's augmentation when
training, and normalises everything to the model's conventions.

Geometry (hmr_tf.geometry.crop, whose docstring holds the pixel
convention). Evaluating, the crop window is a square of side

  window = base_crop_size / record scale

stored pixels around `center`; training, the window and its centre are the
original's for the random draws (scale factor, centre jitter, flip:
hmr_tf.data.augmentation, whose docstring has the equations and what
differs), one side per axis. The window is resampled to
`img_size` x `img_size` with one bilinear warp (crop_lib.warp: edge pixels
repeat outside the image, as the original's edge padding did). A stored
point p maps to crop coordinates (p - center) * 2 / window, so the centre
goes to 0 and the window border to +-1; that equals the contract's
(px / S) * 2 - 1 with px the point's position in the S-pixel crop measured
from its left edge. The crop grid is symmetric about the centre, so
reversing the crop's columns is exactly x -> -x.
"""

from typing import Callable, Dict, Optional

import tensorflow as tf

from hmr_tf import configs
from hmr_tf.data import augmentation
from hmr_tf.geometry import crop as crop_lib
from hmr_tf.smpl import joints as joints_lib
from hmr_tf.smpl import mirror

Example = Dict[str, tf.Tensor]

# Keys every parsed example has (training and evaluation).
TRAIN_KEYS = ('image', 'keypoints2d', 'joints3d', 'has_joints3d', 'pose',
              'shape', 'has_smpl')
# Keys only the evaluation parser adds, to map results back to the record.
EVAL_KEYS = ('filename', 'gender', 'activity', 'center', 'crop_size')


def _keypoint_labels(keypoints: tf.Tensor, center: tf.Tensor,
                     window: tf.Tensor, drop_outside: bool) -> tf.Tensor:
  """Stored-pixel keypoints -> the [-1, 1] crop-coordinate labels.

  Args:
    keypoints: float32 [K, 3], (x px, y px, visibility).
    center: float32 [2], crop centre in stored pixels.
    window: float32 [] crop side in stored pixels, or [2] per axis.
    drop_outside: make a point outside the crop invisible (otherwise it
      keeps its label, as in the original).

  Returns:
    float32 [K, 3], (x, y, visibility) with x, y in crop coordinates
    ((p - center) * 2 / window, crop_lib's convention). A point that was
    invisible (or dropped) is all zeros.
  """
  xy = (keypoints[:, :2] - center[tf.newaxis]) * (2.0 / window)
  visible = keypoints[:, 2] > 0
  if drop_outside:
    inside = tf.reduce_all(tf.abs(xy) <= 1.0, axis=-1)
    visible = tf.logical_and(visible, inside)
  visible = tf.cast(visible, tf.float32)[:, tf.newaxis]
  return tf.concat([xy, tf.ones_like(visible)], axis=-1) * visible


def flip_example(example: Example) -> Example:
  """Mirrors a parsed example left-right (the image about its vertical axis).

  The crop is reversed along its width; keypoints negate x and swap left and
  right (COCOPLUS_FLIP_PERM); 3D joints negate x and swap (LSP_FLIP_PERM); the
  SMPL pose becomes the mirrored pose (`mirror.mirror_pose`). Applying it twice
  gives back the example.

  Args:
    example: a parser output ('image' [S, S, 3], 'keypoints2d' [19, 3],
      'joints3d' [14, 3], 'pose' [72], other keys pass through).

  Returns:
    The mirrored example (same keys).
  """
  out = dict(example)
  out['image'] = tf.reverse(example['image'], axis=[1])
  keypoints = tf.gather(example['keypoints2d'], joints_lib.COCOPLUS_FLIP_PERM)
  # Adding 0 turns the -0.0 of invisible points back into 0.0.
  out['keypoints2d'] = keypoints * tf.constant([-1.0, 1.0, 1.0]) + 0.0
  joints3d = tf.gather(example['joints3d'], joints_lib.LSP_FLIP_PERM)
  out['joints3d'] = joints3d * tf.constant([-1.0, 1.0, 1.0]) + 0.0
  out['pose'] = mirror.mirror_pose(example['pose']) + 0.0
  return out


def _check_config(config) -> None:
  if config.img_size <= 0 or config.base_crop_size <= 0:
    raise ValueError('img_size and base_crop_size must be positive, got '
                     f'{config.img_size}, {config.base_crop_size}')
  if not 0 < config.scale_min <= config.scale_max:
    raise ValueError('expected 0 < scale_min <= scale_max, got '
                     f'{config.scale_min}, {config.scale_max}')
  if config.trans_max < 0:
    raise ValueError(f'trans_max must be >= 0, got {config.trans_max}')
  if not 0.0 <= config.flip_prob <= 1.0:
    raise ValueError(f'flip_prob must be in [0, 1], got {config.flip_prob}')
  configs.check_choice('keypoints_outside_crop',
                       config.keypoints_outside_crop,
                       configs.KEYPOINTS_OUTSIDE_CROP)


def parse_fn(config, is_training: bool
            ) -> Callable[..., Example]:
  """Builds the parser for training or evaluation.

  Args:
    config: a `configs.DataConfig` (uses img_size, base_crop_size,
      scale_min, scale_max, trans_max, flip_prob, seed).
    is_training: augment (random scale, centre jitter, flip) when True; a
      deterministic centre crop at the record's scale when False.

  Returns:
    `parse(decoded, seed=None, draws=None) -> example`: `decoded` is a
    `decoder.decode_image_example` dict; `seed` an int [2] stateless seed
    (the input pipeline passes one per element, derived from config.seed and
    the element's index, so results do not depend on threading). Without a
    seed a training parser draws one from a `tf.random.Generator` seeded with
    config.seed (reproducible only when called sequentially). `draws`
    (training only) replaces the random draws: {'scale' [], 'translation'
    [2] (whole pixels at scale 1), 'flip' bool []}, as
    `augmentation.draw` makes them. The example
    has the keys in TRAIN_KEYS (float32), and when evaluating also
    'filename' string [], 'gender' string [], 'activity' int64 [],
    'center' [2] and 'crop_size' [] (stored pixels).
  """
  _check_config(config)
  img_size = int(config.img_size)
  generator = []  # Created on first seedless use, outside any tf.function.

  def fallback_seed() -> tf.Tensor:
    if not generator:
      with tf.init_scope():
        generator.append(tf.random.Generator.from_seed(config.seed))
    return generator[0].make_seeds(1)[:, 0]

  drop_outside = config.keypoints_outside_crop == 'drop'

  def parse(decoded: Example, seed: Optional[tf.Tensor] = None,
            draws: Optional[augmentation.Draws] = None) -> Example:
    image = tf.cast(decoded['image'], tf.float32)
    center = tf.cast(decoded['center'], tf.float32)
    scale = tf.cast(decoded['scale'], tf.float32)
    tf.debugging.assert_positive(
        scale, message='image/scale must be > 0 (see data_contract)')
    if is_training:
      if draws is None:
        draws = augmentation.draw(
            fallback_seed() if seed is None else seed, config)
      # The original's window for these draws: its centre and (x, y) sides.
      center, window = augmentation.window(
          center, scale, tf.shape(decoded['image'])[:2], draws,
          config.base_crop_size)
      do_flip = tf.convert_to_tensor(draws['flip'])
    else:
      window = crop_lib.window_side(scale, config.base_crop_size)

    crop = crop_lib.warp(image, center, window, img_size)
    example = {
        # [0, 255] -> [-1, 1], the ResNet v2 convention (the original:
        # [0, 1] -> (x - 0.5) * 2, the same numbers).
        'image': crop / 127.5 - 1.0,
        'keypoints2d': _keypoint_labels(
            tf.cast(decoded['keypoints2d'], tf.float32), center, window,
            drop_outside),
        'joints3d': tf.cast(decoded['joints3d'], tf.float32),
        'has_joints3d': tf.cast(decoded['has_joints3d'], tf.float32),
        'pose': tf.cast(decoded['pose'], tf.float32),
        'shape': tf.cast(decoded['shape'], tf.float32),
        'has_smpl': tf.cast(decoded['has_smpl'], tf.float32),
    }
    if is_training:
      example = tf.cond(do_flip, lambda: flip_example(example),
                        lambda: dict(example))
    else:
      example['filename'] = decoded['filename']
      example['gender'] = decoded['gender']
      example['activity'] = decoded['activity']
      example['center'] = center
      example['crop_size'] = tf.reshape(window, [])
    return example

  return parse
