"""The SMPL Keras layer: (pose θ, shape β) -> mesh, joints, keypoints."""

from typing import NamedTuple, Optional

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from hmr_tf.smpl import joints as joints_lib
from hmr_tf.smpl import lbs
from hmr_tf.smpl.model_io import BodyModel


class SMPLOutput(NamedTuple):
  """What one SMPL evaluation produces.

  Attributes:
    vertices: [B, N, 3] posed mesh in metres.
    joints: [B, 24, 3] the SMPL joints after posing.
    keypoints: [B, 19, 3] HMR's cocoplus keypoints regressed from the posed
      mesh, or None when the body model has no cocoplus regressor.
    rotmats: [B, 24, 3, 3] the joint rotations that posed the mesh.
  """
  vertices: tf.Tensor
  joints: tf.Tensor
  keypoints: Optional[tf.Tensor]
  rotmats: tf.Tensor


class SMPL(keras.layers.Layer):
  """SMPL body model as a Keras layer.

  The model arrays are held as constants (not weights): nothing here is
  trained, and constants keep checkpoints free of the licensed model data.
  The layer always computes in its own dtype (float32 by default, float64
  when asked), whatever the global mixed-precision policy is, because the
  skinning sums are sensitive to float16 round-off.

  Example:
    smpl = SMPL(load_model('basicModel_neutral_lbs_10_207_0_v1.0.0.pkl'))
    out = smpl(theta, betas)  # theta [B, 72], betas [B, 10]
  """

  def __init__(self, body_model: BodyModel, dtype='float32', **kwargs):
    super().__init__(dtype=dtype, trainable=False, **kwargs)
    self.body_model = body_model
    self._smpl_dtype = tf.as_dtype(dtype)
    if body_model.is_standin:
      # The models' names already say what they are ('..., not SMPL').
      logging.info('SMPL layer uses a stand-in body model: %s.',
                   body_model.metadata.get('name', 'unnamed, not SMPL'))

    def const(array):
      return tf.constant(np.asarray(array), dtype=self._smpl_dtype)

    self.v_template = const(body_model.v_template)
    self.shapedirs = const(body_model.shapedirs)
    # Stored as [207, N * 3]: the pose blend shapes are then one matmul.
    self.posedirs = lbs.flat_posedirs(const(body_model.posedirs))
    # A body without pose correctives (the MakeHuman-derived one: all zero)
    # skips the [B, 207] x [207, N * 3] product that would add zeros.
    self._posedirs_used = (self.posedirs if np.any(body_model.posedirs)
                           else None)
    self.J_regressor = const(body_model.J_regressor)
    self.weights_lbs = const(body_model.weights)
    self.faces = tf.constant(body_model.faces, dtype=tf.int32)
    self.parents = tuple(int(p) for p in body_model.parents)
    self.cocoplus_regressor = (
        None if body_model.cocoplus_regressor is None else const(
            body_model.cocoplus_regressor))
    # The rest joints as a function of the betas, and the vertices the
    # keypoint regressor reads (`keypoints_only`).
    self.joint_template, self.joint_shapedirs = lbs.joint_shape_basis(
        self.J_regressor, self.v_template, self.shapedirs)
    self._support = None
    if body_model.cocoplus_regressor is not None:
      regressor = np.asarray(body_model.cocoplus_regressor)
      support = np.nonzero(np.any(regressor != 0, axis=0))[0]
      self._support = dict(
          v_template=const(np.asarray(body_model.v_template)[support]),
          shapedirs=const(np.asarray(body_model.shapedirs)[support]),
          posedirs=(lbs.flat_posedirs(
              const(np.asarray(body_model.posedirs)[support]))
                    if np.any(np.asarray(body_model.posedirs)[support])
                    else None),
          weights=const(np.asarray(body_model.weights)[support]),
          regressor=const(regressor[:, support]))

  @property
  def num_vertices(self) -> int:
    return self.body_model.num_vertices

  @property
  def num_betas(self) -> int:
    return self.body_model.num_betas

  def _rotmats(self, pose: tf.Tensor) -> tf.Tensor:
    """[B, 72], [B, 24, 3] or [B, 24, 3, 3] pose -> [B, 24, 3, 3]."""
    pose = tf.cast(pose, self._smpl_dtype)
    if pose.shape.rank == 4:
      return pose
    if pose.shape.rank == 2 and pose.shape[-1] == 3 * joints_lib.NUM_SMPL_JOINTS:
      pose = tf.reshape(pose, [-1, joints_lib.NUM_SMPL_JOINTS, 3])
    if pose.shape.rank != 3 or pose.shape[-1] != 3:
      raise ValueError('SMPL pose must be [B, 72] axis-angle, [B, 24, 3] or '
                       f'[B, 24, 3, 3] rotation matrices; got {pose.shape}')
    return lbs.batch_rodrigues(pose)

  def _betas(self, betas: tf.Tensor) -> tf.Tensor:
    """[B, K] betas in the layer's dtype; K at most the model's count."""
    betas = tf.cast(betas, self._smpl_dtype)
    if betas.shape[-1] is None or betas.shape[-1] > self.num_betas:
      raise ValueError(f'SMPL betas must be [B, K] with K <= {self.num_betas} '
                       f'(the body model\'s shape directions); got '
                       f'{betas.shape}')
    return betas

  def call(self, pose, betas) -> SMPLOutput:
    """Poses the body.

    Args:
      pose: [B, 72] axis-angle (joint 0 = global rotation) or [B, 24, 3, 3]
        rotation matrices.
      betas: [B, K] shape coefficients, K <= `num_betas`; the first K shape
        directions are used.

    Returns:
      SMPLOutput in the layer's dtype.
    """
    betas = self._betas(betas)
    rotmats = self._rotmats(pose)
    vertices, joints = lbs.lbs(betas, rotmats, self.v_template, self.shapedirs,
                               self._posedirs_used, self.J_regressor,
                               self.parents,
                               self.weights_lbs)
    keypoints = None
    if self.cocoplus_regressor is not None:
      keypoints = lbs.regress_joints(vertices, self.cocoplus_regressor)
    return SMPLOutput(vertices=vertices, joints=joints, keypoints=keypoints,
                      rotmats=rotmats)

  def keypoints_only(self, pose, betas) -> SMPLOutput:
    """The joints and keypoints of `call`, without the mesh (faster).

    Poses only the vertices that the cocoplus regressor reads (a quarter of
    the MakeHuman body's, for instance): each vertex is posed independently
    of the others, so the keypoints are those of the full mesh (equal up to
    float round-off). Training uses this: its losses need no mesh.

    Args:
      pose, betas: as `call`.

    Returns:
      SMPLOutput with `vertices` None.

    Raises:
      ValueError: the body model has no cocoplus regressor.
    """
    if self._support is None:
      raise ValueError('keypoints_only needs a body model with a '
                       'cocoplus_regressor')
    betas = self._betas(betas)
    rotmats = self._rotmats(pose)
    rest = lbs.rest_joints(betas, self.joint_template, self.joint_shapedirs)
    sub = self._support
    points, joints = lbs.posed_vertices(betas, rotmats, sub['v_template'],
                                        sub['shapedirs'], sub['posedirs'],
                                        rest, self.parents, sub['weights'])
    return SMPLOutput(vertices=None, joints=joints,
                      keypoints=lbs.regress_joints(points, sub['regressor']),
                      rotmats=rotmats)

  def compute_output_spec(self, pose, betas):
    batch = pose.shape[0]
    spec = lambda *s: keras.KerasTensor((batch,) + s, dtype=self._smpl_dtype)
    keypoints = None
    if self.cocoplus_regressor is not None:
      keypoints = spec(joints_lib.NUM_COCOPLUS_JOINTS, 3)
    return SMPLOutput(
        vertices=spec(self.num_vertices, 3),
        joints=spec(joints_lib.NUM_SMPL_JOINTS, 3),
        keypoints=keypoints,
        rotmats=spec(joints_lib.NUM_SMPL_JOINTS, 3, 3))
