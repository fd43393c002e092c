"""Never training on NaN: the NonFiniteGuard callback and its helpers.

`hmr_tf.training.loop` puts `NonFiniteGuard` right after the global-step
counter in `model.fit`'s callbacks (see `hmr_tf.training.callbacks` for the
order). 'stop' writes `model_dir/emergency/nonfinite-<step>` (outside the
checkpoint manager, so resume never picks it) and raises NonFiniteLossError
naming the step and the terms; 'skip' rolls the step back from an in-memory
`StateSnapshot` and counts it. `FiniteCheck` finds variables that became
non-finite while the logged losses stayed finite.
"""

from typing import (TYPE_CHECKING, Callable, Dict, List, Optional, Sequence,
                    Tuple)

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from hmr_tf.modeling import hmr_model
from hmr_tf.training import steps as steps_lib

if TYPE_CHECKING:
  # Only for annotations: callbacks imports this module.
  from hmr_tf.training import callbacks  # pylint: disable=g-bad-import-order

# Order of the terms in log lines and messages: each loss component before
# the totals that contain it, so the first term named is the likely culprit.
TERM_ORDER = hmr_model.GENERATOR_TERMS + hmr_model.DISCRIMINATOR_TERMS


class NonFiniteLossError(RuntimeError):
  """Training stopped on a NaN or infinite loss.

  Attributes:
    step: the training step (1-based global step) whose loss was non-finite.
    terms: {loss name: value} of every non-finite term, in TERM_ORDER.
    checkpoint: path of the emergency checkpoint written before stopping
      (or None where it could not be written).
  """

  def __init__(self, message: str, step: int, terms: Dict[str, float],
               checkpoint: Optional[str]):
    super().__init__(message)
    self.step = step
    self.terms = terms
    self.checkpoint = checkpoint


def logged_floats(logs) -> Dict[str, float]:
  """The float values of Keras logs (entries that are not numbers left out)."""
  out = {}
  for name, value in (logs or {}).items():
    try:
      out[name] = float(np.asarray(value))
    except (TypeError, ValueError):
      continue
  return out


def _ordered(names: Sequence[str]) -> List[str]:
  """`names` in TERM_ORDER, unknown names last (sorted)."""
  known = [n for n in TERM_ORDER if n in names]
  return known + sorted(n for n in names if n not in TERM_ORDER)


def _unique(variables):
  seen, out = set(), []
  for v in variables:
    if id(v) not in seen:
      seen.add(id(v))
      out.append(v)
  return out


class StateSnapshot:
  """An in-memory copy of variables, to roll back a bad step.

  The copies live next to the originals (on the same devices, mirrored under
  the same strategy) and both directions are one tf.function call, so a
  snapshot per step costs a device memory copy, not a host round trip. It
  doubles the memory of the variables given.

  Create it inside the strategy scope of the model.
  """

  def __init__(self, variables: Sequence[tf.Variable]):
    self._sources = _unique(variables)
    self._copies = [
        tf.Variable(tf.identity(v), trainable=False,
                    name='snapshot_' + str(i))
        for i, v in enumerate(self._sources)]

    def copy(dst, src):
      for d, s in zip(dst, src):
        d.assign(tf.identity(s))

    self._save = tf.function(lambda: copy(self._copies, self._sources))
    self._restore = tf.function(lambda: copy(self._sources, self._copies))

  def save(self):
    self._save()

  def restore(self):
    self._restore()


class FiniteCheck:
  """Finds floating-point variables holding NaN or Inf (one tf.function call).

  Needed besides the loss check: a loss can be finite while its gradient is
  not (e.g. through a masked or clamped branch), which puts NaN into the
  weights without any logged term showing it until the next step.
  """

  def __init__(self, variables: Sequence[tf.Variable]):
    self._variables = [v for v in _unique(variables)
                       if tf.as_dtype(v.dtype).is_floating]
    self._names = [getattr(v, 'path', None) or v.name
                   for v in self._variables]
    self._check = tf.function(lambda: tf.stack(
        [tf.reduce_all(tf.math.is_finite(v)) for v in self._variables]))

  def bad_variables(self) -> List[str]:
    """Names of the variables with a non-finite value."""
    if not self._variables:
      return []
    finite = self._check().numpy()
    return [n for n, ok in zip(self._names, finite) if not ok]


class NonFiniteGuard(keras.callbacks.Callback):
  """Never keeps training on NaN: stop with an emergency checkpoint, or skip.

  Every step the logged losses are checked (Keras' logs are running means
  since the epoch start or the last metrics reset, so one non-finite step
  makes them non-finite at once). The variables themselves (`state_check`)
  are checked at every step in 'skip' mode and, in 'stop' mode, at the steps
  where a regular checkpoint is written (`checkpoint_every_steps`) and
  through `check_state` before any other save, so a regular checkpoint never
  holds a non-finite state.

  'stop': writes an emergency checkpoint of the current (non-finite) state
  through `write_emergency(step)` — under a separate name, never through the
  regular CheckpointManager, so a resume never picks it — and stops training
  with a NonFiniteLossError (stored in `status.error`, raised by
  hmr_tf.training.loop after `fit` returns).

  'skip': the update has already been applied by the time a callback sees
  its loss, so this mode keeps a StateSnapshot of the model and both
  optimizers after every good step and restores it after a bad one (weights,
  batch-norm statistics, optimizer slots and iteration counts), counts the
  step in `skipped_steps` and restarts the running means. More than
  `max_consecutive` bad steps in a row stop training as in 'stop'.
  """

  def __init__(self, mode: str, global_step: tf.Variable,
               status: 'callbacks.TrainingStatus',
               write_emergency: Callable[[int], Optional[str]],
               latest_checkpoint: Callable[[], Optional[str]],
               snapshot: Optional[StateSnapshot] = None,
               skipped_steps: Optional[tf.Variable] = None,
               max_consecutive: int = 10,
               state_check: Optional[FiniteCheck] = None,
               checkpoint_every_steps: int = 0):
    super().__init__()
    if mode not in ('stop', 'skip'):
      raise ValueError(f"on_nonfinite: expected 'stop' or 'skip', got {mode!r}")
    if mode == 'skip' and (snapshot is None or skipped_steps is None):
      raise ValueError("on_nonfinite='skip' needs a snapshot and a counter")
    self._mode = mode
    self._global_step = global_step
    self._status = status
    self._write_emergency = write_emergency
    self._latest_checkpoint = latest_checkpoint
    self._snapshot = snapshot
    self._skipped = skipped_steps
    self._max_consecutive = max_consecutive
    self._state_check = state_check
    self._checkpoint_every = checkpoint_every_steps
    self._consecutive = 0
    self._seen = 0

  def on_train_begin(self, logs=None):
    self._seen = int(self._global_step.numpy())
    if self._mode == 'skip':
      self._snapshot.save()

  def _bad_state(self) -> Tuple[Dict[str, float], str]:
    """({'variable <name>': nan, ...}, description) or ({}, '')."""
    names = self._state_check.bad_variables() if self._state_check else []
    if not names:
      return {}, ''
    shown = ', '.join(names[:5]) + (', ...' if len(names) > 5 else '')
    return ({f'variable {n}': float('nan') for n in names[:5]},
            f'{len(names)} variable(s) became non-finite although the logged '
            f'losses were finite (the gradients were not): {shown}')

  def on_train_batch_end(self, batch, logs=None):
    values = logged_floats(logs)
    bad = {n: values[n] for n in _ordered(list(values))
           if not np.isfinite(values[n])}
    step = int(self._global_step.numpy())
    previous, self._seen = self._seen, step
    described = ', '.join(f'{n}={v}' for n, v in bad.items())
    if not bad and (self._mode == 'skip' or steps_lib.crossed(
        previous, step, self._checkpoint_every)):
      bad, described = self._bad_state()
    if not bad:
      self._consecutive = 0
      if self._mode == 'skip':
        self._snapshot.save()
      return
    if self._mode == 'skip':
      self._consecutive += 1
      self._snapshot.restore()
      self._skipped.assign_add(1)
      self.model.reset_metrics()
      logging.warning('Non-finite loss at step %d (%s): update rolled back '
                      'and skipped (%d skipped in total, %d in a row).', step,
                      described, int(self._skipped.numpy()),
                      self._consecutive)
      if self._consecutive <= self._max_consecutive:
        return
      reason = (f'{self._consecutive} consecutive steps had non-finite losses '
                f'(more than max_consecutive_nonfinite='
                f'{self._max_consecutive}); the last one, step {step}: '
                f'{described}')
    else:
      reason = f'non-finite loss at training step {step}: {described}'
    self._stop(step, reason, bad)

  def check_state(self, step: int) -> bool:
    """Checks the variables before a save; on NaN stops as for a bad loss."""
    if self._status.error is not None:
      return False
    bad, described = self._bad_state()
    if not bad:
      return True
    self._stop(step, f'non-finite state at training step {step}: '
               f'{described}', bad)
    return False

  def _stop(self, step: int, reason: str, bad: Dict[str, float]):
    path = self._write_emergency(step)
    good = self._latest_checkpoint()
    state = ('the rolled-back state' if self._mode == 'skip' else
             'the state after the bad update')
    hint = '' if self._mode == 'skip' else ', or set on_nonfinite=skip'
    message = (
        f'Training stopped: {reason}. The first term named is the earliest '
        f'in the loss (components before totals). Emergency checkpoint of '
        f'{state}: {path} (kept apart from the regular checkpoints, so '
        f'resuming starts from the latest good one: {good}). Check the input '
        f'data or lower the learning rates{hint}.')
    logging.error(message)
    self._status.error = NonFiniteLossError(message, step, bad, path)
    if self.model is not None:
      self.model.stop_training = True
