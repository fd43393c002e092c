"""Keras callbacks of the HMR training loop (used by `hmr_tf.training.loop`).

`train_lib.train` passes them to `model.fit` in this order, which matters
because Keras calls callbacks in list order after every step:

  1. `GlobalStepCounter`: advances the global step (the checkpointed count of
     training steps; Keras' own batch index restarts every epoch and every
     `fit` call).
  2. `NonFiniteGuard`: looks at the step's losses; stops training after an
     emergency checkpoint, or (skip mode) rolls the step back.
  3. `SummaryWriter`: TensorBoard scalars and image summaries.
  4. `PeriodicCheckpoint`: regular checkpoints every N steps, and the stop
     after a Ctrl-C. It never saves once the guard has seen a non-finite
     loss, so the regular checkpoints (what a resume picks) stay finite.
  5. `EpochLogger`: one absl log line per epoch.

They share a `TrainingStatus` (why training stopped).
"""

import dataclasses
import threading
import time
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import keras
import numpy as np
import tensorflow as tf
from absl import logging

from hmr_tf.geometry import crop as crop_lib
from hmr_tf.render import renderer
from hmr_tf.modeling import hmr_model

# Order of the terms in log lines and messages: each loss component before
# the totals that contain it, so the first term named is the likely culprit.
TERM_ORDER = hmr_model.GENERATOR_TERMS + hmr_model.DISCRIMINATOR_TERMS
# Terms on the console progress bar.
PROGBAR_TERMS = ('g_loss', 'loss_kp', 'loss_3d_joints', 'loss_adv', 'd_loss')
# Terms in the one-line epoch summary.
EPOCH_LINE_TERMS = ('g_loss', 'loss_kp', 'loss_3d_joints', 'loss_3d_smpl',
                    'loss_adv', 'd_loss', 'd_out_real', 'd_out_fake')


# ---------------------------------------------------------------------------
# Callbacks.


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


@dataclasses.dataclass
class TrainingStatus:
  """Why and where training stopped; shared by the callbacks.

  Attributes:
    error: set by NonFiniteGuard when training must stop on a bad loss.
    interrupted: a Ctrl-C asked training to stop after the current step.
    last_logs: the latest epoch's logs (floats).
  """
  error: Optional[NonFiniteLossError] = None
  interrupted: bool = False
  last_logs: Dict[str, float] = dataclasses.field(default_factory=dict)


def _floats(logs) -> Dict[str, float]:
  out = {}
  for name, value in (logs or {}).items():
    try:
      out[name] = float(np.asarray(value))
    except (TypeError, ValueError):
      continue
  return out


def _ordered(names: Sequence[str]) -> List[str]:
  known = [n for n in TERM_ORDER if n in names]
  return known + sorted(n for n in names if n not in TERM_ORDER)


class GlobalStepCounter(keras.callbacks.Callback):
  """Keeps `global_step` = training steps done over all runs.

  Keras' batch index restarts at 0 every epoch and every `fit` call, so the
  step is the global step at the start of the epoch plus the batch index
  (also right with steps_per_execution > 1).
  """

  def __init__(self, global_step: tf.Variable):
    super().__init__()
    self._global_step = global_step
    self._epoch_start = 0

  def on_epoch_begin(self, epoch, logs=None):
    self._epoch_start = int(self._global_step.numpy())

  def on_train_batch_end(self, batch, logs=None):
    self._global_step.assign(self._epoch_start + batch + 1)


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
  with a NonFiniteLossError (stored in `status.error`, raised by train_lib
  after `fit` returns).

  'skip': the update has already been applied by the time a callback sees
  its loss, so this mode keeps a StateSnapshot of the model and both
  optimizers after every good step and restores it after a bad one (weights,
  batch-norm statistics, optimizer slots and iteration counts), counts the
  step in `skipped_steps` and restarts the running means. More than
  `max_consecutive` bad steps in a row stop training as in 'stop'.
  """

  def __init__(self, mode: str, global_step: tf.Variable,
               status: TrainingStatus,
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

  def on_train_begin(self, logs=None):
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
    values = _floats(logs)
    bad = {n: values[n] for n in _ordered(list(values))
           if not np.isfinite(values[n])}
    step = int(self._global_step.numpy())
    described = ', '.join(f'{n}={v}' for n, v in bad.items())
    if not bad and (self._mode == 'skip' or (
        self._checkpoint_every > 0 and step % self._checkpoint_every == 0)):
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


class PeriodicCheckpoint(keras.callbacks.Callback):
  """Saves every `every_steps` steps; stops after a Ctrl-C.

  Args:
    save: writes a regular checkpoint at a step, returns its path.
    global_step: the step counter.
    every_steps: save period in steps (0: only at the end, in train_lib).
    status: the shared status; nothing is saved once `status.error` is set.
    interrupt: set by the SIGINT handler; training stops after this step
      (train_lib then saves).
  """

  def __init__(self, save: Callable[[int], str], global_step: tf.Variable,
               every_steps: int, status: TrainingStatus,
               interrupt: Optional[threading.Event] = None):
    super().__init__()
    self._save = save
    self._global_step = global_step
    self._every = every_steps
    self._status = status
    self._interrupt = interrupt

  def on_train_batch_end(self, batch, logs=None):
    if self._status.error is not None:
      return
    step = int(self._global_step.numpy())
    if self._every > 0 and step % self._every == 0:
      self._save(step)
    if self._interrupt is not None and self._interrupt.is_set():
      self._status.interrupted = True
      self.model.stop_training = True


class SummaryWriter(keras.callbacks.Callback):
  """TensorBoard summaries under the training log directory.

  Scalars every `every_steps` steps: each loss term and discriminator output
  as its mean over the steps since the previous summary (computed from the
  trackers' running totals and counts, so the progress bar keeps showing
  epoch means), both learning rates, the skipped-step count, steps and
  images per second. Every `image_every_steps` steps: `image_fn(step)`
  writes the image summary.

  Tags: 'generator/<term>', 'discriminator/<term>', 'learning_rate/generator',
  'learning_rate/discriminator', 'train/skipped_steps',
  'train/steps_per_second', 'train/images_per_second', 'images/examples'.
  """

  def __init__(self, writer, global_step: tf.Variable, status: TrainingStatus,
               every_steps: int, image_every_steps: int = 0,
               image_fn: Optional[Callable[[int], None]] = None,
               skipped_steps: Optional[tf.Variable] = None,
               batch_size: int = 0,
               extra_scalars: Optional[Dict[str, Callable[[], float]]] = None):
    super().__init__()
    self._writer = writer
    self._global_step = global_step
    self._status = status
    self._every = every_steps
    self._image_every = image_every_steps
    self._image_fn = image_fn
    self._skipped = skipped_steps
    self._batch_size = batch_size
    self._extra = dict(extra_scalars or {})
    self._previous: Dict[str, tuple] = {}
    self._last_time = None
    self._last_step = None

  def _tracker_means(self) -> Dict[str, float]:
    """Mean of each term over the steps since the previous call."""
    means = {}
    for tracker in self.model.metrics:
      if not (hasattr(tracker, 'total') and hasattr(tracker, 'count')):
        continue
      total = float(np.asarray(tracker.total.numpy()))
      count = float(np.asarray(tracker.count.numpy()))
      prev_total, prev_count = self._previous.get(tracker.name, (0.0, 0.0))
      if count < prev_count:  # Reset since (new epoch or skipped step).
        prev_total, prev_count = 0.0, 0.0
      self._previous[tracker.name] = (total, count)
      if count > prev_count:
        means[tracker.name] = (total - prev_total) / (count - prev_count)
    return means

  def on_epoch_begin(self, epoch, logs=None):
    # Keras resets the trackers at every epoch start.
    self._previous = {}

  def on_train_begin(self, logs=None):
    self._last_time = time.time()
    self._last_step = int(self._global_step.numpy())

  def on_train_batch_end(self, batch, logs=None):
    step = int(self._global_step.numpy())
    if self._status.error is not None:
      return
    if self._every > 0 and step % self._every == 0:
      self._write_scalars(step)
    if (self._image_fn is not None and self._image_every > 0 and
        step % self._image_every == 0):
      with self._writer.as_default(step=step):
        self._image_fn(step)

  def _write_scalars(self, step):
    now = time.time()
    # Eager, on the host, at the step the writer's context sets.
    with self._writer.as_default(step=step):
      for name, value in self._tracker_means().items():
        if name in hmr_model.GENERATOR_TERMS:
          tf.summary.scalar('generator/' + name, value)
        elif name in hmr_model.DISCRIMINATOR_TERMS:
          tf.summary.scalar('discriminator/' + name, value)
      model = self.model
      for tag, opt in (('generator', model.g_optimizer),
                       ('discriminator', model.d_optimizer)):
        tf.summary.scalar('learning_rate/' + tag,
                          float(np.asarray(opt.learning_rate)))
      if self._skipped is not None:
        tf.summary.scalar('train/skipped_steps', float(self._skipped.numpy()))
      steps = step - self._last_step
      if steps > 0 and now > self._last_time:
        rate = steps / (now - self._last_time)
        tf.summary.scalar('train/steps_per_second', rate)
        if self._batch_size:
          tf.summary.scalar('train/images_per_second',
                            rate * self._batch_size)
      for tag, fn in self._extra.items():
        tf.summary.scalar(tag, float(fn()))
    self._last_time = now
    self._last_step = step

  def on_train_end(self, logs=None):
    self._writer.flush()


class EpochLogger(keras.callbacks.Callback):
  """One absl log line per epoch: step, time, throughput, main losses."""

  def __init__(self, global_step: tf.Variable, status: TrainingStatus,
               total_epochs: int, total_steps: int, batch_size: int,
               skipped_steps: Optional[tf.Variable] = None):
    super().__init__()
    self._global_step = global_step
    self._status = status
    self._epochs = total_epochs
    self._total_steps = total_steps
    self._batch_size = batch_size
    self._skipped = skipped_steps
    self._start_time = 0.0
    self._start_step = 0

  def on_epoch_begin(self, epoch, logs=None):
    self._start_time = time.time()
    self._start_step = int(self._global_step.numpy())

  def on_epoch_end(self, epoch, logs=None):
    values = _floats(logs)
    self._status.last_logs = values
    step = int(self._global_step.numpy())
    steps = step - self._start_step
    seconds = max(time.time() - self._start_time, 1e-9)
    terms = ' '.join(f'{n}={values[n]:.4g}' for n in EPOCH_LINE_TERMS
                     if n in values)
    skipped = (f', skipped steps {int(self._skipped.numpy())}'
               if self._skipped is not None else '')
    stopped = ' (stopped early)' if self.model.stop_training else ''
    logging.info('Epoch %d/%d%s: step %d/%d, %d steps in %.1f s (%.2f '
                 'images/s)%s: %s', epoch + 1, self._epochs, stopped, step,
                 self._total_steps, steps, seconds,
                 steps * self._batch_size / seconds, skipped, terms)


class MainLossProgbar(keras.callbacks.ProgbarLogger):
  """Keras' progress bar showing only the main losses, with the run's epochs.

  Keras shows every log (12 terms here) and numbers epochs by the current
  `fit` call; a resumed run's first `fit` only finishes one epoch.
  """

  def __init__(self, total_epochs: int, terms: Sequence[str] = PROGBAR_TERMS):
    super().__init__()
    self._total_epochs = total_epochs
    self._terms = tuple(terms)

  def set_params(self, params):
    super().set_params(params)
    self.epochs = self._total_epochs

  def _main(self, logs):
    return {k: logs[k] for k in self._terms if logs and k in logs}

  def on_train_batch_end(self, batch, logs=None):
    super().on_train_batch_end(batch, self._main(logs))

  def on_epoch_end(self, epoch, logs=None):
    super().on_epoch_end(epoch, self._main(logs))


# ---------------------------------------------------------------------------
# Image summaries.


def _to_uint8(image: np.ndarray) -> np.ndarray:
  """[S, S, 3] float in [-1, 1] -> uint8."""
  return np.clip(np.round((image + 1.0) * 127.5), 0, 255).astype(np.uint8)


def example_panels(images: np.ndarray, keypoints_gt: np.ndarray,
                   keypoints_pred: np.ndarray, vertices: np.ndarray,
                   cams: np.ndarray, faces: np.ndarray,
                   display_size: int = 0) -> np.ndarray:
  """Side-by-side pictures of inputs and predictions for TensorBoard.

  Each row is [input + ground-truth keypoints | input + predicted keypoints |
  input + predicted mesh], keypoints drawn with renderer.draw_keypoints and
  the mesh rendered with renderer.render_mesh through HMR's weak-perspective
  camera.

  Args:
    images: [K, S, S, 3] float crops in [-1, 1].
    keypoints_gt: [K, 19, 3] ground truth (x, y in [-1, 1], visibility).
    keypoints_pred: [K, 19, 2] predicted keypoints in [-1, 1].
    vertices: [K, N, 3] predicted mesh (the model's frame, before the
      camera).
    cams: [K, 3] predicted (s, tx, ty).
    faces: [F, 3] int mesh faces.
    display_size: side D of each picture; 0 = max(S, 160) (small training
      crops are enlarged so the drawings stay legible).

  Returns:
    [K, D, 3 * D, 3] uint8 RGB.
  """
  images = np.asarray(images)
  size = images.shape[1]
  d = int(display_size) or max(size, 160)
  panels = []
  for k in range(images.shape[0]):
    base = cv2.resize(_to_uint8(images[k]), (d, d),
                      interpolation=cv2.INTER_LINEAR)
    gt = keypoints_gt[k]
    # cv2.resize keeps pixel centres aligned, so crop coordinates map into
    # the D-pixel picture as into the S-pixel crop (crop_lib's convention).
    with_gt = renderer.draw_keypoints(
        base, crop_lib.crop_to_pixels_np(gt[:, :2], d), gt[:, 2] > 0)
    with_pred = renderer.draw_keypoints(
        base, crop_lib.crop_to_pixels_np(keypoints_pred[k], d))
    verts = np.asarray(vertices[k], np.float64)
    if np.all(np.isfinite(verts)) and np.all(np.isfinite(cams[k])):
      projected = renderer.weak_perspective_to_pixels(verts, cams[k], d)
      mesh = renderer.render_mesh(projected, faces, d, d, background=base,
                                shading_vertices=verts).image
    else:
      mesh = base
    panels.append(np.concatenate([with_gt, with_pred, mesh], axis=1))
  return np.stack(panels)


def make_image_summary_fn(model, batch: Dict[str, np.ndarray],
                          faces: np.ndarray, num_images: int,
                          tag: str = 'images/examples'):
  """A function(step) writing example panels of a fixed batch.

  Predicts eagerly (training=False) outside the training graph and renders
  with NumPy/OpenCV; call it inside a summary writer's default context.

  Args:
    model: the HMRModel.
    batch: a training batch (parser outputs) as NumPy arrays; its first
      `num_images` examples are shown every time.
    faces: [F, 3] mesh faces.
    num_images: examples shown.
    tag: the summary tag.
  """
  images = np.asarray(batch['image'][:num_images], np.float32)
  keypoints = np.asarray(batch['keypoints2d'][:num_images], np.float32)

  def write(step):
    out = model(images, training=False)
    panels = example_panels(images, keypoints,
                            out['keypoints2d'].numpy(),
                            out['vertices'].numpy(), out['cam'].numpy(),
                            faces)
    # max_outputs: tf.summary.image keeps only 3 images by default.
    tf.summary.image(tag, panels, step=step, max_outputs=len(panels),
                     description='input + ground-truth keypoints | '
                     'predicted keypoints | predicted mesh')

  return write
