"""Tests for the factorized discriminator."""

import numpy as np
import pytest
import tensorflow as tf

from hmr_tf.modeling import discriminator


def _disc(pose_units=1024):
  d = discriminator.Discriminator(pose_units=pose_units)
  d.build()
  # Nonzero biases so the reference checks them too.
  rng = np.random.default_rng(0)
  for v in d.trainable_variables:
    if v.name == 'bias':
      v.assign(rng.normal(size=v.shape).astype(np.float32) * 0.1)
  return d


def test_parameter_count():
  d = _disc()
  conv1 = 9 * 32 + 32  # 1x1 conv over the 9 rotation entries
  conv2 = 32 * 32 + 32
  heads = 23 * (32 + 1)  # one 32 -> 1 head per joint
  pose = (23 * 32 * 1024 + 1024) + (1024 * 1024 + 1024) + (1024 + 1)
  shape = (10 * 10 + 10) + (10 * 5 + 5) + (5 + 1)
  assert d.count_params() == conv1 + conv2 + heads + pose + shape  # 1,807,619


def _reference(d, rotmats, betas):
  """float64 NumPy forward pass from the layer sizes in the docstring."""
  w = {v.path.split('/', 1)[1]: v.numpy().astype(np.float64)
       for v in d.trainable_variables}
  relu = lambda x: np.maximum(x, 0)
  x = rotmats.reshape(-1, 23, 9)
  x = relu(x @ w['conv1/kernel'].reshape(9, 32) + w['conv1/bias'])
  x = relu(x @ w['conv2/kernel'].reshape(32, 32) + w['conv2/bias'])
  joints = np.stack([x[:, j] @ w['joint_heads/kernel'][j] +
                     w['joint_heads/bias'][j] for j in range(23)], 1)
  p = relu(x.reshape(-1, 736) @ w['pose_fc1/kernel'] + w['pose_fc1/bias'])
  p = relu(p @ w['pose_fc2/kernel'] + w['pose_fc2/bias'])
  p = p @ w['pose_out/kernel'] + w['pose_out/bias']
  s = relu(betas @ w['shape_fc1/kernel'] + w['shape_fc1/bias'])
  s = relu(s @ w['shape_fc2/kernel'] + w['shape_fc2/bias'])
  s = s @ w['shape_out/kernel'] + w['shape_out/bias']
  return np.concatenate([joints, p, s], 1)


@pytest.mark.parametrize('pose_units', [1024, 24])
def test_matches_numpy_reference(pose_units):
  d = _disc(pose_units)
  if pose_units != 1024:
    assert d.pose_fc1.kernel.shape == (736, pose_units)
  rng = np.random.default_rng(1)
  rotmats = rng.normal(size=(5, 23, 3, 3))
  betas = rng.normal(size=(5, 10))
  out = d(tf.constant(rotmats, tf.float32), tf.constant(betas, tf.float32))
  assert out.shape == (5, 25)
  np.testing.assert_allclose(out.numpy(), _reference(d, rotmats, betas),
                             rtol=1e-4, atol=1e-5)


def test_outputs_are_factorized():
  d = _disc()
  rng = np.random.default_rng(2)
  rotmats = rng.normal(size=(1, 23, 3, 3)).astype(np.float32)
  betas = rng.normal(size=(1, 10)).astype(np.float32)
  base = d(rotmats, betas).numpy()[0]
  moved = rotmats.copy()
  moved[0, 7] += 1.0  # change joint 7 only
  out = d(moved, betas).numpy()[0]
  changed = np.flatnonzero(~np.isclose(out, base, rtol=0, atol=1e-7))
  assert set(changed) <= {7, 23} and 7 in changed
  out = d(rotmats, betas + 1.0).numpy()[0]
  changed = np.flatnonzero(~np.isclose(out, base, rtol=0, atol=1e-7))
  assert list(changed) == [24]
