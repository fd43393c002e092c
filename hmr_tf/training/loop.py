"""The HMR training loop: `model.fit` with checkpoints, resume and summaries.

`train(...)` builds HMRModel and both optimizers under a tf.distribute
strategy scope, restores the latest checkpoint of `model_dir` (or the
weights of `init_checkpoint`), and runs `model.fit` on the zipped
(images, mocap) training stream until `epochs * steps_per_epoch` steps have
been done in total, over any number of runs.

Checkpoints. One `tf.train.Checkpoint` holds the model, both optimizers (Adam
slots and iteration counts), the global step and the skipped-step count; a
`tf.train.CheckpointManager` writes `model_dir/ckpt-<global step>` every
`checkpoint_every_steps` steps, at the end, and after a Ctrl-C, keeping
`max_to_keep`. TensorFlow updates the manager's `checkpoint` index file
atomically after the checkpoint files are complete, so a run killed at any
moment (SIGKILL included) resumes from the last complete checkpoint, losing
at most `checkpoint_every_steps` steps.

Damaged folders (hmr_tf.training.checkpoint_files). Before restoring, the newest
checkpoint whose every tensor reads back (CRC-checked) is chosen from the
files present; unreadable newer ones are logged by path and left in place.
The chief rewrites a `checkpoint` state file that names missing files or is
garbage, listing only the restored lineage, so the manager's `max_to_keep`
never deletes checkpoints this run did not restore from. A folder whose
checkpoints are all unreadable stops training (CheckpointError) instead of
starting over on top of them.

Lock and model config. The chief holds `model_dir/train.lock`
(hmr_tf.training.run_lock) for the whole run: a second trainer stops at once with
ModelDirLockedError naming the holder. A model config whose img_size,
num_stage or encoder differ from the folder's model_config.json (with
checkpoints there) is refused before any work (UsageError); the file is
(re)written once the first step has run.

Resume. Rerunning with the same `model_dir` restores the latest readable
checkpoint and continues at its global step g: the epoch g //
steps_per_epoch is finished with a shorter `fit` (the remaining steps of
that epoch), then the remaining whole epochs run, so the total number of
steps and the epoch boundaries are those of an uninterrupted run. The
learning rates of the current configuration replace the checkpointed ones.

Data-iterator position. Keras' `fit` creates its dataset iterator
internally and gives callbacks no handle on it, so the iterator state is not
checkpointed. Instead a resumed run rebuilds the input pipeline with a seed
derived from (data seed, global step): it sees fresh, still deterministic
batches rather than repeating the first batches of the run. (The original
HMR used TF1 queues, whose position was not saved either.)

`init_checkpoint` (a checkpoint file prefix or a directory) starts a new run
from the encoder, regressor and discriminator weights of another run,
without its optimizer state or step. It is ignored when `model_dir` already
has a checkpoint (resuming wins).

Non-finite losses. See callbacks_lib.NonFiniteGuard: 'stop' writes
`model_dir/emergency/nonfinite-<step>` (outside the manager, so resume never
picks it) and raises NonFiniteLossError naming the step and the terms;
'skip' rolls the step back from an in-memory snapshot and counts it.

Ctrl-C. The first SIGINT during training is acknowledged at once (a thread
reads the signal wakeup fd, so even during the first step's XLA compilation)
and asks the loop to stop after the current step; a checkpoint is saved and
`train` returns normally (result 'interrupted': True, with the checkpoint
path; hmr_tf.main then exits 130 and runs no later stage). A second Ctrl-C
stops without saving (the last regular checkpoint stays). The SIGINT
handler in place before (default, or ignored) is restored afterwards.

Multi-worker. Every worker takes part in saving (variables may need
collective reads), but only the chief (task type 'chief', or worker 0
without a chief, from the strategy's cluster resolver) writes into
`model_dir` and `log_dir`; other workers save into a temporary folder under
`model_dir` that is deleted after each save, and write no summaries. Each
worker reads its own part of the data (hmr_tf.training.distribute.train_dataset).
When a worker dies the others fail (collective timeout or TensorFlow's
health check) with WorkerFailureError; rerunning every worker resumes from
the chief's latest checkpoint. Checkpoints hold one copy of each variable,
so a run may resume with a different number of replicas or workers.
"""

import contextlib
import dataclasses
import os
import shutil
import signal
import sys
import threading
from typing import Any, Dict, List, NamedTuple, Optional, Sequence, Tuple

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from hmr_tf import configs
from hmr_tf.configs import TrainConfig  # Re-exported: the loop's options.
from hmr_tf.training import checkpoint_files
from hmr_tf.training import distribute
from hmr_tf import errors
from hmr_tf.training import model_restore
from hmr_tf.training import run_lock
from hmr_tf.training import callbacks as callbacks_lib
from hmr_tf.data import input_pipeline
from hmr_tf.modeling import hmr_model
from hmr_tf.smpl.model_io import BodyModel

NonFiniteLossError = callbacks_lib.NonFiniteLossError


class WorkerFailureError(RuntimeError):
  """A multi-worker run lost contact with another worker."""


# What a collective op raises when a peer is gone: aborted by the health
# check (Unavailable), past CommunicationOptions.timeout_seconds
# (DeadlineExceeded), or cancelled/aborted as a consequence.
_PEER_ERRORS = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
                tf.errors.CancelledError, tf.errors.AbortedError)

EMERGENCY_SUBDIR = 'emergency'
PROGRESS_CHOICES = configs.PROGRESS_MODES
NONFINITE_CHOICES = configs.NONFINITE_POLICIES


# ---------------------------------------------------------------------------
# Step accounting.


def steps_per_epoch(data_config: input_pipeline.DataConfig,
                    train_config: TrainConfig) -> int:
  """Training steps per epoch.

  Args:
    data_config: the data config (datasets, batch_size = the global batch).
    train_config: an explicit `steps_per_epoch` > 0 wins.

  Returns:
    max(1, sum of the training datasets' sidecar counts // batch size).

  Raises:
    ValueError: a dataset has no sidecar count and none was configured.
  """
  if train_config.steps_per_epoch > 0:
    return train_config.steps_per_epoch
  total = 0
  for name in data_config.datasets:
    count = input_pipeline.num_examples(data_config, name,
                                        data_config.train_split)
    if count is None:
      raise ValueError(
          f'steps_per_epoch: dataset {name!r} under {data_config.data_dir} '
          'has no sidecar with its example count; set steps_per_epoch')
    total += count
  return max(1, total // data_config.batch_size)


class FitSegment(NamedTuple):
  """Arguments of one `model.fit` call."""
  initial_epoch: int
  epochs: int
  steps_per_epoch: int


def plan_segments(start_step: int, steps_per_epoch_: int,
                  epochs: int) -> List[FitSegment]:
  """The `fit` calls that take a run from `start_step` to the end.

  A start inside an epoch first finishes that epoch (a shorter fit), so the
  total is epochs * steps_per_epoch and later epochs start on their usual
  step boundaries.

  Args:
    start_step: global step restored (0 for a new run).
    steps_per_epoch_: steps per epoch.
    epochs: total epochs.

  Returns:
    The segments in order (empty when training is already complete).
  """
  total = epochs * steps_per_epoch_
  if start_step >= total:
    return []
  epoch, offset = divmod(start_step, steps_per_epoch_)
  segments = []
  if offset:
    segments.append(FitSegment(epoch, epoch + 1, steps_per_epoch_ - offset))
    epoch += 1
  if epoch < epochs:
    segments.append(FitSegment(epoch, epochs, steps_per_epoch_))
  return segments


def data_config_for_step(data_config: input_pipeline.DataConfig,
                         step: int) -> input_pipeline.DataConfig:
  """The data config of a (re)started run: reseeded unless at step 0.

  See the module docstring (data-iterator position).
  """
  if step == 0:
    return data_config
  seed = (int(data_config.seed) * 1000003 + int(step) * 7919 + 1) % (2**31 - 1)
  return dataclasses.replace(data_config, seed=seed)


# ---------------------------------------------------------------------------
# Workers and checkpoint files.


def worker_role(strategy: tf.distribute.Strategy) -> Tuple[bool, str, int]:
  """(is_chief, task_type, task_id) from the strategy's cluster resolver.

  Single-machine strategies (no resolver, or no task type) are the chief.
  """
  resolver = getattr(strategy, 'cluster_resolver', None)
  task_type = getattr(resolver, 'task_type', None) if resolver else None
  task_id = getattr(resolver, 'task_id', None) if resolver else None
  if not task_type:
    return True, '', 0
  task_id = int(task_id or 0)
  if task_type == 'chief':
    return True, task_type, task_id
  cluster = resolver.cluster_spec().as_dict() if resolver else {}
  is_chief = task_type == 'worker' and task_id == 0 and 'chief' not in cluster
  return is_chief, task_type, task_id


class CheckpointSaver:
  """Regular and emergency checkpoint writing, chief-aware.

  Args:
    checkpoint: the tf.train.Checkpoint.
    model_dir: the run's directory.
    max_to_keep: regular checkpoints kept.
    is_chief: write into model_dir; otherwise into a temporary folder that is
      deleted after each save.
    task: a name for the temporary folder of a non-chief worker.
  """

  def __init__(self, checkpoint: tf.train.Checkpoint, model_dir: str,
               max_to_keep: int, is_chief: bool = True, task: str = ''):
    self.checkpoint = checkpoint
    self.model_dir = model_dir
    self.is_chief = is_chief
    self._directory = (model_dir if is_chief else
                       os.path.join(model_dir, f'.worker_tmp_{task}'))
    self.manager = tf.train.CheckpointManager(
        checkpoint, self._directory, max_to_keep=max_to_keep if is_chief
        else 1)

  @property
  def latest(self) -> Optional[str]:
    """The latest regular checkpoint of model_dir."""
    return tf.train.latest_checkpoint(self.model_dir)

  def _cleanup(self):
    if not self.is_chief:
      shutil.rmtree(self._directory, ignore_errors=True)

  def save(self, step: int) -> str:
    """Writes the regular checkpoint `ckpt-<step>`; returns its path."""
    path = self.manager.save(checkpoint_number=step)
    self._cleanup()
    if self.is_chief:
      logging.info('Saved checkpoint %s', path)
    return path if self.is_chief else os.path.join(
        self.model_dir, os.path.basename(path))

  def write_emergency(self, step: int) -> Optional[str]:
    """Writes `emergency/nonfinite-<step>` outside the manager's index."""
    directory = (os.path.join(self.model_dir, EMERGENCY_SUBDIR)
                 if self.is_chief else self._directory)
    try:
      path = self.checkpoint.write(
          os.path.join(directory, f'nonfinite-{step}'))
    except (OSError, tf.errors.OpError) as e:
      logging.error('Could not write the emergency checkpoint under %s: %s',
                    directory, e)
      return None
    self._cleanup()
    return path if self.is_chief else os.path.join(
        self.model_dir, EMERGENCY_SUBDIR, f'nonfinite-{step}')


# ---------------------------------------------------------------------------
# Model and state.


@dataclasses.dataclass
class TrainState:
  """The model and everything checkpointed with it.

  Attributes:
    model: the compiled HMRModel.
    checkpoint: tf.train.Checkpoint(model, g_optimizer, d_optimizer,
      global_step, skipped_steps).
    saver: CheckpointSaver for model_dir.
    global_step: int64 variable, training steps done.
    skipped_steps: int64 variable, steps rolled back ('skip' mode).
    strategy: the distribution strategy.
    resumed_from: the checkpoint restored from model_dir, or None.
    initialized_from: the init_checkpoint whose weights were loaded, or None.
  """
  model: hmr_model.HMRModel
  checkpoint: tf.train.Checkpoint
  saver: CheckpointSaver
  global_step: tf.Variable
  skipped_steps: tf.Variable
  strategy: tf.distribute.Strategy
  resumed_from: Optional[str] = None
  initialized_from: Optional[str] = None


def _counter(name: str) -> tf.Variable:
  # ONLY_FIRST_REPLICA: assignable from any context under a strategy.
  return tf.Variable(0, dtype=tf.int64, trainable=False, name=name,
                     aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)


def restore_weights(model: hmr_model.HMRModel, path: str) -> str:
  """Loads the network weights of a training checkpoint, nothing else.

  Only the encoder, regressor (with Θ_0) and discriminator are matched
  (their batch-norm statistics included); optimizer slots, iteration counts
  and the global step of the checkpoint are not read.

  Args:
    model: a built HMRModel.
    path: a checkpoint prefix or a directory (its latest checkpoint).

  Returns:
    The checkpoint prefix read.

  Raises:
    FileNotFoundError: no such checkpoint.
    errors.CheckpointError: the checkpoint cannot be read (named).
    AssertionError: the checkpoint lacks some of the networks' variables.
  """
  path = model_restore.resolve_checkpoint(path, flag='init_checkpoint',
                                         allow_h5=False)
  checkpoint_files.verify(path)
  # The same object-graph names as the training checkpoint ('model/encoder',
  # ...), without the optimizers hanging off the model.
  networks = tf.train.Checkpoint(encoder=model.encoder,
                                 regressor=model.regressor,
                                 discriminator=model.discriminator)
  status = tf.train.Checkpoint(model=networks).read(path)
  status.expect_partial()
  status.assert_existing_objects_matched()
  return path


def _set_learning_rate(optimizer, value: float, name: str):
  current = optimizer.learning_rate
  if not isinstance(current, keras.Variable):
    return  # A schedule: nothing to override.
  if not np.isclose(float(np.asarray(current)), value, rtol=1e-6):
    logging.info('%s learning rate: %g from the configuration replaces %g '
                 'from the checkpoint.', name, value,
                 float(np.asarray(current)))
  optimizer.learning_rate = value


def build_state(model_config: hmr_model.ModelConfig,
                train_config: TrainConfig,
                body_model: BodyModel,
                mean_theta,
                strategy: Optional[tf.distribute.Strategy] = None
                ) -> TrainState:
  """Builds the model and optimizers and restores model_dir or init weights.

  Args:
    model_config: the model config.
    train_config: the training config.
    body_model: the SMPL-format body model.
    mean_theta: [85] Θ_0.
    strategy: the tf.distribute strategy (default: the current one).

  Returns:
    A TrainState.
  """
  strategy = strategy or tf.distribute.get_strategy()
  keras.utils.set_random_seed(train_config.seed)
  jit_compile = train_config.jit_compile
  if jit_compile and strategy.num_replicas_in_sync > 1:
    # Keras' TensorFlow trainer compiles the whole `strategy.run` into one
    # XLA function, which cannot reach variables on several devices.
    logging.warning('jit_compile ignored: XLA compilation of the train step '
                    'needs a single replica (this strategy has %d); training '
                    'runs without it.', strategy.num_replicas_in_sync)
    jit_compile = False
  with strategy.scope():
    model = hmr_model.HMRModel(body_model, mean_theta, model_config)
    g_optimizer, d_optimizer = hmr_model.build_optimizers(model_config)
    model.compile(g_optimizer=g_optimizer, d_optimizer=d_optimizer,
                  jit_compile=jit_compile)
    global_step = _counter('global_step')
    skipped_steps = _counter('skipped_steps')
  checkpoint = tf.train.Checkpoint(
      model=model, g_optimizer=g_optimizer, d_optimizer=d_optimizer,
      global_step=global_step, skipped_steps=skipped_steps)
  is_chief, task_type, task_id = worker_role(strategy)
  # Chosen and verified before the manager reads the state file: the chief
  # repairs a state that names missing or unreadable files, so the manager
  # never deletes checkpoints of a lineage this run did not restore.
  latest = checkpoint_files.resume_checkpoint(train_config.model_dir,
                                              repair=is_chief)
  saver = CheckpointSaver(checkpoint, train_config.model_dir,
                          train_config.max_to_keep, is_chief,
                          f'{task_type}_{task_id}')
  state = TrainState(model, checkpoint, saver, global_step, skipped_steps,
                     strategy)
  if latest:
    try:
      checkpoint.restore(latest).assert_existing_objects_matched()
    except AssertionError as e:
      raise errors.CheckpointError(
          f'checkpoint {latest}: does not match the model being trained '
          f'({str(e).splitlines()[0][:200]})') from e
    state.resumed_from = latest
    logging.info('Resuming from %s (global step %d).', latest,
                 int(global_step.numpy()))
    if train_config.init_checkpoint:
      logging.info('init_checkpoint %s ignored: resuming %s.',
                   train_config.init_checkpoint, latest)
  elif train_config.init_checkpoint:
    state.initialized_from = restore_weights(model,
                                             train_config.init_checkpoint)
    logging.info('Initialised the network weights from %s (optimizer state '
                 'not loaded).', state.initialized_from)
  _set_learning_rate(g_optimizer, model_config.e_lr, 'Generator')
  _set_learning_rate(d_optimizer, model_config.d_lr, 'Discriminator')
  return state


# ---------------------------------------------------------------------------
# Ctrl-C.


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
def _deferred_interrupt():
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


def _fixed_batch(data_config: input_pipeline.DataConfig,
                 num: int) -> Dict[str, np.ndarray]:
  """The first `num` examples of one training batch, for image summaries."""
  batch = next(iter(input_pipeline.image_dataset(data_config).take(1)))
  return {k: v.numpy()[:num] for k, v in batch.items()}


def train(model_config: hmr_model.ModelConfig,
          data_config: input_pipeline.DataConfig,
          train_config: TrainConfig,
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
    'steps_run', 'total_steps', 'steps_per_epoch', 'checkpoint' (latest regular checkpoint path),
    'model_dir', 'log_dir' (the TensorBoard folder), 'logs' (last epoch's
    means, floats), 'interrupted', 'skipped_steps', 'resumed_from',
    'initialized_from'.

  Raises:
    NonFiniteLossError: a non-finite loss stopped training (its message
      names the step, the terms and the emergency checkpoint).
    errors.ModelDirLockedError: another process trains in model_dir.
    errors.CheckpointError: model_dir has checkpoints but none is readable,
      or the restored one does not match the model.
    errors.UsageError: model_config changes img_size, num_stage or encoder
      of a folder with checkpoints.
    WorkerFailureError: multi-worker: another worker died or hung.
    ValueError: the global batch does not split over the replicas.
  """
  _check_configs(model_config, data_config)
  strategy = strategy or tf.distribute.get_strategy()
  distribute.check_global_batch(data_config.batch_size, strategy)
  is_chief = worker_role(strategy)[0]
  if not is_chief:
    return _train(model_config, data_config, train_config, body_model,
                  mean_theta, strategy, callbacks)
  with run_lock.ModelDirLock(train_config.model_dir):
    model_restore.check_model_config(train_config.model_dir, model_config)
    return _train(model_config, data_config, train_config, body_model,
                  mean_theta, strategy, callbacks)


class _ModelConfigWriter(keras.callbacks.Callback):
  """Writes model_config.json once the first training step has succeeded.

  Eval, export and the demo rebuild the model from this file, so it is
  written before the first checkpoint, but not by a run that fails before
  training (train checked beforehand that it may replace the folder's).
  """

  def __init__(self, model_dir: str, config: hmr_model.ModelConfig):
    super().__init__()
    self._model_dir = model_dir
    self._config = config
    self.written = False

  def write(self):
    if not self.written:
      model_restore.save_model_config(self._model_dir, self._config)
      self.written = True

  def on_train_batch_end(self, batch, logs=None):
    del batch, logs
    self.write()


def _train(model_config, data_config, train_config, body_model, mean_theta,
           strategy, callbacks) -> Dict[str, Any]:
  """`train` once the model folder is locked (on the chief)."""
  spe = steps_per_epoch(data_config, train_config)
  total = train_config.epochs * spe
  state = build_state(model_config, train_config, body_model, mean_theta,
                      strategy)
  model, saver = state.model, state.saver
  config_writer = None
  if saver.is_chief:
    config_writer = _ModelConfigWriter(train_config.model_dir, model_config)
  start = int(state.global_step.numpy())
  status = callbacks_lib.TrainingStatus()
  segments = plan_segments(start, spe, train_config.epochs)
  logging.info('Training: %d epochs x %d steps = %d steps (batch %d); '
               'starting at step %d; checkpoints in %s, summaries in %s.',
               train_config.epochs, spe, total, data_config.batch_size, start,
               train_config.model_dir, train_config.train_log_dir)

  if saver.is_chief:
    writer = tf.summary.create_file_writer(train_config.train_log_dir)
  else:
    writer = tf.summary.create_noop_writer()

  forced = False
  with _deferred_interrupt() as interrupt:
    all_callbacks = _callbacks(state, train_config, data_config, body_model,
                               status, writer, interrupt, spe, total)
    if config_writer is not None:
      all_callbacks.insert(0, config_writer)
    all_callbacks += list(callbacks)
    verbose = _verbose(train_config.progress)
    if verbose:
      all_callbacks.append(
          callbacks_lib.MainLossProgbar(train_config.epochs))
    try:
      for segment in segments:
        step = int(state.global_step.numpy())
        dataset = distribute.train_dataset(
            data_config_for_step(data_config, step), state.strategy)
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
    except _PEER_ERRORS as e:
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
      raise WorkerFailureError(message) from e
  writer.flush()
  if status.error is not None:
    raise status.error

  step = int(state.global_step.numpy())
  latest = saver.latest
  guard = next(c for c in all_callbacks
               if isinstance(c, callbacks_lib.NonFiniteGuard))
  if not forced and not guard.check_state(step):
    raise status.error
  if forced:
    logging.warning('Interrupted twice at step %d: no checkpoint written; '
                    'the latest is %s.', step, latest)
  elif latest is None or _checkpoint_step(latest) != step:
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


def _checkpoint_step(path: str) -> int:
  """The number N of a `.../ckpt-N` prefix (-1 if there is none)."""
  tail = os.path.basename(path).rsplit('-', 1)
  return int(tail[1]) if len(tail) == 2 and tail[1].isdigit() else -1


def _callbacks(state: TrainState, train_config: TrainConfig,
               data_config: input_pipeline.DataConfig, body_model: BodyModel,
               status: callbacks_lib.TrainingStatus, writer,
               interrupt: threading.Event, spe: int,
               total: int) -> List[keras.callbacks.Callback]:
  """The callbacks in the order train_callbacks' docstring explains."""
  model = state.model
  snapshot = None
  if train_config.on_nonfinite == 'skip':
    with state.strategy.scope():
      snapshot = callbacks_lib.StateSnapshot(
          _rollback_variables(model))
  guard = callbacks_lib.NonFiniteGuard(
      train_config.on_nonfinite, state.global_step, status,
      state.saver.write_emergency, lambda: state.saver.latest,
      snapshot=snapshot, skipped_steps=state.skipped_steps,
      max_consecutive=train_config.max_consecutive_nonfinite,
      state_check=callbacks_lib.FiniteCheck(_rollback_variables(model)),
      checkpoint_every_steps=train_config.checkpoint_every_steps)
  image_fn = None
  if state.saver.is_chief and train_config.image_summary_every_steps > 0:
    batch = _fixed_batch(data_config, train_config.num_summary_images)
    image_fn = callbacks_lib.make_image_summary_fn(
        model, batch, body_model.faces, train_config.num_summary_images)
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


def _rollback_variables(model: hmr_model.HMRModel) -> List[tf.Variable]:
  """What a skipped step restores: all model state but the loss trackers."""
  tracker_vars = {id(v) for m in model.metrics for v in m.variables}
  variables = [v for v in model.variables if id(v) not in tracker_vars]
  return (variables + list(model.g_optimizer.variables) +
          list(model.d_optimizer.variables))
