"""Reading and writing SMPL-format body model files.

Reads the official SMPL pickles (Python 2 pickles of chumpy objects with a
`scipy.sparse` `J_regressor`) without chumpy, HMR's
`neutral_smpl_with_cocoplus_reg.pkl`, and `.npz` files with the same keys.
Pickles go through `hmr_tf.files.safe_pickle` (an allow-list: no code from the
file runs).
Writes `.npz` atomically.

File keys (official names): `v_template` [N,3], `f` [F,3], `weights` [N,24],
`kintree_table` [2,24], `J_regressor` [24,N] (sparse or dense; HMR's
neutral file: dense [N,24]), `shapedirs`
[N,3,B], `posedirs` [N,3,207], optional `cocoplus_regressor` [19,N] or
[N,19]. `.npz` files written here may also hold `vertex_mirror` [N] (index of
each vertex's mirror image) and `metadata` (a JSON string).
"""

import dataclasses
import io
import json
import os
import zipfile
from typing import Any, Dict, Optional

import numpy as np
import scipy.sparse

from hmr_tf.files import atomic_io
from hmr_tf.files import safe_pickle
from hmr_tf.smpl import joints as joints_lib

NUM_JOINTS = joints_lib.NUM_SMPL_JOINTS
NUM_POSE_BASIS = 9 * (NUM_JOINTS - 1)  # 207


@dataclasses.dataclass(frozen=True, eq=False)
class BodyModel:
  """An SMPL-format body model as plain NumPy arrays.

  Attributes:
    v_template: [N, 3] float, the mean template mesh in the rest pose (metres).
    faces: [F, 3] int32, triangle vertex indices.
    weights: [N, 24] float, linear blend skinning weights (rows sum to 1).
    parents: [24] int32, parent joint of each joint; -1 for the root.
    J_regressor: [24, N] float, dense joint regressor from rest vertices.
    shapedirs: [N, 3, B] float, shape blend shape directions.
    posedirs: [N, 3, 207] float, pose corrective directions.
    cocoplus_regressor: [19, N] float or None, regresses HMR's 19 keypoints
      from posed vertices.
    vertex_mirror: [N] int32 or None, index of each vertex's left/right mirror
      image (x -> -x), where the model defines one.
    metadata: dict of JSON-serialisable facts about the model's origin.
  """
  v_template: np.ndarray
  faces: np.ndarray
  weights: np.ndarray
  parents: np.ndarray
  J_regressor: np.ndarray
  shapedirs: np.ndarray
  posedirs: np.ndarray
  cocoplus_regressor: Optional[np.ndarray] = None
  vertex_mirror: Optional[np.ndarray] = None
  metadata: Dict[str, Any] = dataclasses.field(default_factory=dict)

  @property
  def num_vertices(self) -> int:
    return self.v_template.shape[0]

  @property
  def num_betas(self) -> int:
    return self.shapedirs.shape[2]

  @property
  def is_standin(self) -> bool:
    """True for a model that is not the licensed SMPL (named in its metadata)."""
    return bool(self.metadata.get('standin', False))


# ---------------------------------------------------------------------------
# Reading.


def _read_pickle(path):
  """The pickle's dict through the allow-list unpickler (no code runs)."""
  try:
    data = safe_pickle.load_pickle(path, encoding='latin1')
  except safe_pickle.UnsafePickleError:
    raise
  except ValueError as e:
    cause = e.__cause__ if e.__cause__ is not None else e
    raise ValueError(f'{path}: not a readable SMPL pickle ({cause})') from e
  if not isinstance(data, dict):
    raise ValueError(f'{path}: expected a dict of arrays in the pickle, got '
                     f'{type(data).__name__}')
  return data


def _read_npz(path):
  try:
    with np.load(path, allow_pickle=False) as z:
      return {k: z[k] for k in z.files}
  except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
    raise ValueError(f'{path}: not a readable .npz file ({e})') from e


# ---------------------------------------------------------------------------
# Validation.


def _array(raw, key, path, dtype=np.float64, required=True):
  if key not in raw or raw[key] is None:
    if required:
      raise ValueError(f'{path}: missing key {key!r}')
    return None
  value = raw[key]
  if scipy.sparse.issparse(value):
    value = value.toarray()
  try:
    arr = np.asarray(value, dtype=dtype)
  except (TypeError, ValueError) as e:
    raise ValueError(f'{path}: key {key!r} is not a numeric array ({e})') from e
  if arr.dtype.kind == 'f' and not np.all(np.isfinite(arr)):
    raise ValueError(f'{path}: key {key!r} has non-finite values')
  return arr


def _check_shape(arr, expected, key, path):
  """Checks `arr.shape` against `expected` (None entries match any size)."""
  ok = arr.ndim == len(expected) and all(
      e is None or e == s for e, s in zip(expected, arr.shape))
  if not ok:
    want = 'x'.join('?' if e is None else str(e) for e in expected)
    raise ValueError(f'{path}: key {key!r} has shape {arr.shape}, expected '
                     f'{want}')


def _from_raw(raw, path) -> BodyModel:
  """Builds a validated BodyModel from a dict of file arrays."""
  v_template = _array(raw, 'v_template', path)
  _check_shape(v_template, (None, 3), 'v_template', path)
  n = v_template.shape[0]
  faces = _array(raw, 'f', path, dtype=np.int64)
  _check_shape(faces, (None, 3), 'f', path)
  if faces.size and (faces.min() < 0 or faces.max() >= n):
    raise ValueError(f'{path}: key \'f\' has vertex indices out of range '
                     f'[0, {n}) (min {faces.min()}, max {faces.max()})')
  weights = _array(raw, 'weights', path)
  _check_shape(weights, (n, NUM_JOINTS), 'weights', path)
  kintree = _array(raw, 'kintree_table', path, dtype=np.int64)
  _check_shape(kintree, (2, NUM_JOINTS), 'kintree_table', path)
  parents = kintree[0].copy()
  # Official files store the root's parent as 2**32 - 1 (uint32 -1).
  parents[0] = -1
  if np.any(parents[1:] < 0) or np.any(parents[1:] >= np.arange(1, NUM_JOINTS)):
    raise ValueError(f'{path}: key \'kintree_table\' must list each joint\'s '
                     f'parent before the joint, got {parents.tolist()}')
  j_regressor = _array(raw, 'J_regressor', path)
  if j_regressor.shape == (n, NUM_JOINTS) and n != NUM_JOINTS:
    # HMR's neutral_smpl_with_cocoplus_reg.pkl keeps it dense as [N, 24]
    # (its batch_smpl.py multiplies [B, N] by it).
    j_regressor = j_regressor.T
  _check_shape(j_regressor, (NUM_JOINTS, n), 'J_regressor', path)
  shapedirs = _array(raw, 'shapedirs', path)
  _check_shape(shapedirs, (n, 3, None), 'shapedirs', path)
  posedirs = _array(raw, 'posedirs', path)
  _check_shape(posedirs, (n, 3, NUM_POSE_BASIS), 'posedirs', path)
  cocoplus = _array(raw, 'cocoplus_regressor', path, required=False)
  if cocoplus is not None:
    num_kp = joints_lib.NUM_COCOPLUS_JOINTS
    if cocoplus.shape == (n, num_kp):
      cocoplus = cocoplus.T
    _check_shape(cocoplus, (num_kp, n), 'cocoplus_regressor', path)
  mirror = _array(raw, 'vertex_mirror', path, dtype=np.int64, required=False)
  if mirror is not None:
    _check_shape(mirror, (n,), 'vertex_mirror', path)
    if mirror.min() < 0 or mirror.max() >= n:
      raise ValueError(f'{path}: key \'vertex_mirror\' has indices out of '
                       f'range [0, {n})')
  metadata = {}
  if 'metadata' in raw and raw['metadata'] is not None:
    try:
      metadata = json.loads(str(np.asarray(raw['metadata'])))
    except json.JSONDecodeError as e:
      raise ValueError(f'{path}: key \'metadata\' is not a JSON string') from e
  return BodyModel(
      v_template=v_template,
      faces=faces.astype(np.int32),
      weights=weights,
      parents=parents.astype(np.int32),
      J_regressor=j_regressor,
      shapedirs=shapedirs,
      posedirs=posedirs,
      cocoplus_regressor=cocoplus,
      vertex_mirror=None if mirror is None else mirror.astype(np.int32),
      metadata=metadata)


def load_model(path: str) -> BodyModel:
  """Loads an SMPL-format body model from a `.pkl` or `.npz` file.

  Args:
    path: an official SMPL pickle (chumpy not needed), HMR's
      `neutral_smpl_with_cocoplus_reg.pkl`, or an `.npz` with the same keys.

  Returns:
    The validated `BodyModel` (float64 arrays).

  Raises:
    ValueError: naming the file and the key, for an unreadable file, a missing
      key, a wrong shape, out-of-range faces or non-finite values.
    hmr_tf.files.safe_pickle.UnsafePickleError: (a ValueError) naming the file and
      the class, for a pickle that asks for anything but arrays.
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise ValueError(f'{path}: no such body model file')
  with open(path, 'rb') as f:
    magic = f.read(4)
  if magic.startswith(b'PK'):
    raw = _read_npz(path)
  elif magic[:1] == b'\x80' or path.endswith('.pkl'):
    raw = _read_pickle(path)
  else:
    raise ValueError(f'{path}: not a pickle or .npz body model file')
  return _from_raw(raw, path)


def to_file_dict(model: BodyModel) -> Dict[str, np.ndarray]:
  """The model as a dict of arrays under the official file keys."""
  kintree = np.stack([model.parents, np.arange(NUM_JOINTS)]).astype(np.int64)
  out = {
      'v_template': model.v_template,
      'f': model.faces,
      'weights': model.weights,
      'kintree_table': kintree,
      'J_regressor': model.J_regressor,
      'shapedirs': model.shapedirs,
      'posedirs': model.posedirs,
      'metadata': np.asarray(json.dumps(model.metadata, sort_keys=True)),
  }
  if model.cocoplus_regressor is not None:
    out['cocoplus_regressor'] = model.cocoplus_regressor
  if model.vertex_mirror is not None:
    out['vertex_mirror'] = model.vertex_mirror
  return out


def save_model(model: BodyModel, path: str, compress: bool = True) -> None:
  """Writes `model` as `.npz` at `path` atomically (hmr_tf.files.atomic_io)."""
  buf = io.BytesIO()
  (np.savez_compressed if compress else np.savez)(buf, **to_file_dict(model))
  atomic_io.write_bytes_atomic(os.fspath(path), buf.getvalue())
