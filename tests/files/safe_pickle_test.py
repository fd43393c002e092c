"""hmr_tf.files.safe_pickle: the allow-list unpickler refuses code, loads data."""

import io
import os
import pickle
import pickletools
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse

from hmr_tf.files import safe_pickle
import repo_paths  # tests/support/
import fixtures_datasets  # tests/support/
from hmr_tf.files.safe_pickle import UnsafePickleError


# ---------------------------------------------------------------------------
# Helpers: Python 2 style pickles, fake chumpy classes, global names.


_Py2Pickler = fixtures_datasets.Py2Pickler  # Python 2 str opcodes


def _py2(obj):
  """`obj` with str dict keys and strings as bytes (Python 2 `str`)."""
  if isinstance(obj, dict):
    return {_py2(k): _py2(v) for k, v in obj.items()}
  if isinstance(obj, list):
    return [_py2(v) for v in obj]
  if isinstance(obj, str):
    return obj.encode('latin-1')
  return obj


def _py2_pickle(obj, protocol=2):
  """Pickles `obj` as Python 2 did: str opcodes and NumPy 1 module names."""
  buf = io.BytesIO()
  _Py2Pickler(buf, protocol=protocol).dump(_py2(obj))
  data = buf.getvalue()
  # GLOBAL opcodes are text lines, so renaming them keeps the pickle valid.
  return data.replace(b'cnumpy._core.multiarray\n', b'cnumpy.core.multiarray\n')


def global_names(data):
  """The dotted names a pickle asks `find_class` for (every protocol)."""
  names, pushed, memo = set(), [], {}
  for op, arg, _ in pickletools.genops(data):
    if op.name in ('GLOBAL', 'INST'):
      names.add(arg.replace(' ', '.'))
    if op.name in ('SHORT_BINUNICODE', 'BINUNICODE', 'UNICODE',
                   'BINUNICODE8'):
      pushed.append(arg)
    elif op.name in ('GET', 'BINGET', 'LONG_BINGET'):
      pushed.append(memo.get(arg))
    elif op.name == 'MEMOIZE':
      memo[len(memo)] = pushed[-1]
    elif op.name in ('PUT', 'BINPUT', 'LONG_BINPUT'):
      memo[arg] = pushed[-1]
    elif op.name == 'STACK_GLOBAL':
      names.add('.'.join(pushed[-2:]))
      pushed.append(None)
    elif op.stack_after:
      pushed.append(None)
  return names


_fake_module = fixtures_datasets.fake_module


class _FakeModules:
  """Installs fake chumpy / old scipy.sparse modules while pickling."""

  def __init__(self, modules):
    self.modules = modules

  def __enter__(self):
    self.saved = {k: sys.modules.get(k) for k in self.modules}
    sys.modules.update(self.modules)

  def __exit__(self, *exc):
    for k, v in self.saved.items():
      if v is None:
        sys.modules.pop(k, None)
      else:
        sys.modules[k] = v


def _chumpy_classes():
  """Fake chumpy classes that pickle their state as chumpy's do."""

  class Ch:  # A leaf: its value in `x`, bookkeeping next to it.

    def __init__(self, x):
      self.__dict__.update({'x': x, '_dirty_vars': {'x'}, '_itr': None,
                            '_make_dense': False, '_make_sparse': False,
                            '_depends_on_deps': {}})

  class transpose:  # pylint: disable=invalid-name

    def __init__(self, a, axes):
      self.__dict__.update({'a': a, 'axes': axes, '_dirty_vars': set()})

  class Reshape:

    def __init__(self, a, newshape):
      self.__dict__.update({'a': a, 'newshape': newshape})

  class Select:

    def __init__(self, a, idxs, preferred_shape):
      self.__dict__.update({'a': a, 'idxs': idxs,
                            'preferred_shape': preferred_shape})

  class csc_matrix:  # pylint: disable=invalid-name
    """scipy < 1.8 kept sparse matrices in scipy.sparse.csc."""

    def __init__(self, dense):
      m = scipy.sparse.csc_matrix(dense)
      self.__dict__.update({'data': m.data, 'indices': m.indices,
                            'indptr': m.indptr, '_shape': m.shape,
                            'maxprint': 50})

  modules = {
      'chumpy': _fake_module('chumpy'),
      'chumpy.ch': _fake_module('chumpy.ch', Ch=Ch),
      'chumpy.reordering': _fake_module('chumpy.reordering',
                                        transpose=transpose, Reshape=Reshape,
                                        Select=Select),
      'scipy.sparse.csc': _fake_module('scipy.sparse.csc',
                                       csc_matrix=csc_matrix),
  }
  return modules, Ch, transpose, Reshape, Select, csc_matrix


# ---------------------------------------------------------------------------
# Malicious pickles: refused, and the payload never runs.


class _Reduce:
  """Pickles as `func(*args)`, whatever `func` is."""

  def __init__(self, func, *args):
    self.func, self.args = func, args

  def __reduce__(self):
    return self.func, self.args


def _stack_global_call(module, name, arg):
  """Protocol 4: STACK_GLOBAL(module, name)(arg), as a hand-made pickle."""

  def text(s):
    b = s.encode()
    return pickle.SHORT_BINUNICODE + bytes([len(b)]) + b

  return (pickle.PROTO + b'\x04' + text(module) + text(name) +
          pickle.STACK_GLOBAL + text(arg) + pickle.TUPLE1 + pickle.REDUCE +
          pickle.STOP)


def _global_call(module, name, arg):
  """Protocol 0: GLOBAL 'module name' called on one string."""
  return (b'c' + module.encode() + b'\n' + name.encode() + b'\n(V' +
          arg.encode() + b'\ntR.')


def _malicious(marker):
  """(label, pickle bytes, dotted name) of payloads that create `marker`."""
  touch = f'touch {marker}'
  return [
      ('os.system', pickle.dumps(_Reduce(os.system, touch)),
       f'{os.system.__module__}.system'),
      ('builtins.eval', pickle.dumps(
          _Reduce(eval, f'open({str(marker)!r}, "w")')), 'builtins.eval'),
      ('subprocess', pickle.dumps(_Reduce(subprocess.Popen, ['touch', marker])),
       'subprocess.Popen'),
      ('numpy+f2py.os.system', _stack_global_call('numpy', 'f2py.os.system',
                                                  touch),
       'numpy.f2py.os.system'),
      ('numpy.core+dotted', _stack_global_call(
          'numpy.core', 'multiarray.os.system', touch),
       'numpy._core.multiarray.os.system'),
      ('numpy+testing', _stack_global_call(
          'numpy', 'testing._private.utils.os.system', touch),
       'numpy.testing._private.utils.os.system'),
      ('protocol0 posix.system', _global_call('posix', 'system', touch),
       'posix.system'),
      ('py2 __builtin__.eval', _global_call(
          '__builtin__', 'eval', f'open({str(marker)!r}, "w")'),
       'builtins.eval'),
      ('copy_reg + os.system', pickle.dumps(
          _Reduce(__import__('copyreg')._reconstructor, os.system, object,  # pylint: disable=protected-access
                  touch), protocol=0), f'{os.system.__module__}.system'),
  ]


_LABELS = [m[0] for m in _malicious('x')]


@pytest.mark.parametrize('label', _LABELS)
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, label):
  marker = tmp_path / 'pwned'
  data, dotted = {m[0]: m[1:] for m in _malicious(marker)}[label]
  path = tmp_path / 'evil.pkl'
  path.write_bytes(data)
  with pytest.raises(UnsafePickleError) as e:
    safe_pickle.load_pickle(path)
  assert str(path) in str(e.value)
  assert dotted in str(e.value)
  assert isinstance(e.value, ValueError)
  assert not marker.exists()


@pytest.mark.parametrize('label', ['numpy+f2py.os.system', 'os.system'])
def test_the_same_payload_runs_under_plain_pickle(tmp_path, label):
  """Control: the payloads above are real (plain pickle.loads runs them)."""
  marker = tmp_path / 'pwned'
  data, _ = {m[0]: m[1:] for m in _malicious(marker)}[label]
  pickle.loads(data)  # noqa: S301 - the point of the control.
  assert marker.exists()


def test_payload_deep_inside_data_is_refused(tmp_path):
  marker = tmp_path / 'pwned'
  data = pickle.dumps({'poses': np.zeros((2, 72)),
                       'nested': [1, {'x': _Reduce(os.system,
                                                   f'touch {marker}')}]},
                      protocol=2)
  with pytest.raises(UnsafePickleError, match='system'):
    safe_pickle.loads(data, where='inline')
  assert not marker.exists()


def test_other_classes_named_with_file_and_class(tmp_path):
  import datetime  # pylint: disable=import-outside-toplevel
  import collections  # pylint: disable=import-outside-toplevel
  for obj, dotted in [(datetime.date(2020, 1, 1), 'datetime.date'),
                      (collections.OrderedDict(a=1),
                       'collections.OrderedDict')]:
    path = tmp_path / 'other.pkl'
    path.write_bytes(pickle.dumps({'v': obj}))
    with pytest.raises(UnsafePickleError,
                       match=f'{path}: refusing to load {dotted}'):
      safe_pickle.load_pickle(path)


def test_codecs_encode_only_for_latin1(tmp_path):
  ok = pickle.dumps(b'\x00\xffab', protocol=2)  # _codecs.encode(.., latin1)
  assert '_codecs.encode' in global_names(ok)
  assert safe_pickle.loads(ok) == b'\x00\xffab'
  bad = _global_call('_codecs', 'encode', 'x').replace(
      b'\ntR.', b'\nVrot13\ntR.')
  with pytest.raises(ValueError, match='latin-1 text only'):
    safe_pickle.loads(bad, where='codec.pkl')


def test_persistent_ids_are_refused():
  with pytest.raises(UnsafePickleError, match='persistent id'):
    safe_pickle.loads(b'Pfoo\n.', where='pid.pkl')


@pytest.mark.parametrize('data', [b'garbage', b'\x80\x02}q\x00(U',
                                  b'\x80\x02cnumpy\ndtype\nU\x03zz9\x85R.'])
def test_unreadable_pickle_names_the_file(tmp_path, data):
  path = tmp_path / 'broken.pkl'
  path.write_bytes(data)
  with pytest.raises(ValueError, match=f'{path}: not a readable pickle'):
    safe_pickle.load_pickle(path)


# ---------------------------------------------------------------------------
# The real files' class sets load.


def test_smpl_model_file_class_set_loads(tmp_path):
  """An official SMPL / HMR cocoplus file's classes, as Python 2 wrote them."""
  modules, ch, transpose, reshape, select, csc = _chumpy_classes()
  rng = np.random.default_rng(0)
  v = rng.normal(size=(6, 3))
  shapedirs = rng.normal(size=(6, 3, 10))
  posedirs = rng.normal(size=(6, 3, 207))
  jreg = rng.uniform(size=(24, 6)) * (rng.uniform(size=(24, 6)) > 0.5)
  coco = rng.uniform(size=(19, 6)) * (rng.uniform(size=(19, 6)) > 0.5)
  with _FakeModules(modules):
    data = _py2_pickle({
        'v_template': ch(v),
        'shapedirs': ch(shapedirs),
        'posedirs': transpose(ch(np.transpose(posedirs, (2, 0, 1))),
                              (1, 2, 0)),
        'weights': reshape(ch(np.arange(6.0 * 24)), (6, 24)),
        'J': select(ch(v), np.array([5, 0, 1]), (3,)),
        'J_regressor': csc(jreg),
        'cocoplus_regressor': csc(coco),
        'f': np.array([[0, 1, 2]], np.uint32),
        'kintree_table': np.zeros((2, 24), np.int64),
        'bs_style': 'lbs',
        'pose_training_info': {'num_samples': 1786},
    })
  assert global_names(data) == {
      'chumpy.ch.Ch', 'chumpy.reordering.transpose',
      'chumpy.reordering.Reshape', 'chumpy.reordering.Select',
      'scipy.sparse.csc.csc_matrix', 'numpy.core.multiarray._reconstruct',
      'numpy.ndarray', 'numpy.dtype', '__builtin__.set'}
  assert 'chumpy' not in sys.modules
  path = tmp_path / 'neutral_smpl_with_cocoplus_reg.pkl'
  path.write_bytes(data)
  out = safe_pickle.load_pickle(path)
  assert 'chumpy' not in sys.modules
  np.testing.assert_array_equal(out['v_template'], v)
  np.testing.assert_array_equal(out['shapedirs'], shapedirs)
  np.testing.assert_array_equal(out['posedirs'], posedirs)
  np.testing.assert_array_equal(out['weights'],
                                np.arange(6.0 * 24).reshape(6, 24))
  np.testing.assert_array_equal(out['J'], v.ravel()[[5, 0, 1]])
  for key, dense in [('J_regressor', jreg), ('cocoplus_regressor', coco)]:
    assert isinstance(out[key], scipy.sparse.csc_matrix)
    np.testing.assert_array_equal(out[key].toarray(), dense)
  assert out['f'].dtype == np.uint32
  assert out['bs_style'] == 'lbs'
  assert out['pose_training_info'] == {'num_samples': 1786}


def test_mosh_and_3dpw_class_sets_load(tmp_path):
  modules, ch = _chumpy_classes()[:2]
  poses = np.random.default_rng(1).normal(size=(5, 72))
  with _FakeModules(modules):
    mosh = _py2_pickle({'poses': poses, 'betas': ch(np.arange(10.0)),
                        'trans': np.zeros((5, 3), np.float32)})
  threedpw = _py2_pickle({
      'sequence': 'courtyard_basketball_00',
      'genders': ['m', 'f'],
      'betas': [np.ones(10), np.zeros(10)],
      'poses': [poses, poses[::-1]],
      'img_frame_ids': np.arange(5),
      'campose_valid': [np.ones(5, bool), np.zeros(5, bool)],
      'cam_intrinsics': np.eye(3),
  })
  assert global_names(threedpw) == {
      'numpy.core.multiarray._reconstruct', 'numpy.ndarray', 'numpy.dtype'}
  (tmp_path / 'mosh.pkl').write_bytes(mosh)
  (tmp_path / '3dpw.pkl').write_bytes(threedpw)
  m = safe_pickle.load_pickle(tmp_path / 'mosh.pkl')
  np.testing.assert_array_equal(m['poses'], poses)
  np.testing.assert_array_equal(m['betas'], np.arange(10.0))
  assert m['trans'].dtype == np.float32
  t = safe_pickle.load_pickle(tmp_path / '3dpw.pkl')
  assert t['sequence'] == 'courtyard_basketball_00'
  assert t['genders'] == ['m', 'f']
  np.testing.assert_array_equal(t['poses'][1], poses[::-1])
  assert t['campose_valid'][0].dtype == bool


@pytest.mark.parametrize('protocol', range(pickle.HIGHEST_PROTOCOL + 1))
def test_python3_pickles_of_every_protocol_load(protocol):
  """Files rewritten by Python 3 / NumPy 2 (e.g. chumpy-free SMPL files)."""
  modules, ch = _chumpy_classes()[:2]
  eye = np.eye(3)
  with _FakeModules(modules):
    data = pickle.dumps({
        'array': np.arange(6, dtype=np.int16).reshape(2, 3),
        'fortran': np.asfortranarray(eye[:, :2]),
        'scalar': np.float32(1.5),
        'objects': np.array([np.zeros(2), 'a'], dtype=object),
        'strings': np.array(['ab', 'c']),
        'csc': scipy.sparse.csc_matrix(eye),
        'csr': scipy.sparse.csr_matrix(eye),
        'coo': scipy.sparse.coo_matrix(eye),
        'set': {1, 2}, 'frozenset': frozenset([3]), 'bytes': b'\x00\xff',
        'bytearray': bytearray(b'x'), 'tuple': (1, 'a'),
        'ch': ch(eye),
    }, protocol=protocol)
  assert global_names(data) <= {
      canonical for canonical in safe_pickle.ALLOWED} | {
          '__builtin__.set', '__builtin__.frozenset', '__builtin__.bytearray',
          '__builtin__.object', 'copy_reg._reconstructor'}
  out = safe_pickle.loads(data)
  np.testing.assert_array_equal(out['array'], np.arange(6).reshape(2, 3))
  assert out['array'].dtype == np.int16
  np.testing.assert_array_equal(out['fortran'], eye[:, :2])
  assert out['scalar'] == np.float32(1.5)
  np.testing.assert_array_equal(out['objects'][0], np.zeros(2))
  assert out['objects'][1] == 'a'
  assert out['strings'].tolist() == ['ab', 'c']
  for kind in ('csc', 'csr', 'coo'):
    assert out[kind].format == kind
    np.testing.assert_array_equal(out[kind].toarray(), eye)
  assert out['set'] == {1, 2} and out['frozenset'] == frozenset([3])
  assert out['bytes'] == b'\x00\xff' and out['bytearray'] == bytearray(b'x')
  assert out['tuple'] == (1, 'a')
  np.testing.assert_array_equal(out['ch'], eye)


def test_allow_list_is_exactly_the_data_classes():
  assert sorted(safe_pickle.ALLOWED) == sorted([
      'numpy.ndarray', 'numpy.dtype', 'numpy._core.multiarray._reconstruct',
      'numpy._core.multiarray.scalar', 'numpy._core.numeric._frombuffer',
      'builtins.set', 'builtins.frozenset', 'builtins.bytearray',
      'builtins.object', 'copyreg._reconstructor', '_codecs.encode',
      'chumpy.ch.Ch', 'chumpy.reordering.transpose',
      'chumpy.reordering.Reshape', 'chumpy.reordering.Select'] + [
          f'scipy.sparse.{p}{k}.{k}_matrix' for p in ('', '_')
          for k in ('csc', 'csr', 'coo')])


def test_unknown_chumpy_class_is_refused():
  with pytest.raises(UnsafePickleError, match='chumpy.ch_ops.add'):
    safe_pickle.loads(_global_call('chumpy.ch_ops', 'add', 'x'), where='m')


def test_malformed_chumpy_and_sparse_state_named():
  modules, ch, _, _, _, csc = _chumpy_classes()
  with _FakeModules(modules):
    leaf = ch(np.zeros(2))
    del leaf.__dict__['x']
    sparse = csc(np.eye(2))
    del sparse.__dict__['indptr']
    no_x = pickle.dumps({'a': leaf}, protocol=2)
    no_indptr = pickle.dumps({'a': sparse}, protocol=2)
  with pytest.raises(ValueError, match='f.pkl: cannot turn chumpy object '
                     'chumpy.ch.Ch into an array'):
    safe_pickle.loads(no_x, where='f.pkl')
  with pytest.raises(ValueError, match='f.pkl: malformed '
                     'scipy.sparse.csc.csc_matrix'):
    safe_pickle.loads(no_indptr, where='f.pkl')


def test_importable_without_tensorflow():
  code = ('import sys; import hmr_tf.files.safe_pickle; '
          'assert "tensorflow" not in sys.modules')
  subprocess.run([sys.executable, '-c', code], check=True,
                 cwd=repo_paths.ROOT)
