"""hmr_tf.data.augmentation and the parser against the original's equations.

The reference is written here from the original's input code
(akanazawa/hmr, src/data_loader.py `image_preprocessing` and
src/util/data_utils.py `jitter_center`, `jitter_scale`, `random_flip`):
integer centre jitter, a resize to int32(size * s), the scaled centre cast
to int32, a B x B slice from centre - floor(B / 2), x -> B - 1 - x when
flipped, labels 2 x / B - 1 times the visibility. Float32 where the
original computed in float32 (the resize's size, the scaled centre).
"""

import dataclasses

import numpy as np
import tensorflow as tf

from hmr_tf import configs
from hmr_tf.data import augmentation
from hmr_tf.data import decoder
from hmr_tf.data import parser
from hmr_tf.data import schema
from hmr_tf.smpl import joints as joints_lib

PERM = list(joints_lib.COCOPLUS_FLIP_PERM)


def _original_window(center, image_hw, scale, translation, size):
  """(factor (fx, fy), start (x, y)) of the original's crop, by its code."""
  image_hw = np.asarray(image_hw, np.int64)
  new_hw = (image_hw.astype(np.float32) * np.float32(scale)).astype(np.int32)
  factor = (new_hw.astype(np.float32) / image_hw.astype(np.float32))[::-1]
  jittered = np.asarray(center, np.int64) + np.asarray(translation, np.int64)
  center_scaled = (jittered.astype(np.float32) * factor).astype(np.int32)
  return factor.astype(np.float64), center_scaled - int(size / 2)


def _original_labels(keypoints, center, image_hw, scale, translation, flip,
                     size):
  """The original's [K, 3] labels (flip swaps with the cocoplus order)."""
  factor, start = _original_window(center, image_hw, scale, translation,
                                   size)
  xy = keypoints[:, :2] * factor - start
  vis = keypoints[:, 2].copy()
  if flip:
    xy[:, 0] = size - 1 - xy[:, 0]
    xy, vis = xy[PERM], vis[PERM]
  final_vis = (vis > 0).astype(np.float64)
  labels = np.concatenate([2 * xy / size - 1, final_vis[:, None]], 1)
  return labels * final_vis[:, None]


def _original_pixels(image, factor, grid_x, grid_y):
  """TF1's legacy bilinear resize then edge padding, sampled at scaled
  pixels (grid_x, grid_y): source index k / f, upper index clamped."""

  def axis(k, f, n_in):
    n_out = int(np.floor(n_in * f + 1e-6))
    k = np.clip(k, 0, n_out - 1)  # the edge padding of the resized image
    src = k / f
    lower = np.floor(src).astype(int)
    upper = np.minimum(lower + 1, n_in - 1)
    return lower, upper, src - lower

  image = np.asarray(image, np.float64)
  x0, x1, wx = axis(grid_x, factor[0], image.shape[1])
  y0, y1, wy = axis(grid_y, factor[1], image.shape[0])
  top = image[y0][:, x0] * (1 - wx)[None, :, None] + image[y0][:, x1] * wx[
      None, :, None]
  bottom = image[y1][:, x0] * (1 - wx)[None, :, None] + image[y1][:, x1] * wx[
      None, :, None]
  return top * (1 - wy)[:, None, None] + bottom * wy[:, None, None]


def _decoded(image, center, keypoints):
  encoded = tf.io.encode_png(np.asarray(image, np.uint8)).numpy()
  example = schema.make_image_example(
      encoded, image.shape[0], image.shape[1], 'a.png', center, keypoints,
      image_format=b'png')
  return decoder.decode_image_example(example.SerializeToString())


def _draws(scale, translation, flip):
  return {'scale': tf.constant(scale, tf.float32),
          'translation': tf.constant(translation, tf.float32),
          'flip': tf.constant(flip)}


def test_draws_from_uniforms_are_the_originals_distributions():
  config = configs.DataConfig(scale_min=0.8, scale_max=1.23, trans_max=20.0,
                              flip_prob=0.5)
  u = np.linspace(0, 1, 4000, endpoint=False, dtype=np.float32)
  draws = augmentation.draws_from_uniforms(
      np.stack([u, u, u[::-1], u], -1), config)
  scale = draws['scale'].numpy()
  np.testing.assert_allclose(scale, 0.8 + 0.43 * u, rtol=1e-6)
  # Whole pixels -20 .. 19 (tf.random_uniform int32 excludes maxval), each
  # from an equal share of [0, 1).
  jx = draws['translation'].numpy()[:, 0]
  values, counts = np.unique(jx, return_counts=True)
  np.testing.assert_array_equal(values, np.arange(-20, 20))
  np.testing.assert_array_equal(counts, 100)
  np.testing.assert_array_equal(jx, np.floor(u * 40) - 20)
  np.testing.assert_array_equal(draws['flip'].numpy(), u < 0.5)
  # Just below 1 in float32: still 19, not 20.
  top = augmentation.draws_from_uniforms(
      np.full([1, 4], np.nextafter(np.float32(1), np.float32(0))), config)
  assert top['translation'].numpy().max() == 19
  none = augmentation.draws_from_uniforms(
      np.full([1, 4], 0.7, np.float32),
      dataclasses.replace(config, trans_max=0.0))
  np.testing.assert_array_equal(none['translation'].numpy(), 0.0)


def test_geometry_and_pixels_equal_the_original_at_fixed_draws():
  size = 64  # B = S, as in the original.
  config = configs.DataConfig(img_size=size, base_crop_size=float(size),
                              keypoints_outside_crop='keep')
  parse = parser.parse_fn(config, is_training=True)
  rng = np.random.default_rng(0)
  height, width = 90, 117
  yy, xx = np.mgrid[:height, :width]
  image = np.floor(np.stack([(xx * 2.1 + yy * 0.7) % 256, (yy * 2.3) % 256,
                             128 + 100 * np.sin(xx / 9.0) * np.cos(yy / 7.0)],
                            -1)).astype(np.uint8)
  center = np.array([58, 44])
  keypoints = np.zeros([19, 3])
  keypoints[:, :2] = rng.uniform([0, 0], [width, height], [19, 2])
  keypoints[:, 2] = rng.uniform(size=19) > 0.2
  keypoints[0] = (115, 3, 1)  # Leaves the crop: stays visible.
  decoded = _decoded(image, center, keypoints)
  cases = [(1.0, (0, 0), False), (0.8, (-20, 19), False),
           (1.23, (7, -13), False), (0.9137, (19, -20), True),
           (1.1, (-3, 5), True)]
  for scale, translation, flip in cases:
    out = parse(decoded, draws=_draws(scale, translation, flip))
    labels = out['keypoints2d'].numpy()
    want = _original_labels(keypoints, center, (height, width), scale,
                            translation, flip, size)
    if flip:
      # The same column reversal; in hmr_tf's pixel convention it is
      # x -> -x, in the original's x -> -x - 2 / B (see augmentation.py).
      want[:, 0] = np.where(want[:, 2] > 0, want[:, 0] + 2 / size, 0)
    np.testing.assert_allclose(labels, want, atol=2e-5,
                               err_msg=str((scale, translation, flip)))
    assert labels[PERM.index(0) if flip else 0, 2] == 1  # Kept visible.
    # Pixels: the original's bilinear samples, half an output pixel on.
    factor, start = _original_window(center, (height, width), scale,
                                     translation, size)
    u = np.arange(size)
    crop = (out['image'].numpy() + 1) * 127.5
    if flip:
      crop = crop[:, ::-1]
    shifted = _original_pixels(image, factor, start[0] + u + 0.5,
                               start[1] + u + 0.5)
    source_x = (start[0] + u + 0.5) / factor[0]
    source_y = (start[1] + u + 0.5) / factor[1]
    inside = (((source_y >= 0) & (source_y <= height - 1))[:, None] &
              ((source_x >= 0) & (source_x <= width - 1))[None, :])
    assert inside.mean() > 0.5
    np.testing.assert_allclose(crop[inside], shifted[inside], atol=0.05)


def test_a_hand_computed_case():
  # W 300, H 260, centre (150, 130), jitter (-20, 7), s 1.23, B 224:
  # resized to int(369.00000) = 369 x int(319.8) = 319, f = (1.23, 319/260);
  # scaled centre int((130, 137) f) = int(159.9, 168.09) = (159, 168);
  # start = (47, 56). The point (200, 100) -> (246, 122.6923) - start =
  # (199, 66.6923) -> labels (2 * 199 / 224 - 1, 2 * 66.6923 / 224 - 1).
  want = np.array([0.7767857, -0.4045330])
  keypoints = np.zeros([19, 3])
  keypoints[0] = (200, 100, 1)
  np.testing.assert_allclose(
      _original_labels(keypoints, (150, 130), (260, 300), 1.23, (-20, 7),
                       False, 224)[0, :2], want, atol=1e-6)
  factor, start = _original_window((150, 130), (260, 300), 1.23, (-20, 7),
                                   224)
  np.testing.assert_allclose(factor, (1.23, 319 / 260), rtol=1e-6)
  np.testing.assert_array_equal(start, (47, 56))
  c_eff, window = augmentation.window(
      tf.constant([150.0, 130.0]), tf.constant(1.0), tf.constant([260, 300]),
      _draws(1.23, (-20, 7), False), 224.0)
  np.testing.assert_allclose(c_eff.numpy(), (159 / 1.23, 168 * 260 / 319),
                             rtol=1e-6)
  np.testing.assert_allclose(window.numpy(), (224 / 1.23, 224 * 260 / 319),
                             rtol=1e-6)
  config = configs.DataConfig(img_size=224, base_crop_size=224.0)
  out = parser.parse_fn(config, is_training=True)(
      _decoded(np.zeros([260, 300, 3]), (150, 130), keypoints),
      draws=_draws(1.23, (-20, 7), False))
  np.testing.assert_allclose(out['keypoints2d'][0, :2].numpy(), want,
                             atol=1e-5)


def test_record_scale_and_the_identity_draws():
  # A record stored at scale 2 is the original's record resized by 2: the
  # window of draws (s, j) equals the original's on the doubled image.
  c_eff, window = augmentation.window(
      tf.constant([40.0, 30.0]), tf.constant(2.0), tf.constant([61, 80]),
      _draws(1.1, (-5, 8), False), 224.0)
  factor, start = _original_window((80, 60), (122, 160), 1.1, (-5, 8), 224)
  np.testing.assert_allclose(window.numpy(), 224 / (2 * factor) * 1.0,
                             rtol=1e-5)
  np.testing.assert_allclose(c_eff.numpy(), (start + 112) / (2 * factor),
                             rtol=1e-5)
  # Draws (1, 0) on a scale-1 record: the evaluation crop exactly.
  c_eff, window = augmentation.window(
      tf.constant([40.0, 30.0]), tf.constant(1.0), tf.constant([61, 80]),
      _draws(1.0, (0, 0), False), 224.0)
  np.testing.assert_array_equal(c_eff.numpy(), (40, 30))
  np.testing.assert_array_equal(window.numpy(), (224, 224))
