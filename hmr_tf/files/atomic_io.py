"""Atomic file writes that respect the umask (no TensorFlow).

Every writer here puts the bytes into a temporary file in the target's
folder (so the final rename never crosses file systems), fsyncs it, gives it
the mode a plain `open(path, 'w')` would have (0o666 & ~umask;
`tempfile.mkstemp` makes 0o600 files, which TF Serving or a colleague under
another account cannot read) and renames it over the target. A reader sees
the old file or the new one, never a part; an error or an interrupt leaves
the old file and no temporary behind.

`atomic_path` is the general form, for libraries that write by path
(`np.savez`, `cv2.imwrite`, `tf.io.write_file`); `write_bytes_atomic`,
`write_text_atomic` and `write_json_atomic` are built on it.

`atomic_dir` is the one folder swap: it yields a temporary folder beside
the target, and renames it into place when the block succeeds (the
SavedModel export, the original checkpoint's import, the demo's outputs).
`make_public_dir` gives a `tempfile.mkdtemp` folder the mode `os.makedirs`
would have (0o777 & ~umask).
"""

import contextlib
import json
import os
import shutil
import tempfile
from typing import Any, Iterator

# Temporary files start with this (hidden, and easy to find as leftovers of
# a killed process).
TEMP_PREFIX = '.tmp_'


def current_umask() -> int:
  """The process's umask.

  Read from /proc where there is one: setting the umask and setting it back
  (the only portable way) briefly changes it for every thread.
  """
  try:
    with open('/proc/self/status', encoding='ascii') as f:
      for line in f:
        if line.startswith('Umask:'):
          return int(line.split()[1], 8)
  except (OSError, ValueError, IndexError):
    pass
  mask = os.umask(0o022)
  os.umask(mask)
  return mask


def file_mode() -> int:
  """The mode of a new file under the current umask."""
  return 0o666 & ~current_umask()


def dir_mode() -> int:
  """The mode of a new folder under the current umask."""
  return 0o777 & ~current_umask()


def make_public_dir(path: str) -> None:
  """Gives a folder made by `tempfile.mkdtemp` the umask's usual mode."""
  os.chmod(path, dir_mode())


# What `atomic_dir` does with a target that is already there.
EXISTING = ('error', 'replace', 'merge')


@contextlib.contextmanager
def atomic_dir(path: str, existing: str = 'error') -> Iterator[str]:
  """Yields a temporary folder; on a clean exit its content becomes `path`.

  The temporary folder has the umask's folder mode (`tempfile.mkdtemp`
  makes 0o700 ones, which TF Serving under another account could not
  read). On an exception, Ctrl-C included, it is deleted and `path` is left
  as it was.

  Example:
    with atomic_io.atomic_dir('export/1', existing='replace') as temp:
      tf.saved_model.save(module, temp)

  Args:
    path: the target folder; its parent is created if needed.
    existing: when `path` is there: 'error' (FileExistsError, unless it is
      an empty folder, which is replaced), 'replace' (the old folder is
      renamed aside, the new one renamed in, then the old one deleted: a
      reader sees the old folder or the new one, never a mix) or 'merge'
      (the temporary folder is made inside `path` and each of its files is
      renamed into `path` at the end, replacing same-named files: each
      file appears whole; for folders that hold other outputs too).

  Yields:
    The temporary folder's path.

  Raises:
    FileExistsError: `path` holds files and `existing` is 'error'.
    ValueError: an unknown `existing`.
  """
  if existing not in EXISTING:
    raise ValueError(f'existing: expected one of {EXISTING}, got '
                     f'{existing!r}')
  path = os.path.abspath(os.fspath(path))
  if existing == 'merge':
    os.makedirs(path, exist_ok=True)
    temp = tempfile.mkdtemp(dir=path, prefix=TEMP_PREFIX)
  else:
    if existing == 'error' and os.path.exists(path) and (
        not os.path.isdir(path) or os.listdir(path)):
      raise FileExistsError(f'{path}: exists already and is not empty')
    parent = os.path.dirname(path)
    os.makedirs(parent, exist_ok=True)
    temp = tempfile.mkdtemp(
        dir=parent, prefix=f'{TEMP_PREFIX}{os.path.basename(path)}_')
  try:
    make_public_dir(temp)
    yield temp
    if existing == 'merge':
      for name in sorted(os.listdir(temp)):
        os.replace(os.path.join(temp, name), os.path.join(path, name))
    else:
      _swap_in(temp, path)
  finally:
    shutil.rmtree(temp, ignore_errors=True)


def _swap_in(temp: str, path: str) -> None:
  """Renames the folder `temp` to `path`, replacing what is there."""
  if os.path.isdir(path) and not os.listdir(path):
    os.rmdir(path)
  if not os.path.exists(path):
    os.replace(temp, path)
    return
  aside = tempfile.mkdtemp(dir=os.path.dirname(path),
                           prefix=f'{TEMP_PREFIX}old_')
  old = os.path.join(aside, 'old')
  os.replace(path, old)
  try:
    os.replace(temp, path)
  except BaseException:
    os.replace(old, path)  # Put the old folder back.
    raise
  finally:
    shutil.rmtree(aside, ignore_errors=True)


def _fsync_file(path: str) -> None:
  # fsync flushes the file (its inode), whichever descriptor asks.
  fd = os.open(path, os.O_RDONLY)
  try:
    os.fsync(fd)
  finally:
    os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str, fsync: bool = True) -> Iterator[str]:
  """Yields a temporary path to write; on a clean exit it replaces `path`.

  The temporary is an (empty) file beside `path` with the same extension,
  so libraries that choose the format from it (`cv2.imwrite`) or append one
  when it is missing (`np.savez`) write exactly that file. On leaving the
  block it is fsynced (if `fsync`), given the umask's mode and renamed over
  `path`; on an exception (or Ctrl-C) inside the block it is deleted and
  `path` is left as it was.

  Example:
    with atomic_io.atomic_path('out/picture.png') as temp:
      cv2.imwrite(temp, image)

  Args:
    path: the target file; its folder is created if needed.
    fsync: flush the content to the disk before the rename.

  Yields:
    The temporary path.

  Raises:
    OSError: the folder cannot be created or written (the message names it).
  """
  path = os.fspath(path)
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, temp = tempfile.mkstemp(dir=directory, prefix=TEMP_PREFIX,
                              suffix=os.path.splitext(path)[1])
  os.close(fd)
  try:
    yield temp
    if fsync:
      _fsync_file(temp)
    os.chmod(temp, file_mode())
    os.replace(temp, path)
  except BaseException:
    if os.path.exists(temp):
      os.remove(temp)
    raise


def write_bytes_atomic(path: str, data: bytes) -> str:
  """Writes `data` to `path` atomically (see the module docstring).

  Args:
    path: the target file; its folder is created if needed.
    data: the content.

  Returns:
    path.

  Raises:
    OSError: the folder cannot be created or written (the message names it).
  """
  with atomic_path(path) as temp:
    with open(temp, 'wb') as f:
      f.write(data)
  return path


def write_text_atomic(path: str, text: str, encoding: str = 'utf-8') -> str:
  """Writes `text` to `path` atomically; returns path."""
  return write_bytes_atomic(path, text.encode(encoding))


def write_json_atomic(path: str, obj: Any, indent: int = 2,
                      sort_keys: bool = True) -> str:
  """Writes `obj` as JSON (with a final newline) atomically; returns path.

  Serialises first, so an object JSON cannot hold raises TypeError before
  anything is written.
  """
  text = json.dumps(obj, indent=indent, sort_keys=sort_keys, allow_nan=True)
  return write_text_atomic(path, text + '\n')
