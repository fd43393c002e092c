"""Tests of hmr_tf.training.run_lock: one trainer per model folder.

Processes started here are ended by their PID.
"""

import os
import socket
import subprocess
import sys
import time

import pytest

import repo_paths  # tests/support/
from hmr_tf import errors
from hmr_tf.training import run_lock

ROOT = repo_paths.ROOT

_HOLDER = '''
import sys, time
from hmr_tf.training import run_lock
lock = run_lock.ModelDirLock(sys.argv[1]).acquire()
print('locked', flush=True)
time.sleep(120)
'''


def _dead_pid():
  """The PID of a process that has exited (and been reaped)."""
  process = subprocess.Popen([sys.executable, '-c', 'pass'])
  process.wait()
  return process.pid


def test_acquire_writes_pid_and_host_and_release_removes_it(tmp_path):
  lock = run_lock.ModelDirLock(str(tmp_path / 'model'))
  with lock:
    with open(lock.path) as f:
      assert f.read().split() == [str(os.getpid()), socket.gethostname()]
  assert not os.path.exists(lock.path)


def test_a_second_holder_stops_at_once_naming_the_first(tmp_path):
  model_dir = str(tmp_path)
  process = subprocess.Popen([sys.executable, '-c', _HOLDER, model_dir],
                             cwd=ROOT, stdout=subprocess.PIPE, text=True,
                             env=dict(os.environ, PYTHONPATH=ROOT))
  try:
    assert process.stdout.readline().strip() == 'locked'
    start = time.monotonic()
    with pytest.raises(errors.ModelDirLockedError) as e:
      run_lock.ModelDirLock(model_dir).acquire()
    assert time.monotonic() - start < 1.0
    message = str(e.value)
    assert f'PID {process.pid} on host {socket.gethostname()}' in message
    assert len(message.splitlines()) == 1
    # The holder dies without releasing (SIGKILL): its lock is stale now.
    process.kill()
    process.wait()
    with run_lock.ModelDirLock(model_dir) as lock:
      with open(lock.path) as f:
        assert f.read().split()[0] == str(os.getpid())
  finally:
    if process.poll() is None:
      os.kill(process.pid, 9)
      process.wait()


def test_a_stale_lock_of_this_host_is_taken_over(tmp_path):
  path = tmp_path / run_lock.LOCK_FILENAME
  path.write_text(f'{_dead_pid()} {socket.gethostname()}\n')
  with run_lock.ModelDirLock(str(tmp_path)):
    assert path.read_text().split()[0] == str(os.getpid())
  assert not path.exists()


def test_another_hosts_lock_is_not_taken_over(tmp_path):
  path = tmp_path / run_lock.LOCK_FILENAME
  path.write_text(f'{_dead_pid()} some-other-host\n')
  with pytest.raises(errors.ModelDirLockedError, match='some-other-host'):
    run_lock.ModelDirLock(str(tmp_path)).acquire()
  assert path.exists()


def test_an_empty_lock_is_stale_only_when_old(tmp_path):
  path = tmp_path / run_lock.LOCK_FILENAME
  path.write_text('')
  with pytest.raises(errors.ModelDirLockedError, match='still starting'):
    run_lock.ModelDirLock(str(tmp_path)).acquire()
  old = time.time() - 60
  os.utime(path, (old, old))
  with run_lock.ModelDirLock(str(tmp_path)):
    pass


def test_release_leaves_a_lock_taken_over_by_another(tmp_path):
  lock = run_lock.ModelDirLock(str(tmp_path)).acquire()
  with open(lock.path, 'w') as f:
    f.write('12345 other\n')
  lock.release()
  assert os.path.exists(lock.path)


def test_check_free_does_not_take_the_lock(tmp_path):
  lock = run_lock.ModelDirLock(str(tmp_path))
  lock.check_free()  # No lock file.
  assert not os.path.exists(lock.path)
  path = tmp_path / run_lock.LOCK_FILENAME
  path.write_text(f'{_dead_pid()} {socket.gethostname()}\n')
  lock.check_free()  # A stale one.
  with run_lock.ModelDirLock(str(tmp_path), pid=os.getppid()):
    with pytest.raises(errors.ModelDirLockedError,
                       match=f'PID {os.getppid()}'):
      lock.check_free()
