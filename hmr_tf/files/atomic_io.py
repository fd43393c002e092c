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

`make_public_dir` gives a `tempfile.mkdtemp` folder the mode `os.makedirs`
would have (0o777 & ~umask) for folders that are renamed into place.
"""

import contextlib
import json
import os
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
