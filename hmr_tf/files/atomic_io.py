"""Atomic file writes that respect the umask (no TensorFlow).

Every writer here puts the bytes into a temporary file in the target's
folder, flushes and fsyncs it, gives it the mode a plain `open(path, 'w')`
would have (0o666 & ~umask; `tempfile.mkstemp` makes 0o600 files, which TF
Serving or a colleague under another account cannot read) and renames it
over the target. A reader sees the old file or the new one, never a part;
an error or an interrupt leaves the old file and no temporary behind.

`make_public_dir` gives a `tempfile.mkdtemp` folder the mode `os.makedirs`
would have (0o777 & ~umask) for folders that are renamed into place.
"""

import json
import os
import tempfile
from typing import Any


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
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=directory, prefix='.tmp_',
                             suffix=os.path.splitext(path)[1])
  try:
    with os.fdopen(fd, 'wb') as f:
      f.write(data)
      f.flush()
      os.fsync(f.fileno())
    os.chmod(tmp, file_mode())
    os.replace(tmp, path)
  except BaseException:
    if os.path.exists(tmp):
      os.remove(tmp)
    raise
  return path


def write_text_atomic(path: str, text: str, encoding: str = 'utf-8') -> str:
  """Writes `text` to `path` atomically; returns path."""
  return write_bytes_atomic(path, text.encode(encoding))


def write_json_atomic(path: str, obj: Any, indent: int = 2,
                      sort_keys: bool = True) -> str:
  """Writes `obj` as JSON (with a final newline) atomically; returns path."""
  text = json.dumps(obj, indent=indent, sort_keys=sort_keys, allow_nan=True)
  return write_text_atomic(path, text + '\n')
