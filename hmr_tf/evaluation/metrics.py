"""3D and 2D pose metrics: MPJPE, PA-MPJPE, PCK, AUC.

Conventions (the original HMR evaluation):
  * Joints are the 14 LSP joints [N, 14, 3] in metres; errors are reported in
    millimetres.
  * Both skeletons are first centred at the pelvis (mean of the hips, LSP
    joints 2 and 3).
  * PA (Procrustes-aligned): before measuring, the prediction is mapped onto
    the ground truth by the similarity transform (scale s, rotation R,
    translation t) minimising Σ ‖s R p_k + t − g_k‖², solved in closed form by
    SVD (Umeyama 1991). Reflections are excluded (det R = +1), so a mirrored
    skeleton keeps its error.
  * PCK: fraction of joints with error <= 150 mm; AUC: the mean PCK over the
    thresholds 0, 5, ..., 150 mm (the MPI-INF-3DHP protocol).

Each metric has a float64 NumPy version (for evaluation scripts and as the
reference) and a batched TensorFlow version (`tf_*`, for Keras' test_step).
"""

from typing import Optional

import numpy as np
import tensorflow as tf

from hmr_tf.smpl import joints as joints_lib

PCK_THRESHOLD_MM = 150.0
AUC_THRESHOLDS_MM = np.linspace(0.0, 150.0, 31)  # 0, 5, ..., 150
_M_TO_MM = 1000.0

# ---------------------------------------------------------------------------
# NumPy, float64.


def align_by_pelvis(joints: np.ndarray) -> np.ndarray:
  """Centres [..., 14, 3] LSP joints at the mean of the two hips."""
  joints = np.asarray(joints, dtype=np.float64)
  right, left = joints_lib.LSP_PELVIS_JOINTS
  pelvis = 0.5 * (joints[..., right, :] + joints[..., left, :])
  return joints - pelvis[..., None, :]


def procrustes_align(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
  """Maps `pred` onto `gt` by the best similarity transform, no reflection.

  Args:
    pred, gt: [K, 3] or [N, K, 3] point sets.

  Returns:
    pred transformed, same shape.
  """
  pred = np.asarray(pred, dtype=np.float64)
  gt = np.asarray(gt, dtype=np.float64)
  if pred.ndim == 3:
    return np.stack([procrustes_align(p, g) for p, g in zip(pred, gt)])
  mu_p, mu_g = pred.mean(0), gt.mean(0)
  x, y = pred - mu_p, gt - mu_g
  # Cross-covariance Σ_k y_k x_kᵀ = U diag(σ) Vᵀ; R = U S Vᵀ with S fixing
  # det R = +1; s = tr(diag(σ) S) / Σ‖x_k‖².
  u, sigma, vt = np.linalg.svd(y.T @ x)
  signs = np.ones(3)
  signs[2] = np.sign(np.linalg.det(u) * np.linalg.det(vt))
  rot = u @ np.diag(signs) @ vt
  var_x = np.sum(x * x)
  scale = np.sum(sigma * signs) / var_x if var_x > 0 else 1.0
  return scale * x @ rot.T + mu_g


def joint_errors(pred: np.ndarray, gt: np.ndarray,
                 procrustes: bool = False) -> np.ndarray:
  """Per-joint Euclidean errors in mm, [N, 14], after pelvis alignment.

  Args:
    pred, gt: [N, 14, 3] LSP joints in metres.
    procrustes: also apply the similarity (PA) alignment.
  """
  pred = align_by_pelvis(pred)
  gt = align_by_pelvis(gt)
  if procrustes:
    pred = procrustes_align(pred, gt)
  return _M_TO_MM * np.linalg.norm(pred - gt, axis=-1)


def mpjpe(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
  """Mean per-joint position error per example, [N] mm."""
  return joint_errors(pred, gt).mean(-1)


def pa_mpjpe(pred: np.ndarray, gt: np.ndarray) -> np.ndarray:
  """Procrustes-aligned MPJPE per example, [N] mm."""
  return joint_errors(pred, gt, procrustes=True).mean(-1)


def pck(errors_mm: np.ndarray, threshold_mm: float = PCK_THRESHOLD_MM) -> float:
  """Fraction of joints with error <= threshold (errors [N, K] mm)."""
  return float(np.mean(np.asarray(errors_mm) <= threshold_mm))


def auc(errors_mm: np.ndarray,
        thresholds_mm: np.ndarray = AUC_THRESHOLDS_MM) -> float:
  """Area under the PCK curve: mean PCK over `thresholds_mm`."""
  return float(np.mean([pck(errors_mm, t) for t in thresholds_mm]))


def summarize(errors_mm: np.ndarray) -> dict:
  """Mean and median of per-example errors [N] (mm)."""
  errors_mm = np.asarray(errors_mm, dtype=np.float64)
  return {'mean': float(np.mean(errors_mm)),
          'median': float(np.median(errors_mm))}


def pck_2d(pred: np.ndarray, gt: np.ndarray, threshold: float,
           scale: Optional[np.ndarray] = None) -> float:
  """2D PCK: fraction of visible keypoints within threshold of the truth.

  Args:
    pred: [N, K, 2] predicted keypoints.
    gt: [N, K, 3] true (x, y, visibility); invisible points do not count.
    threshold: distance threshold, in the keypoints' units, or a fraction of
      `scale` when given.
    scale: optional [N] per-example reference length (e.g. torso or head
      size, for PCK@0.5 style protocols).

  Returns:
    The fraction (0 when nothing is visible).
  """
  pred = np.asarray(pred, dtype=np.float64)
  gt = np.asarray(gt, dtype=np.float64)
  dist = np.linalg.norm(pred - gt[..., :2], axis=-1)  # [N, K]
  limit = threshold if scale is None else threshold * np.asarray(
      scale, dtype=np.float64)[:, None]
  vis = gt[..., 2] > 0
  if not np.any(vis):
    return 0.0
  return float(np.sum((dist <= limit) & vis) / np.sum(vis))


# ---------------------------------------------------------------------------
# TensorFlow, batched (computed in float64).


def tf_align_by_pelvis(joints: tf.Tensor) -> tf.Tensor:
  """[B, 14, 3] -> [B, 14, 3] centred at the mean of the hips."""
  right, left = joints_lib.LSP_PELVIS_JOINTS
  pelvis = 0.5 * (joints[:, right] + joints[:, left])
  return joints - pelvis[:, None, :]


def tf_procrustes_align(pred: tf.Tensor, gt: tf.Tensor) -> tf.Tensor:
  """Batched `procrustes_align`: [B, K, 3] -> [B, K, 3] (float64)."""
  pred = tf.cast(pred, tf.float64)
  gt = tf.cast(gt, tf.float64)
  mu_p = tf.reduce_mean(pred, axis=1, keepdims=True)
  mu_g = tf.reduce_mean(gt, axis=1, keepdims=True)
  x, y = pred - mu_p, gt - mu_g
  cov = tf.einsum('bki,bkj->bij', y, x)  # Σ_k y_k x_kᵀ, [B, 3, 3]
  sigma, u, v = tf.linalg.svd(cov)  # cov = u diag(σ) vᵀ
  det = tf.linalg.det(u) * tf.linalg.det(v)
  signs = tf.stack([tf.ones_like(det), tf.ones_like(det), tf.sign(det)], -1)
  rot = tf.einsum('bij,bj,bkj->bik', u, signs, v)  # u S vᵀ
  var_x = tf.reduce_sum(tf.square(x), axis=[1, 2])
  scale = tf.math.divide_no_nan(tf.reduce_sum(sigma * signs, -1), var_x)
  scale = tf.where(var_x > 0, scale, tf.ones_like(scale))
  return scale[:, None, None] * tf.einsum('bkj,bij->bki', x, rot) + mu_g


def tf_joint_errors(pred: tf.Tensor, gt: tf.Tensor,
                    procrustes: bool = False) -> tf.Tensor:
  """Batched `joint_errors`: [B, 14, 3] metres -> [B, 14] mm (float64)."""
  pred = tf_align_by_pelvis(tf.cast(pred, tf.float64))
  gt = tf_align_by_pelvis(tf.cast(gt, tf.float64))
  if procrustes:
    pred = tf_procrustes_align(pred, gt)
  return _M_TO_MM * tf.norm(pred - gt, axis=-1)


def tf_mpjpe(pred: tf.Tensor, gt: tf.Tensor) -> tf.Tensor:
  """[B] mm."""
  return tf.reduce_mean(tf_joint_errors(pred, gt), axis=-1)


def tf_pa_mpjpe(pred: tf.Tensor, gt: tf.Tensor) -> tf.Tensor:
  """[B] mm."""
  return tf.reduce_mean(tf_joint_errors(pred, gt, procrustes=True), axis=-1)


def tf_pck(errors_mm: tf.Tensor,
           threshold_mm: float = PCK_THRESHOLD_MM) -> tf.Tensor:
  """Per-example fraction of joints within threshold: [B, K] -> [B]."""
  return tf.reduce_mean(tf.cast(errors_mm <= threshold_mm, tf.float64), -1)


def tf_auc(errors_mm: tf.Tensor,
           thresholds_mm: np.ndarray = AUC_THRESHOLDS_MM) -> tf.Tensor:
  """Per-example AUC over thresholds: [B, K] -> [B]."""
  t = tf.constant(thresholds_mm, tf.float64)
  hits = tf.cast(tf.cast(errors_mm, tf.float64)[..., None] <= t, tf.float64)
  return tf.reduce_mean(hits, axis=[-2, -1])


def tf_pck_2d(pred: tf.Tensor, gt: tf.Tensor, threshold: float,
              scale: Optional[tf.Tensor] = None):
  """Batched 2D PCK counts: returns (hits [B], visible [B]) for pooling."""
  pred = tf.cast(pred, tf.float64)
  gt = tf.cast(gt, tf.float64)
  dist = tf.norm(pred - gt[..., :2], axis=-1)
  limit = tf.constant(threshold, tf.float64)
  if scale is not None:
    limit = limit * tf.cast(scale, tf.float64)[:, None]
  vis = tf.cast(gt[..., 2] > 0, tf.float64)
  hits = tf.reduce_sum(vis * tf.cast(dist <= limit, tf.float64), -1)
  return hits, tf.reduce_sum(vis, -1)
