"""Tests of hmr_tf.files.atomic_io: atomic replacement, umask-respecting modes."""

import json
import os

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
