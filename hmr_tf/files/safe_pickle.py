"""Loading pickles without running their code: an allow-list unpickler.

A pickle names the callables that rebuild its objects, and a plain
`pickle.load` imports and calls whatever it names (`os.system`,
`builtins.eval`, `subprocess.Popen`, ...). Every pickle hmr_tf reads (the
SMPL and HMR model files, MoSh sequences, 3DPW sequences) goes through
`load_pickle`, which resolves only the classes and functions such files
contain, matched on their full dotted name:

  * NumPy array and scalar reconstruction and dtypes (the names of
    NumPy 1 and NumPy 2 and of every pickle protocol);
  * `scipy.sparse` CSC, CSR and COO matrices (official SMPL files keep
    `J_regressor` as one), rebuilt from their arrays by their constructors;
  * chumpy objects (Python 2 SMPL and MoSh files), turned into NumPy arrays
    without importing chumpy: a leaf `Ch` and the reordering nodes
    `transpose`, `Reshape` and `Select`;
  * the built-in containers a protocol-0..5 pickle needs a name for (set,
    frozenset, bytearray, bytes through `_codecs.encode`, and
    `copyreg._reconstructor` with `object` for protocol 0/1 objects).

Anything else raises `UnsafePickleError` naming the file and the class,
before any code from the file runs. Python 2 module names (`__builtin__`,
`copy_reg`, `numpy.core`) are mapped to their Python 3 names first.

This module needs NumPy and SciPy only (no TensorFlow).
"""

import copyreg
import io
import os
import pickle
import types
from typing import Any, Dict, Tuple

import numpy as np
import scipy.sparse

try:
  from numpy._core import multiarray as _multiarray  # NumPy >= 2.
  from numpy._core import numeric as _numeric
except ImportError:  # pragma: no cover - NumPy 1.x.
  from numpy.core import multiarray as _multiarray  # type: ignore
  from numpy.core import numeric as _numeric  # type: ignore


class UnsafePickleError(ValueError):
  """A pickle names a class or function outside the allow-list."""


class _Stub:
  """Holds the pickled state of a chumpy or scipy.sparse object.

  The real class is never imported: unpickling creates a stub (`__new__`
  and `__init__` accept anything and do nothing), `__setstate__` keeps the
  state, and `_convert` builds an array or a sparse matrix from it.
  """
  dotted = ''
  state: Dict[str, Any] = types.MappingProxyType({})  # Until __setstate__.

  def __init__(self, *args, **kwargs):
    del args, kwargs
    self.state = {}

  def __setstate__(self, state):
    if isinstance(state, tuple) and len(state) == 2:
      # The (dict, slots) form of a class with __slots__.
      state = {**(state[0] or {}), **(state[1] or {})}
    self.state = state if isinstance(state, dict) else {}


def _stub(dotted: str) -> type:
  return type(dotted.rsplit('.', 1)[1], (_Stub,), {'dotted': dotted})


def _latin1_encode(text: str, encoding: str) -> bytes:
  """`_codecs.encode` as Python 3 pickles bytes at protocols 0-2 (latin-1
  only: other codec names could import modules)."""
  if not isinstance(text, str) or _codec_name(encoding) != 'latin_1':
    raise pickle.UnpicklingError(
        f'_codecs.encode is allowed for latin-1 text only, got {encoding!r}')
  return text.encode('latin-1')


def _codec_name(encoding: Any) -> str:
  """A codec name normalised as the latin-1 aliases are compared here."""
  name = str(encoding).lower().replace('-', '_')
  return 'latin_1' if name in ('latin1', 'latin_1', 'iso_8859_1') else name


def _sparse_names(kind: str) -> Dict[str, str]:
  """Old (`scipy.sparse.csc`) and new (`scipy.sparse._csc`) module names."""
  return {f'scipy.sparse.{prefix}{kind}.{kind}_matrix': kind
          for prefix in ('', '_')}


_SPARSE = {**_sparse_names('csc'), **_sparse_names('csr'),
           **_sparse_names('coo')}
_CHUMPY = ('chumpy.ch.Ch', 'chumpy.reordering.transpose',
           'chumpy.reordering.Reshape', 'chumpy.reordering.Select')

# Full dotted name (after the Python 2 / NumPy 1 renames below) -> object.
_ALLOWED: Dict[str, Any] = {
    'numpy.ndarray': np.ndarray,
    'numpy.dtype': np.dtype,
    'numpy._core.multiarray._reconstruct': _multiarray._reconstruct,  # pylint: disable=protected-access
    'numpy._core.multiarray.scalar': _multiarray.scalar,
    'numpy._core.numeric._frombuffer': _numeric._frombuffer,  # pylint: disable=protected-access
    'builtins.set': set,
    'builtins.frozenset': frozenset,
    'builtins.bytearray': bytearray,
    'builtins.object': object,
    'copyreg._reconstructor': copyreg._reconstructor,  # pylint: disable=protected-access
    '_codecs.encode': _latin1_encode,
}
_ALLOWED.update({name: _stub(name) for name in _SPARSE})
_ALLOWED.update({name: _stub(name) for name in _CHUMPY})
# Read-only: the allow-list is not meant to grow at run time.
ALLOWED = types.MappingProxyType(_ALLOWED)

# Module prefixes renamed since the files were written.
_RENAMES: Tuple[Tuple[str, str], ...] = (
    ('__builtin__', 'builtins'),
    ('copy_reg', 'copyreg'),
    ('numpy.core', 'numpy._core'),
)


def canonical_name(module: str, name: str) -> str:
  """The full dotted name `module.name`, with old module names renamed."""
  for old, new in _RENAMES:
    if module == old or module.startswith(old + '.'):
      module = new + module[len(old):]
      break
  return f'{module}.{name}'


class _AllowListUnpickler(pickle.Unpickler):
  """Resolves only `ALLOWED` names; refuses everything else."""

  def __init__(self, file, where: str, encoding: str):
    super().__init__(file, encoding=encoding, fix_imports=False)
    self._where = where

  def find_class(self, module, name):
    dotted = canonical_name(str(module), str(name))
    try:
      return ALLOWED[dotted]
    except KeyError:
      raise UnsafePickleError(
          f'{self._where}: refusing to load {dotted} from a pickle (only '
          'NumPy arrays, scipy.sparse matrices, chumpy arrays and built-in '
          'containers are allowed)') from None

  def persistent_load(self, pid):
    raise UnsafePickleError(
        f'{self._where}: refusing a persistent id in a pickle ({pid!r})')


def _sparse_matrix(stub: _Stub, where: str):
  """A scipy.sparse matrix rebuilt by its constructor from pickled arrays."""
  s = stub.state
  kind = _SPARSE[stub.dotted]
  shape = s.get('_shape', s.get('shape'))
  try:
    shape = tuple(int(n) for n in shape)
    if kind == 'coo':
      row, col = s['coords'] if 'coords' in s else (s['row'], s['col'])
      return scipy.sparse.coo_matrix(
          (np.asarray(s['data']), (np.asarray(row), np.asarray(col))),
          shape=shape)
    cls = scipy.sparse.csc_matrix if kind == 'csc' else scipy.sparse.csr_matrix
    return cls((np.asarray(s['data']), np.asarray(s['indices']),
                np.asarray(s['indptr'])), shape=shape)
  except (KeyError, TypeError, ValueError) as e:
    raise ValueError(f'{where}: malformed {stub.dotted} in the pickle '
                     f'({type(e).__name__}: {e})') from e


def _chumpy_array(stub: _Stub, where: str, convert) -> np.ndarray:
  """The value of a chumpy object as a NumPy array."""
  s = stub.state
  kind = stub.dotted.rsplit('.', 1)[1]
  try:
    if kind == 'Ch':
      return np.asarray(convert(s['x']))
    a = np.asarray(convert(s['a']))
    if kind == 'transpose':
      return np.transpose(a, s.get('axes'))
    if kind == 'Reshape':
      return np.reshape(a, s['newshape'])
    out = a.ravel()[np.asarray(s['idxs'])]  # Select.
    shape = s.get('preferred_shape')
    return out if shape is None else out.reshape(shape)
  except (KeyError, IndexError, TypeError, ValueError) as e:
    raise ValueError(
        f'{where}: cannot turn chumpy object {stub.dotted} into an array '
        f'({type(e).__name__}: {e}; state keys {sorted(s)})') from e


def _plain(obj: Any, where: str) -> Any:
  """`obj` with every stub inside dicts, lists, tuples and object arrays
  replaced by its array (chumpy) or sparse matrix (scipy.sparse)."""
  done: Dict[int, Any] = {}

  def convert(x):
    key = id(x)
    if key in done:
      return done[key]
    if isinstance(x, _Stub):
      if x.dotted in _SPARSE:
        out = _sparse_matrix(x, where)
      else:
        out = _chumpy_array(x, where, convert)
    elif isinstance(x, dict):
      out = done[key] = {}
      out.update((k, convert(v)) for k, v in x.items())
    elif isinstance(x, list):
      out = done[key] = []
      out.extend(convert(v) for v in x)
    elif isinstance(x, tuple):
      out = tuple(convert(v) for v in x)
    elif isinstance(x, np.ndarray) and x.dtype == object:
      out = done[key] = np.empty_like(x)
      for index, v in np.ndenumerate(x):
        out[index] = convert(v)
    else:
      out = x
    done[key] = out
    return out

  return convert(obj)


def loads(data: bytes, *, where: str = '<bytes>',
          encoding: str = 'latin1') -> Any:
  """Unpickles `data` through the allow-list (see `load_pickle`).

  Args:
    data: the pickle's bytes.
    where: what to name in error messages (a file name).
    encoding: how to decode Python 2 `str` objects; 'latin1' reads NumPy
      arrays from Python 2 pickles.

  Returns:
    The unpickled object, chumpy objects turned into NumPy arrays.

  Raises:
    UnsafePickleError: the pickle names a class outside the allow-list.
    ValueError: the data is not a readable pickle (naming `where`).
  """
  try:
    obj = _AllowListUnpickler(io.BytesIO(data), where, encoding).load()
  except UnsafePickleError:
    raise
  except (pickle.UnpicklingError, EOFError, AttributeError, IndexError,
          KeyError, TypeError, ValueError, UnicodeError, OverflowError,
          RecursionError, MemoryError) as e:
    raise ValueError(f'{where}: not a readable pickle '
                     f'({type(e).__name__}: {e})') from e
  return _plain(obj, where)


def load_pickle(path, *, encoding: str = 'latin1') -> Any:
  """Loads the pickle at `path` without running code from it.

  Only NumPy arrays and dtypes, `scipy.sparse` CSC/CSR/COO matrices, chumpy
  arrays and built-in containers are rebuilt (see the module docstring); a
  pickle naming anything else (`os.system`, `builtins.eval`, a dotted path
  under `numpy`, ...) is refused before any of its code runs.

  Args:
    path: the pickle file.
    encoding: how to decode Python 2 `str` objects ('latin1' reads NumPy
      arrays from Python 2 pickles, as the SMPL, MoSh and 3DPW files are).

  Returns:
    The unpickled object, with chumpy objects turned into NumPy arrays and
    scipy.sparse matrices kept.

  Raises:
    UnsafePickleError: (a ValueError) naming the file and the dotted class
      the pickle asks for, when it is outside the allow-list.
    ValueError: naming the file, when it is not a readable pickle.
    OSError: when the file cannot be read.
  """
  path = os.fspath(path)
  with open(path, 'rb') as f:
    data = f.read()
  return loads(data, where=path, encoding=encoding)
