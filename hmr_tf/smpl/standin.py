"""The procedural stand-in body model (NOT SMPL).

The licensed SMPL file cannot ship with hmr_tf, so tests and the quickstart run
on this stand-in: a human-like mesh built from scratch and written in SMPL's
format (`model_io.BodyModel`), with SMPL's 24 joints and kinematic tree. Its
numbers say nothing about SMPL; the metadata and the logs say so.

Construction (all deterministic):
  * Surface: the boundary of a polycube mannequin (legs, feet, torso, arms in a
    T, neck, head as unit lattice cells), its lattice points moved to body
    proportions, then Catmull-Clark subdivided (standin_geometry). The result
    is a closed, outward-oriented, exactly left-right mirror-symmetric mesh in
    metres: y up, facing +z, left side at +x, pelvis at the origin, ~1.7 m.
  * Skinning weights: a sharp soft-min over each joint's bone capsules,
    diffused over the mesh (so blending follows the surface and never jumps
    between the legs), then thinned to a few joints per vertex.
  * Shape: 10 hand-made smooth displacement fields (stature, girth, leg
    length, ...), made orthogonal by Gram-Schmidt in that order.
  * Pose correctives: near each joint, a bulge along the normal growing with
    the bend (-trace(R - I)) plus a fraction of the rigid motion (R - I)(v - J),
    both linear in (R - I) and mirror-equivariant.
  * Regressors: convex vertex weights found by non-negative least squares
    around each joint, so the rest joints are reproduced and move with shape.

Every array is finally made exactly symmetric under the mirror x -> -x (with
joints swapped by SMPL_FLIP_PERM), so flip augmentation can be tested exactly.

Command line: `python -m hmr_tf.smpl.standin --output=PATH [--num_vertices=N]`
writes it as an SMPL-format `.npz`.
"""

import math
from typing import Dict, List, Sequence, Tuple

from absl import logging
import numpy as np
import scipy.optimize

from hmr_tf import configs
from hmr_tf.smpl import joints as joints_lib
from hmr_tf.smpl import model_io
from hmr_tf.smpl import standin_geometry as geom

NAME = 'hmr_tf procedural stand-in body (not SMPL)'
NUM_BETAS = 10
_MIRROR = np.array([-1.0, 1.0, 1.0])
_CM = 0.01

# ---------------------------------------------------------------------------
# Body design, in centimetres, left side (x > 0); the right side is mirrored.

# Rest joints of the left side and the midline (SMPL names).
_JOINTS_CM = {
    'pelvis': (0.0, 0.0, -1.0),
    'left_hip': (8.8, -7.0, -1.0),
    'spine1': (0.0, 12.0, -2.0),
    'left_knee': (9.75, -46.0, -1.5),
    'spine2': (0.0, 25.0, -1.5),
    'left_ankle': (10.0, -86.0, -2.5),
    'spine3': (0.0, 31.0, -1.5),
    'left_foot': (10.0, -92.0, 9.0),
    'neck': (0.0, 52.0, -1.5),
    'left_collar': (7.0, 44.0, -1.5),
    'head': (0.0, 60.0, 0.0),
    'left_shoulder': (17.5, 45.0, -1.0),
    'left_elbow': (43.0, 45.0, -1.2),
    'left_wrist': (68.0, 45.0, -1.0),
    'left_hand': (76.5, 45.0, -1.0),
}
# Ends of the leaf bones (not joints): crown, toe tip, fingertip.
_HEAD_TOP = (0.0, 73.0, 0.0)
_TOE_TIP = (10.0, -92.0, 17.0)
_FINGER_TIP = (85.0, 45.0, -1.0)

# Bones that each joint moves: (start, end, radius at start, radius at end).
# Distances to these capsules, divided by the radius, decide skinning.
_BONES = {
    'pelvis': [('pelvis', 'left_hip', 13.0, 7.5),
               ('pelvis', 'right_hip', 13.0, 7.5),
               ('pelvis', 'spine1', 13.0, 13.0)],
    'left_hip': [('left_hip', 'left_knee', 7.5, 5.5)],
    'left_knee': [('left_knee', 'left_ankle', 5.5, 4.0)],
    'left_ankle': [('left_ankle', 'left_foot', 4.5, 4.5)],
    'left_foot': [('left_foot', _TOE_TIP, 4.0, 4.0)],
    'spine1': [('spine1', 'spine2', 13.0, 13.0)],
    'spine2': [('spine2', 'spine3', 13.0, 13.0)],
    'spine3': [('spine3', 'neck', 13.0, 6.0),
               ('spine3', 'left_collar', 10.0, 7.0),
               ('spine3', 'right_collar', 10.0, 7.0)],
    'neck': [('neck', 'head', 6.0, 6.0)],
    'head': [('head', _HEAD_TOP, 8.5, 8.0)],
    'left_collar': [('left_collar', 'left_shoulder', 7.0, 5.5)],
    'left_shoulder': [('left_shoulder', 'left_elbow', 5.2, 4.2)],
    'left_elbow': [('left_elbow', 'left_wrist', 4.2, 3.0)],
    'left_wrist': [('left_wrist', 'left_hand', 3.0, 3.0)],
    'left_hand': [('left_hand', _FINGER_TIP, 3.0, 3.0)],
}

# Heights of the cage's lattice rows (iy = 0..14): sole, ankle, calf, knee,
# thigh, crotch, hips, waist, chest, armpit, arm axis, shoulder top, chin,
# eyes, crown.
_ROW_Y = (-95.0, -88.0, -67.0, -47.0, -27.0, -11.0, 1.0, 13.0, 26.0, 40.0,
          45.0, 50.0, 56.0, 66.0, 75.0)
# Torso rows 5..11: half widths at lattice |x| = 1, 2, 3; back and front depth.
_TORSO_X = {5: (3.0, 9.75, 16.5), 6: (5.5, 11.0, 17.0), 7: (5.5, 9.5, 14.5),
            8: (5.5, 10.5, 15.5), 9: (5.5, 11.0, 16.5), 10: (5.5, 11.0, 16.5),
            11: (5.5, 11.0, 16.5)}
_TORSO_BACK = {5: 11.0, 6: 12.0, 7: 9.5, 8: 9.5, 9: 9.5, 10: 9.0, 11: 8.0}
_TORSO_FRONT = {5: 8.0, 6: 9.0, 7: 9.0, 8: 11.0, 9: 11.5, 10: 10.0, 11: 8.0}
# Legs rows 2..4 around axis (9.75, -1.5): half width, half depth.
_LEG_CENTRE = (9.75, -1.5)
_LEG_HALF = {2: (5.2, 6.0), 3: (5.0, 5.2), 4: (6.8, 7.0)}
# Arms at lattice |x| = 4..9 around axis (y, z) = (45, -1): x, half height,
# half depth (the hand is flat: thin in y).
_ARM_CENTRE = (45.0, -1.0)
_ARM = {4: (30.0, 5.0, 5.5), 5: (43.0, 4.0, 4.2), 6: (56.0, 3.8, 4.5),
        7: (68.0, 2.4, 3.3), 8: (77.0, 1.7, 4.6), 9: (86.0, 1.2, 4.0)}
# Head rows 12..14: half widths at |x| = 1, 2 and depths at iz = 0..4.
_HEAD_X = {12: (5.0, 7.0), 13: (5.5, 8.0), 14: (4.0, 6.5)}
_HEAD_Z = {12: (-8.5, -5.5, 0.0, 6.0, 9.5), 13: (-10.0, -6.0, 0.5, 7.0, 11.0),
           14: (-8.5, -5.0, 0.0, 5.0, 8.5)}
_FOOT_X = (0.0, 5.0, 10.0, 15.0)
_FOOT_Z = (None, -9.0, -2.0, 6.0, 18.0)
# Pulling the corners of a 2x2 limb cross-section in by this factor makes the
# control polygon an octagon, whose subdivision is close to a circle.
_ROUND = 0.72


def _cage_cells() -> List[geom.Cell]:
  """Occupied lattice cells of the mannequin (both sides)."""
  left = []

  def box(xs, ys, zs):
    left.extend((x, y, z) for x in xs for y in ys for z in zs)

  box(range(1, 3), range(0, 1), range(1, 4))  # foot (toes forward, +z)
  box(range(1, 3), range(1, 5), range(1, 3))  # leg
  box(range(0, 3), range(5, 11), range(0, 4))  # torso
  box(range(3, 9), range(9, 11), range(1, 3))  # arm (T-pose, along +x)
  box(range(0, 1), range(11, 12), range(1, 3))  # neck
  box(range(0, 2), range(12, 14), range(0, 4))  # head
  return left + [(-x - 1, y, z) for x, y, z in left]


def _cage_position(ix: int, iy: int, iz: int) -> Tuple[float, float, float]:
  """Body position (cm) of the cage's lattice point (ix, iy, iz)."""
  a, s = abs(ix), float(np.sign(ix))
  if iy <= 1:  # foot; row 1 is also the ankle ring.
    y = _ROW_Y[iy]
    if iy == 1 and iz == 4:
      y = -91.0  # the top of the foot slopes down to the toes
    return s * _FOOT_X[a], y, _FOOT_Z[iz]
  if iy <= 4:  # leg
    hx, hz = _LEG_HALF[iy]
    dx, dz = a - 2, iz - 2
    c = _ROUND if abs(dx) == abs(dz) == 1 else 1.0
    return (s * (_LEG_CENTRE[0] + c * dx * hx), _ROW_Y[iy],
            _LEG_CENTRE[1] + c * dz * hz)
  if iy <= 11 and a <= 3:  # torso, including the limbs' root rings
    x = 0.0 if a == 0 else s * _TORSO_X[iy][a - 1]
    mid = (-7.0, 5.5) if iy <= 6 else (-6.5, 5.0)
    z = (-1.0 - _TORSO_BACK[iy], mid[0], -1.0, mid[1],
         -1.0 + _TORSO_FRONT[iy])[iz]
    return x, _ROW_Y[iy], z
  if iy <= 11:  # arm
    x, hy, hz = _ARM[a]
    dy, dz = iy - 10, iz - 2
    c = (_ROUND if a <= 7 else 0.85) if abs(dy) == abs(dz) == 1 else 1.0
    return (s * x, _ARM_CENTRE[0] + c * dy * hy, _ARM_CENTRE[1] + c * dz * hz)
  # neck top ring and head
  x = 0.0 if a == 0 else s * _HEAD_X[iy][a - 1]
  return x, _ROW_Y[iy], _HEAD_Z[iy][iz]


def _proportions(seed: int):
  """A small, mirror-symmetric change of proportions drawn from `seed`.

  Returns a function mapping [K, 3] points (cm) to [K, 3]. Seed 0 is the
  canonical body (no change). Monotone per axis, so the cage never folds.
  """
  if seed == 0:
    return lambda p: p
  rng = np.random.default_rng(seed)
  leg, arm, width, head = 1.0 + 0.04 * rng.uniform(-1.0, 1.0, size=4)

  def apply(p):
    p = np.array(p, dtype=np.float64)
    below = p[:, 1] < -7.0
    p[below, 1] = -7.0 + (p[below, 1] + 7.0) * leg
    ax = np.abs(p[:, 0])
    out = ax > 17.5
    p[out, 0] = np.sign(p[out, 0]) * (17.5 + (ax[out] - 17.5) * arm)
    p[:, 0] *= width
    up = p[:, 1] > 56.0
    p[up, 1] = 56.0 + (p[up, 1] - 56.0) * head
    return p

  return apply


# ---------------------------------------------------------------------------
# Building blocks.


def _smpl_index(name: str) -> int:
  return joints_lib.SMPL_JOINT_NAMES.index(name)


def _mirror_name(name: str) -> str:
  if name.startswith('left_'):
    return 'right_' + name[len('left_'):]
  return name


def rest_joints(seed: int = 0) -> np.ndarray:
  """[24, 3] the rest-pose joints (metres) that `build(seed=seed)` uses."""
  return _rest_joints(_proportions(seed))


def _rest_joints(transform) -> np.ndarray:
  """[24, 3] rest joints in metres."""
  out = np.zeros((joints_lib.NUM_SMPL_JOINTS, 3))
  for name, p in _JOINTS_CM.items():
    out[_smpl_index(name)] = p
    out[_smpl_index(_mirror_name(name))] = np.asarray(p) * _MIRROR
  return transform(out) * _CM


def _bone_segments(joints_m: np.ndarray, transform):
  """Per joint, a list of (p0, p1, r0, r1) capsules in metres."""

  def point(ref, sign):
    if isinstance(ref, str):
      # Only left bones are mirrored, so `ref` names a left or a midline joint.
      name = ref if sign > 0 else _mirror_name(ref)
      return joints_m[_smpl_index(name)]
    return transform(np.asarray([ref]) * np.array([sign, 1.0, 1.0]))[0] * _CM

  segments = [[] for _ in range(joints_lib.NUM_SMPL_JOINTS)]
  for name, bones in _BONES.items():
    sides = (1.0, -1.0) if name.startswith('left_') else (1.0,)
    for sign in sides:
      joint = name if sign > 0 else _mirror_name(name)
      for start, end, r0, r1 in bones:
        segments[_smpl_index(joint)].append(
            (point(start, sign), point(end, sign), r0 * _CM, r1 * _CM))
  return segments


def _capsule_distances(verts, segments):
  """[N, 24] radius-normalised distances and [N, 24, 3] offsets from bones."""
  n = len(verts)
  dist = np.full((n, len(segments)), np.inf)
  offset = np.zeros((n, len(segments), 3))
  for j, segs in enumerate(segments):
    for p0, p1, r0, r1 in segs:
      t, closest = geom.segment_closest(verts, p0, p1)
      off = verts - closest
      d = np.linalg.norm(off, axis=1) / (r0 + t * (r1 - r0))
      better = d < dist[:, j]
      dist[better, j] = d[better]
      offset[better, j] = off[better]
  return dist, offset


def _diffuse(values, faces, mean_edge, blend):
  """Smooths per-vertex `values` [N, ...] over the surface by ~`blend` m.

  A lazy random walk of k steps spreads by about mean_edge * sqrt(k / 2), so
  the step count makes the blending width independent of the resolution.
  """
  avg = geom.neighbour_average_matrix(faces, values.shape[0])
  steps = max(4, int(round(2.0 * (blend / mean_edge)**2)))
  flat = values.reshape(values.shape[0], -1)
  for _ in range(steps):
    flat = 0.5 * flat + 0.5 * (avg @ flat)
  return flat.reshape(values.shape)


def _skinning_weights(verts, faces, segments, mean_edge):
  """[N, 24] smooth, sparse, convex skinning weights."""
  dist, _ = _capsule_distances(verts, segments)
  # A sharp soft-min: nearly a hard segmentation by capsule.
  w = np.exp(-(dist - dist.min(axis=1, keepdims=True)) / 0.15)
  w /= w.sum(axis=1, keepdims=True)
  # Diffusing along the surface blends across joints without leaking between
  # surfaces that are close in space only (the two thighs).
  w = _diffuse(w, faces, mean_edge, blend=0.035)
  # Thin out tiny influences (continuously: subtract, clip, renormalise).
  w = np.maximum(w - 0.04, 0.0)
  return w / w.sum(axis=1, keepdims=True)


def _smooth_ramp(u):
  u = np.clip(u, 0.0, 1.0)
  return u * u * (3.0 - 2.0 * u)


def _shape_directions(verts, weights, offsets, joints_m, smoother):
  """[N, 3, 10] orthogonal shape directions (largest first).

  Each starts as a smooth displacement field with a physical meaning and a
  size per unit of beta; Gram-Schmidt in this order keeps each one's part that
  is orthogonal to the ones before.
  """
  x, y, z = verts[:, 0], verts[:, 1], verts[:, 2]
  names = joints_lib.SMPL_JOINT_NAMES

  def mask(*keys):
    cols = [i for i, n in enumerate(names) if any(k in n for k in keys)]
    return weights[:, cols].sum(axis=1)[:, None]

  m_leg = mask('hip', 'knee', 'ankle', 'foot')
  m_arm = mask('shoulder', 'elbow', 'wrist', 'hand')
  m_torso = mask('pelvis', 'spine1', 'spine2')
  m_head = mask('head') + 0.5 * mask('neck')
  # Girth: away from the bones, except in the feet and hands, whose flat
  # boxes sit obliquely on their bones (inflating them there folds faces).
  radial = np.einsum('nj,njk->nk', weights, offsets) * (
      1.0 - mask('ankle', 'foot', 'hand'))
  zeros = np.zeros_like(x)
  hip_y = joints_m[_smpl_index('left_hip'), 1]
  shoulder_x = joints_m[_smpl_index('left_shoulder'), 0]
  head_centre = np.array([0.0, 0.64, 0.0])
  fields = [
      0.035 * verts,  # stature: overall size
      0.07 * radial,  # girth
      0.035 * m_leg * np.stack([zeros, y - hip_y, zeros], 1),  # leg length
      np.stack([zeros, 0.02 * _smooth_ramp(y / 0.5), zeros], 1),  # torso
      0.04 * m_arm * np.stack(  # arm length
          [x - np.sign(x) * shoulder_x, zeros, zeros], 1),
      0.05 * np.stack(  # shoulder width
          [x * _smooth_ramp((y - 0.15) / 0.3), zeros, zeros], 1),
      0.05 * np.stack(  # hip width
          [x * (1.0 - _smooth_ramp(y / 0.25)), zeros, zeros], 1),
      0.12 * m_torso * np.stack([zeros, zeros, z + 0.01], 1),  # belly depth
      0.06 * m_head * (verts - head_centre),  # head size
      0.06 * (m_arm + m_leg) * radial,  # limb girth
  ]
  basis = []
  for k, f in enumerate(fields):
    if k > 0:
      # Smoothing over the surface removes sharp changes (where skinning
      # masks switch) that could fold a face at 3 standard deviations.
      f = smoother(f)
    u = f.reshape(-1).copy()
    for b in basis:
      # Elementwise products, not BLAS dots: these are tiny, and threaded
      # BLAS on a busy machine makes each dot cost milliseconds.
      u -= float(np.sum(u * b)) / float(np.sum(b * b)) * b
    basis.append(u)
  # Largest first, as in SMPL (whose directions are PCA components scaled by
  # their standard deviations); stature stays first.
  basis.sort(key=lambda u: -float(np.sum(u * u)))
  return np.stack(basis, axis=1).reshape(len(verts), 3, NUM_BETAS)


def _pose_correctives(verts, faces, weights, joints_m, segments):
  """[N, 3, 207] pose corrective directions.

  For non-root joint j with P = R_j - I, vertex i moves by
    g_ij * (-0.01 m * trace(P) * n_i + 0.1 * P (v_i - J_j)),
  where g_ij is a Gaussian around the joint restricted to the joint's and its
  parent's skinning region, n_i the vertex normal. Both terms are linear in P
  and equivariant under the mirror (P -> M P M, v -> M v, n -> M n).
  """
  normals = geom.vertex_normals(verts, faces)
  n = len(verts)
  out = np.zeros((n, 3, 23, 3, 3))
  parents = joints_lib.SMPL_PARENTS
  for j in range(1, joints_lib.NUM_SMPL_JOINTS):
    sigma = min(1.2 * segments[j][0][2], 0.1)
    rel = verts - joints_m[j]
    local = np.clip(2.0 * (weights[:, j] + weights[:, parents[j]]), 0.0, 1.0)
    g = np.exp(-np.sum(rel**2, axis=1) / (2.0 * sigma**2)) * local
    for a in range(3):
      out[:, :, j - 1, a, a] -= 0.01 * g[:, None] * normals
      # d(P rel)_a / dP_ab = rel_b along axis a.
      out[:, a, j - 1, a, :] += 0.1 * g[:, None] * rel
  return out.reshape(n, 3, 9 * 23)


def _convex_fit(verts, candidates, target, smooth=1e-5):
  """Convex weights on `candidates` whose combination is `target`.

  Non-negative least squares with the sum-to-one constraint as a heavy row
  and a small pull towards uniform weights (so the weights spread over a ring
  instead of a few vertices, and the point follows the surface when it moves).
  """
  cand = np.asarray(candidates)
  k = len(cand)
  for reg in (smooth, smooth * 0.1, smooth * 0.01, 0.0):
    a = np.concatenate([
        verts[cand].T,
        10.0 * np.ones((1, k)),
        math.sqrt(reg) * np.eye(k)])
    b = np.concatenate([target, [10.0], math.sqrt(reg) * np.full(k, 1.0 / k)])
    w, _ = scipy.optimize.nnls(a, b, maxiter=50 * k)
    w /= w.sum()
    if np.linalg.norm(w @ verts[cand] - target) < 2e-4:
      break
  row = np.zeros(len(verts))
  row[cand] = w
  return row


def _fit_near(verts, target):
  """Convex weights over the vertices around an interior `target` point.

  The neighbourhood grows until it surrounds the point (a coarse mesh may
  have no vertex ring right at a joint).
  """
  d = np.linalg.norm(verts - target, axis=1)
  for margin in (0.02, 0.04, 0.08, 0.16):
    row = _convex_fit(verts, np.flatnonzero(d <= 1.5 * d.min() + margin),
                      target)
    if np.linalg.norm(row @ verts - target) < 2e-4:
      return row
  raise ValueError(f'stand-in: cannot regress the point {target} from the '
                   f'mesh (is it inside the body?)')


def _surface_point(verts, centre, direction, cone_deg=14.0, reach=0.14):
  """Convex weights on the head vertices seen from `centre` near `direction`.

  Only vertices within `reach` of the centre count (the head, not a hand
  that lies in the same direction); the head is convex around its centre,
  so these are on the surface the ray leaves through.
  """
  direction = np.asarray(direction, np.float64)
  direction /= np.linalg.norm(direction)
  rel = verts - centre
  dist = np.linalg.norm(rel, axis=1)
  cos = rel @ direction / dist
  score = cos - math.cos(math.radians(cone_deg))
  w = np.where((score > 0) & (dist < reach), score, 0.0)
  if not np.any(w > 0):
    raise ValueError('stand-in: no vertex near a face keypoint direction')
  return w / w.sum()


def _cocoplus_regressor(verts, j_regressor, joints_m):
  """[19, N] regressor of the cocoplus keypoints."""
  rows = []
  for smpl_j in joints_lib.SMPL_TO_LSP_LIMBS:  # 12 limb joints
    rows.append(j_regressor[smpl_j])
  neck_base = joints_m[_smpl_index('neck')] - np.array([0.0, 0.01, 0.0])
  rows.append(_fit_near(verts, neck_base))
  head = joints_m[_smpl_index('head')]
  centre = np.array([0.0, head[1] + 0.05, head[2]])
  head_dirs = {
      'head_top': (0.0, 1.0, 0.0),
      'nose': (0.0, -0.15, 1.0),
      'L_eye': (0.35, 0.12, 0.92),
      'R_eye': (-0.35, 0.12, 0.92),
      'L_ear': (1.0, 0.0, -0.1),
      'R_ear': (-1.0, 0.0, -0.1),
  }
  for name in joints_lib.COCOPLUS_JOINT_NAMES[13:]:
    rows.append(_surface_point(verts, centre, head_dirs[name]))
  return np.stack(rows)


# ---------------------------------------------------------------------------
# Exact mirror symmetry.


def _symmetrise(model_arrays: Dict[str, np.ndarray],
                mirror: np.ndarray) -> Dict[str, np.ndarray]:
  """Averages every array with its mirror image.

  Each map below is an exact involution (a permutation and sign flips), so
  (X + T(X)) / 2 is exactly invariant under T in floating point.
  """
  jflip = np.asarray(joints_lib.SMPL_FLIP_PERM)
  cflip = np.asarray(joints_lib.COCOPLUS_FLIP_PERM)
  # Sign of (M P M)_ab for M = diag(-1, 1, 1), flattened row-major.
  entry_sign = np.outer(_MIRROR, _MIRROR).reshape(9)
  out = dict(model_arrays)

  def avg(x, tx):
    return 0.5 * (x + tx)

  v = out['v_template']
  out['v_template'] = avg(v, v[mirror] * _MIRROR)
  w = out['weights']
  out['weights'] = avg(w, w[mirror][:, jflip])
  s = out['shapedirs']
  out['shapedirs'] = avg(s, s[mirror] * _MIRROR[None, :, None])
  p = out['posedirs'].reshape(len(v), 3, 23, 9)
  # Column block j (joint j + 1) maps to the block of its twin.
  block_flip = jflip[1:] - 1
  tp = p[mirror][:, :, block_flip, :] * _MIRROR[None, :, None, None]
  tp = tp * entry_sign[None, None, None, :]
  out['posedirs'] = avg(p, tp).reshape(len(v), 3, 207)
  r = out['J_regressor']
  out['J_regressor'] = avg(r, r[jflip][:, mirror])
  c = out['cocoplus_regressor']
  out['cocoplus_regressor'] = avg(c, c[cflip][:, mirror])
  return out


# ---------------------------------------------------------------------------
# Public API.


def subdivision_levels(num_vertices: int) -> int:
  """Catmull-Clark levels whose vertex count is closest to `num_vertices`."""
  lattice, quads = geom.polycube_quads(_cage_cells())
  del lattice
  counts = [len(quads) * 4**level + 2 for level in range(1, 5)]
  return 1 + int(np.argmin([abs(math.log(c / num_vertices)) for c in counts]))


def build(num_vertices: int = 4000, seed: int = 0) -> model_io.BodyModel:
  """Builds the procedural stand-in body model (NOT SMPL).

  Args:
    num_vertices: target vertex count. The mesh is a subdivided cage, so the
      count is the nearest achievable one (1682, 6722, 26882 or 107522).
    seed: 0 gives the canonical body; other seeds change leg and arm length,
      width and head height by up to 4% (deterministically).

  Returns:
    A `BodyModel` with SMPL's joint tree, 10 shape directions, 207 pose
    correctives, a cocoplus regressor and `vertex_mirror`; its metadata marks
    it as a stand-in.
  """
  if num_vertices < configs.STANDIN_MIN_VERTICES:
    raise ValueError(f'num_vertices: expected at least '
                     f'{configs.STANDIN_MIN_VERTICES}, got {num_vertices}')
  transform = _proportions(seed)
  lattice, quads = geom.polycube_quads(_cage_cells())
  geom.check_closed_manifold(quads, len(lattice))
  verts = transform(geom.map_vertices(lattice, _cage_position)) * _CM
  for _ in range(subdivision_levels(num_vertices)):
    verts, quads = geom.catmull_clark(verts, quads)
  mirror = geom.mirror_map(verts)
  faces = geom.triangulate(verts, quads, mirror)
  geom.check_closed_manifold(faces, len(verts))
  verts = 0.5 * (verts + verts[mirror] * _MIRROR)

  joints_m = _rest_joints(transform)
  segments = _bone_segments(joints_m, transform)
  edges = verts[faces] - verts[np.roll(faces, 1, axis=1)]
  mean_edge = float(np.linalg.norm(edges, axis=2).mean())
  weights = _skinning_weights(verts, faces, segments, mean_edge)
  _, offsets = _capsule_distances(verts, segments)
  j_regressor = np.stack([_fit_near(verts, j) for j in joints_m])
  arrays = {
      'v_template': verts,
      'weights': weights,
      'shapedirs': _shape_directions(
          verts, weights, offsets, joints_m,
          lambda f: _diffuse(f, faces, mean_edge, blend=0.06)),
      'posedirs': _pose_correctives(verts, faces, weights, joints_m, segments),
      'J_regressor': j_regressor,
      'cocoplus_regressor': _cocoplus_regressor(verts, j_regressor, joints_m),
  }
  arrays = _symmetrise(arrays, mirror)
  logging.info('Built the procedural stand-in body (NOT SMPL): %d vertices, '
               '%d faces.', len(verts), len(faces))
  return model_io.BodyModel(
      v_template=arrays['v_template'],
      faces=faces,
      weights=arrays['weights'],
      parents=np.asarray(joints_lib.SMPL_PARENTS, dtype=np.int32),
      J_regressor=arrays['J_regressor'],
      shapedirs=arrays['shapedirs'],
      posedirs=arrays['posedirs'],
      cocoplus_regressor=arrays['cocoplus_regressor'],
      vertex_mirror=mirror.astype(np.int32),
      metadata={'standin': True, 'name': NAME, 'seed': int(seed),
                'num_vertices': int(len(verts))})


# ---------------------------------------------------------------------------
# Command line.


def _define_flags() -> None:
  # Defined only when run as a program: hmr_tf.flags owns the global flags
  # (it has its own --seed), and importing this module must not clash.
  from absl import flags  # pylint: disable=g-import-not-at-top
  flags.DEFINE_string('output', None, 'Path of the .npz file to write.')
  flags.DEFINE_integer('num_vertices', 4000,
                       'Target vertex count of the stand-in mesh.',
                       lower_bound=configs.STANDIN_MIN_VERTICES)
  flags.DEFINE_integer('seed', 0, 'Stand-in proportions seed (0: canonical).',
                       lower_bound=0)
  flags.mark_flag_as_required('output')


def main(argv: Sequence[str]) -> None:
  from absl import flags  # pylint: disable=g-import-not-at-top
  if len(argv) > 1:
    raise ValueError(f'unexpected arguments: {argv[1:]}')
  flag_values = flags.FLAGS
  model = build(num_vertices=flag_values.num_vertices, seed=flag_values.seed)
  model_io.save_model(model, flag_values.output)
  logging.info('Wrote the procedural STAND-IN body model (not SMPL; results on '
               'it say nothing about SMPL) to %s.', flag_values.output)


if __name__ == '__main__':
  from absl import app  # pylint: disable=g-import-not-at-top
  _define_flags()
  app.run(main)
