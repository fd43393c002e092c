"""The mean parameters Θ_0 that start the iterative regressor.

Θ = [s, tx, ty | 72 pose (axis-angle, joint 0 = global rotation) | 10 shape]
(85 numbers). Θ_0 takes the mean pose and shape from a file and sets the
camera and the global rotation the way the original HMR trainer did:

  * camera (s, tx, ty) = (0.9, 0, 0): a body of about two metres fills most
    of the [-1, 1] crop;
  * global rotation = π about x: SMPL bodies stand with y up, image rows grow
    downwards, so turning the body half a turn about x makes it project
    upright into the crop (and face the camera, since z flips too).

Two file formats hold `pose` [72] and `shape` [10]:
  * `.npz` (written by hmr_tf.synthetic.generator for the stand-in body);
  * HMR's `neutral_smpl_mean_params.h5` (an HDF5 file written by deepdish,
    read here with h5py).
"""

import os
import zipfile

import numpy as np

NUM_CAM = 3
NUM_POSE = 72
NUM_SHAPE = 10
NUM_THETA = NUM_CAM + NUM_POSE + NUM_SHAPE  # 85
MEAN_CAMERA = (0.9, 0.0, 0.0)

_HDF5_MAGIC = b'\x89HDF\r\n\x1a\n'


def split_theta(theta):
  """Splits [..., 85] Θ into (cam [..., 3], pose [..., 72], shape [..., 10])."""
  return (theta[..., :NUM_CAM], theta[..., NUM_CAM:NUM_CAM + NUM_POSE],
          theta[..., NUM_CAM + NUM_POSE:])


def mean_theta(pose, shape, upright: bool = True) -> np.ndarray:
  """Builds Θ_0 [85] (float64) from a mean pose [72] and mean shape [10].

  Args:
    pose: [72] mean pose, axis-angle.
    shape: [10] mean shape.
    upright: replace the global rotation by π about x (the original's choice,
      see the module docstring). False keeps the file's global rotation.

  Returns:
    [85] float64 array [0.9, 0, 0 | pose | shape].
  """
  pose = np.array(pose, dtype=np.float64).reshape(-1)
  shape = np.array(shape, dtype=np.float64).reshape(-1)
  if pose.shape != (NUM_POSE,):
    raise ValueError(f'mean pose must have {NUM_POSE} values, got {pose.size}')
  if shape.shape != (NUM_SHAPE,):
    raise ValueError(f'mean shape must have {NUM_SHAPE} values, got '
                     f'{shape.size}')
  if upright:
    pose[:3] = (np.pi, 0.0, 0.0)
  return np.concatenate([np.asarray(MEAN_CAMERA), pose, shape])


def _read_npz(path):
  try:
    with np.load(path, allow_pickle=False) as z:
      return {k: z[k] for k in ('pose', 'shape') if k in z.files}
  except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
    raise ValueError(f'{path}: not a readable .npz mean-parameter file '
                     f'({e})') from e


def _read_h5(path):
  # Imported here: only the original .h5 needs h5py.
  import h5py  # pylint: disable=g-import-not-at-top
  try:
    with h5py.File(path, 'r') as f:
      return {k: np.asarray(f[k][()]) for k in ('pose', 'shape') if k in f}
  except (OSError, KeyError, TypeError) as e:
    raise ValueError(f'{path}: not a readable HDF5 mean-parameter file '
                     f'({e})') from e


def load_mean_params(path: str, upright: bool = True) -> np.ndarray:
  """Reads a mean-parameter file and returns Θ_0.

  Args:
    path: an `.npz` or HMR's `neutral_smpl_mean_params.h5`, with keys `pose`
      [72] and `shape` [10].
    upright: see `mean_theta`.

  Returns:
    [85] float64 Θ_0.

  Raises:
    ValueError: naming the file and key, for a missing or unreadable file, a
      missing key, a wrong size or non-finite values.
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise ValueError(f'{path}: no such mean-parameter file')
  with open(path, 'rb') as f:
    magic = f.read(8)
  if magic.startswith(b'PK'):
    raw = _read_npz(path)
  elif magic == _HDF5_MAGIC:
    raw = _read_h5(path)
  else:
    raise ValueError(f'{path}: not an .npz or HDF5 mean-parameter file')
  values = {}
  for key, size in (('pose', NUM_POSE), ('shape', NUM_SHAPE)):
    if key not in raw:
      raise ValueError(f'{path}: missing key {key!r}')
    try:
      arr = np.asarray(raw[key], dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as e:
      raise ValueError(f'{path}: key {key!r} is not numeric ({e})') from e
    if arr.size != size:
      raise ValueError(f'{path}: key {key!r} has {arr.size} values, expected '
                       f'{size}')
    if not np.all(np.isfinite(arr)):
      raise ValueError(f'{path}: key {key!r} has non-finite values')
    values[key] = arr
  return mean_theta(values['pose'], values['shape'], upright=upright)
