"""hmr_tf.smpl.lbs.batch_rodrigues against two references.

The float64 NumPy Rodrigues written from the formula (tests/support/
smpl_reference), and tensorflow_graphics' `from_axis_angle`, the op the
design names for this geometry (still a pinned requirement), which hmr_tf
does not import at run time (its import costs every process ~2 s): the two
must agree to the bit.
"""

import numpy as np
import pytest
import tensorflow as tf

import smpl_reference
from hmr_tf.smpl import lbs


def _axis_angles(seed, count=200):
  rng = np.random.default_rng(seed)
  vectors = rng.normal(size=(count, 3)) * rng.uniform(0, 3, (count, 1))
  # Zero, tiny, near-pi and beyond-pi rotations too.
  vectors[:4] = [[0, 0, 0], [1e-9, 0, 0], [0, np.pi - 1e-6, 0],
                 [0, 0, 4.0]]
  return vectors


@pytest.mark.parametrize('dtype,atol', [(tf.float32, 2e-6),
                                        (tf.float64, 1e-14)])
def test_rodrigues_matches_the_float64_reference(dtype, atol):
  vectors = _axis_angles(0)
  rotations = lbs.batch_rodrigues(tf.constant(vectors, dtype)).numpy()
  assert rotations.shape == (len(vectors), 3, 3)
  for v, r in zip(vectors, rotations):
    np.testing.assert_allclose(r, smpl_reference.rodrigues(v), atol=atol)
  # Any leading shape.
  assert lbs.batch_rodrigues(tf.zeros([3])).shape == (3, 3)
  assert lbs.batch_rodrigues(tf.zeros([2, 5, 3])).shape == (2, 5, 3, 3)


@pytest.mark.parametrize('dtype', [tf.float32, tf.float64])
def test_rodrigues_equals_tensorflow_graphics_to_the_bit(dtype):
  # Imported here only: a pinned requirement, but slow to import.
  from tensorflow_graphics.geometry.transformation import rotation_matrix_3d  # pylint: disable=g-import-not-at-top
  vectors = tf.constant(_axis_angles(1).reshape(-1, 8, 3), dtype)
  angle = tf.sqrt(tf.reduce_sum(tf.square(vectors), -1, keepdims=True) +
                  tf.constant(1e-16, dtype))
  theirs = rotation_matrix_3d.from_axis_angle(vectors / angle, angle)
  np.testing.assert_array_equal(lbs.batch_rodrigues(vectors).numpy(),
                                theirs.numpy())


def test_rodrigues_gradient_is_finite_at_zero_and_matches_the_derivative():
  # d R / d v at v = 0 is the skew matrix of the basis vector: [e_i]x.
  zero = tf.zeros([3], tf.float64)
  with tf.GradientTape(persistent=True) as tape:
    tape.watch(zero)
    r = lbs.batch_rodrigues(zero)
    entries = [r[i, j] for i in range(3) for j in range(3)]
  for i in range(3):
    for j in range(3):
      grad = tape.gradient(entries[3 * i + j], zero).numpy()
      assert np.all(np.isfinite(grad))
      expected = [np.cross(np.eye(3)[k], np.eye(3)[j])[i] for k in range(3)]
      np.testing.assert_allclose(grad, expected, atol=1e-7)
