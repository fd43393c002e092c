"""Decodes serialised TFRecord examples into tensors (no augmentation).

One `tf.io.parse_single_example` per record, following the schema in
`hmr_tf.data.schema`. Works eagerly and inside `tf.data` / `tf.function`.
"""

from typing import Dict

import tensorflow as tf

from hmr_tf.data import schema as F


def decode_image_example(serialized: tf.Tensor) -> Dict[str, tf.Tensor]:
  """Decodes a 2D or 3D image record.

  2D records get zero-filled 3D fields with zero flags. Pose and shape are
  zeroed wherever `meta/has_3d` is 0 (the original MPI-INF-3DHP records
  stored -1 placeholders there).

  Args:
    serialized: tf.string [], one serialised `tf.train.Example`.

  Returns:
    A dict of tensors:
      'image': uint8 [H, W, 3].
      'filename': tf.string []; 'dataset': tf.string [].
      'center': float32 [2], person centre (x, y) in pixels.
      'scale': float32 [], `image/scale` (1 when absent).
      'keypoints2d': float32 [19, 3], (x px, y px, visibility 0/1) of the
        14 LSP joints then the 5 face points (cocoplus order).
      'pose': float32 [72]; 'shape': float32 [10].
      'joints3d': float32 [14, 3], metres.
      'has_smpl': float32 [], 1 when pose/shape are MoSh ground truth.
      'has_joints3d': float32 [], 1 when joints3d is ground truth.
      'gender': tf.string [], `meta/gender` ('' when absent).
      'activity': int64 [], `meta/activity` (0 when absent).
  """
  parsed = tf.io.parse_single_example(serialized, F.image_feature_spec())
  image = tf.io.decode_image(parsed[F.IMAGE_ENCODED], channels=3,
                             dtype=tf.uint8, expand_animations=False)
  image = tf.ensure_shape(image, [None, None, 3])

  # Original COCO records kept COCO's raw visibility (2 = labelled and
  # visible); every labelled point counts as visible (1) here.
  body = tf.stack([
      parsed[F.IMAGE_X], parsed[F.IMAGE_Y],
      tf.cast(parsed[F.IMAGE_VISIBILITY] > 0, tf.float32)
  ], axis=1)  # [14, 3]
  # Stored as the row-major [3, 5] (x row, y row, vis row) array.
  face = tf.reshape(parsed[F.IMAGE_FACE_PTS], [3, F.NUM_FACE_POINTS])
  face = tf.transpose(tf.concat(
      [face[:2], tf.cast(face[2:] > 0, tf.float32)], axis=0))  # [5, 3]
  keypoints = tf.concat([body, face], axis=0)  # [19, 3]

  gt3d = parsed[F.MOSH_GT3D]  # SparseTensor; empty for 2D records.
  gt3d_size = tf.size(gt3d.values)
  tf.debugging.assert_equal(
      tf.logical_or(tf.equal(gt3d_size, 0), tf.equal(gt3d_size, F.GT3D_DIM)),
      True,
      message=f'{F.MOSH_GT3D}: expected 0 or {F.GT3D_DIM} values')
  has_gt3d = tf.equal(gt3d_size, F.GT3D_DIM)
  joints3d = tf.sparse.to_dense(gt3d, default_value=0.0)
  joints3d = tf.reshape(
      tf.pad(joints3d, [[0, F.GT3D_DIM - gt3d_size]]), [F.NUM_LSP_JOINTS, 3])

  # A 3D record without the added flag predates it: every such original
  # record carried gt3d, so presence of gt3d decides.
  has_joints3d_raw = parsed[F.META_HAS_3D_JOINTS]
  has_joints3d = tf.where(
      tf.equal(has_joints3d_raw, F.HAS_3D_JOINTS_UNSET),
      tf.cast(has_gt3d, tf.int64), has_joints3d_raw)
  has_joints3d = tf.cast(tf.greater(has_joints3d, 0), tf.float32)
  has_smpl = tf.cast(tf.greater(parsed[F.META_HAS_3D], 0), tf.float32)

  return {
      'image': image,
      'filename': parsed[F.IMAGE_FILENAME],
      'dataset': parsed[F.IMAGE_DATASET],
      'center': tf.cast(parsed[F.IMAGE_CENTER], tf.float32),
      'scale': parsed[F.IMAGE_SCALE],
      'keypoints2d': keypoints,
      'pose': parsed[F.MOSH_POSE] * has_smpl,
      'shape': parsed[F.MOSH_SHAPE] * has_smpl,
      'joints3d': joints3d * has_joints3d,
      'has_smpl': has_smpl,
      'has_joints3d': has_joints3d,
      'gender': parsed[F.META_GENDER],
      'activity': parsed[F.META_ACTIVITY],
  }


def decode_mocap_example(serialized: tf.Tensor) -> Dict[str, tf.Tensor]:
  """Decodes a mocap record.

  Args:
    serialized: tf.string [], one serialised `tf.train.Example`.

  Returns:
    {'pose': float32 [72], 'shape': float32 [10]}.
  """
  parsed = tf.io.parse_single_example(serialized, F.mocap_feature_spec())
  return {'pose': parsed[F.MOCAP_POSE], 'shape': parsed[F.MOCAP_SHAPE]}
