"""Tests for the IEF regressor."""

import numpy as np
import tensorflow as tf

from hmr_tf.modeling import mean_params
from hmr_tf.modeling import regressor


def _mean(seed=0):
  rng = np.random.default_rng(seed)
  return mean_params.mean_theta(rng.normal(size=72), rng.normal(size=10))


def _built(num_stage=3, dropout=0.5, features=2048):
  reg = regressor.IterativeRegressor(_mean(), num_stage=num_stage,
                                     dropout_rate=dropout)
  reg.build((None, features))
  return reg


def test_parameter_count():
  reg = _built()
  theta0 = 85
  fc1 = (2048 + 85) * 1024 + 1024  # input [φ, Θ] -> 1024
  fc2 = 1024 * 1024 + 1024
  fc3 = 1024 * 85 + 85
  assert reg.count_params() == theta0 + fc1 + fc2 + fc3  # 3,322,026
  assert len(reg.trainable_variables) == 7  # Θ_0 is trainable too


def test_theta0_starts_at_mean_and_zero_update_keeps_it():
  reg = _built()
  np.testing.assert_allclose(reg.theta0.numpy()[0], _mean(), rtol=1e-6)
  reg.fc3.kernel.assign(tf.zeros_like(reg.fc3.kernel))
  reg.fc3.bias.assign(tf.zeros_like(reg.fc3.bias))
  outs = reg(tf.random.normal([2, 2048]))
  assert len(outs) == 3
  for out in outs:
    np.testing.assert_allclose(out.numpy(), np.tile(_mean(), (2, 1)),
                               rtol=1e-6)


def test_iterations_match_numpy_reference_with_shared_weights():
  reg = _built(num_stage=3, features=16)
  rng = np.random.default_rng(1)
  # Larger last layer so every iteration moves Θ noticeably.
  reg.fc3.kernel.assign(rng.normal(size=(1024, 85)).astype(np.float32) * 0.02)
  feats = rng.normal(size=(3, 16))
  w = [v.numpy().astype(np.float64) for v in
       (reg.fc1.kernel, reg.fc1.bias, reg.fc2.kernel, reg.fc2.bias,
        reg.fc3.kernel, reg.fc3.bias)]
  theta = np.tile(reg.theta0.numpy().astype(np.float64), (3, 1))
  expected = []
  for _ in range(3):
    x = np.concatenate([feats, theta], 1)
    h = np.maximum(x @ w[0] + w[1], 0)
    h = np.maximum(h @ w[2] + w[3], 0)
    theta = theta + h @ w[4] + w[5]
    expected.append(theta)
  outs = reg(tf.constant(feats, tf.float32), training=False)
  for out, ref in zip(outs, expected):
    np.testing.assert_allclose(out.numpy(), ref, rtol=1e-4, atol=1e-4)
  assert not np.allclose(expected[0], expected[2])


def test_dropout_only_in_training():
  reg = _built(features=8)
  x = tf.random.normal([4, 8])
  a, b = reg(x, training=False)[-1], reg(x, training=False)[-1]
  np.testing.assert_array_equal(a.numpy(), b.numpy())
  c, d = reg(x, training=True)[-1], reg(x, training=True)[-1]
  assert not np.allclose(c.numpy(), d.numpy())


def test_last_layer_initialised_small():
  reg = _built()
  kernel = reg.fc3.kernel.numpy()
  # Variance scaling, factor 0.01, fan_avg, uniform: limit sqrt(3 * 0.01 /
  # ((1024 + 85) / 2)).
  limit = np.sqrt(3 * 0.01 / ((1024 + 85) / 2))
  assert np.abs(kernel).max() <= limit
  assert abs(kernel.std() - limit / np.sqrt(3)) < 0.05 * limit
