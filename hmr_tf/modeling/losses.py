"""HMR's training losses, as pure functions of tensors.

Every loss here is a sum divided by a normaliser. By default the normaliser is
the local count (so the loss is a mean); under `tf.distribute` the model
passes the count summed over all replicas instead, so the per-replica losses
add up (Keras sums gradients over replicas) to the loss of the global batch.
The original code's normalisations (TF1 `tf.losses.*` with their default
"sum by nonzero weights" reduction) are kept:

  * 2D keypoints: L1 over the x and y of visible keypoints, divided by the
    number of visible coordinates (2 per visible keypoint).
  * 3D joints and SMPL parameters: 0.5 * squared error over the entries of
    the examples that have the label, divided by the number of those entries.
    With no such example the loss is exactly 0 (not 0/0).
  * Adversarial (least squares): per example the sum over the 25
    discriminator outputs, averaged over examples, i.e. Σ_i mean (D_i - t)².

Where the losses are applied (follows the original trainer): the 2D and 3D
losses on the last IEF iteration only; the adversarial losses on all
iterations' outputs (B * num_stage fakes against as many mocap samples).
`ModelConfig.ief_supervision='all'` (not the original's) applies the 2D and
3D losses to every iteration instead (their mean).
The weights (e_loss_weight, e_3d_weight, d_loss_weight) are applied by the
model, not here.
"""

from typing import Iterable, Optional, Tuple

import tensorflow as tf

from hmr_tf.smpl import joints as joints_lib


def _divide(total, normalizer):
  # 0 / 0 = 0: a batch without any label contributes nothing (and no NaN).
  return tf.math.divide_no_nan(total, tf.cast(normalizer, total.dtype))


def keypoint_count(kp_gt: tf.Tensor) -> tf.Tensor:
  """Number of visible coordinates: 2 * Σ visibility. kp_gt [B, K, 3]."""
  return 2.0 * tf.reduce_sum(tf.cast(kp_gt[..., 2], tf.float32))


def keypoint_l1_loss(kp_gt: tf.Tensor, kp_pred: tf.Tensor,
                     normalizer: Optional[tf.Tensor] = None) -> tf.Tensor:
  """L1 reprojection loss on visible keypoints.

  Args:
    kp_gt: [B, K, 3] ground truth (x, y, visibility) in crop coordinates.
    kp_pred: [B, K, 2] predicted keypoints in crop coordinates.
    normalizer: the divisor; defaults to `keypoint_count(kp_gt)`.

  Returns:
    Scalar Σ vis * (|Δx| + |Δy|) / normalizer.
  """
  kp_pred = tf.cast(kp_pred, tf.float32)
  kp_gt = tf.cast(kp_gt, tf.float32)
  vis = kp_gt[..., 2:3]
  total = tf.reduce_sum(vis * tf.abs(kp_gt[..., :2] - kp_pred))
  if normalizer is None:
    normalizer = keypoint_count(kp_gt)
  return _divide(total, normalizer)


def align_by_pelvis(joints: tf.Tensor) -> tf.Tensor:
  """Subtracts the pelvis (mean of both hips) from [B, 14, 3] LSP joints."""
  right, left = joints_lib.LSP_PELVIS_JOINTS
  pelvis = 0.5 * (joints[:, right] + joints[:, left])
  return joints - pelvis[:, None, :]


def label_count(has_label: tf.Tensor, entries_per_example: int) -> tf.Tensor:
  """Number of labelled entries: entries_per_example * Σ has_label."""
  return entries_per_example * tf.reduce_sum(tf.cast(has_label, tf.float32))


def _masked_half_squared(gt, pred, has_label, normalizer):
  gt = tf.reshape(tf.cast(gt, tf.float32), [tf.shape(gt)[0], -1])
  pred = tf.reshape(tf.cast(pred, tf.float32), [tf.shape(pred)[0], -1])
  has_label = tf.cast(has_label, tf.float32)
  total = tf.reduce_sum(has_label[:, None] * tf.square(gt - pred))
  if normalizer is None:
    normalizer = label_count(has_label, gt.shape[-1])
  return 0.5 * _divide(total, normalizer)


def joints3d_loss(joints_gt: tf.Tensor, joints_pred: tf.Tensor,
                  has_joints3d: tf.Tensor,
                  normalizer: Optional[tf.Tensor] = None) -> tf.Tensor:
  """0.5 * MSE between pelvis-aligned 3D LSP joints, on labelled examples.

  Args:
    joints_gt: [B, 14, 3] true joints (metres).
    joints_pred: [B, 14, 3] predicted joints (the first 14 cocoplus
      keypoints).
    has_joints3d: [B] 1 where the example has 3D joints.
    normalizer: the divisor; defaults to `label_count(has_joints3d, 42)`.

  Returns:
    Scalar loss; exactly 0 when no example has 3D joints.
  """
  return _masked_half_squared(
      align_by_pelvis(tf.cast(joints_gt, tf.float32)),
      align_by_pelvis(tf.cast(joints_pred, tf.float32)), has_joints3d,
      normalizer)


def smpl_params_loss(rotmats_gt: tf.Tensor, betas_gt: tf.Tensor,
                     rotmats_pred: tf.Tensor, betas_pred: tf.Tensor,
                     has_smpl: tf.Tensor,
                     normalizer: Optional[tf.Tensor] = None) -> tf.Tensor:
  """0.5 * MSE on the 24 rotation matrices and the betas, where MoSh exists.

  Args:
    rotmats_gt, rotmats_pred: [B, 24, 3, 3] joint rotations (global
      included, as the original).
    betas_gt, betas_pred: [B, 10].
    has_smpl: [B] 1 where the example has SMPL ground truth.
    normalizer: the divisor; defaults to `label_count(has_smpl, 226)`.

  Returns:
    Scalar loss; exactly 0 when no example has SMPL ground truth.
  """
  batch = tf.shape(betas_gt)[0]
  gt = tf.concat([tf.reshape(tf.cast(rotmats_gt, tf.float32), [batch, -1]),
                  tf.cast(betas_gt, tf.float32)], axis=1)
  pred = tf.concat([tf.reshape(tf.cast(rotmats_pred, tf.float32), [batch, -1]),
                    tf.cast(betas_pred, tf.float32)], axis=1)
  return _masked_half_squared(gt, pred, has_smpl, normalizer)


def _least_squares(scores, target, normalizer):
  scores = tf.cast(scores, tf.float32)
  total = tf.reduce_sum(tf.square(scores - target))
  if normalizer is None:
    normalizer = tf.shape(scores)[0]
  return _divide(total, normalizer)


def generator_adversarial_loss(
    d_fake: tf.Tensor, normalizer: Optional[tf.Tensor] = None) -> tf.Tensor:
  """Σ_i mean_n (D_i(fake_n) - 1)²; d_fake [N, 25]; normalizer defaults to N."""
  return _least_squares(d_fake, 1.0, normalizer)


def discriminator_losses(
    d_real: tf.Tensor, d_fake: tf.Tensor,
    real_normalizer: Optional[tf.Tensor] = None,
    fake_normalizer: Optional[tf.Tensor] = None
) -> Tuple[tf.Tensor, tf.Tensor]:
  """Least-squares discriminator losses.

  Args:
    d_real: [M, 25] scores of mocap samples.
    d_fake: [N, 25] scores of predictions.
    real_normalizer, fake_normalizer: divisors; default M and N.

  Returns:
    (Σ_i mean (D_i(real) - 1)², Σ_i mean D_i(fake)²).
  """
  return (_least_squares(d_real, 1.0, real_normalizer),
          _least_squares(d_fake, 0.0, fake_normalizer))


def l2_weight_decay(variables: Iterable[tf.Variable],
                    weight_decay: float) -> tf.Tensor:
  """weight_decay * Σ ½‖W‖² over `variables` (TF's l2_loss convention).

  The paper trains with weight decay 1e-4. The original code configured L2
  regularizers (on the ResNet convolutions and the discriminator) but never
  added the regularization losses to the objective, so it effectively trained
  without weight decay; set weight_decay=0 to reproduce that.
  """
  variables = list(variables)
  if not variables or weight_decay == 0:
    return tf.constant(0.0)
  # tf.nn.l2_loss is ½ Σ w², one fused reduction per variable.
  return weight_decay * tf.add_n(
      [tf.nn.l2_loss(tf.cast(v, tf.float32)) for v in variables])
