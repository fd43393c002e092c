"""The HMR training loop: `model.fit` with checkpoints, resume and summaries.

`train(...)` builds the training state (`hmr_tf.training.state`: HMRModel
and both optimizers under a tf.distribute strategy scope, restored from the
latest readable checkpoint of `model_dir` or from the weights of
`init_checkpoint`), and runs `model.fit` on the zipped (images, mocap)
training stream until `epochs * steps_per_epoch` steps have been done in
total, over any number of runs (`hmr_tf.training.steps` plans the `fit`
calls of a resumed run and reseeds its input).

Checkpoints (`hmr_tf.training.checkpoints`). `model_dir/ckpt-<global step>`
is written every `checkpoint_every_steps` steps, at the end, and after a
Ctrl-C, keeping `max_to_keep`; a run killed at any moment resumes from the
last complete checkpoint, losing at most `checkpoint_every_steps` steps.
Damaged folders fall back to the newest readable checkpoint; a folder whose
checkpoints are all unreadable stops training (CheckpointError) instead of
starting over on top of them.

Lock and model config. The chief holds `model_dir/train.lock`
(hmr_tf.training.run_lock) for the whole run: a second trainer stops at once
with ModelDirLockedError naming the holder. A model config whose img_size,
num_stage or encoder differ from the folder's model_config.json (with
checkpoints there) is refused before any work (UsageError); the file is
(re)written once the first step has run.

Steps per execution (`train_config.steps_per_execution` N): Keras runs N
steps per call into TensorFlow and the callbacks once per call; each `fit`
call uses the largest divisor of its steps that is at most N
(`steps.execution_size`), so the global step stays exact.

Non-finite losses: see `hmr_tf.training.nonfinite` ('stop' with an
emergency checkpoint and NonFiniteLossError, or 'skip').

Ctrl-C: see `hmr_tf.training.interrupt`; an interrupted `train` saves a
checkpoint and returns normally with 'interrupted': True.

Multi-worker (`hmr_tf.training.distribute`). Every worker takes part in
saving, but only the chief writes into `model_dir` and `log_dir`; other
workers save into a temporary folder under `model_dir` that is deleted after
each save, and write no summaries. Each worker reads its own part of the
data. When a worker dies the others fail with WorkerFailureError; rerunning
every worker resumes from the chief's latest checkpoint.
"""

import dataclasses
import sys
import threading
from typing import Any, Dict, List, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from hmr_tf import configs
from hmr_tf.data import input_pipeline
from hmr_tf.smpl.model_io import BodyModel
from hmr_tf.training import callbacks as callbacks_lib
from hmr_tf.training import checkpoints
from hmr_tf.training import distribute
from hmr_tf.training import interrupt as interrupt_lib
from hmr_tf.training import model_files
from hmr_tf.training import nonfinite
from hmr_tf.training import run_lock
from hmr_tf.training import state as state_lib
from hmr_tf.training import steps


# ---------------------------------------------------------------------------
# Training.


def _verbose(progress: str) -> int:
  if progress == 'auto':
    # Keras redraws its bar in place with control characters, which would
    # fill a redirected log with one line per update.
    stdout = sys.stdout
    return 1 if stdout is not None and stdout.isatty() else 0
  return {'bar': 1, 'epoch': 2, 'none': 0}[progress]


def _check_configs(model_config, data_config):
  if model_config.img_size != data_config.img_size:
    raise ValueError(f'img_size: the model expects {model_config.img_size} '
                     f'px crops but the data config makes '
                     f'{data_config.img_size} px')
  if model_config.num_stage != data_config.num_stage:
    raise ValueError(f'num_stage: model {model_config.num_stage} != data '
                     f'{data_config.num_stage} (the mocap batch holds '
                     'num_stage x batch_size samples)')


def _fixed_batch(data_config: configs.DataConfig,
                 num: int) -> Dict[str, np.ndarray]:
  """The first `num` examples of one training batch, for image summaries."""
  # Uncached: one batch would leave a cache half-filled.
  config = dataclasses.replace(data_config, cache_crops=False)
  batch = next(iter(input_pipeline.image_dataset(config).take(1)))
  return {k: v.numpy()[:num] for k, v in batch.items()}


def train(model_config: configs.ModelConfig,
          data_config: configs.DataConfig,
          train_config: configs.TrainConfig,
          body_model: BodyModel,
          mean_theta,
          strategy: Optional[tf.distribute.Strategy] = None,
          callbacks: Sequence[keras.callbacks.Callback] = ()
          ) -> Dict[str, Any]:
  """Trains HMR (or continues training) as configured.

  Args:
    model_config: the model config (img_size and num_stage must match
      data_config's).
    data_config: the input pipeline config; batch_size is the global batch.
    train_config: the loop config.
    body_model: the SMPL-format body model.
    mean_theta: [85] Θ_0 (mean_params.load_mean_params).
    strategy: a tf.distribute strategy (default: the current one).
    callbacks: more Keras callbacks, called after the loop's own.

  Returns:
    dict: 'model' (the trained HMRModel), 'global_step', 'start_step',
    'steps_run', 'total_steps', 'steps_per_epoch', 'checkpoint' (latest
    regular checkpoint path), 'model_dir', 'log_dir' (the TensorBoard folder), 'logs' (last epoch's
    means, floats), 'interrupted', 'skipped_steps', 'resumed_from',
    'initialized_from'.

  Raises:
    nonfinite.NonFiniteLossError: a non-finite loss stopped training (its
      message names the step, the terms and the emergency checkpoint).
    errors.ModelDirLockedError: another process trains in model_dir.
    errors.CheckpointError: model_dir has checkpoints but none is readable,
      or the restored one does not match the model.
    errors.UsageError: model_config changes img_size, num_stage or encoder
      of a folder with checkpoints.
    distribute.WorkerFailureError: multi-worker: another worker died or hung.
    ValueError: the global batch does not split over the replicas.
  """
  _check_configs(model_config, data_config)
  strategy = strategy or tf.distribute.get_strategy()
  distribute.check_global_batch(data_config.batch_size, strategy)
  is_chief = distribute.worker_role(strategy)[0]
  if not is_chief:
    return _train(model_config, data_config, train_config, body_model,
                  mean_theta, strategy, callbacks)
  with run_lock.ModelDirLock(train_config.model_dir):
    checkpoints.check_model_config(train_config.model_dir, model_config)
    return _train(model_config, data_config, train_config, body_model,
                  mean_theta, strategy, callbacks)


class _ModelConfigWriter(keras.callbacks.Callback):
  """Writes model_config.json once the first training step has succeeded.

  Eval, export and the demo rebuild the model from this file, so it is
  written before the first checkpoint, but not by a run that fails before
  training (train checked beforehand that it may replace the folder's).
  """

  def __init__(self, model_dir: str, config: configs.ModelConfig):
    super().__init__()
    self._model_dir = model_dir
    self._config = config
    self.written = False

  def write(self):
    if not self.written:
      model_files.save_model_config(self._model_dir, self._config)
      self.written = True

  def on_train_batch_end(self, batch, logs=None):
    del batch, logs
    self.write()


def _train(model_config, data_config, train_config, body_model, mean_theta,
           strategy, callbacks) -> Dict[str, Any]:
  """`train` once the model folder is locked (on the chief)."""
  spe = steps.steps_per_epoch(data_config, train_config)
  total = train_config.epochs * spe
  state = state_lib.build_state(model_config, train_config, body_model,
                                mean_theta, strategy)
  model, saver = state.model, state.saver
  config_writer = None
  if saver.is_chief:
    config_writer = _ModelConfigWriter(train_config.model_dir, model_config)
  start = int(state.global_step.numpy())
  status = callbacks_lib.TrainingStatus()
  segments = steps.plan_segments(start, spe, train_config.epochs)
  logging.info('Training: %d epochs x %d steps = %d steps (batch %d); '
               'starting at step %d; checkpoints in %s, summaries in %s.',
               train_config.epochs, spe, total, data_config.batch_size, start,
               train_config.model_dir, train_config.train_log_dir)

  if saver.is_chief:
    writer = tf.summary.create_file_writer(train_config.train_log_dir)
  else:
    writer = tf.summary.create_noop_writer()

  forced = False
  with interrupt_lib.deferred_interrupt() as interrupt:
    all_callbacks = _callbacks(state, train_config, data_config, body_model,
                               status, writer, interrupt, spe, total)
    if config_writer is not None:
      all_callbacks.insert(0, config_writer)
    all_callbacks += list(callbacks)
    verbose = _verbose(train_config.progress)
    if verbose:
      all_callbacks.append(
          callbacks_lib.MainLossProgbar(train_config.epochs))
    per_execution = train_config.steps_per_execution
    if train_config.on_nonfinite == 'skip' and per_execution > 1:
      # Skip mode rolls single steps back after each one.
      logging.info('steps_per_execution %d -> 1: on_nonfinite=skip checks '
                   'every step.', per_execution)
      per_execution = 1
    try:
      for segment in segments:
        set_steps_per_execution(model, steps.execution_size(
            segment.steps_per_epoch, per_execution))
        step = int(state.global_step.numpy())
        dataset = distribute.train_dataset(
            steps.data_config_for_step(data_config, step), state.strategy)
        model.fit(dataset, epochs=segment.epochs,
                  initial_epoch=segment.initial_epoch,
                  steps_per_epoch=segment.steps_per_epoch,
                  callbacks=all_callbacks, shuffle=False,
                  verbose=verbose)
        if status.error is not None or status.interrupted:
          break
        if interrupt.is_set():  # Between segments.
          status.interrupted = True
          break
    except KeyboardInterrupt:
      forced = True
      status.interrupted = True
    except distribute.PEER_ERRORS as e:
      num_workers, index = distribute.input_worker(state.strategy)
      if num_workers == 1:
        raise
      message = (
          f'Multi-worker training (worker {index} of {num_workers}) failed at '
          f'step {int(state.global_step.numpy())}: another worker stopped '
          f'responding ({type(e).__name__}: {str(e).splitlines()[0][:300]}). '
          f'Restart every worker with the same command and TF_CONFIG to '
          f'resume from the latest checkpoint ({saver.latest}).')
      logging.error(message)
      raise distribute.WorkerFailureError(message) from e
  writer.flush()
  if status.error is not None:
    raise status.error

  step = int(state.global_step.numpy())
  latest = saver.latest
  guard = next(c for c in all_callbacks
               if isinstance(c, nonfinite.NonFiniteGuard))
  if not forced and not guard.check_state(step):
    raise status.error
  if forced:
    logging.warning('Interrupted twice at step %d: no checkpoint written; '
                    'the latest is %s.', step, latest)
  elif latest is None or checkpoints.step_of(latest) != step:
    latest = saver.save(step)
  if config_writer is not None and latest is not None:
    config_writer.write()  # No step ran (already done, or stopped at once).
  if status.interrupted and not forced:
    logging.warning('Training interrupted at step %d/%d; saved checkpoint %s. '
                    'Rerun the same command to resume.', step, total, latest)
  elif not status.interrupted:
    logging.info('Training done: step %d/%d; final checkpoint %s.', step,
                 total, latest)
  return {
      'model': model,
      'global_step': step,
      'start_step': start,
      'steps_run': step - start,
      'total_steps': total,
      'steps_per_epoch': spe,
      'checkpoint': latest,
      'model_dir': train_config.model_dir,
      'log_dir': train_config.train_log_dir,
      'logs': dict(status.last_logs),
      'interrupted': status.interrupted,
      'skipped_steps': int(state.skipped_steps.numpy()),
      'resumed_from': state.resumed_from,
      'initialized_from': state.initialized_from,
  }


def fit_callbacks(state: state_lib.TrainState,
                  train_config: configs.TrainConfig,
                  data_config: configs.DataConfig,
                  body_model: BodyModel) -> List[keras.callbacks.Callback]:
  """The loop's own callbacks for `model.fit` on `state` (for benchmarks).

  The step counter, loss check, summaries, checkpoints and epoch log that
  `train` passes (no Ctrl-C handling, no progress bar); summaries go to
  `train_config.train_log_dir`.
  """
  writer = tf.summary.create_file_writer(train_config.train_log_dir)
  spe = steps.steps_per_epoch(data_config, train_config)
  return _callbacks(state, train_config, data_config, body_model,
                    callbacks_lib.TrainingStatus(), writer, threading.Event(),
                    spe, train_config.epochs * spe)


def set_steps_per_execution(model: keras.Model, size: int):
  """Sets Keras' steps per execution; the train function is rebuilt on change.

  Keras reads the value when it builds its train function (the loop over
  `size` steps is traced into it), so a change needs a new one.
  """
  if model.steps_per_execution != size:
    model.steps_per_execution = size
    model.train_function = None


def _callbacks(state: state_lib.TrainState, train_config: configs.TrainConfig,
               data_config: configs.DataConfig, body_model: BodyModel,
               status: callbacks_lib.TrainingStatus, writer,
               interrupt: threading.Event, spe: int,
               total: int) -> List[keras.callbacks.Callback]:
  """The callbacks, in the order hmr_tf.training.callbacks explains."""
  model = state.model
  snapshot = None
  if train_config.on_nonfinite == 'skip':
    with state.strategy.scope():
      snapshot = nonfinite.StateSnapshot(
          state_lib.rollback_variables(model))
  guard = nonfinite.NonFiniteGuard(
      train_config.on_nonfinite, state.global_step, status,
      state.saver.write_emergency, lambda: state.saver.latest,
      snapshot=snapshot, skipped_steps=state.skipped_steps,
      max_consecutive=train_config.max_consecutive_nonfinite,
      state_check=nonfinite.FiniteCheck(state_lib.rollback_variables(model)),
      checkpoint_every_steps=train_config.checkpoint_every_steps)
  image_fn = None
  if state.saver.is_chief and train_config.image_summary_every_steps > 0:
    batch = _fixed_batch(data_config, train_config.num_summary_images)
    image_fn = callbacks_lib.make_image_summary_fn(
        model, batch, body_model.faces, train_config.num_summary_images,
        num_meshes=train_config.num_summary_meshes)
  extra = {}
  if data_config.skip_corrupt_records:
    counter = input_pipeline.corrupt_record_counter()
    extra['data/corrupt_records_skipped'] = lambda: counter.numpy()
  summaries = callbacks_lib.SummaryWriter(
      writer, state.global_step, status, train_config.summary_every_steps,
      train_config.image_summary_every_steps, image_fn,
      skipped_steps=state.skipped_steps, batch_size=data_config.batch_size,
      extra_scalars=extra)
  return [
      callbacks_lib.GlobalStepCounter(state.global_step),
      guard,
      summaries,
      callbacks_lib.PeriodicCheckpoint(
          state.saver.save, state.global_step,
          train_config.checkpoint_every_steps, status, interrupt),
      callbacks_lib.EpochLogger(state.global_step, status,
                                  train_config.epochs, total,
                                  data_config.batch_size,
                                  state.skipped_steps),
  ]
