"""Temporal smoothing of one person's finished track in a video (NumPy only).

A track is the per-frame output of the single-image model for one person:
SMPL pose θ [T, 72] (axis-angle), shape β [T, B] and the full-image camera
translation cam_t_full [T, 3] (hmr_tf.inference.demo_lib's camera), at the
frame indices `frames` [T] of a video of `fps` frames per second. A track
may skip frames (the person was missed for a few frames and found again):
every filter step uses the real time between the frames it joins.

What `smooth_track` does:

  * Rotations: each of the 24 joint rotations is turned into a unit
    quaternion q = (w, x, y, z) and filtered there, never as axis-angle
    numbers: axis-angle wraps at π (a rotation by π - ε about n is next to
    one by π - ε about -n, whose numbers are far apart), quaternions do not
    once their signs are made continuous (q and -q are the same rotation;
    each sample takes the sign nearer to the filter's current state).
    After each step the state is renormalised to a unit quaternion, so the
    exponential smoothing of two rotations is their normalised linear
    interpolation (nlerp, a close approximation of slerp for the small steps
    between frames), and every output is a valid rotation.
  * The filter is the One-Euro filter (Casiez, Roussel, Vogel: "1€ Filter",
    CHI 2012): an exponential smoothing x̂_i = α x_i + (1 - α) x̂_{i-1}
    whose cutoff frequency adapts to the signal's speed,
      α = 1 / (1 + τ / T_e),   τ = 1 / (2π f_c),
      f_c = min_cutoff + beta · |dx̂_i|,
    with T_e the time since the previous frame (seconds) and dx̂_i the
    speed (x_i - x̂_{i-1}) / T_e itself smoothed with the fixed cutoff
    d_cutoff. Slow motion gets the low cutoff min_cutoff (jitter removed),
    fast motion a higher one (less lag). One cutoff per joint: |dx̂| is the
    norm of the joint's whole quaternion speed (per second; about half the
    angular speed in rad/s for small steps), so the four numbers of a
    quaternion are smoothed alike.
  * Zero phase (`SmoothingConfig.zero_phase`, allowed because the track is
    finished when it is smoothed): the forward pass's output is filtered
    again from the last frame back to the first, as a forward-backward
    (filtfilt) filter does. The backward pass's lag cancels the forward
    pass's, so fast motion is not delayed; the smoothing is stronger than
    one pass with the same parameters. A causal (online) use would run the
    forward pass only.
  * Camera: cam_t_full (metres) gets the same filter with its own
    parameters (`cam_min_cutoff`, `cam_beta`), one cutoff for the three
    numbers (from the norm of their speed, in m/s).
  * Shape: one β per track, the per-coefficient median over the frames (a
    person's shape does not change; the median ignores the few frames where
    the network's shape goes astray, e.g. a half-occluded person).

The first frame starts the filter: x̂_0 = x_0 and dx̂_0 = 0 (Casiez et al.).
"""

from typing import Tuple

import numpy as np

from hmr_tf import configs

NUM_JOINTS = 24
POSE_DIM = 3 * NUM_JOINTS
# Below this rotation angle (radians) sin(θ/2)/θ is taken from its series.
_SMALL_ANGLE = 1e-6


def axis_angle_to_quaternion(rotvec: np.ndarray) -> np.ndarray:
  """[..., 3] axis-angle -> [..., 4] unit quaternions (w, x, y, z), w >= 0."""
  rotvec = np.asarray(rotvec, np.float64)
  angle = np.linalg.norm(rotvec, axis=-1, keepdims=True)
  half = 0.5 * angle
  small = angle < _SMALL_ANGLE
  safe = np.where(small, 1.0, angle)
  # sin(θ/2) / θ -> 1/2 - θ²/48 as θ -> 0.
  factor = np.where(small, 0.5 - angle * angle / 48.0, np.sin(half) / safe)
  return np.concatenate([np.cos(half), factor * rotvec], axis=-1)


def quaternion_to_axis_angle(quat: np.ndarray) -> np.ndarray:
  """[..., 4] quaternions (w, x, y, z; any norm > 0) -> [..., 3] axis-angle.

  The angle is in [0, π] (q and -q give the same result).
  """
  quat = np.asarray(quat, np.float64)
  quat = quat / np.linalg.norm(quat, axis=-1, keepdims=True)
  quat = np.where(quat[..., :1] < 0, -quat, quat)  # w >= 0: angle <= π
  vec = quat[..., 1:]
  sin_half = np.linalg.norm(vec, axis=-1, keepdims=True)
  angle = 2.0 * np.arctan2(sin_half, quat[..., :1])
  small = sin_half < 0.5 * _SMALL_ANGLE
  # θ / sin(θ/2) -> 2 + θ²/12 as θ -> 0.
  factor = np.where(small, 2.0 + angle * angle / 12.0,
                    angle / np.where(small, 1.0, sin_half))
  return factor * vec


def smoothing_factor(period: np.ndarray, cutoff: np.ndarray) -> np.ndarray:
  """The One-Euro filter's α = 1 / (1 + τ / T_e), τ = 1 / (2π f_c).

  Args:
    period: T_e, seconds since the previous sample (> 0).
    cutoff: f_c in Hz (> 0).

  Returns:
    α in (0, 1), broadcast.
  """
  r = 2.0 * np.pi * np.asarray(cutoff) * np.asarray(period)
  return r / (r + 1.0)


def _normalize(x: np.ndarray) -> np.ndarray:
  return x / np.linalg.norm(x, axis=-1, keepdims=True)


def one_euro(times: np.ndarray, x: np.ndarray, min_cutoff: float,
             beta: float, d_cutoff: float,
             unit_quaternions: bool = False) -> np.ndarray:
  """One forward pass of the One-Euro filter (module docstring).

  Args:
    times: [T] strictly increasing sample times in seconds.
    x: [T, N, D] N signals of D numbers each; each signal gets one cutoff
      per step, from the norm of its D-dimensional speed.
    min_cutoff: f_c at rest, Hz.
    beta: how much the cutoff rises with speed (Hz per unit/s).
    d_cutoff: the cutoff of the speed's own smoothing, Hz.
    unit_quaternions: x holds unit quaternions (D = 4): each sample takes the
      sign nearer to the state before it is used, and the state is
      renormalised after each step.

  Returns:
    [T, N, D] float64, the filtered signals.
  """
  times = np.asarray(times, np.float64)
  x = np.asarray(x, np.float64)
  out = np.empty_like(x)
  state = x[0].copy()
  if unit_quaternions:
    state = _normalize(state)
  speed = np.zeros_like(state)
  out[0] = state
  for i in range(1, x.shape[0]):
    period = times[i] - times[i - 1]
    sample = x[i]
    if unit_quaternions:
      # q and -q are one rotation: take the one nearer the state.
      sign = np.where(np.sum(sample * state, -1, keepdims=True) < 0, -1.0,
                      1.0)
      sample = sample * sign
    a_d = smoothing_factor(period, d_cutoff)
    speed = a_d * (sample - state) / period + (1.0 - a_d) * speed
    cutoff = min_cutoff + beta * np.linalg.norm(speed, axis=-1, keepdims=True)
    a = smoothing_factor(period, cutoff)
    state = a * sample + (1.0 - a) * state
    if unit_quaternions:
      state = _normalize(state)
    out[i] = state
  return out


def filter_signal(times: np.ndarray, x: np.ndarray, min_cutoff: float,
                  beta: float, d_cutoff: float, zero_phase: bool,
                  unit_quaternions: bool = False) -> np.ndarray:
  """`one_euro` forward, then (zero_phase) backward over its output.

  The backward pass runs on the reversed frames with the times negated (so
  the periods stay positive) and starts afresh from the last frame.

  Args: as `one_euro`; zero_phase: add the backward pass.

  Returns:
    [T, N, D] float64.
  """
  out = one_euro(times, x, min_cutoff, beta, d_cutoff, unit_quaternions)
  if zero_phase:
    times = np.asarray(times, np.float64)
    out = one_euro(-times[::-1], out[::-1], min_cutoff, beta, d_cutoff,
                   unit_quaternions)[::-1]
  return out


def _check_track(frames, theta, betas, cam_t, fps):
  """The inputs as float64 arrays; ValueError naming a bad one."""
  frames = np.asarray(frames)
  if frames.ndim != 1 or frames.size == 0:
    raise ValueError(f'frames: expected [T] frame indices, T >= 1, got shape '
                     f'{frames.shape}')
  if not np.issubdtype(frames.dtype, np.integer):
    if not np.all(np.isfinite(frames)) or np.any(frames != np.round(frames)):
      raise ValueError('frames: expected integer frame indices')
  frames = frames.astype(np.int64)
  if np.any(np.diff(frames) <= 0):
    raise ValueError('frames: expected strictly increasing frame indices, '
                     f'got {frames.tolist()[:10]}...')
  num = frames.shape[0]
  arrays = []
  for name, value, shape in (('theta', theta, (num, POSE_DIM)),
                             ('betas', betas, (num, None)),
                             ('cam_t', cam_t, (num, 3))):
    value = np.asarray(value, np.float64)
    if value.ndim != 2 or value.shape[0] != num or (
        shape[1] is not None and value.shape[1] != shape[1]):
      want = f'[{num}, {shape[1] if shape[1] is not None else "B"}]'
      raise ValueError(f'{name}: expected {want} (one row per frame), got '
                       f'{list(value.shape)}')
    if not np.all(np.isfinite(value)):
      raise ValueError(f'{name}: expected finite numbers')
    arrays.append(value)
  if not (np.isfinite(fps) and fps > 0):
    raise ValueError(f'fps: expected a positive frame rate, got {fps}')
  return (frames, *arrays)


def smooth_track(frames, theta, betas, cam_t, fps: float,
                 config: configs.SmoothingConfig = configs.SmoothingConfig()
                ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Smooths one person's finished track (see the module docstring).

  Args:
    frames: [T] int, strictly increasing frame indices (gaps allowed).
    theta: [T, 72] axis-angle SMPL pose per frame (joint 0 = global).
    betas: [T, B] SMPL shape per frame.
    cam_t: [T, 3] the full-image camera translation (cam_t_full) per frame.
    fps: frames per second of the video.
    config: the filter's parameters. With `enabled` False, theta and cam_t
      come back unchanged (copies); the shape is still one per track.

  Returns:
    (theta_s [T, 72] axis-angle with angles in [0, π], betas_s [B] the
    track's one shape, cam_t_s [T, 3]), float64.

  Raises:
    ValueError: naming the argument that has the wrong shape, non-finite
      values, frames that do not increase, or a non-positive fps.
  """
  frames, theta, betas, cam_t = _check_track(frames, theta, betas, cam_t,
                                             fps)
  betas_s = np.median(betas, axis=0)
  if not config.enabled:
    return theta.copy(), betas_s, cam_t.copy()
  times = frames / float(fps)
  num = frames.shape[0]
  quats = axis_angle_to_quaternion(theta.reshape(num, NUM_JOINTS, 3))
  quats = filter_signal(times, quats, config.min_cutoff, config.beta,
                        config.d_cutoff, config.zero_phase,
                        unit_quaternions=True)
  theta_s = quaternion_to_axis_angle(quats).reshape(num, POSE_DIM)
  cam_t_s = filter_signal(times, cam_t[:, None, :], config.cam_min_cutoff,
                          config.cam_beta, config.d_cutoff,
                          config.zero_phase)[:, 0]
  return theta_s, betas_s, cam_t_s
