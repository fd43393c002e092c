"""A joint-limit pose prior for SMPL's 24 joints, and a limb-crossing check.

Every body joint's rotation is sampled as three angles inside anatomical
limits, in the joint's rest frame. SMPL's rest frames are the global frame
of the T-pose: x towards the body's left, y up, z forwards (the body faces
+z). The angles are composed as

  legs, spine, neck, head, feet:  R = R_x(flexion) R_z(abduction) R_y(twist)
  collars, shoulders, arms:       R = R_z(elevation) R_y(swing) R_x(twist)

i.e. the twist about the bone's own rest axis (y along legs and spine, x
along arms) is applied first. With these conventions a knee bends the shin
backwards for positive x angles only, and a left elbow brings the forearm
forwards for negative y angles only (the right side mirrors the left: y and
z angles negate), so one-way joints get one-sided ranges.

Each angle follows a triangular distribution (lower limit, mode, upper
limit): bounded by the limits and concentrated near a relaxed posture.

The global rotation turns the body into HMR's camera frame (x right, y down,
z away from the camera) upright and facing the camera: R_x(pi) after a
random yaw about the body's vertical axis and a small tilt. A fraction
`lying_fraction` (default 0) gets a uniformly random global rotation instead.

`crossing_mask` flags poses whose limbs pass through the torso or through
each other, using the posed SMPL joints; `sample_valid` rejects them.
"""

import dataclasses
from typing import Callable, Dict, Sequence, Tuple

import numpy as np
from scipy.spatial import transform

from hmr_tf import configs
from hmr_tf.smpl import joints as joints_lib

_J = {name: i for i, name in enumerate(joints_lib.SMPL_JOINT_NAMES)}
NUM_JOINTS = joints_lib.NUM_SMPL_JOINTS

# Euler orders (applied right to left: the last letter acts first).
ORDER_LEG = 'XZY'
ORDER_ARM = 'ZYX'

# Left and central joints: (order, {axis: (lower, mode, upper)} in degrees).
# Axes not listed are fixed at 0. Right-side joints mirror the left ones.
_LIMITS_DEG: Dict[str, Tuple[str, Dict[str, Tuple[float, float, float]]]] = {
    'left_hip': (ORDER_LEG, {'x': (-100., -10., 25.), 'z': (-15., 5., 40.),
                             'y': (-30., 0., 30.)}),
    'left_knee': (ORDER_LEG, {'x': (0., 15., 140.), 'y': (-10., 0., 10.)}),
    'left_ankle': (ORDER_LEG, {'x': (-20., 5., 40.), 'z': (-15., 0., 15.),
                               'y': (-15., 0., 15.)}),
    'left_foot': (ORDER_LEG, {'x': (-10., 0., 20.)}),
    'spine1': (ORDER_LEG, {'x': (-10., 5., 30.), 'z': (-10., 0., 10.),
                           'y': (-15., 0., 15.)}),
    'spine2': (ORDER_LEG, {'x': (-10., 3., 20.), 'z': (-8., 0., 8.),
                           'y': (-12., 0., 12.)}),
    'spine3': (ORDER_LEG, {'x': (-10., 3., 20.), 'z': (-8., 0., 8.),
                           'y': (-12., 0., 12.)}),
    'neck': (ORDER_LEG, {'x': (-20., 5., 35.), 'z': (-15., 0., 15.),
                         'y': (-30., 0., 30.)}),
    'head': (ORDER_LEG, {'x': (-20., 0., 25.), 'z': (-15., 0., 15.),
                         'y': (-30., 0., 30.)}),
    'left_collar': (ORDER_ARM, {'z': (-10., 0., 20.), 'y': (-15., 0., 10.),
                                'x': (-10., 0., 10.)}),
    'left_shoulder': (ORDER_ARM, {'z': (-85., -55., 70.),
                                  'y': (-100., -15., 35.),
                                  'x': (-60., 0., 60.)}),
    'left_elbow': (ORDER_ARM, {'y': (-145., -20., 0.), 'x': (-60., 0., 60.)}),
    'left_wrist': (ORDER_ARM, {'z': (-45., 0., 45.), 'y': (-25., 0., 25.),
                               'x': (-30., 0., 30.)}),
    'left_hand': (ORDER_ARM, {'z': (-10., 0., 10.), 'y': (-10., 0., 10.),
                              'x': (-10., 0., 10.)}),
}

# Limb segments (joint, joint) and their radii in metres for a body whose
# pelvis-to-neck distance is `_REFERENCE_TORSO` (scaled to the model).
_REFERENCE_TORSO = 0.5
_LIMBS = {
    'left_upper_arm': (('left_shoulder', 'left_elbow'), 0.04),
    'left_forearm': (('left_elbow', 'left_wrist'), 0.035),
    'left_hand': (('left_wrist', 'left_hand'), 0.03),
    'right_upper_arm': (('right_shoulder', 'right_elbow'), 0.04),
    'right_forearm': (('right_elbow', 'right_wrist'), 0.035),
    'right_hand': (('right_wrist', 'right_hand'), 0.03),
    'left_thigh': (('left_hip', 'left_knee'), 0.065),
    'left_shin': (('left_knee', 'left_ankle'), 0.045),
    'left_foot': (('left_ankle', 'left_foot'), 0.035),
    'right_thigh': (('right_hip', 'right_knee'), 0.065),
    'right_shin': (('right_knee', 'right_ankle'), 0.045),
    'right_foot': (('right_ankle', 'right_foot'), 0.035),
}
# Limbs tested against the torso. Thighs and upper arms start at the torso,
# so only their outer parts are sampled (see `_SEGMENT_T`).
_TORSO_LIMBS = ('left_upper_arm', 'left_forearm', 'left_hand',
                'right_upper_arm', 'right_forearm', 'right_hand', 'left_shin',
                'left_foot', 'right_shin', 'right_foot', 'left_thigh',
                'right_thigh')
# Torso half-extents (lateral, front-back) in metres, reference body.
_TORSO_HALF_WIDTH = 0.13
_TORSO_HALF_DEPTH = 0.09
# Points sampled along each limb, from 30% to 100% of its length: the
# proximal end sits at (or in) the torso or the parent limb by construction.
_SEGMENT_T = np.linspace(0.3, 1.0, 8)


def _mirror_name(name: str) -> str:
  if name.startswith('left_'):
    return 'right_' + name[len('left_'):]
  return name


def _limit_table() -> Tuple[np.ndarray, Tuple[str, ...]]:
  """[24, 3, 3] (angle slot, lower/mode/upper) in radians, and the orders.

  Angle slots follow each joint's order string: slot k is the k-th letter.
  Right-side joints negate the y and z limits of their left twin.
  """
  table = np.zeros([NUM_JOINTS, 3, 3])
  orders = [ORDER_LEG] * NUM_JOINTS
  for name, (order, axes) in _LIMITS_DEG.items():
    twins = [(name, 1.0)]
    if name.startswith('left_'):
      twins.append((_mirror_name(name), -1.0))
    for joint, sign in twins:
      j = _J[joint]
      orders[j] = order
      for slot, axis in enumerate(order.lower()):
        lo, mode, hi = axes.get(axis, (0.0, 0.0, 0.0))
        if axis != 'x' and sign < 0:
          lo, mode, hi = -hi, -mode, -lo
        table[j, slot] = np.deg2rad([lo, mode, hi])
  return table, tuple(orders)


LIMITS, ORDERS = _limit_table()


def triangular(u: np.ndarray, lower: np.ndarray, mode: np.ndarray,
               upper: np.ndarray) -> np.ndarray:
  """Inverse CDF of the triangular distribution (broadcasting).

  Args:
    u: uniform samples in [0, 1).
    lower, mode, upper: the distribution's limits and mode
      (lower <= mode <= upper; lower == upper gives the constant).

  Returns:
    Samples of the same shape, inside [lower, upper].
  """
  width = upper - lower
  safe = np.where(width > 0, width, 1.0)
  split = (mode - lower) / safe
  low = lower + np.sqrt(u * width * (mode - lower))
  high = upper - np.sqrt((1.0 - u) * width * (upper - mode))
  return np.where(u < split, low, high)


def axis_rotations(axis: str, angles: np.ndarray) -> np.ndarray:
  """[...] angles -> [..., 3, 3] rotations about one coordinate axis."""
  c, s = np.cos(angles), np.sin(angles)
  one, zero = np.ones_like(c), np.zeros_like(c)
  if axis == 'x':
    rows = [[one, zero, zero], [zero, c, -s], [zero, s, c]]
  elif axis == 'y':
    rows = [[c, zero, s], [zero, one, zero], [-s, zero, c]]
  else:
    rows = [[c, -s, zero], [s, c, zero], [zero, zero, one]]
  return np.stack([np.stack(r, axis=-1) for r in rows], axis=-2)


def euler_to_matrix(angles: np.ndarray, orders: Sequence[str]) -> np.ndarray:
  """Per-joint Euler angles -> rotation matrices.

  Args:
    angles: [B, J, 3], angle slot k about axis `orders[j][k]`.
    orders: J order strings such as 'XZY': R = R_X R_Z R_Y.

  Returns:
    [B, J, 3, 3] float64.
  """
  out = np.empty(angles.shape[:2] + (3, 3))
  for order in set(orders):
    cols = [j for j, o in enumerate(orders) if o == order]
    r = np.eye(3)
    for slot, axis in enumerate(order.lower()):
      r = r @ axis_rotations(axis, angles[:, cols, slot])
    out[:, cols] = r
  return out


def matrix_to_axis_angle(rotmats: np.ndarray) -> np.ndarray:
  """[..., 3, 3] rotations -> [..., 3] axis-angle (angle in [0, pi])."""
  flat = rotmats.reshape(-1, 3, 3)
  rotvec = transform.Rotation.from_matrix(flat).as_rotvec()
  return rotvec.reshape(rotmats.shape[:-2] + (3,))


@dataclasses.dataclass(frozen=True)
class PosePriorConfig:
  """Options of the global rotation (the body joints' limits are fixed).

  Attributes:
    yaw_max_deg: the body turns about its vertical axis by a uniform angle
      in [-yaw_max_deg, yaw_max_deg] (0 = facing the camera).
    tilt_max_deg: uniform forward/backward and sideways lean, in degrees.
    lying_fraction: fraction of samples with a uniformly random global
      rotation (lying, upside down); 0 keeps every body upright.
  """
  yaw_max_deg: float = configs.SyntheticConfig.yaw_max_deg
  tilt_max_deg: float = 10.0
  lying_fraction: float = 0.0

  def __post_init__(self):
    low, high = configs.YAW_MAX_DEG_BOUNDS
    if not low <= self.yaw_max_deg <= high:
      raise ValueError(f'yaw_max_deg: expected [{low:g}, {high:g}], got '
                       f'{self.yaw_max_deg}')
    if not 0.0 <= self.tilt_max_deg <= 90.0:
      raise ValueError(f'tilt_max_deg: expected [0, 90], got '
                       f'{self.tilt_max_deg}')
    if not 0.0 <= self.lying_fraction <= 1.0:
      raise ValueError(f'lying_fraction: expected [0, 1], got '
                       f'{self.lying_fraction}')


# The camera frame has y down and z away from the camera: a half turn about x
# stands SMPL's y-up, +z-facing body upright, facing the camera.
UPRIGHT = axis_rotations('x', np.array(np.pi))


def global_rotation(uniforms: np.ndarray,
                    config: PosePriorConfig) -> np.ndarray:
  """Global rotations from uniform numbers.

  Args:
    uniforms: [B, 7] uniform samples in [0, 1): yaw, two tilts, the lying
      decision, and three numbers for a uniformly random rotation.
    config: the prior's options.

  Returns:
    [B, 3, 3] rotations from the SMPL body frame to the camera frame.
  """
  yaw = np.deg2rad(config.yaw_max_deg) * (2.0 * uniforms[:, 0] - 1.0)
  tilt = np.deg2rad(config.tilt_max_deg)
  lean_x = tilt * (2.0 * uniforms[:, 1] - 1.0)
  lean_z = tilt * (2.0 * uniforms[:, 2] - 1.0)
  body = (axis_rotations('y', yaw) @ axis_rotations('x', lean_x) @
          axis_rotations('z', lean_z))
  upright = UPRIGHT @ body
  # A uniformly random rotation from three uniforms (Shoemake's quaternion).
  u1, u2, u3 = uniforms[:, 4], uniforms[:, 5], uniforms[:, 6]
  quat = np.stack([
      np.sqrt(1 - u1) * np.sin(2 * np.pi * u2),
      np.sqrt(1 - u1) * np.cos(2 * np.pi * u2),
      np.sqrt(u1) * np.sin(2 * np.pi * u3),
      np.sqrt(u1) * np.cos(2 * np.pi * u3)
  ], axis=-1)
  lying = transform.Rotation.from_quat(quat).as_matrix()
  is_lying = (uniforms[:, 3] < config.lying_fraction)[:, None, None]
  return np.where(is_lying, lying, upright)


NUM_UNIFORMS = NUM_JOINTS * 3 + 7  # Random numbers one pose consumes.


def poses_from_uniforms(uniforms: np.ndarray,
                        config: PosePriorConfig = PosePriorConfig()
                       ) -> np.ndarray:
  """Maps [B, NUM_UNIFORMS] uniform numbers to [B, 72] axis-angle poses.

  The pelvis slot of the per-joint angles is unused (the global rotation
  replaces it).

  Args:
    uniforms: [B, NUM_UNIFORMS] in [0, 1).
    config: global rotation options.

  Returns:
    [B, 72] float64 axis-angle poses, joint 0 = global rotation.
  """
  uniforms = np.asarray(uniforms, np.float64)
  if uniforms.ndim != 2 or uniforms.shape[1] != NUM_UNIFORMS:
    raise ValueError(f'uniforms: expected [B, {NUM_UNIFORMS}], got '
                     f'{uniforms.shape}')
  batch = uniforms.shape[0]
  u = uniforms[:, :NUM_JOINTS * 3].reshape(batch, NUM_JOINTS, 3)
  angles = triangular(u, LIMITS[..., 0], LIMITS[..., 1], LIMITS[..., 2])
  rotmats = euler_to_matrix(angles, ORDERS)
  rotmats[:, 0] = global_rotation(uniforms[:, NUM_JOINTS * 3:], config)
  return matrix_to_axis_angle(rotmats).reshape(batch, 3 * NUM_JOINTS)


def sample_poses(rng: np.random.Generator, num: int,
                 config: PosePriorConfig = PosePriorConfig()) -> np.ndarray:
  """Draws `num` poses from the prior, without the crossing check.

  Returns:
    [num, 72] float64 axis-angle poses.
  """
  return poses_from_uniforms(rng.random((num, NUM_UNIFORMS)), config)


def _idx(name: str) -> int:
  return _J[name]


def body_scale(rest_joints: np.ndarray) -> float:
  """The model's size relative to the reference body (pelvis-neck length)."""
  length = np.linalg.norm(rest_joints[_idx('neck')] - rest_joints[0])
  if not length > 0:
    raise ValueError('rest joints: the pelvis and neck coincide')
  return float(length / _REFERENCE_TORSO)


def _limb_points(joints: np.ndarray, limb: str) -> np.ndarray:
  """[B, T, 3] points along one limb (see `_SEGMENT_T`)."""
  (a, b), _ = _LIMBS[limb]
  start = joints[:, _idx(a)][:, None]
  end = joints[:, _idx(b)][:, None]
  return start + _SEGMENT_T[None, :, None] * (end - start)


def _inside_torso(joints: np.ndarray, points: np.ndarray,
                  scale: float) -> np.ndarray:
  """[B, T] whether points lie inside the torso's elliptic cylinder.

  The torso runs from the pelvis to the neck; its cross-section is an
  ellipse, wider left-right (the hip axis) than front-back.
  """
  pelvis = joints[:, 0]
  axis = joints[:, _idx('neck')] - pelvis
  length = np.linalg.norm(axis, axis=-1, keepdims=True)
  axis = axis / np.maximum(length, 1e-9)
  lateral = joints[:, _idx('left_hip')] - joints[:, _idx('right_hip')]
  lateral -= np.sum(lateral * axis, -1, keepdims=True) * axis
  lateral /= np.maximum(np.linalg.norm(lateral, axis=-1, keepdims=True), 1e-9)
  front = np.cross(lateral, axis)
  rel = points - pelvis[:, None]
  along = np.sum(rel * axis[:, None], -1)
  a = np.sum(rel * lateral[:, None], -1) / (_TORSO_HALF_WIDTH * scale)
  b = np.sum(rel * front[:, None], -1) / (_TORSO_HALF_DEPTH * scale)
  within = (along >= 0) & (along <= length)
  return within & (a * a + b * b < 1.0)


def _limb_pairs() -> Tuple[Tuple[str, str], ...]:
  """Limb pairs that must keep apart: all, except those sharing a joint."""
  names = list(_LIMBS)
  pairs = []
  for i, p in enumerate(names):
    for q in names[i + 1:]:
      if set(_LIMBS[p][0]) & set(_LIMBS[q][0]):
        continue
      pairs.append((p, q))
  return tuple(pairs)


_PAIRS = _limb_pairs()


def crossing_mask(joints: np.ndarray, scale: float = 1.0) -> np.ndarray:
  """Flags posed skeletons whose limbs cross the torso or each other.

  A limb crosses the torso when a point along its outer 70% lies inside the
  torso's elliptic cylinder (half-width 0.13 m, half-depth 0.09 m for the
  reference body); two limbs cross when points along them come closer than
  the sum of their radii. Sizes scale with `scale` (see `body_scale`).

  Args:
    joints: [B, 24, 3] posed SMPL joints (any global rotation).
    scale: the body's size relative to the reference body.

  Returns:
    [B] bool, True where the pose crosses itself.
  """
  joints = np.asarray(joints, np.float64)
  if joints.ndim != 3 or joints.shape[1:] != (NUM_JOINTS, 3):
    raise ValueError(f'joints: expected [B, 24, 3], got {joints.shape}')
  points = {name: _limb_points(joints, name) for name in _LIMBS}
  bad = np.zeros(joints.shape[0], bool)
  for name in _TORSO_LIMBS:
    bad |= np.any(_inside_torso(joints, points[name], scale), axis=1)
  for p, q in _PAIRS:
    diff = points[p][:, :, None] - points[q][:, None]  # [B, T, T, 3]
    closest = np.sqrt(np.min(np.sum(diff * diff, -1), axis=(1, 2)))
    bad |= closest < (_LIMBS[p][1] + _LIMBS[q][1]) * scale
  return bad


def sample_valid(rngs: Sequence[np.random.Generator],
                 joints_fn: Callable[[np.ndarray, np.ndarray], object],
                 betas: np.ndarray,
                 scale: float,
                 config: PosePriorConfig = PosePriorConfig(),
                 max_tries: int = 30):
  """One crossing-free pose per generator, posed in batches.

  Every example draws candidates from its own generator until one passes
  `crossing_mask` (or `max_tries` are used up, when the last candidate is
  kept), so the result for an example does not depend on the others in the
  batch.

  Args:
    rngs: B per-example generators.
    joints_fn: poses a batch, `joints_fn(pose [P, 72], betas [P, K])` ->
      (joints [P, 24, 3], extra), with `extra` a tuple of per-example arrays
      [P, ...] (e.g. vertices, keypoints) kept for the accepted candidates.
    betas: [B, K] each example's shape.
    scale: body scale for `crossing_mask`.
    config: global rotation options.
    max_tries: candidates per example at most.

  Returns:
    (poses [B, 72] float64, extras: tuple of [B, ...] arrays, tries [B] int).
  """
  num = len(rngs)
  poses = np.zeros([num, 3 * NUM_JOINTS])
  tries = np.zeros([num], np.int64)
  extras = None
  pending = np.arange(num)
  for attempt in range(max_tries):
    if pending.size == 0:
      break
    uniforms = np.stack([rngs[i].random(NUM_UNIFORMS) for i in pending])
    candidates = poses_from_uniforms(uniforms, config)
    joints, extra = joints_fn(candidates, betas[pending])
    joints = np.asarray(joints)
    extra = tuple(np.asarray(e) for e in extra)
    if extras is None:
      extras = tuple(np.zeros((num,) + e.shape[1:], e.dtype) for e in extra)
    accept = ~crossing_mask(joints, scale)
    if attempt == max_tries - 1:
      accept[:] = True
    done = pending[accept]
    poses[done] = candidates[accept]
    tries[pending] += 1
    for out, e in zip(extras, extra):
      out[done] = e[accept]
    pending = pending[~accept]
  return poses, extras, tries
