"""Tests for MPJPE, PA-MPJPE, PCK and AUC (NumPy and TensorFlow versions)."""

import numpy as np
import pytest
import scipy.optimize
import scipy.spatial.transform

from hmr_tf.evaluation import metrics


def _skeleton(seed=0, batch=None):
  rng = np.random.default_rng(seed)
  shape = (14, 3) if batch is None else (batch, 14, 3)
  return rng.normal(size=shape) * 0.3


def _centre(j):
  # Pelvis = mean of LSP joints 2 (right hip) and 3 (left hip).
  return j - 0.5 * (j[..., 2:3, :] + j[..., 3:4, :])


def test_identical_skeletons_give_zero():
  gt = _skeleton(batch=3)
  for fn in (metrics.mpjpe, metrics.pa_mpjpe):
    np.testing.assert_allclose(fn(gt, gt), 0.0, atol=1e-9)
  for fn in (metrics.tf_mpjpe, metrics.tf_pa_mpjpe):
    np.testing.assert_allclose(fn(gt, gt).numpy(), 0.0, atol=1e-6)


def test_similarity_copy_pa_zero_and_hand_computed_mpjpe():
  gt = _skeleton(1)
  rot_z90 = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
  pred = 2.0 * gt @ rot_z90.T + np.array([0.3, -1.0, 5.0])
  # After centring both at the pelvis, pred = 2 R g. For g = (a, b, c):
  # 2 R g - g = (-2b - a, 2a - b, c), whose norm is sqrt(5a² + 5b² + c²).
  g = _centre(gt)
  per_joint = np.sqrt(5 * g[:, 0]**2 + 5 * g[:, 1]**2 + g[:, 2]**2)
  expected = 1000.0 * per_joint.mean()
  np.testing.assert_allclose(metrics.mpjpe(pred[None], gt[None]), [expected],
                             rtol=1e-10)
  np.testing.assert_allclose(metrics.tf_mpjpe(pred[None], gt[None]).numpy(),
                             [expected], rtol=1e-10)
  np.testing.assert_allclose(metrics.pa_mpjpe(pred[None], gt[None]), [0.0],
                             atol=1e-8)
  np.testing.assert_allclose(metrics.tf_pa_mpjpe(pred[None], gt[None]),
                             [0.0], atol=1e-8)


def _brute_force_pa_error(pred, gt):
  """Minimises the mean error over s, proper R, t numerically (reference)."""
  p, g = _centre(pred), _centre(gt)

  def mean_sq(params):
    rot = scipy.spatial.transform.Rotation.from_rotvec(params[:3]).as_matrix()
    moved = np.exp(params[3]) * p @ rot.T + params[4:]
    return np.mean(np.sum((moved - g)**2, -1))

  best = None
  for seed in range(6):
    x0 = np.concatenate([np.random.default_rng(seed).normal(size=3),
                         [0.0, 0.0, 0.0, 0.0]])
    res = scipy.optimize.minimize(mean_sq, x0, method='BFGS',
                                  options={'gtol': 1e-12})
    if best is None or res.fun < best.fun:
      best = res
  rot = scipy.spatial.transform.Rotation.from_rotvec(best.x[:3]).as_matrix()
  moved = np.exp(best.x[3]) * p @ rot.T + best.x[4:]
  return moved


def test_pa_alignment_matches_numerical_optimum():
  gt = _skeleton(2)
  pred = gt + np.random.default_rng(3).normal(size=gt.shape) * 0.1
  aligned = metrics.procrustes_align(_centre(pred), _centre(gt))
  reference = _brute_force_pa_error(pred, gt)
  # Least squares has one optimum: both alignments must coincide.
  np.testing.assert_allclose(aligned, reference, atol=1e-5)


def test_reflection_is_not_aligned_away():
  gt = _skeleton(4)
  mirror = gt * np.array([-1.0, 1.0, 1.0])
  pa = metrics.pa_mpjpe(mirror[None], gt[None])[0]
  # A reflection-allowing fit would map the mirror exactly (error 0); the
  # proper-rotation optimum (found numerically) keeps a real error.
  reference = _brute_force_pa_error(mirror, gt)
  expected = 1000.0 * np.linalg.norm(reference - _centre(gt), axis=-1).mean()
  assert pa > 50.0
  np.testing.assert_allclose(pa, expected, rtol=1e-4)
  np.testing.assert_allclose(metrics.tf_pa_mpjpe(mirror[None], gt[None]),
                             [pa], rtol=1e-8)


def test_pck_and_auc_on_constructed_errors():
  errors = np.array([[0.0, 10.0, 100.0, 149.0, 150.0, 151.0, 200.0, 1000.0]])
  # <= 150 mm: the first five.
  assert metrics.pck(errors) == pytest.approx(5 / 8)
  # Thresholds 0, 5, ..., 150 (31). An error e counts at the thresholds >= e:
  # 0 -> 31, 10 -> 29, 100 -> 11, 149 -> 1, 150 -> 1, the rest 0.
  assert metrics.auc(errors) == pytest.approx(73 / (31 * 8))
  np.testing.assert_allclose(metrics.tf_pck(errors).numpy(), [5 / 8])
  np.testing.assert_allclose(metrics.tf_auc(errors).numpy(), [73 / 248])


def test_pck_and_auc_with_and_without_rigid_alignment():
  gt = _skeleton(5, batch=4)
  rot = scipy.spatial.transform.Rotation.from_rotvec([0.0, 0.0, 1.0]).as_matrix()
  pred = gt @ rot.T * 1.2
  raw = metrics.joint_errors(pred, gt)
  aligned = metrics.joint_errors(pred, gt, procrustes=True)
  # Aligned errors are round-off (> 0 mm), so they count at every threshold
  # but 0: PCK 1 and AUC 30/31.
  assert metrics.pck(aligned) == 1.0
  assert metrics.auc(aligned) == pytest.approx(30 / 31)
  assert metrics.pck(raw) < 1.0


def test_batched_equals_per_example():
  gt = _skeleton(6, batch=5)
  pred = gt + np.random.default_rng(7).normal(size=gt.shape) * 0.05
  pred[1] *= np.array([-1.0, 1.0, 1.0])  # one reflected example in the batch
  for np_fn, tf_fn in ((metrics.mpjpe, metrics.tf_mpjpe),
                       (metrics.pa_mpjpe, metrics.tf_pa_mpjpe)):
    batched = np_fn(pred, gt)
    single = [np_fn(pred[i:i + 1], gt[i:i + 1])[0] for i in range(5)]
    np.testing.assert_allclose(batched, single, rtol=1e-12)
    np.testing.assert_allclose(tf_fn(pred, gt).numpy(), batched, rtol=1e-8)
  errors = metrics.joint_errors(pred, gt, procrustes=True)
  np.testing.assert_allclose(
      metrics.tf_joint_errors(pred, gt, procrustes=True).numpy(), errors,
      rtol=1e-8)


def test_summarize_mean_and_median():
  assert metrics.summarize([1.0, 2.0, 10.0]) == {'mean': 13 / 3, 'median': 2.0}


def test_pck_2d():
  gt = np.array([[[0.0, 0.0, 1.0], [1.0, 1.0, 1.0], [5.0, 5.0, 0.0],
                  [2.0, 0.0, 1.0]]])
  pred = np.array([[[0.0, 0.1, ], [1.0, 1.5], [100.0, 100.0], [2.0, 0.3]]])
  # Visible distances 0.1, 0.5, 0.3; the invisible one never counts.
  assert metrics.pck_2d(pred, gt, 0.3) == pytest.approx(2 / 3)
  assert metrics.pck_2d(pred, gt, 0.15, scale=np.array([2.0])) == (
      pytest.approx(2 / 3))
  hits, vis = metrics.tf_pck_2d(pred, gt, 0.3)
  np.testing.assert_allclose(hits.numpy(), [2.0])
  np.testing.assert_allclose(vis.numpy(), [3.0])
  assert metrics.pck_2d(pred, gt * np.array([1, 1, 0]), 0.3) == 0.0
