"""Tests for HMR's losses against float64 NumPy references."""

import numpy as np
import pytest
import tensorflow as tf

from hmr_tf.modeling import losses


def _rng(seed=0):
  return np.random.default_rng(seed)


def test_keypoint_l1_matches_reference_and_ignores_invisible():
  rng = _rng()
  gt = np.concatenate([rng.uniform(-1, 1, (3, 19, 2)),
                       rng.integers(0, 2, (3, 19, 1))], -1)
  pred = rng.uniform(-1, 1, (3, 19, 2))
  vis = gt[..., 2]
  expected = (np.sum(vis[..., None] * np.abs(gt[..., :2] - pred)) /
              (2 * vis.sum()))
  out = losses.keypoint_l1_loss(gt, pred).numpy()
  np.testing.assert_allclose(out, expected, rtol=1e-6)
  moved = pred.copy()
  moved[vis == 0] += 100.0
  np.testing.assert_allclose(losses.keypoint_l1_loss(gt, moved).numpy(), out,
                             rtol=1e-6)


def test_hand_computed_keypoint_loss():
  gt = np.array([[[0.0, 0.0, 1.0], [0.5, 0.5, 0.0]]])
  pred = np.array([[[0.2, -0.4], [9.0, 9.0]]])
  # One visible point: (|0.2| + |0.4|) / 2 coordinates = 0.3.
  assert losses.keypoint_l1_loss(gt, pred).numpy() == pytest.approx(0.3)
  no_vis = gt * np.array([1.0, 1.0, 0.0])
  assert losses.keypoint_l1_loss(no_vis, pred).numpy() == 0.0


def test_joints3d_loss_pelvis_aligned_reference():
  rng = _rng(1)
  gt = rng.normal(size=(4, 14, 3))
  pred = rng.normal(size=(4, 14, 3))
  has = np.array([1.0, 0.0, 1.0, 1.0])

  def centre(j):
    return j - 0.5 * (j[:, 2:3] + j[:, 3:4])

  sq = np.square(centre(gt) - centre(pred)).reshape(4, -1)
  expected = 0.5 * np.sum(has[:, None] * sq) / (42 * has.sum())
  np.testing.assert_allclose(losses.joints3d_loss(gt, pred, has).numpy(),
                             expected, rtol=1e-6)
  # A translated prediction has the same loss.
  np.testing.assert_allclose(
      losses.joints3d_loss(gt, pred + np.array([1.0, 2.0, 3.0]), has).numpy(),
      expected, rtol=1e-5)


def test_smpl_params_loss_reference():
  rng = _rng(2)
  r_gt, r_pred = rng.normal(size=(2, 3, 24, 3, 3))
  b_gt, b_pred = rng.normal(size=(2, 3, 10))
  has = np.array([0.0, 1.0, 1.0])
  d = np.concatenate([(r_gt - r_pred).reshape(3, -1), b_gt - b_pred], 1)
  expected = 0.5 * np.sum(has[:, None] * d**2) / (226 * has.sum())
  out = losses.smpl_params_loss(r_gt, b_gt, r_pred, b_pred, has).numpy()
  np.testing.assert_allclose(out, expected, rtol=1e-6)


def test_no_3d_examples_give_exactly_zero_and_finite_gradients():
  rng = _rng(3)
  gt = tf.constant(rng.normal(size=(2, 14, 3)), tf.float32)
  pred = tf.Variable(rng.normal(size=(2, 14, 3)), dtype=tf.float32)
  r = tf.Variable(rng.normal(size=(2, 24, 3, 3)), dtype=tf.float32)
  b = tf.Variable(rng.normal(size=(2, 10)), dtype=tf.float32)
  has = tf.zeros([2])
  with tf.GradientTape() as tape:
    lj = losses.joints3d_loss(gt, pred, has)
    ls = losses.smpl_params_loss(r, b, r, b + 1.0, has)
  assert lj.numpy() == 0.0 and ls.numpy() == 0.0
  for g in tape.gradient(lj + ls, [pred, r, b]):
    assert g is None or np.all(np.isfinite(g.numpy()))


def test_adversarial_losses_reference():
  rng = _rng(4)
  d_fake = rng.normal(size=(6, 25))
  d_real = rng.normal(size=(5, 25))
  np.testing.assert_allclose(
      losses.generator_adversarial_loss(d_fake).numpy(),
      np.sum((d_fake - 1)**2) / 6, rtol=1e-6)
  real, fake = losses.discriminator_losses(d_real, d_fake)
  np.testing.assert_allclose(real.numpy(), np.sum((d_real - 1)**2) / 5,
                             rtol=1e-6)
  np.testing.assert_allclose(fake.numpy(), np.sum(d_fake**2) / 6, rtol=1e-6)
  # Σ_i mean_n: the same as summing each output's mean.
  per_output = sum(np.mean((d_fake[:, i] - 1)**2) for i in range(25))
  np.testing.assert_allclose(
      losses.generator_adversarial_loss(d_fake).numpy(), per_output,
      rtol=1e-6)


def test_global_normalizer_splits_a_batch_into_replica_shares():
  rng = _rng(5)
  gt = np.concatenate([rng.uniform(-1, 1, (4, 19, 2)),
                       rng.integers(0, 2, (4, 19, 1))], -1)
  pred = rng.uniform(-1, 1, (4, 19, 2))
  total = losses.keypoint_count(gt)
  halves = [losses.keypoint_l1_loss(gt[s], pred[s], normalizer=total)
            for s in (slice(0, 2), slice(2, 4))]
  np.testing.assert_allclose(sum(h.numpy() for h in halves),
                             losses.keypoint_l1_loss(gt, pred).numpy(),
                             rtol=1e-6)


def test_l2_weight_decay_half_squared_norm():
  a = tf.Variable([[1.0, 2.0], [3.0, 4.0]])
  b = tf.Variable([0.5])
  # 1e-4 * ½ (1 + 4 + 9 + 16 + 0.25) = 1.5125e-3.
  assert losses.l2_weight_decay([a, b], 1e-4).numpy() == pytest.approx(
      1.5125e-3)
  assert losses.l2_weight_decay([a, b], 0.0).numpy() == 0.0
