"""Keras callbacks of the HMR training loop (used by `hmr_tf.training.loop`).

`loop.train` passes them to `model.fit` in this order, which matters
because Keras calls callbacks in list order after every step:

  1. `GlobalStepCounter`: advances the global step (the checkpointed count of
     training steps; Keras' own batch index restarts every epoch and every
     `fit` call).
  2. `NonFiniteGuard` (hmr_tf.training.nonfinite): looks at the step's
     losses; stops training after an emergency checkpoint, or (skip mode)
     rolls the step back.
  3. `SummaryWriter`: TensorBoard scalars and image summaries.
  4. `PeriodicCheckpoint`: regular checkpoints every N steps, and the stop
     after a Ctrl-C. It never saves once the guard has seen a non-finite
     loss, so the regular checkpoints (what a resume picks) stay finite.
  5. `EpochLogger`: one absl log line per epoch.

They share a `TrainingStatus` (why training stopped).

With `steps_per_execution` N > 1 Keras calls them after every N steps (the
logs are then the running means after the N-th); the periodic ones act at
the first call at or after each multiple of their period
(`hmr_tf.training.steps.crossed`).
"""

import dataclasses
import threading
import time
from typing import Callable, Dict, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from hmr_tf.modeling import hmr_model
from hmr_tf.render import summaries
from hmr_tf.training import nonfinite
from hmr_tf.training import steps as steps_lib

# Terms on the console progress bar.
PROGBAR_TERMS = ('g_loss', 'loss_kp', 'loss_3d_joints', 'loss_adv', 'd_loss')
# Terms in the one-line epoch summary.
EPOCH_LINE_TERMS = ('g_loss', 'loss_kp', 'loss_3d_joints', 'loss_3d_smpl',
                    'loss_adv', 'd_loss', 'd_out_real', 'd_out_fake')


# ---------------------------------------------------------------------------
# Callbacks.


@dataclasses.dataclass
class TrainingStatus:
  """Why and where training stopped; shared by the callbacks.

  Attributes:
    error: set by NonFiniteGuard when training must stop on a bad loss.
    interrupted: a Ctrl-C asked training to stop after the current step.
    last_logs: the latest epoch's logs (floats).
  """
  error: Optional[nonfinite.NonFiniteLossError] = None
  interrupted: bool = False
  last_logs: Dict[str, float] = dataclasses.field(default_factory=dict)


class GlobalStepCounter(keras.callbacks.Callback):
  """Keeps `global_step` = training steps done over all runs.

  Keras' batch index restarts at 0 every epoch and every `fit` call, so the
  step is the global step at the start of the epoch plus the batch index
  (also right with steps_per_execution > 1: Keras passes the index of the
  execution's last step, and `hmr_tf.training.steps.execution_size` makes
  the executions divide the epoch).
  """

  def __init__(self, global_step: tf.Variable):
    super().__init__()
    self._global_step = global_step
    self._epoch_start = 0

  def on_epoch_begin(self, epoch, logs=None):
    self._epoch_start = int(self._global_step.numpy())

  def on_train_batch_end(self, batch, logs=None):
    self._global_step.assign(self._epoch_start + batch + 1)


class PeriodicCheckpoint(keras.callbacks.Callback):
  """Saves every `every_steps` steps; stops after a Ctrl-C.

  Args:
    save: writes a regular checkpoint at a step, returns its path.
    global_step: the step counter.
    every_steps: save period in steps (0: only at the end, in the loop).
    status: the shared status; nothing is saved once `status.error` is set.
    interrupt: set by the SIGINT handler; training stops after this step
      (the loop then saves).
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
    self._seen = 0

  def on_train_begin(self, logs=None):
    self._seen = int(self._global_step.numpy())

  def on_train_batch_end(self, batch, logs=None):
    if self._status.error is not None:
      return
    step = int(self._global_step.numpy())
    previous, self._seen = self._seen, step
    if steps_lib.crossed(previous, step, self._every):
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
    self._seen = 0

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
    self._seen = self._last_step

  def on_train_batch_end(self, batch, logs=None):
    step = int(self._global_step.numpy())
    previous, self._seen = self._seen, step
    if self._status.error is not None:
      return
    if steps_lib.crossed(previous, step, self._every):
      self._write_scalars(step)
    if (self._image_fn is not None and
        steps_lib.crossed(previous, step, self._image_every)):
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
    values = nonfinite.logged_floats(logs)
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
# Image and mesh summaries (drawn by hmr_tf.render.summaries).


def make_image_summary_fn(model, batch: Dict[str, np.ndarray],
                          faces: np.ndarray, num_images: int,
                          tag: str = 'images/examples', num_meshes: int = 0,
                          mesh_tag: str = 'meshes/examples'):
  """A function(step) writing example panels (and meshes) of a fixed batch.

  Predicts eagerly (training=False) outside the training graph and renders
  with NumPy/OpenCV; call it inside a summary writer's default context.

  Args:
    model: the HMRModel.
    batch: a training batch (parser outputs) as NumPy arrays; its first
      `num_images` examples are shown every time.
    faces: [F, 3] mesh faces.
    num_images: examples shown.
    tag: the image summary's tag.
    num_meshes: the first this many examples' predicted meshes are also
      written with TensorBoard's mesh plugin (hmr_tf.render.summaries).
    mesh_tag: the mesh summary's tag.
  """
  images = np.asarray(batch['image'][:num_images], np.float32)
  keypoints = np.asarray(batch['keypoints2d'][:num_images], np.float32)

  def write(step):
    out = model(images, training=False)
    summaries.write_examples(
        tag, mesh_tag, images, keypoints,
        {k: out[k].numpy() for k in ('keypoints2d', 'vertices', 'cam')},
        faces, step, num_meshes)

  return write
