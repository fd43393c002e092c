"""Factorized adversarial prior on SMPL parameters: 25 real/fake scores.

Outputs, in this order (K + 2 = 25 columns):
  * 0..22: one score per non-root joint (SMPL joints 1..23), from that
    joint's rotation matrix alone;
  * 23: one score for the whole pose (all 23 rotations together);
  * 24: one score for the shape β.

The 23 rotation matrices are laid out as a "vertical image" [B, 23, 1, 9] and
go through two 1x1 convolutions (32 channels, ReLU), so every joint gets the
same 9 -> 32 -> 32 embedding. Each joint then has its own linear 32 -> 1 head.
The 23 * 32 = 736 embeddings, flattened, feed Dense 1024 ReLU -> Dense 1024
ReLU -> 1 for the whole pose (the width is `pose_units`, 1024 by default).
β goes through Dense 10 ReLU -> Dense 5 ReLU -> 1. (ReLU everywhere but the
outputs: TF-Slim's conv2d and fully_connected default, as in the original.)
The global rotation is left out because it depends on the camera, not on
what a plausible body looks like.
"""

import keras
import tensorflow as tf

from hmr_tf.smpl import joints as joints_lib

NUM_JOINTS = joints_lib.NUM_SMPL_JOINTS - 1  # 23
NUM_OUTPUTS = NUM_JOINTS + 2  # 25


def _output_dtype():
  """float32 under a mixed (16-bit) Keras policy, else the policy's dtype."""
  policy = keras.mixed_precision.global_policy()
  if policy.compute_dtype in ('float16', 'bfloat16'):
    return 'float32'
  return None


class _PerJointHeads(keras.layers.Layer):
  """23 independent linear heads 32 -> 1, one per joint, as one einsum."""

  def build(self, input_shape):
    num_joints, channels = int(input_shape[-2]), int(input_shape[-1])
    self.kernel = self.add_weight(
        name='kernel', shape=(num_joints, channels),
        initializer='glorot_uniform')
    self.bias = self.add_weight(name='bias', shape=(num_joints,),
                                initializer='zeros')

  def call(self, x):  # [B, J, C] -> [B, J]
    return tf.einsum('bjc,jc->bj', x, self.kernel) + self.bias


class Discriminator(keras.Model):
  """The factorized discriminator.

  `pose_units` is the width of the whole-pose branch's hidden layers (the
  paper's 1024). Call with `rotmats` [B, 23, 3, 3] (the non-root joint
  rotations, SMPL joints 1..23) and `betas` [B, 10]; returns [B, 25]
  unbounded scores (least-squares GAN: 1 means real, 0 fake).
  """

  def __init__(self, num_betas: int = 10, pose_units: int = 1024,
               name='discriminator', **kwargs):
    super().__init__(name=name, **kwargs)
    self.num_betas = num_betas
    self.conv1 = keras.layers.Conv2D(32, 1, activation='relu', name='conv1')
    self.conv2 = keras.layers.Conv2D(32, 1, activation='relu', name='conv2')
    # The three output layers compute in float32 under mixed precision: the
    # least-squares losses square these scores (a float16 score of ~1 has a
    # step of 1e-3, and its square feeds both players' gradients).
    out = _output_dtype()
    self.joint_heads = _PerJointHeads(dtype=out, name='joint_heads')
    self.pose_fc1 = keras.layers.Dense(pose_units, activation='relu',
                                       name='pose_fc1')
    self.pose_fc2 = keras.layers.Dense(pose_units, activation='relu',
                                       name='pose_fc2')
    self.pose_out = keras.layers.Dense(1, dtype=out, name='pose_out')
    self.shape_fc1 = keras.layers.Dense(10, activation='relu', name='shape_fc1')
    self.shape_fc2 = keras.layers.Dense(5, activation='relu', name='shape_fc2')
    self.shape_out = keras.layers.Dense(1, dtype=out, name='shape_out')

  def build(self, rotmats_shape=None, betas_shape=None):
    self.conv1.build((None, NUM_JOINTS, 1, 9))
    self.conv2.build((None, NUM_JOINTS, 1, 32))
    self.joint_heads.build((None, NUM_JOINTS, 32))
    self.pose_fc1.build((None, NUM_JOINTS * 32))
    self.pose_fc2.build((None, self.pose_fc1.units))
    self.pose_out.build((None, self.pose_fc2.units))
    self.shape_fc1.build((None, self.num_betas))
    self.shape_fc2.build((None, 10))
    self.shape_out.build((None, 5))
    self.built = True

  def call(self, rotmats, betas):
    """Scores SMPL parameters.

    Args:
      rotmats: [B, 23, 3, 3] (or [B, 23, 9]) non-root joint rotations.
      betas: [B, num_betas] shape coefficients.

    Returns:
      [B, 25] scores ordered [23 joints, whole pose, shape] (float32
      under a mixed policy).
    """
    x = tf.reshape(tf.cast(rotmats, self.compute_dtype), [-1, NUM_JOINTS, 1, 9])
    x = self.conv2(self.conv1(x))  # [B, 23, 1, 32]
    x = tf.reshape(x, [-1, NUM_JOINTS, 32])
    joint_scores = self.joint_heads(x)  # [B, 23]
    pose = tf.reshape(x, [-1, NUM_JOINTS * 32])
    pose_score = self.pose_out(self.pose_fc2(self.pose_fc1(pose)))  # [B, 1]
    b = self.shape_fc2(self.shape_fc1(tf.cast(betas, self.compute_dtype)))
    shape_score = self.shape_out(b)  # [B, 1]
    return tf.concat([joint_scores, pose_score, shape_score], axis=1)
