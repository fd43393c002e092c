"""hmr_tf.files.atomic_io: atomic replacement, umask-respecting modes."""

import json
import os

import cv2
import numpy as np
import pytest

from hmr_tf.files import atomic_io


@pytest.fixture
def umask_027():
  previous = os.umask(0o027)
  try:
    yield
  finally:
    os.umask(previous)


def test_current_umask_reads_without_changing_it(umask_027):
  assert atomic_io.current_umask() == 0o027
  assert atomic_io.current_umask() == 0o027
  assert atomic_io.file_mode() == 0o640
  assert atomic_io.dir_mode() == 0o750


@pytest.mark.parametrize('mask', [0o022, 0o002, 0o077])
def test_files_get_the_mode_open_would_give(tmp_path, mask):
  previous = os.umask(mask)
  try:
    atomic_io.write_bytes_atomic(str(tmp_path / 'a.bin'), b'\x00\x01')
    atomic_io.write_text_atomic(str(tmp_path / 'b.txt'), 'text')
    atomic_io.write_json_atomic(str(tmp_path / 'sub' / 'c.json'), {'k': 1})
    with open(tmp_path / 'plain', 'w') as f:
      f.write('reference')
  finally:
    os.umask(previous)
  expected = os.stat(tmp_path / 'plain').st_mode & 0o777
  assert expected == 0o666 & ~mask
  for name in ('a.bin', 'b.txt', 'sub/c.json'):
    assert os.stat(tmp_path / name).st_mode & 0o777 == expected, name
  assert json.loads((tmp_path / 'sub' / 'c.json').read_text()) == {'k': 1}


def test_a_failed_write_keeps_the_old_file_and_no_temporary(tmp_path,
                                                           monkeypatch):
  path = tmp_path / 'config.json'
  atomic_io.write_json_atomic(str(path), {'old': True})
  with pytest.raises(TypeError):
    atomic_io.write_json_atomic(str(path), {'bad': object()})
  assert json.loads(path.read_text()) == {'old': True}

  def interrupted(*args):
    del args
    raise KeyboardInterrupt  # Ctrl-C just before the rename.

  monkeypatch.setattr(os, 'replace', interrupted)
  with pytest.raises(KeyboardInterrupt):
    atomic_io.write_bytes_atomic(str(path), b'new')
  assert json.loads(path.read_text()) == {'old': True}
  assert os.listdir(tmp_path) == ['config.json']


def test_make_public_dir(tmp_path, umask_027):
  import tempfile  # pylint: disable=g-import-not-at-top
  folder = tempfile.mkdtemp(dir=tmp_path)
  assert os.stat(folder).st_mode & 0o777 == 0o700
  atomic_io.make_public_dir(folder)
  assert os.stat(folder).st_mode & 0o777 == 0o750


def test_round_trips_of_bytes_text_and_json(tmp_path):
  data = bytes(range(256)) * 3
  assert atomic_io.write_bytes_atomic(str(tmp_path / 'b.bin'), data) == str(
      tmp_path / 'b.bin')
  assert (tmp_path / 'b.bin').read_bytes() == data
  text = 'Grüße, 你好\nline two\n'
  atomic_io.write_text_atomic(str(tmp_path / 't.txt'), text)
  assert (tmp_path / 't.txt').read_bytes() == text.encode('utf-8')
  atomic_io.write_text_atomic(str(tmp_path / 'l.txt'), 'é', encoding='latin-1')
  assert (tmp_path / 'l.txt').read_bytes() == b'\xe9'
  obj = {'b': [1, 2.5, None], 'a': {'x': 'ü'}, 'nan': float('nan')}
  atomic_io.write_json_atomic(str(tmp_path / 'j.json'), obj)
  raw = (tmp_path / 'j.json').read_text(encoding='utf-8')
  assert raw == json.dumps(obj, indent=2, sort_keys=True) + '\n'
  back = json.loads(raw)
  assert back['a'] == obj['a'] and back['b'] == obj['b']
  assert back['nan'] != back['nan']  # NaN survives (allow_nan).
  # Overwriting replaces the whole content (a shorter file has no old tail).
  atomic_io.write_bytes_atomic(str(tmp_path / 'b.bin'), b'short')
  assert (tmp_path / 'b.bin').read_bytes() == b'short'
  assert sorted(os.listdir(tmp_path)) == ['b.bin', 'j.json', 'l.txt', 't.txt']


def test_atomic_path_is_a_hidden_temporary_beside_the_target(tmp_path):
  target = tmp_path / 'new_folder' / 'weights.npz'
  with atomic_io.atomic_path(str(target)) as temp:
    # In the target's (created) folder, so the rename stays on one file
    # system; hidden, with the target's extension.
    assert os.path.dirname(temp) == str(tmp_path / 'new_folder')
    assert os.path.basename(temp).startswith(atomic_io.TEMP_PREFIX)
    assert temp.endswith('.npz') and temp != str(target)
    assert not target.exists()
    np.savez(temp, pose=np.arange(72.0))
  assert os.listdir(tmp_path / 'new_folder') == ['weights.npz']
  with np.load(target) as f:
    np.testing.assert_array_equal(f['pose'], np.arange(72.0))


def test_atomic_path_for_libraries_that_pick_the_format_by_extension(
    tmp_path):
  image = np.zeros((4, 6, 3), np.uint8)
  image[1, 2] = (10, 200, 30)
  for name in ('picture.png', 'picture.bmp'):
    with atomic_io.atomic_path(str(tmp_path / name)) as temp:
      assert cv2.imwrite(temp, image)
    np.testing.assert_array_equal(cv2.imread(str(tmp_path / name)), image)
  assert (tmp_path / 'picture.png').read_bytes()[:4] == b'\x89PNG'
  assert (tmp_path / 'picture.bmp').read_bytes()[:2] == b'BM'
  assert sorted(os.listdir(tmp_path)) == ['picture.bmp', 'picture.png']


def test_a_failure_mid_write_keeps_the_old_file_byte_identical(tmp_path):
  path = tmp_path / 'model.npz'
  old = bytes(range(256)) * 40
  path.write_bytes(old)
  os.chmod(path, 0o604)  # A mode no umask gives: it must survive too.
  with pytest.raises(OSError, match='disk full'):
    with atomic_io.atomic_path(str(path)) as temp:
      with open(temp, 'wb') as f:
        f.write(b'half of the new content')
      raise OSError('disk full')
  assert path.read_bytes() == old
  assert os.stat(path).st_mode & 0o777 == 0o604
  assert os.listdir(tmp_path) == ['model.npz']
  # The same when the library itself fails half way (Ctrl-C included).
  with pytest.raises(KeyboardInterrupt):
    with atomic_io.atomic_path(str(path)) as temp:
      with open(temp, 'wb') as f:
        f.write(b'partial')
        raise KeyboardInterrupt
  assert path.read_bytes() == old
  assert os.listdir(tmp_path) == ['model.npz']


def test_atomic_path_mode_follows_the_umask(tmp_path):
  for mask in (0o022, 0o077, 0o002):
    previous = os.umask(mask)
    try:
      with atomic_io.atomic_path(str(tmp_path / f'{mask:o}.bin')) as temp:
        # mkstemp's private mode until the file is complete.
        assert os.stat(temp).st_mode & 0o777 == 0o600
        with open(temp, 'wb') as f:
          f.write(b'x')
    finally:
      os.umask(previous)
    assert os.stat(tmp_path / f'{mask:o}.bin').st_mode & 0o777 == (
        0o666 & ~mask)


def test_fsync_before_the_rename_unless_turned_off(tmp_path, monkeypatch):
  events = []
  real_fsync, real_replace = os.fsync, os.replace

  def fsync(fd):
    events.append('fsync')
    real_fsync(fd)

  def replace(src, dst):
    events.append('replace')
    real_replace(src, dst)

  monkeypatch.setattr(os, 'fsync', fsync)
  monkeypatch.setattr(os, 'replace', replace)
  atomic_io.write_bytes_atomic(str(tmp_path / 'a'), b'a')
  assert events == ['fsync', 'replace']
  events.clear()
  with atomic_io.atomic_path(str(tmp_path / 'b'), fsync=False) as temp:
    with open(temp, 'wb') as f:
      f.write(b'b')
  assert events == ['replace']
  assert (tmp_path / 'b').read_bytes() == b'b'


def _tree(root):
  """{relative path: bytes} of every file under root."""
  out = {}
  for folder, _, files in os.walk(root):
    for name in files:
      path = os.path.join(folder, name)
      with open(path, 'rb') as f:
        out[os.path.relpath(path, root)] = f.read()
  return out


def _write(folder, files):
  for name, data in files.items():
    with open(os.path.join(folder, name), 'wb') as f:
      f.write(data)


def test_atomic_dir_swaps_in_replaces_merges_and_cleans_up(tmp_path,
                                                           umask_027):
  parent = tmp_path / 'export'
  target = str(parent / '1')
  # A new folder: made beside the target (hidden), the umask's mode.
  with atomic_io.atomic_dir(target) as temp:
    assert os.path.dirname(temp) == str(parent)
    assert os.path.basename(temp).startswith(atomic_io.TEMP_PREFIX + '1_')
    assert os.stat(temp).st_mode & 0o777 == 0o750
    assert not os.path.exists(target)
    _write(temp, {'a': b'new a', 'b': b'new b'})
  assert _tree(target) == {'a': b'new a', 'b': b'new b'}
  assert os.stat(target).st_mode & 0o777 == 0o750
  assert sorted(os.listdir(parent)) == ['1']
  # 'error': a folder with files is refused before anything is made.
  with pytest.raises(FileExistsError, match='1: exists already'):
    with atomic_io.atomic_dir(target):
      raise AssertionError('not reached')
  # Any error, Ctrl-C included: the old folder byte-identical, no temporary.
  for error in (OSError('disk full'), KeyboardInterrupt()):
    with pytest.raises(type(error)):
      with atomic_io.atomic_dir(target, existing='replace') as temp:
        _write(temp, {'a': b'half'})
        raise error
    assert _tree(target) == {'a': b'new a', 'b': b'new b'}
    assert sorted(os.listdir(parent)) == ['1']
  # 'replace': the new folder's content only, nothing left beside.
  with atomic_io.atomic_dir(target, existing='replace') as temp:
    _write(temp, {'c': b'c'})
  assert _tree(target) == {'c': b'c'}
  assert sorted(os.listdir(parent)) == ['1']
  # An empty folder counts as absent ('error').
  empty = parent / 'empty'
  empty.mkdir()
  with atomic_io.atomic_dir(str(empty)) as temp:
    _write(temp, {'x': b'x'})
  assert _tree(str(empty)) == {'x': b'x'}
  # 'merge': the files join the folder's others, replacing same names.
  with atomic_io.atomic_dir(target, existing='merge') as temp:
    assert os.path.dirname(temp) == target
    _write(temp, {'c': b'c2', 'd': b'd'})
  assert _tree(target) == {'c': b'c2', 'd': b'd'}
  with pytest.raises(KeyboardInterrupt):
    with atomic_io.atomic_dir(target, existing='merge') as temp:
      _write(temp, {'c': b'c3'})
      raise KeyboardInterrupt
  assert _tree(target) == {'c': b'c2', 'd': b'd'}
  with pytest.raises(ValueError, match='existing: expected one of'):
    with atomic_io.atomic_dir(target, existing='overwrite'):
      pass
