"""Tests for hmr_tf.inference.smoothing against independent references.

References: the One-Euro filter written out from Casiez et al. (CHI 2012)
for one scalar signal (float64, α = 1 / (1 + τ / T_e)), hand-computed
numbers, and SciPy's rotations for the quaternion conversions, geodesic
distances and rotation validity. NumPy only (fast).
"""

import math

from absl import flags as absl_flags
import numpy as np
import pytest
from scipy.spatial import transform

from hmr_tf import configs
from hmr_tf.inference import smoothing

Rotation = transform.Rotation
FPS = 30.0


def _reference_one_euro(times, x, min_cutoff, beta, d_cutoff):
  """Casiez et al.'s filter on one scalar signal, written from the paper."""

  def alpha(period, cutoff):
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / period)

  out = [float(x[0])]
  x_hat, dx_hat = float(x[0]), 0.0
  for i in range(1, len(x)):
    period = float(times[i] - times[i - 1])
    dx = (float(x[i]) - x_hat) / period
    a_d = alpha(period, d_cutoff)
    dx_hat = a_d * dx + (1.0 - a_d) * dx_hat
    a = alpha(period, min_cutoff + beta * abs(dx_hat))
    x_hat = a * float(x[i]) + (1.0 - a) * x_hat
    out.append(x_hat)
  return np.array(out)


def _reference_zero_phase(times, x, min_cutoff, beta, d_cutoff):
  forward = _reference_one_euro(times, x, min_cutoff, beta, d_cutoff)
  times = np.asarray(times, np.float64)
  # Backwards in time: reversed samples, periods t[i+1] - t[i] again.
  back = _reference_one_euro(times[-1] - times[::-1], forward[::-1],
                             min_cutoff, beta, d_cutoff)
  return back[::-1]


def _matrices(theta):
  return Rotation.from_rotvec(np.asarray(theta).reshape(-1, 3)).as_matrix()


def _geodesic(theta_a, theta_b):
  """[T, 24] angles (radians) between two poses' joint rotations."""
  a = Rotation.from_rotvec(np.asarray(theta_a).reshape(-1, 3))
  b = Rotation.from_rotvec(np.asarray(theta_b).reshape(-1, 3))
  return (a.inv() * b).magnitude().reshape(len(theta_a), -1)


def _track(num, seed=0):
  rng = np.random.default_rng(seed)
  theta = Rotation.random(num * 24, random_state=seed).as_rotvec()
  return (np.arange(num), theta.reshape(num, 72), rng.normal(size=(num, 10)),
          rng.normal(size=(num, 3)) + [0, 0, 5])


def test_one_euro_step_by_hand():
  # x = 0 at t = 0, then 1 at t = 0.1 s; min_cutoff 1 Hz, beta 0.5,
  # d_cutoff 2 Hz. By hand:
  #   speed: r = 2π·2·0.1 = 1.256637, α_d = r / (1 + r) = 0.556863,
  #          dx̂ = α_d · (1 - 0) / 0.1 = 5.568634
  #   value: f_c = 1 + 0.5 · 5.568634 = 3.784317 Hz,
  #          r = 2π·3.784317·0.1 = 2.377764, α = 0.703946, x̂ = 0.703946
  out = smoothing.one_euro([0.0, 0.1], np.array([[[0.0]], [[1.0]]]),
                           min_cutoff=1.0, beta=0.5, d_cutoff=2.0)
  assert out[0, 0, 0] == 0.0
  assert out[1, 0, 0] == pytest.approx(0.703946, abs=2e-6)
  assert smoothing.smoothing_factor(0.1, 2.0) == pytest.approx(0.556863,
                                                               abs=2e-6)


def test_one_euro_matches_the_papers_filter_with_gaps():
  rng = np.random.default_rng(3)
  frames = np.array([0, 1, 2, 5, 6, 7, 8, 12, 13])
  x = np.cumsum(rng.normal(size=frames.size))
  got = smoothing.one_euro(frames / FPS, x[:, None, None], 0.7, 0.3, 1.5)
  want = _reference_one_euro(frames / FPS, x, 0.7, 0.3, 1.5)
  np.testing.assert_allclose(got[:, 0, 0], want, rtol=0, atol=1e-12)


@pytest.mark.parametrize('zero_phase', [False, True])
def test_camera_is_the_papers_filter_over_real_time(zero_phase):
  # Only TX moves, so the 3-vector's speed norm is |dTX| and the scalar
  # reference applies; the gaps (frames 3-4, 7-9 missed) are real time.
  frames = np.array([0, 1, 2, 5, 6, 10, 11, 12])
  rng = np.random.default_rng(1)
  cam = np.zeros([frames.size, 3]) + [0.1, -0.2, 4.0]
  cam[:, 0] += np.cumsum(rng.normal(scale=0.05, size=frames.size))
  theta = np.zeros([frames.size, 72])
  config = configs.SmoothingConfig(cam_min_cutoff=0.8, cam_beta=2.0,
                                   d_cutoff=1.2, zero_phase=zero_phase)
  _, _, cam_s = smoothing.smooth_track(frames, theta, np.zeros([8, 10]), cam,
                                       FPS, config)
  ref = _reference_zero_phase if zero_phase else _reference_one_euro
  np.testing.assert_allclose(cam_s[:, 0],
                             ref(frames / FPS, cam[:, 0], 0.8, 2.0, 1.2),
                             rtol=0, atol=1e-12)
  np.testing.assert_allclose(cam_s[:, 1:], cam[:, 1:], rtol=0, atol=1e-12)
  # Treating the frames as consecutive would give something else.
  _, _, packed = smoothing.smooth_track(np.arange(8), theta,
                                        np.zeros([8, 10]), cam, FPS, config)
  assert np.abs(packed[:, 0] - cam_s[:, 0]).max() > 1e-3


def test_constant_track_stays_constant():
  frames, theta, betas, cam = _track(1)
  num = 20
  theta = np.repeat(theta, num, 0)
  # Keep every angle below π so the axis-angle numbers are unique.
  angles = np.linalg.norm(theta.reshape(num, 24, 3), axis=-1, keepdims=True)
  theta = (theta.reshape(num, 24, 3) * np.minimum(1.0, 3.0 / angles)).reshape(
      num, 72)
  cam = np.repeat(cam, num, 0)
  for zero_phase in (False, True):
    config = configs.SmoothingConfig(zero_phase=zero_phase)
    theta_s, betas_s, cam_s = smoothing.smooth_track(
        np.arange(0, 2 * num, 2), theta, np.repeat(betas, num, 0), cam, FPS,
        config)
    np.testing.assert_allclose(theta_s, theta, rtol=0, atol=1e-12)
    np.testing.assert_allclose(cam_s, cam, rtol=0, atol=1e-12)
    np.testing.assert_allclose(betas_s, betas[0], rtol=0, atol=0)


def test_rotation_through_pi_is_smoothed_without_a_jump():
  # A joint turns at constant speed about a fixed axis from 2.6 to 3.7 rad:
  # its axis-angle numbers (angle <= π) jump from ≈ π·n to ≈ -π·n halfway.
  num = 40
  axis = np.array([0.48, -0.6, 0.64])
  axis /= np.linalg.norm(axis)
  angles = np.linspace(2.6, 3.7, num)
  truth = Rotation.from_rotvec(angles[:, None] * axis)
  rotvec = truth.as_rotvec()  # SciPy wraps to angles <= π
  # The jump is there: nearly 2π between neighbouring frames' numbers.
  assert np.linalg.norm(np.diff(rotvec, axis=0), axis=-1).max() > 6.0
  theta = np.zeros([num, 72])
  theta[:, 3 * 5:3 * 6] = rotvec  # joint 5
  for zero_phase in (False, True):
    config = configs.SmoothingConfig(min_cutoff=0.5, beta=0.2,
                                     zero_phase=zero_phase)
    theta_s, _, _ = smoothing.smooth_track(np.arange(num), theta,
                                           np.zeros([num, 10]),
                                           np.zeros([num, 3]), FPS, config)
    out = Rotation.from_rotvec(theta_s[:, 15:18])
    step = (out[1:] * out[:-1].inv()).magnitude()
    true_step = angles[1] - angles[0]
    # No jump: each output step stays near the true one (a filter catching
    # up after its start may step a little faster), and the output stays
    # near the true rotation (lag only).
    assert step.max() <= 1.5 * true_step
    assert (out * truth.inv()).magnitude().max() < 0.35
    # Half-way through the wrap the output has passed π, as the truth has.
    assert (out[-1] * truth[-1].inv()).magnitude() < 0.35
  # Smoothing the axis-angle numbers instead would cut through the identity.
  naive = smoothing.one_euro(np.arange(num) / FPS, rotvec[:, None], 0.5, 0.2,
                             1.0)[:, 0]
  assert (Rotation.from_rotvec(naive) * truth.inv()).magnitude().max() > 1.0


def test_outputs_are_valid_rotations():
  frames, theta, betas, cam = _track(30, seed=5)
  for zero_phase in (False, True):
    theta_s, _, _ = smoothing.smooth_track(
        frames, theta, betas, cam, FPS,
        configs.SmoothingConfig(zero_phase=zero_phase))
    assert theta_s.shape == (30, 72)
    angles = np.linalg.norm(theta_s.reshape(-1, 3), axis=-1)
    assert angles.max() <= math.pi + 1e-12
    mats = _matrices(theta_s)
    np.testing.assert_allclose(mats @ np.swapaxes(mats, 1, 2),
                               np.broadcast_to(np.eye(3), mats.shape),
                               atol=1e-12)
    np.testing.assert_allclose(np.linalg.det(mats), 1.0, atol=1e-12)


def test_quaternion_conversions_match_scipy():
  rotvec = Rotation.random(500, random_state=2).as_rotvec()
  rotvec[:3] *= 1e-9  # near the identity
  rotvec[3:6] *= (math.pi - 1e-9) / np.linalg.norm(rotvec[3:6], axis=-1,
                                                   keepdims=True)
  quat = smoothing.axis_angle_to_quaternion(rotvec)
  xyzw = Rotation.from_rotvec(rotvec).as_quat()
  want = np.concatenate([xyzw[:, 3:], xyzw[:, :3]], axis=1)
  want *= np.where(want[:, :1] < 0, -1.0, 1.0)
  np.testing.assert_allclose(quat, want, rtol=0, atol=1e-15)
  np.testing.assert_allclose(smoothing.quaternion_to_axis_angle(-2.0 * quat),
                             rotvec, rtol=0, atol=1e-12)


def _acceleration_error(pred, truth):
  """VIBE's measure on [T, K, 3] points: mean ‖Δ²pred - Δ²truth‖."""
  accel = lambda p: p[:-2] - 2 * p[1:-1] + p[2:]
  return np.linalg.norm(accel(pred) - accel(truth), axis=-1).mean()


def test_noisy_trajectory_acceleration_error_drops():
  # A smooth motion of all 24 joints (4 s at 30 fps) through 5 random poses,
  # with 3° of per-frame noise; points on each joint's rotated unit axes.
  rng = np.random.default_rng(7)
  num = 120
  keys = Rotation.random(5 * 24, random_state=11).as_rotvec().reshape(5, 24,
                                                                       3) * 0.4
  t = np.linspace(0, 4, 5)
  times = np.arange(num) / FPS
  truth = np.stack([
      transform.RotationSpline(t, Rotation.from_rotvec(keys[:, j]))(
          times).as_rotvec() for j in range(24)], axis=1)
  noise = Rotation.from_rotvec(
      rng.normal(scale=np.deg2rad(3.0) / math.sqrt(3), size=(num * 24, 3)))
  noisy = (noise * Rotation.from_rotvec(truth.reshape(-1, 3))).as_rotvec()
  noisy = noisy.reshape(num, 72)
  theta_s, _, _ = smoothing.smooth_track(
      np.arange(num), noisy, np.zeros([num, 10]), np.zeros([num, 3]), FPS,
      configs.SmoothingConfig())

  def points(theta):
    return _matrices(theta).reshape(num, 24 * 3, 3)  # rows: rotated axes

  before = _acceleration_error(points(noisy), points(truth.reshape(num, 72)))
  after = _acceleration_error(points(theta_s), points(truth.reshape(num, 72)))
  assert after < before / 3
  # And the rotations stay as close to the truth as the noisy ones.
  assert (_geodesic(theta_s, truth.reshape(num, 72)).mean() <
          _geodesic(noisy, truth.reshape(num, 72)).mean())


def test_one_shape_per_track_is_the_median():
  frames, theta, betas, cam = _track(7, seed=2)
  betas[3] = 100.0  # one frame's shape gone astray
  _, betas_s, _ = smoothing.smooth_track(frames, theta, betas, cam, FPS)
  assert betas_s.shape == (10,)
  for k in range(10):
    assert betas_s[k] == sorted(betas[:, k])[3]


def test_disabled_returns_the_frames_unchanged():
  frames, theta, betas, cam = _track(5, seed=4)
  theta_s, betas_s, cam_s = smoothing.smooth_track(
      frames, theta, betas, cam, FPS, configs.SmoothingConfig(enabled=False))
  np.testing.assert_array_equal(theta_s, theta)
  np.testing.assert_array_equal(cam_s, cam)
  assert betas_s.shape == (10,)


def test_one_frame_track():
  frames, theta, betas, cam = _track(1, seed=6)
  theta_s, betas_s, cam_s = smoothing.smooth_track(frames + 40, theta, betas,
                                                   cam, FPS)
  np.testing.assert_allclose(_matrices(theta_s), _matrices(theta),
                             atol=1e-12)
  np.testing.assert_allclose(cam_s, cam)
  np.testing.assert_allclose(betas_s, betas[0])


@pytest.mark.parametrize('change, message', [
    (dict(frames=[0, 2, 2]), 'frames: expected strictly increasing'),
    (dict(frames=[0.0, 1.5, 2.0]), 'frames: expected integer'),
    (dict(frames=[]), r'frames: expected \[T\]'),
    (dict(theta=np.zeros([3, 69])), r'theta: expected \[3, 72\]'),
    (dict(betas=np.zeros([2, 10])), r'betas: expected \[3, B\]'),
    (dict(cam_t=np.full([3, 3], np.nan)), 'cam_t: expected finite'),
    (dict(fps=0.0), 'fps: expected a positive'),
])
def test_bad_input_names_the_argument(change, message):
  args = dict(frames=[0, 1, 2], theta=np.zeros([3, 72]),
              betas=np.zeros([3, 10]), cam_t=np.zeros([3, 3]), fps=FPS)
  args.update(change)
  with pytest.raises(ValueError, match=message):
    smoothing.smooth_track(**args)


def test_config_bounds_and_flags():
  with pytest.raises(ValueError, match='min_cutoff: expected > 0'):
    configs.SmoothingConfig(min_cutoff=0.0)
  with pytest.raises(ValueError, match='cam_beta: expected >= 0'):
    configs.SmoothingConfig(cam_beta=-1.0)
  from hmr_tf import flags as hmr_flags  # pylint: disable=g-import-not-at-top
  values = absl_flags.FlagValues()
  hmr_flags.define_flags_of(configs.SmoothingConfig, values)
  values(['prog'])
  assert configs.smoothing_from_flags(values) == configs.SmoothingConfig()
  values.unparse_flags()
  values(['prog', '--nosmoothing', '--smoothing_beta=2.5',
          '--nosmoothing_zero_phase'])
  assert configs.smoothing_from_flags(values) == configs.SmoothingConfig(
      enabled=False, beta=2.5, zero_phase=False)
