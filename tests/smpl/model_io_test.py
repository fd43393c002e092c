"""Loading official-format SMPL pickles (without chumpy) and .npz files."""

import io
import pickle
import sys

import numpy as np
import pytest

import smpl_reference
import fixtures_datasets  # tests/support/
from hmr_tf.smpl import joints as joints_lib
from hmr_tf.smpl import load_model
from hmr_tf.smpl import save_model


_Py2Pickler = fixtures_datasets.Py2Pickler  # Python 2 str opcodes


def _py2_keys(d):
  return {k.encode('latin-1'): v for k, v in d.items()}


_fake_module = fixtures_datasets.fake_module


def _official_pickle(path, model, cocoplus_layout=None):
  """Writes `model` the way the official SMPL pickles are laid out.

  chumpy objects come from a fake `chumpy` package that is removed from
  sys.modules before the test loads the file, so the loader cannot import it.
  """

  class Ch:

    def __init__(self, x):
      self.__dict__.update(_py2_keys({'x': x, '_cache': {}, '_parents': {}}))

  class transpose:  # pylint: disable=invalid-name

    def __init__(self, a, axes):
      self.__dict__.update(_py2_keys({'a': a, 'axes': axes, '_cache': {}}))

  class csc_matrix:  # pylint: disable=invalid-name

    def __init__(self, dense):
      cols = [np.nonzero(dense[:, j])[0] for j in range(dense.shape[1])]
      self.__dict__.update(_py2_keys({
          'data': np.concatenate([dense[c, j] for j, c in enumerate(cols)]),
          'indices': np.concatenate(cols).astype(np.int32),
          'indptr': np.cumsum([0] + [len(c) for c in cols]).astype(np.int32),
          '_shape': dense.shape,
          'maxprint': 50,
      }))

  modules = {
      'chumpy': _fake_module('chumpy'),
      'chumpy.ch': _fake_module('chumpy.ch', Ch=Ch),
      'chumpy.reordering': _fake_module('chumpy.reordering',
                                        transpose=transpose),
      'scipy.sparse.csc': _fake_module('scipy.sparse.csc',
                                       csc_matrix=csc_matrix),
  }
  saved = {k: sys.modules.get(k) for k in modules}
  sys.modules.update(modules)
  try:
    kintree = np.stack([model.parents, np.arange(24)]).astype(np.int64)
    kintree[0, 0] = 4294967295  # uint32 -1, as in the official files
    data = {
        'v_template': Ch(model.v_template),
        'f': model.faces.astype(np.uint32),
        'weights': Ch(model.weights),
        'kintree_table': kintree,
        'J_regressor': csc_matrix(model.J_regressor),
        'shapedirs': Ch(model.shapedirs),
        'posedirs': transpose(Ch(np.transpose(model.posedirs, (2, 0, 1))),
                              (1, 2, 0)),
        'bs_style': b'lbs',
        'bs_type': b'lrotmin',
        'J': model.J_regressor @ model.v_template,
    }
    if cocoplus_layout == 'NxK':
      data['cocoplus_regressor'] = csc_matrix(model.cocoplus_regressor.T)
    elif cocoplus_layout == 'KxN':
      data['cocoplus_regressor'] = csc_matrix(model.cocoplus_regressor)
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(_py2_keys(data))
  finally:
    for k, v in saved.items():
      if v is None:
        sys.modules.pop(k, None)
      else:
        sys.modules[k] = v
  with open(path, 'wb') as f:
    f.write(buf.getvalue())


@pytest.fixture(scope='module')
def model():
  # Sparse regressors, as in the real files.
  m = smpl_reference.random_body_model(num_vertices=80, seed=3)
  jr = m.J_regressor * (m.J_regressor > np.quantile(m.J_regressor, 0.8))
  jr /= jr.sum(1, keepdims=True)
  return type(m)(**{**m.__dict__, 'J_regressor': jr})


def _assert_same(loaded, model, cocoplus=True):
  np.testing.assert_array_equal(loaded.v_template, model.v_template)
  np.testing.assert_array_equal(loaded.faces, model.faces)
  np.testing.assert_array_equal(loaded.weights, model.weights)
  np.testing.assert_array_equal(loaded.parents, joints_lib.SMPL_PARENTS)
  np.testing.assert_array_equal(loaded.J_regressor, model.J_regressor)
  np.testing.assert_array_equal(loaded.shapedirs, model.shapedirs)
  np.testing.assert_array_equal(loaded.posedirs, model.posedirs)
  if cocoplus:
    np.testing.assert_array_equal(loaded.cocoplus_regressor,
                                  model.cocoplus_regressor)
  else:
    assert loaded.cocoplus_regressor is None
  assert loaded.faces.dtype == np.int32


def test_official_pickle_loads_without_chumpy(tmp_path, model):
  path = tmp_path / 'basicModel_neutral_lbs_10_207_0_v1.0.0.pkl'
  _official_pickle(path, model)
  assert 'chumpy' not in sys.modules
  assert b'chumpy.ch' in path.read_bytes()  # really references chumpy
  _assert_same(load_model(path), model, cocoplus=False)


@pytest.mark.parametrize('layout', ['NxK', 'KxN'])
def test_hmr_cocoplus_pickle_either_layout(tmp_path, model, layout):
  path = tmp_path / 'neutral_smpl_with_cocoplus_reg.pkl'
  _official_pickle(path, model, cocoplus_layout=layout)
  _assert_same(load_model(path), model)


def test_npz_round_trip_keeps_everything(tmp_path, model):
  mirrored = type(model)(**{**model.__dict__,
                            'vertex_mirror': np.arange(80)[::-1].copy(),
                            'metadata': {'standin': True, 'name': 'x'}})
  path = tmp_path / 'm.npz'
  save_model(mirrored, path)
  loaded = load_model(path)
  _assert_same(loaded, model)
  np.testing.assert_array_equal(loaded.vertex_mirror, np.arange(80)[::-1])
  assert loaded.metadata == {'standin': True, 'name': 'x'}
  assert loaded.is_standin
  assert [p.name for p in tmp_path.iterdir()] == ['m.npz']  # no temp left


@pytest.mark.parametrize('num_betas', [300, 4])
def test_any_number_of_shape_directions(tmp_path, num_betas):
  m = smpl_reference.random_body_model(num_vertices=30, num_betas=num_betas)
  save_model(m, tmp_path / 'm.npz')
  assert load_model(tmp_path / 'm.npz').shapedirs.shape == (30, 3, num_betas)


def _npz(tmp_path, model, **changes):
  from hmr_tf.smpl import model_io  # pylint: disable=import-outside-toplevel
  d = model_io.to_file_dict(model)
  for k, v in changes.items():
    if v is None:
      d.pop(k)
    else:
      d[k] = v
  path = tmp_path / 'bad.npz'
  np.savez(path, **d)
  return path


@pytest.mark.parametrize('changes,message', [
    ({'weights': None}, "missing key 'weights'"),
    ({'weights': np.ones((80, 23))}, "'weights' has shape \\(80, 23\\)"),
    ({'kintree_table': np.zeros((2, 23))}, "'kintree_table' has shape"),
    ({'f': np.array([[0, 1, 80]])}, "'f' has vertex indices out of range"),
    ({'v_template': np.full((80, 3), np.nan)}, "'v_template' has non-finite"),
    ({'J_regressor': np.ones((24, 79))}, "'J_regressor' has shape"),
    ({'posedirs': np.ones((80, 3, 200))}, "'posedirs' has shape"),
    ({'cocoplus_regressor': np.ones((18, 80))}, "'cocoplus_regressor'"),
])
def test_bad_npz_names_file_and_key(tmp_path, model, changes, message):
  path = _npz(tmp_path, model, **changes)
  with pytest.raises(ValueError, match=message) as e:
    load_model(path)
  assert str(path) in str(e.value)


def test_not_a_model_file(tmp_path):
  text = tmp_path / 'notes.txt'
  text.write_text('hello')
  with pytest.raises(ValueError, match='not a pickle or .npz'):
    load_model(text)
  broken = tmp_path / 'broken.pkl'
  broken.write_bytes(b'\x80\x02}q\x00(U')
  with pytest.raises(ValueError, match='broken.pkl: not a readable SMPL'):
    load_model(broken)
  with pytest.raises(ValueError, match='no such body model file'):
    load_model(tmp_path / 'missing.pkl')
  listing = tmp_path / 'list.pkl'
  listing.write_bytes(pickle.dumps([1, 2], protocol=2))
  with pytest.raises(ValueError, match='expected a dict'):
    load_model(listing)


def test_save_does_not_clobber_on_failure(tmp_path, model, monkeypatch):
  path = tmp_path / 'm.npz'
  save_model(model, path)
  before = path.read_bytes()

  def boom(*args, **kwargs):
    raise OSError('disk full')

  monkeypatch.setattr('os.replace', boom)
  with pytest.raises(OSError, match='disk full'):
    save_model(type(model)(**{**model.__dict__, 'metadata': {'v': 2}}), path)
  assert path.read_bytes() == before
  assert sorted(p.name for p in tmp_path.iterdir()) == ['m.npz']


class _SystemCall:

  def __init__(self, command):
    self.command = command

  def __reduce__(self):
    import os  # pylint: disable=import-outside-toplevel
    return os.system, (self.command,)


@pytest.mark.parametrize('name', ['evil.pkl', 'evil_no_suffix'])
def test_malicious_smpl_pickle_never_runs(tmp_path, name):
  """--smpl_model_path=evil.pkl (or any file starting with \\x80)."""
  from hmr_tf.files import safe_pickle  # pylint: disable=import-outside-toplevel
  marker = tmp_path / 'pwned'
  path = tmp_path / name
  path.write_bytes(pickle.dumps({'v_template': _SystemCall(f'touch {marker}')},
                                protocol=2))
  with pytest.raises(safe_pickle.UnsafePickleError) as e:
    load_model(path)
  assert str(path) in str(e.value) and '.system' in str(e.value)
  assert not marker.exists()
