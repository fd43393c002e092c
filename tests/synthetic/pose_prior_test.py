"""Tests of the joint-limit pose prior and the limb-crossing check."""

import numpy as np
import pytest

from hmr_tf.smpl import joints as joints_lib
from hmr_tf.smpl import layer as layer_lib
from hmr_tf.smpl import standin
from hmr_tf.synthetic import pose_prior

import smpl_reference  # tests/support/

_J = {n: i for i, n in enumerate(joints_lib.SMPL_JOINT_NAMES)}


def _rotmats(poses):
  """[B, 72] -> [B, 24, 3, 3] with the independent test Rodrigues."""
  return np.stack([[smpl_reference.rodrigues(r) for r in p.reshape(24, 3)]
                   for p in poses])


@pytest.fixture(scope='module')
def body():
  model = standin.build(num_vertices=500)
  smpl = layer_lib.SMPL(model)
  rest = model.J_regressor @ model.v_template
  return model, smpl, pose_prior.body_scale(rest)


def _pose_joints(smpl, poses):
  out = smpl(np.asarray(poses, np.float32), np.zeros([len(poses), 10],
                                                     np.float32))
  return out.joints.numpy()


def test_triangular_stays_in_limits_with_the_right_mean():
  rng = np.random.default_rng(0)
  u = rng.random(200000)
  x = pose_prior.triangular(u, -1.0, 0.5, 2.0)
  assert x.min() >= -1.0 and x.max() <= 2.0
  # Mean of a triangular distribution: (a + c + b) / 3.
  np.testing.assert_allclose(x.mean(), (-1.0 + 0.5 + 2.0) / 3, atol=0.01)
  # Degenerate limits give the constant.
  np.testing.assert_array_equal(pose_prior.triangular(u[:5], 0.3, 0.3, 0.3),
                                np.full(5, 0.3))


def test_knees_and_elbows_bend_one_way_only():
  poses = pose_prior.sample_poses(np.random.default_rng(1), 3000)
  rots = _rotmats(poses)
  down, left, right = np.array([0, -1, 0]), np.array([1, 0, 0]), np.array(
      [-1, 0, 0])
  for knee in ('left_knee', 'right_knee'):
    shin = rots[:, _J[knee]] @ down  # The shin in the thigh's rest frame.
    assert np.all(shin[:, 2] <= 1e-9), knee  # Never forwards.
    bend = np.degrees(np.arccos(np.clip(-shin[:, 1], -1, 1)))
    assert bend.max() <= 140.0 + 1e-6 and bend.max() > 90.0
  for elbow, bone in (('left_elbow', left), ('right_elbow', right)):
    forearm = rots[:, _J[elbow]] @ bone
    assert np.all(forearm[:, 2] >= -1e-9), elbow  # Never backwards.
    bend = np.degrees(np.arccos(np.clip(forearm @ bone, -1, 1)))
    assert bend.max() <= 145.0 + 1e-6 and bend.max() > 90.0


def test_joint_angles_stay_within_the_largest_limit():
  poses = pose_prior.sample_poses(np.random.default_rng(2), 2000)
  angles = np.degrees(np.linalg.norm(poses.reshape(-1, 24, 3)[:, 1:], axis=-1))
  # No body joint turns further than the widest range (shoulders, 145 deg
  # of elevation combined with swing and twist stays below 180).
  assert angles.max() < 180.0
  # Feet only flex about x; hands stay within 10 degrees per axis.
  hand = angles[:, _J['left_hand'] - 1]
  assert hand.max() <= np.degrees(np.linalg.norm(np.radians([10, 10, 10])))


def test_global_rotation_is_upright_and_faces_the_camera():
  config = pose_prior.PosePriorConfig(yaw_max_deg=45.0, tilt_max_deg=10.0)
  poses = pose_prior.sample_poses(np.random.default_rng(3), 2000, config)
  glob = _rotmats(poses)[:, 0]
  up = glob @ np.array([0.0, 1.0, 0.0])  # Body up in the camera frame.
  front = glob @ np.array([0.0, 0.0, 1.0])  # Body front.
  # Image y points down: upright means up ~ (0, -1, 0).
  assert np.all(-up[:, 1] >= np.cos(np.radians(15.0)))
  # Facing the camera (z away from it) within yaw 45 + tilt.
  assert np.all(front[:, 2] <= -np.cos(np.radians(50.0)))
  # And the yaw range is used.
  yaw = np.degrees(np.arctan2(front[:, 0], -front[:, 2]))
  assert yaw.min() < -40 and yaw.max() > 40


def test_lying_fraction_gives_other_orientations():
  config = pose_prior.PosePriorConfig(lying_fraction=1.0)
  poses = pose_prior.sample_poses(np.random.default_rng(4), 500, config)
  up = _rotmats(poses)[:, 0] @ np.array([0.0, 1.0, 0.0])
  assert np.mean(-up[:, 1] < 0.5) > 0.5


def test_bad_config_raises():
  with pytest.raises(ValueError, match='lying_fraction'):
    pose_prior.PosePriorConfig(lying_fraction=1.5)


def _constructed_pose(**euler_deg):
  """Upright pose with given per-joint Euler angles (joint's own order)."""
  angles = np.zeros([1, 24, 3])
  for name, values in euler_deg.items():
    angles[0, _J[name]] = np.radians(values)
  rots = pose_prior.euler_to_matrix(angles, pose_prior.ORDERS)
  rots[0, 0] = pose_prior.UPRIGHT
  return pose_prior.matrix_to_axis_angle(rots).reshape(1, 72)


def test_crossing_check_flags_constructed_crossings(body):
  _, smpl, scale = body
  # Arms down at the sides: fine.
  relaxed = _constructed_pose(left_shoulder=(-75, 0, 0),
                              right_shoulder=(75, 0, 0))
  # Left arm forwards (ZYX order: z, y, x) and the elbow folded back towards
  # the chest: the forearm goes through the torso.
  through_chest = _constructed_pose(left_shoulder=(0, -90, 0),
                                    left_elbow=(0, -150, 0))
  # Both thighs swung inwards past each other.
  crossed_legs = _constructed_pose(left_hip=(0, -40, 0),
                                   right_hip=(0, 40, 0))
  poses = np.concatenate([relaxed, through_chest, crossed_legs])
  bad = pose_prior.crossing_mask(_pose_joints(smpl, poses), scale)
  np.testing.assert_array_equal(bad, [False, True, True])


def test_prior_samples_rarely_cross(body):
  _, smpl, scale = body
  poses = pose_prior.sample_poses(np.random.default_rng(5), 400)
  bad = pose_prior.crossing_mask(_pose_joints(smpl, poses), scale)
  assert bad.mean() < 0.15


def test_sample_valid_rejects_and_does_not_depend_on_batching(body):
  model, smpl, scale = body
  del model

  def joints_fn(pose, betas):
    out = smpl(pose.astype(np.float32), betas.astype(np.float32))
    return out.joints.numpy(), (out.joints.numpy(),)

  betas = np.zeros([12, 10])
  seeds = [np.random.SeedSequence([7, i]) for i in range(12)]
  rngs = [np.random.default_rng(s) for s in seeds]
  poses, (joints,), tries = pose_prior.sample_valid(rngs, joints_fn, betas,
                                                    scale)
  assert not pose_prior.crossing_mask(joints, scale).any()
  assert tries.min() >= 1
  # The same examples in two batches of different sizes.
  first = [np.random.default_rng(s) for s in seeds[:5]]
  second = [np.random.default_rng(s) for s in seeds[5:]]
  p1, _, _ = pose_prior.sample_valid(first, joints_fn, betas[:5], scale)
  p2, _, _ = pose_prior.sample_valid(second, joints_fn, betas[5:], scale)
  np.testing.assert_array_equal(np.concatenate([p1, p2]), poses)
