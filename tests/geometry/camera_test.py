"""Tests for the weak-perspective camera."""

import numpy as np

from hmr_tf.geometry import camera


def test_worked_example_from_docstring():
  out = camera.project(np.array([[[0.5, -0.2, 3.0]]], np.float32),
                       np.array([[0.9, 0.1, 0.0]], np.float32)).numpy()
  np.testing.assert_allclose(out, [[[0.54, -0.18]]], rtol=1e-6)
  pixels = (out + 1) / 2 * 224
  np.testing.assert_allclose(pixels, [[[172.48, 91.84]]], rtol=1e-5)


def test_matches_reference_and_ignores_depth():
  rng = np.random.default_rng(0)
  points = rng.normal(size=(4, 7, 3))
  cam = rng.normal(size=(4, 3))
  expected = np.stack([
      cam[b, 0] * (points[b, :, :2] + cam[b, 1:]) for b in range(4)])
  out = camera.project(points, cam).numpy()
  np.testing.assert_allclose(out, expected, rtol=1e-12)
  moved = points.copy()
  moved[..., 2] += rng.normal(size=(4, 7))
  np.testing.assert_allclose(camera.project(moved, cam).numpy(), out)
