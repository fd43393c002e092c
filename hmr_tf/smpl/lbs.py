"""SMPL as pure TensorFlow functions, step by step as in the SMPL paper.

Loper et al., "SMPL: A Skinned Multi-Person Linear Model", SIGGRAPH Asia 2015:

  T_P(β, θ) = T̄ + B_S(β) + B_P(θ)                       (eq. 6)
  B_S(β)    = Σ_n β_n S_n                                 (eq. 8, shapedirs)
  B_P(θ)    = Σ_n (R_n(θ) − R_n(θ*)) P_n                  (eq. 9, posedirs)
  J(β)      = 𝒥 (T̄ + B_S(β))                              (eq. 10, J_regressor)
  t'_i      = Σ_k w_k,i G'_k(θ, J) t_i                     (eq. 2-4, skinning)

The rest pose θ* is zero, so R_n(θ*) = I. Every function here takes and
returns tensors; none reads global state, so they run eagerly, inside
`tf.function` and under XLA alike.
"""

from typing import Sequence, Tuple

import tensorflow as tf


def batch_rodrigues(axis_angle: tf.Tensor) -> tf.Tensor:
  """Axis-angle vectors to rotation matrices (Rodrigues' formula).

  Args:
    axis_angle: [..., 3], rotation axis times angle in radians.

  Returns:
    [..., 3, 3] rotation matrices.
  """
  axis_angle = tf.convert_to_tensor(axis_angle)
  # The tiny offset keeps the norm and its gradient finite at θ = 0, where the
  # axis is undefined; sin and 1 − cos vanish there, so R = I regardless.
  eps = tf.constant(1e-16, axis_angle.dtype)
  angle = tf.sqrt(tf.reduce_sum(tf.square(axis_angle), -1, keepdims=True) + eps)
  k = axis_angle / angle  # [..., 3] unit axis
  # R = cos θ I + (1 − cos θ) k kᵀ + sin θ [k]×, entry by entry. The same
  # arithmetic as tensorflow_graphics' rotation_matrix_3d.from_axis_angle
  # (equal to the bit; tests/smpl/lbs_test.py), without importing that
  # package, which costs every process ~2 s.
  cos = tf.cos(angle)
  kx, ky, kz = tf.unstack(k, axis=-1)
  sx, sy, sz = tf.unstack(tf.sin(angle) * k, axis=-1)
  cx, cy, cz = tf.unstack((1.0 - cos) * k, axis=-1)
  xy, xz, yz = cx * ky, cx * kz, cy * kz
  entries = [cx * kx + cos[..., 0], xy - sz, xz + sy,
             xy + sz, cy * ky + cos[..., 0], yz - sx,
             xz - sy, yz + sx, cz * kz + cos[..., 0]]
  return tf.reshape(tf.stack(entries, axis=-1),
                    tf.concat([tf.shape(k)[:-1], [3, 3]], 0))


def blend_shapes(betas: tf.Tensor, shapedirs: tf.Tensor) -> tf.Tensor:
  """Shape blend shapes B_S(β) (eq. 8).

  Args:
    betas: [B, K] shape coefficients, K <= the number of shape directions.
    shapedirs: [N, 3, K_max] shape directions.

  Returns:
    [B, N, 3] per-vertex offsets.
  """
  num_betas = betas.shape[-1]
  return tf.einsum('bk,nck->bnc', betas, shapedirs[:, :, :num_betas])


def regress_joints(vertices: tf.Tensor, regressor: tf.Tensor) -> tf.Tensor:
  """Joint locations as fixed linear combinations of vertices (eq. 10).

  Args:
    vertices: [B, N, 3].
    regressor: [J, N].

  Returns:
    [B, J, 3].
  """
  # The batched operand first: the TFLite converter lowers this order with a
  # dynamic batch, the other ('jn,bnc') to a tensor without a shape
  # signature that the LiteRT interpreter refuses (hmr_tf.inference
  # .tflite_export); TensorFlow runs both alike.
  return tf.einsum('bnc,jn->bjc', vertices, regressor)


def pose_feature(rotmats: tf.Tensor) -> tf.Tensor:
  """The pose-corrective input R_n(θ) − I of the 23 non-root joints.

  Args:
    rotmats: [B, 24, 3, 3].

  Returns:
    [B, 207], each joint's (R − I) flattened row-major, joints 1..23 in order
    (the column order of SMPL's `posedirs`).
  """
  eye = tf.eye(3, dtype=rotmats.dtype)
  num_rest = 9 * (rotmats.shape[1] - 1)
  return tf.reshape(rotmats[:, 1:] - eye, [-1, num_rest])


def pose_blend_shapes(rotmats: tf.Tensor, posedirs: tf.Tensor) -> tf.Tensor:
  """Pose blend shapes B_P(θ) (eq. 9).

  Args:
    rotmats: [B, 24, 3, 3].
    posedirs: [N, 3, 207] as in the SMPL files, or the same basis laid out
      as [207, N * 3] (`flat_posedirs`), which makes this one matrix product
      without a transpose of the largest array in the model.

  Returns:
    [B, N, 3] per-vertex corrective offsets.
  """
  feature = pose_feature(rotmats)
  if posedirs.shape.rank == 2:
    return tf.reshape(tf.matmul(feature, posedirs), [tf.shape(feature)[0], -1, 3])
  return tf.einsum('bp,ncp->bnc', feature, posedirs)


def flat_posedirs(posedirs: tf.Tensor) -> tf.Tensor:
  """[N, 3, 207] -> [207, N * 3], the layout `pose_blend_shapes` multiplies."""
  return tf.reshape(tf.transpose(posedirs, [2, 0, 1]),
                    [posedirs.shape[2], -1])


def rigid_transforms(rotmats: tf.Tensor, rest_joints: tf.Tensor,
                     parents: Sequence[int]) -> Tuple[tf.Tensor, tf.Tensor]:
  """World transforms of every joint along the kinematic tree (eq. 3-4).

  G_k = Π_{j ∈ A(k)} [R_j | j_j − j_parent(j)], the product over the chain
  from the root to k. The skinning transform G'_k = G_k · [I | −j_k] removes
  the rest-pose location, so that it acts on rest-pose vertices.

  Args:
    rotmats: [B, J, 3, 3] local rotation of every joint.
    rest_joints: [B, J, 3] joint locations in the rest pose.
    parents: length-J sequence of Python ints, parent of each joint (-1 for
      the root), every parent listed before its children.

  Returns:
    posed_joints: [B, J, 3], the joint locations after posing (G_k's
      translation).
    skinning: [B, J, 3, 4], the upper three rows of G'_k.
  """
  rel_joints = [rest_joints[:, 0]]
  for k in range(1, len(parents)):
    rel_joints.append(rest_joints[:, k] - rest_joints[:, parents[k]])

  world_rot = [rotmats[:, 0]]
  world_t = [rel_joints[0]]
  for k in range(1, len(parents)):
    p = parents[k]
    world_rot.append(tf.matmul(world_rot[p], rotmats[:, k]))
    world_t.append(world_t[p] +
                   tf.linalg.matvec(world_rot[p], rel_joints[k]))
  world_rot = tf.stack(world_rot, axis=1)  # [B, J, 3, 3]
  posed_joints = tf.stack(world_t, axis=1)  # [B, J, 3]
  # G'_k t = R_k t + (posed_k − R_k rest_k).
  offset = posed_joints - tf.linalg.matvec(world_rot, rest_joints)
  skinning = tf.concat([world_rot, offset[..., None]], axis=-1)
  return posed_joints, skinning


def skin(vertices: tf.Tensor, weights: tf.Tensor,
         skinning: tf.Tensor) -> tf.Tensor:
  """Linear blend skinning (eq. 2).

  Args:
    vertices: [B, N, 3] rest-pose vertices (with blend shapes applied).
    weights: [N, J] skinning weights.
    skinning: [B, J, 3, 4] per-joint transforms G'_k (upper rows).

  Returns:
    [B, N, 3] posed vertices.
  """
  batch = tf.shape(skinning)[0]
  num_joints = weights.shape[-1]
  # Blend the 3x4 transforms per vertex as one [N, J] x [J, B * 12] product
  # (one large matrix product instead of B small ones).
  flat = tf.reshape(tf.transpose(tf.reshape(skinning, [batch, num_joints, 12]),
                                 [1, 0, 2]), [num_joints, -1])
  per_vertex = tf.reshape(tf.matmul(weights, flat), [-1, batch, 3, 4])
  # Apply them vertex-major ([N, B, ...]) and transpose only the [N, B, 3]
  # result, not the four times larger transforms.
  rest = tf.transpose(vertices, [1, 0, 2])[:, :, None, :]  # [N, B, 1, 3]
  posed = tf.reduce_sum(per_vertex[..., :3] * rest, -1) + per_vertex[..., 3]
  return tf.transpose(posed, [1, 0, 2])


def joint_shape_basis(J_regressor: tf.Tensor, v_template: tf.Tensor,
                      shapedirs: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
  """The rest joints as a linear function of β: J(β) = 𝒥 T̄ + (𝒥 S) β.

  Args:
    J_regressor: [24, N].
    v_template: [N, 3].
    shapedirs: [N, 3, K].

  Returns:
    joint_template [24, 3] (𝒥 T̄) and joint_shapedirs [24, 3, K] (𝒥 S).
  """
  return (regress_joints(v_template[None], J_regressor)[0],
          tf.einsum('jn,nck->jck', J_regressor, shapedirs))


def rest_joints(betas: tf.Tensor, joint_template: tf.Tensor,
                joint_shapedirs: tf.Tensor) -> tf.Tensor:
  """[B, K] betas -> [B, 24, 3] rest joints (see `joint_shape_basis`)."""
  num_betas = betas.shape[-1]
  return joint_template + tf.einsum('bk,jck->bjc', betas,
                                    joint_shapedirs[:, :, :num_betas])


def posed_vertices(betas: tf.Tensor, rotmats: tf.Tensor,
                   v_template: tf.Tensor, shapedirs: tf.Tensor,
                   posedirs: tf.Tensor, rest: tf.Tensor,
                   parents: Sequence[int],
                   weights: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
  """Eq. 1 for any set of the model's vertices, given the rest joints.

  Every vertex is posed from its own template position, blend shapes and
  skinning weights alone, so posing a subset of the rows of `v_template`,
  `shapedirs`, `posedirs` and `weights` gives exactly those rows of the
  full mesh (what `SMPL.keypoints_only` uses).

  Args:
    betas: [B, K] shape coefficients.
    rotmats: [B, 24, 3, 3] joint rotations (joint 0 = global rotation).
    v_template: [M, 3] template positions of the vertices.
    shapedirs: [M, 3, K_max].
    posedirs: [M, 3, 207] or [207, M * 3] (see `pose_blend_shapes`), or
      None for a body without pose correctives (all zero: nothing to add).
    rest: [B, 24, 3] rest joints of the whole body (`rest_joints`).
    parents: 24 Python ints.
    weights: [M, 24].

  Returns:
    vertices: [B, M, 3] posed vertices.
    joints: [B, 24, 3] posed joints.
  """
  v_shaped = v_template + blend_shapes(betas, shapedirs)  # [B, M, 3]
  v_posed = v_shaped
  if posedirs is not None:
    v_posed = v_shaped + pose_blend_shapes(rotmats, posedirs)
  joints, skinning = rigid_transforms(rotmats, rest, parents)
  return skin(v_posed, weights, skinning), joints


def lbs(betas: tf.Tensor, rotmats: tf.Tensor, v_template: tf.Tensor,
        shapedirs: tf.Tensor, posedirs: tf.Tensor, J_regressor: tf.Tensor,
        parents: Sequence[int],
        weights: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
  """The full SMPL function M(β, θ) (eq. 1).

  Args:
    betas: [B, K] shape coefficients.
    rotmats: [B, 24, 3, 3] joint rotations (joint 0 = global rotation).
    v_template: [N, 3] template T̄.
    shapedirs: [N, 3, K_max].
    posedirs: [N, 3, 207] or [207, N * 3] (see `pose_blend_shapes`), or
      None (no pose correctives).
    J_regressor: [24, N].
    parents: 24 Python ints.
    weights: [N, 24].

  Returns:
    vertices: [B, N, 3] posed mesh.
    joints: [B, 24, 3] posed joints.
  """
  # J(β) = 𝒥 T̄ + (𝒥 S) β: the same joints as regressing v_shaped, but the
  # regressor meets the [N, 3, K] basis once instead of B meshes.
  num_betas = betas.shape[-1]
  joint_template, joint_shapedirs = joint_shape_basis(
      J_regressor, v_template, shapedirs[:, :, :num_betas])
  rest = rest_joints(betas, joint_template, joint_shapedirs)
  return posed_vertices(betas, rotmats, v_template, shapedirs, posedirs, rest,
                        parents, weights)
