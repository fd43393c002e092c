"""Ctrl-C during training: stop after the current step, with a checkpoint.

The first SIGINT during training is acknowledged at once (a thread reads the
signal wakeup fd, so even during the first step's XLA compilation) and asks
the loop to stop after the current step; `hmr_tf.training.loop` then saves a
checkpoint and `train` returns normally (result 'interrupted': True, with
the checkpoint path; hmr_tf.main then exits 130 and runs no later stage). A
second Ctrl-C stops without saving (the last regular checkpoint stays). The
SIGINT handler in place before (default, or ignored) is restored afterwards.
"""

import contextlib
import os
import signal
import threading

from absl import logging

_INTERRUPT_NOTICE = (
    'Interrupt received: training stops after the current step and writes a '
    'checkpoint (the first step also compiles the model, which can take a '
    'minute). Interrupt again to stop at once, without a checkpoint.')
_SECOND_INTERRUPT_NOTICE = (
    'Second interrupt received: stopping without a checkpoint as soon as '
    'TensorFlow returns control (the latest regular checkpoint stays).')


class _Announcer:
  """Logs the n-th interrupt's notice once, from whichever thread is first."""

  def __init__(self):
    self._lock = threading.Lock()
    self._done = 0

  def __call__(self, count: int):
    with self._lock:
      if count <= self._done:
        return
      self._done = count
    logging.warning(_INTERRUPT_NOTICE if count == 1 else
                    _SECOND_INTERRUPT_NOTICE)


def _watch_wakeup_fd(read_fd: int, announce: _Announcer):
  """Announces SIGINTs from the signal wakeup pipe until it is closed.

  Python runs signal handlers in the main thread between bytecodes, so a
  Ctrl-C during a long TensorFlow call (the first step's XLA compilation:
  tens of seconds) would be handled only after it. The C-level handler also
  writes the signal number to the wakeup fd at once; this thread reads it
  and tells the user the interrupt was received and what it waits for.
  """
  count = 0
  while True:
    try:
      data = os.read(read_fd, 64)
    except OSError:
      return
    if not data:
      return
    for signum in data:
      if signum == signal.SIGINT:
        count += 1
        announce(min(count, 2))


@contextlib.contextmanager
def _announce_at_once(announce: _Announcer):
  """Runs `_watch_wakeup_fd` on a pipe set as the signal wakeup fd."""
  read_fd, write_fd = os.pipe()
  os.set_blocking(write_fd, False)
  try:
    previous = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
  except ValueError:  # Not the main thread (checked by the caller too).
    previous = None
  if previous is None or previous != -1:
    # Another user of the wakeup fd (an asyncio loop): leave it alone.
    if previous is not None:
      signal.set_wakeup_fd(previous)
    os.close(read_fd)
    os.close(write_fd)
    yield
    return
  thread = threading.Thread(target=_watch_wakeup_fd, args=(read_fd, announce),
                            name='hmr_interrupt_notice', daemon=True)
  thread.start()
  try:
    yield
  finally:
    signal.set_wakeup_fd(-1)
    os.close(write_fd)  # The thread reads EOF and ends.
    thread.join(timeout=5.0)
    os.close(read_fd)


@contextlib.contextmanager
def deferred_interrupt():
  """Turns the first SIGINT into a flag checked after each step.

  The first SIGINT is announced at once (see `_watch_wakeup_fd`), even when
  the main thread is busy in TensorFlow. A second SIGINT raises
  KeyboardInterrupt (as soon as the main thread runs Python again). The
  SIGINT handler in place before (Python's default, or "ignore" in a
  background job) is restored afterwards. Outside the main thread (where
  Python cannot install signal handlers) the flag is never set and a
  KeyboardInterrupt behaves as usual.
  """
  event = threading.Event()
  if threading.current_thread() is not threading.main_thread():
    yield event
    return
  announce = _Announcer()

  def handler(signum, frame):
    del signum, frame
    if event.is_set():
      announce(2)
      raise KeyboardInterrupt
    event.set()
    announce(1)

  previous = signal.signal(signal.SIGINT, handler)
  try:
    with _announce_at_once(announce):
      yield event
  finally:
    signal.signal(signal.SIGINT, previous)
