"""The left-right mirror image of an SMPL pose (training's flip augmentation).

Kept apart from `lbs` (the skinning): the data parser needs this and no
skinning.
"""

import tensorflow as tf

from hmr_tf.smpl import joints as joints_lib


def mirror_pose(theta: tf.Tensor) -> tf.Tensor:
  """The pose of the left-right mirror image (reflection x -> -x).

  Reflecting the body swaps every left joint with its right twin, and a
  rotation R becomes M R M with M = diag(-1, 1, 1): for axis-angle that keeps
  the x component and negates y and z.

  Args:
    theta: [..., 72] axis-angle pose (24 joints × 3).

  Returns:
    [..., 72] the mirrored pose.
  """
  theta = tf.convert_to_tensor(theta)
  batch_shape = tf.shape(theta)[:-1]
  per_joint = tf.reshape(
      theta, tf.concat([batch_shape, [joints_lib.NUM_SMPL_JOINTS, 3]], 0))
  swapped = tf.gather(per_joint, joints_lib.SMPL_FLIP_PERM, axis=-2)
  flipped = swapped * tf.constant([1.0, -1.0, -1.0], theta.dtype)
  return tf.reshape(flipped, tf.shape(theta))
