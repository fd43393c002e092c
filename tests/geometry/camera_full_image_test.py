"""The full-image perspective camera against the crop's weak perspective."""

import numpy as np
import tensorflow as tf

from hmr_tf.geometry import camera
import smpl_reference  # tests/support/


def _project(points, focal, principal):
  return focal * points[:, :2] / points[:, 2:3] + principal


def test_hand_computed_case():
  # A 1000 x 800 (W x H) image, a 200-px window centred at (700, 300),
  # s = 0.8, t = (0.1, -0.2), f = 1000 px.
  t = camera.full_image_translation(
      [[0.8, 0.1, -0.2]], [[700.0, 300.0]], [200.0], [[800, 1000]], [1000.0])
  half_scale = 200 * 0.8 / 2  # 80 px per metre
  expected = [0.1 + (700 - 499.5) / half_scale,
              -0.2 + (300 - 399.5) / half_scale, 1000 / half_scale]
  np.testing.assert_allclose(t.numpy()[0], expected, rtol=1e-6)
  assert np.isclose(camera.default_focal_length([[800, 1000]]).numpy()[0],
                    np.hypot(800, 1000))


def test_far_body_projects_where_the_weak_perspective_puts_it():
  # The posed mesh of a random body through the full-image camera equals
  # its weak-perspective keypoints mapped into the image, within 1% of the
  # box for a person far from the camera (small in a large image). Off the
  # optical axis the body's depth still skews it by about (offset from the
  # image centre) x (depth extent) / TZ, so the people here stand within
  # ~600 px of the centre.
  body = smpl_reference.random_body_model(num_vertices=300, seed=3)
  rng = np.random.default_rng(0)
  verts, _ = smpl_reference.smpl_forward(body, rng.normal(0, 0.2, 72),
                                         rng.normal(0, 1, 10))
  verts = verts - verts.mean(0)
  keypoints = body.cocoplus_regressor @ verts
  height, width = 1080, 1920
  for center, box, cam in (((1500.0, 300.0), 180.0, (0.9, 0.05, -0.1)),
                           ((600.0, 700.0), 120.0, (1.1, -0.2, 0.3))):
    focal = camera.default_focal_length([[height, width]]).numpy()
    trans = camera.full_image_translation(
        [cam], [center], [box], [[height, width]], focal).numpy()[0]
    x_n = cam[0] * (keypoints[:, :2] + cam[1:])
    weak = np.asarray(center) + x_n * box / 2
    principal = np.array([(width - 1) / 2, (height - 1) / 2])
    persp = _project(keypoints + trans, focal[0], principal)
    assert trans[2] > 10  # far: tens of metres away
    assert np.abs(persp - weak).max() < 0.01 * box, np.abs(persp - weak).max()


def test_in_a_graph_with_a_batch():
  fn = tf.function(camera.full_image_translation)
  out = fn(tf.constant([[1.0, 0.0, 0.0], [0.5, 0.0, 0.0]]),
           tf.constant([[99.5, 49.5], [99.5, 49.5]]), tf.constant([100.0, 100.0]),
           tf.constant([[100, 200], [100, 200]]), tf.constant([500.0, 500.0]))
  # Centred windows: no lateral offset; half the scale, twice as far.
  np.testing.assert_allclose(out.numpy(), [[0, 0, 10], [0, 0, 20]], atol=1e-6)
