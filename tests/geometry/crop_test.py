"""hmr_tf.geometry.crop: the window, the warp and the coordinate maps."""

import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from hmr_tf.geometry import camera
from hmr_tf.geometry import crop as crop_lib
from hmr_tf.render import renderer


def _both_warps(image, center, window, size):
  tf_out = crop_lib.warp(tf.constant(image), tf.constant(center, tf.float32),
                         tf.constant(window, tf.float32), size).numpy()
  np_out = crop_lib.warp_np(image, center, window, size)
  return tf_out, np_out


def _bilinear(image, x, y):
  """image [H, W, C] at the point (x, y), pixel-centre coordinates."""
  x0, y0 = int(np.floor(x)), int(np.floor(y))
  fx, fy = x - x0, y - y0
  top = image[y0, x0] * (1 - fx) + image[y0, x0 + 1] * fx
  bottom = image[y0 + 1, x0] * (1 - fx) + image[y0 + 1, x0 + 1] * fx
  return top * (1 - fy) + bottom * fy


def test_window_rules_hand_computed():
  assert crop_lib.window_side(2.0, 224.0) == 112.0
  assert crop_lib.window_side(0.5) == 448.0  # the paper's 224 by default
  # A 640 x 480 image's centre lies between pixels 319 and 320, 239 and 240.
  assert crop_lib.image_center(480, 640) == (319.5, 239.5)
  # The box [10, 20] .. [40, 60] (edges): its centre is the point 25, 40
  # from the image's outer corner, pixel-centre coordinate 24.5, 39.5.
  assert crop_lib.box_center(10.0, 20.0, 30.0, 40.0) == (24.5, 39.5)
  # The same rules on tensors.
  x, y = crop_lib.image_center(tf.constant(480.0), tf.constant(640.0))
  assert (float(x), float(y)) == (319.5, 239.5)


def test_mappings_hand_computed():
  # A 50-px window around (60, 40): the point (70, 30) is 10 px right and
  # up, 10 / 25 = 0.4 of the half window.
  xy = crop_lib.image_to_crop_np([[70.0, 30.0]], (60.0, 40.0), 50.0)
  np.testing.assert_allclose(xy, [[0.4, -0.4]])
  np.testing.assert_allclose(
      crop_lib.crop_to_image_np(xy, (60.0, 40.0), 50.0), [[70.0, 30.0]])
  # In a 25-px crop: (0.4 + 1) * 12.5 - 0.5 = 17, (-0.4 + 1) * 12.5 - 0.5 = 7.
  np.testing.assert_allclose(crop_lib.crop_to_pixels_np(xy, 25), [[17.0, 7.0]])
  # The crop's edges are +-1: -1 is the left edge of pixel 0 (-0.5), +1 the
  # right edge of pixel S - 1 (S - 0.5); the centre is pixel (S - 1) / 2.
  np.testing.assert_allclose(
      crop_lib.crop_to_pixels_np([[-1.0, 1.0], [0.0, 0.0]], 4),
      [[-0.5, 3.5], [1.5, 1.5]])
  np.testing.assert_allclose(
      crop_lib.pixels_to_crop_np([[0.0, 3.0]], 4), [[-0.75, 0.75]])
  # (width, height) sizes.
  np.testing.assert_allclose(
      crop_lib.crop_to_pixels_np([[1.0, 1.0]], (8, 4)), [[7.5, 3.5]])


def test_tf_and_numpy_twins_agree():
  rng = np.random.default_rng(0)
  points = rng.uniform(-1.5, 1.5, (3, 19, 2))
  image_points = rng.uniform(-50, 500, (3, 19, 2))
  centers = rng.uniform(0, 400, (3, 2))
  windows = rng.uniform(20, 600, (3,))
  pairs = [
      (crop_lib.image_to_crop, crop_lib.image_to_crop_np,
       (image_points, centers, windows)),
      (crop_lib.crop_to_image, crop_lib.crop_to_image_np,
       (points, centers, windows)),
      (crop_lib.crop_to_pixels, crop_lib.crop_to_pixels_np, (points, 224)),
      (crop_lib.pixels_to_crop, crop_lib.pixels_to_crop_np,
       (image_points, (640, 480))),
  ]
  for tf_fn, np_fn, args in pairs:
    np.testing.assert_allclose(tf_fn(*args).numpy(), np_fn(*args),
                               rtol=1e-12, err_msg=tf_fn.__name__)
    # float32 in, float32 out; and in a graph.
    args32 = [np.asarray(a, np.float32) for a in args]
    out = tf.function(tf_fn)(*args32)
    assert out.dtype == tf.float32
    np.testing.assert_allclose(out.numpy(), np_fn(*args), rtol=1e-5,
                               atol=1e-4, err_msg=tf_fn.__name__)
  # One example: points [K, 2], center [2], window [].
  np.testing.assert_allclose(
      crop_lib.crop_to_image(points[0], centers[0], windows[0]).numpy(),
      crop_lib.crop_to_image_np(points, centers, windows)[0], rtol=1e-12)


def test_full_image_camera_twins_agree():
  rng = np.random.default_rng(1)
  cams = np.stack([rng.uniform(0.3, 1.5, 4), rng.normal(0, 0.2, 4),
                   rng.normal(0, 0.2, 4)], axis=-1)
  cams[3, 0] = -0.5  # clamped in both
  centers = rng.uniform(0, 600, (4, 2))
  windows = rng.uniform(50, 400, (4,))
  sizes = np.array([[480, 640], [1080, 1920], [300, 400], [64, 64]])
  focal = camera.default_focal_length_np(sizes)
  np.testing.assert_allclose(
      focal, camera.default_focal_length(sizes).numpy(), rtol=1e-6)
  assert camera.default_focal_length_np((300, 400)) == 500.0
  expected = camera.full_image_translation(cams, centers, windows, sizes,
                                           focal).numpy()
  np.testing.assert_allclose(
      camera.full_image_translation_np(cams, centers, windows, sizes, focal),
      expected, rtol=1e-5)
  # One example at a time.
  np.testing.assert_allclose(
      camera.full_image_translation_np(cams[0], centers[0], windows[0],
                                       sizes[0], focal[0]),
      expected[0], rtol=1e-5)


def test_warp_of_a_marked_pixel_hand_computed():
  # A 10-px window into a 10-px crop is a shift: around (44.5, 28.5) crop
  # pixel u samples image x = 44.5 + (u + 0.5 - 5) = 40 + u, and row v
  # samples y = 24 + v. The marked image pixel (47, 33) lands in crop
  # pixel (7, 9), untouched by interpolation.
  image = np.zeros((50, 60, 3), np.float32)
  image[33, 47] = 255.0
  for out in _both_warps(image, (44.5, 28.5), 10.0, 10):
    expected = np.zeros((10, 10, 3), np.float32)
    expected[9, 7] = 255.0
    np.testing.assert_allclose(out, expected, atol=1e-4)
  # The mapping says the same: (47 - 44.5) * 2 / 10 = 0.5 -> (0.5 + 1) * 5
  # - 0.5 = 7; (33 - 28.5) * 2 / 10 = 0.9 -> 9.
  np.testing.assert_allclose(
      crop_lib.crop_to_pixels_np(
          crop_lib.image_to_crop_np([[47.0, 33.0]], (44.5, 28.5), 10.0), 10),
      [[7.0, 9.0]])


def test_warp_halving_averages_pixel_pairs():
  # A 20-px window into 10 px around (49.5, 49.5): crop pixel u samples
  # x = 49.5 + (u + 0.5 - 5) * 2 = 40.5 + 2u, halfway between image pixels
  # 40 + 2u and 41 + 2u. The marked 2 x 2 block x in {46, 47}, y in
  # {52, 53} fills crop pixel (3, 6) and nothing else.
  image = np.zeros((100, 100, 3), np.float32)
  image[52:54, 46:48] = 200.0
  for out in _both_warps(image, (49.5, 49.5), 20.0, 10):
    expected = np.zeros((10, 10, 3), np.float32)
    expected[6, 3] = 200.0
    np.testing.assert_allclose(out, expected, atol=1e-3)


def test_warp_twins_agree_on_a_smooth_image():
  # OpenCV quantises sample positions to 1/32 pixel, so the twins agree to
  # the image's slope / 32 per pixel.
  yy, xx = np.mgrid[0:120, 0:90].astype(np.float32)
  image = np.stack([xx, yy, 100 + 40 * np.sin(xx / 9) * np.cos(yy / 13)],
                   axis=-1)
  for center, window, size in (((40.3, 61.7), 57.3, 24), ((10.0, 100.0),
                                                         150.0, 33)):
    tf_out, np_out = _both_warps(image, center, window, size)
    assert tf_out.shape == np_out.shape == (size, size, 3)
    step = window / size
    np.testing.assert_allclose(tf_out, np_out, atol=step / 32 + 1e-3)


def test_warp_moves_a_point_as_the_mapping_says():
  # An image whose channels are its own x and y coordinates: bilinear
  # sampling reproduces a linear image exactly, so the crop holds, at each
  # crop pixel, the image point it sampled. Reading the crop at the crop
  # pixel the mapping gives for a point p returns p, to a fraction of a
  # pixel.
  yy, xx = np.mgrid[0:200, 0:160].astype(np.float32)
  image = np.stack([xx, yy, np.zeros_like(xx)], axis=-1)
  center, window, size = (83.3, 97.85), 117.7, 37
  points = np.array([[83.3, 97.85], [61.13, 120.4], [130.02, 50.5]])
  crop_px = crop_lib.crop_to_pixels_np(
      crop_lib.image_to_crop_np(points, center, window), size)
  tf_out, np_out = _both_warps(image, center, window, size)
  for out, atol in ((tf_out, 1e-3), (np_out, window / size / 32)):
    for p, (u, v) in zip(points, crop_px):
      np.testing.assert_allclose(_bilinear(out, u, v)[:2], p, atol=atol)
  # Every crop pixel's centre: the TF warp samples exactly
  # crop_to_image(pixels_to_crop(u)).
  grid = np.stack(np.meshgrid(np.arange(size), np.arange(size)), axis=-1)
  sampled = crop_lib.crop_to_image_np(
      crop_lib.pixels_to_crop_np(grid.reshape(-1, 2), size), center, window)
  np.testing.assert_allclose(tf_out[..., :2].reshape(-1, 2), sampled,
                             atol=2e-3)


def test_round_trips():
  rng = np.random.default_rng(2)
  points = rng.uniform(-1, 1, (2, 5, 2))
  centers = rng.uniform(0, 300, (2, 2))
  windows = rng.uniform(30, 300, (2,))
  back = crop_lib.image_to_crop_np(
      crop_lib.crop_to_image_np(points, centers, windows), centers, windows)
  np.testing.assert_allclose(back, points, atol=1e-12)
  back = crop_lib.pixels_to_crop_np(crop_lib.crop_to_pixels_np(points, 64),
                                    64)
  np.testing.assert_allclose(back, points, atol=1e-12)
  # TF, float32.
  back = crop_lib.image_to_crop(
      crop_lib.crop_to_image(points.astype(np.float32), centers, windows),
      centers, windows)
  np.testing.assert_allclose(back.numpy(), points, atol=1e-5)
  back = crop_lib.pixels_to_crop(
      crop_lib.crop_to_pixels(points.astype(np.float32), 224), 224)
  np.testing.assert_allclose(back.numpy(), points, atol=1e-6)
  # Crop pixels -> image pixels -> crop pixels.
  px = rng.uniform(0, 63, (4, 2))
  image_px = crop_lib.crop_to_image_np(crop_lib.pixels_to_crop_np(px, 64),
                                       centers[0], windows[0])
  np.testing.assert_allclose(
      crop_lib.crop_to_pixels_np(
          crop_lib.image_to_crop_np(image_px, centers[0], windows[0]), 64),
      px, atol=1e-9)


def test_mirroring_the_crop_negates_x():
  # The grid is symmetric about the centre: crop pixel S - 1 - u sits at
  # -x_n of pixel u, so the training flip (reversed columns, x -> -x) is
  # consistent.
  u = np.arange(7.0)[:, None] * [1.0, 0.0]
  np.testing.assert_allclose(crop_lib.pixels_to_crop_np(6 - u, 7)[:, 0],
                             -crop_lib.pixels_to_crop_np(u, 7)[:, 0])


def test_weak_perspective_mesh_is_centred_on_the_crop():
  # A square symmetric about the camera axis must render symmetric about
  # the crop's centre (pixel (S - 1) / 2); with -1 mapped to pixel 0 (the
  # old panels) it came out half a pixel right and down.
  size = 16
  square = np.array([[-0.3, -0.3, 1.0], [0.3, -0.3, 1.0], [0.3, 0.3, 1.0],
                     [-0.3, 0.3, 1.0]])
  projected = renderer.weak_perspective_to_pixels(square, (1.0, 0.0, 0.0),
                                                  size)
  np.testing.assert_allclose(projected[:, :2].mean(0), [7.5, 7.5])
  mask = renderer.render_mesh(projected, [[0, 1, 2], [0, 2, 3]], size,
                              size).mask
  np.testing.assert_allclose(mask, mask[:, ::-1], atol=1e-6)
  np.testing.assert_allclose(mask, mask[::-1, :], atol=1e-6)
  assert mask[7, 7] == pytest.approx(1.0)


def test_the_renderer_and_the_scene_import_without_tensorflow():
  # The synthetic data's worker processes import only these: TensorFlow
  # there would cost each worker seconds and hundreds of MB.
  code = ('import sys; import hmr_tf.geometry.crop, hmr_tf.synthetic.scene; '
          'print("tensorflow" in sys.modules)')
  out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                       text=True, check=True)
  assert out.stdout.strip() == 'False'
