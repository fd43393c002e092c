"""One trainer per model folder: a lock file holding its PID and host.

`ModelDirLock(model_dir)` creates `model_dir/train.lock` with O_EXCL (only
one process can create it), holding `pid host` on one line. A second
trainer finds it and stops at once with errors.ModelDirLockedError naming
the holder. A lock left by a process that died without releasing it (a
SIGKILL, a crash, a power cut) is stale when it names this host and a PID
that is no longer alive; it is then taken over. A lock of another host
cannot be checked: the error says so and how to remove it by hand.

No TensorFlow here.
"""

import errno
import os
import socket
import time
from typing import Optional, Tuple

from absl import logging

from hmr_tf import errors

LOCK_FILENAME = 'train.lock'
# A lock file still empty after this long was left by a process killed
# between creating and writing it.
_EMPTY_LOCK_GRACE_S = 5.0


def pid_alive(pid: int) -> bool:
  """Whether a process with this PID exists (on this host)."""
  if pid <= 0:
    return False
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True  # Exists, under another user.
  return True


def _read_holder(path: str) -> Optional[Tuple[int, str]]:
  """(pid, host) written in a lock file; None if empty or unparsable."""
  try:
    with open(path, encoding='utf-8') as f:
      fields = f.read().split()
  except FileNotFoundError:
    return None
  if len(fields) >= 2 and fields[0].isdigit():
    return int(fields[0]), fields[1]
  return None


class ModelDirLock:
  """An exclusive lock on a model folder; a context manager.

  Args:
    model_dir: the folder (created if needed).
    pid: the holder's PID (default: this process's).
    host: the holder's host name (default: this host's).
  """

  def __init__(self, model_dir: str, pid: Optional[int] = None,
               host: Optional[str] = None):
    self.path = os.path.join(model_dir, LOCK_FILENAME)
    self.pid = os.getpid() if pid is None else pid
    self.host = host or socket.gethostname()
    self._held = False

  def _create(self) -> bool:
    """Creates the lock file; False if it exists."""
    try:
      fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
      return False
    with os.fdopen(fd, 'w', encoding='utf-8') as f:
      f.write(f'{self.pid} {self.host}\n')
    return True

  def _stale_reason(self) -> Optional[str]:
    """Why the existing lock is stale, or None if it may be held."""
    holder = _read_holder(self.path)
    if holder is None:
      try:
        age = time.time() - os.path.getmtime(self.path)
      except FileNotFoundError:
        return 'gone'
      return (f'empty for {age:.0f} s' if age > _EMPTY_LOCK_GRACE_S
              else None)
    pid, host = holder
    if host == self.host and not pid_alive(pid):
      return f'PID {pid} on {host} is not running'
    return None

  def _holder_text(self) -> str:
    holder = _read_holder(self.path)
    if holder is None:
      return 'a process that is still starting'
    pid, host = holder
    return f'PID {pid} on host {host}'

  def _locked_error(self) -> errors.ModelDirLockedError:
    return errors.ModelDirLockedError(
        f'{os.path.dirname(self.path)}: another training run holds it '
        f'({self._holder_text()}, lock file {self.path}); wait for it to '
        'finish or stop it. If that process is gone (another host\'s cannot '
        'be checked from here), delete the lock file.')

  def check_free(self) -> None:
    """Raises if a live process holds the lock (without taking it).

    For a check before long preparatory work (the quickstart writes its
    dataset before training); `acquire` is what excludes.

    Raises:
      errors.ModelDirLockedError: another live process holds it.
    """
    if os.path.exists(self.path) and self._stale_reason() is None:
      raise self._locked_error()

  def acquire(self) -> 'ModelDirLock':
    """Takes the lock, taking over a stale one.

    Returns:
      self.

    Raises:
      errors.ModelDirLockedError: another live process holds it.
      OSError: the folder cannot be created or written.
    """
    os.makedirs(os.path.dirname(self.path) or '.', exist_ok=True)
    for _ in range(3):
      if self._create():
        self._held = True
        return self
      reason = self._stale_reason()
      if reason is None:
        break
      # Renamed first, then checked: of two processes taking over the same
      # stale lock, the later one would otherwise remove the fresh lock of
      # the first; it puts that one back instead and stops.
      stale_holder = _read_holder(self.path)
      aside = f'{self.path}.stale.{self.pid}'
      try:
        os.rename(self.path, aside)
      except FileNotFoundError:
        continue
      if _read_holder(aside) != stale_holder:
        try:
          os.link(aside, self.path)
        except FileExistsError:
          pass
        os.remove(aside)
        break
      os.remove(aside)
      if reason != 'gone':
        logging.warning('Took over the stale lock %s (%s).', self.path,
                        reason)
    raise self._locked_error()

  def release(self) -> None:
    """Removes the lock file if this process still holds it."""
    if not self._held:
      return
    self._held = False
    if _read_holder(self.path) == (self.pid, self.host):
      try:
        os.remove(self.path)
      except OSError as e:
        if e.errno != errno.ENOENT:
          logging.warning('Could not remove the lock %s: %s', self.path, e)

  def __enter__(self) -> 'ModelDirLock':
    return self.acquire()

  def __exit__(self, *exc) -> None:
    self.release()
