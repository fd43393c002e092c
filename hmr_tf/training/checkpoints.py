"""Checkpoints: their files, saving, and restoring for training or inference.

Files. One `tf.train.Checkpoint` of a training run holds the model, both
optimizers (Adam slots and iteration counts), the global step and the
skipped-step count. `CheckpointSaver` writes `model_dir/ckpt-<global step>`
through a `tf.train.CheckpointManager` (which keeps `max_to_keep` of them)
and emergency checkpoints `model_dir/emergency/nonfinite-<step>` outside the
manager, so that a resume never picks them. A manager folder holds
`ckpt-<step>.index`, `ckpt-<step>.data-KKKKK-of-NNNNN` and the `checkpoint`
state file naming the latest checkpoint and the ones the manager keeps.
TensorFlow updates the state file atomically after the checkpoint files are
complete, so a run killed at any moment (SIGKILL included) resumes from the
last complete checkpoint.

Damaged folders. Things go wrong outside TensorFlow's control: a copy or a
full disk cuts a data file short, a user deletes the newest checkpoint, the
state file is overwritten. TensorFlow then fails deep inside a restore
(`IndexError: Read less bytes than requested`), or, with a state file naming
missing files, silently finds no checkpoint, so that training restarts at
step 0 while its manager deletes the older intact checkpoints it still
lists. Hence:
  * `verify` reads every tensor of a checkpoint (TensorFlow checks each
    one's CRC32C) and raises CheckpointError naming the file;
  * `newest_readable` picks the newest checkpoint that verifies, from the
    files present (the state file may be wrong), and names the others;
  * `repair_state` rewrites the state file from the files present, listing
    only checkpoints up to the one restored, so that the manager of a resumed
    run deletes nothing it did not restore from;
  * `resume_checkpoint` combines them for the trainer: a folder whose
    checkpoints are all unreadable stops training instead of starting over
    on top of them.

Restoring. `resolve_checkpoint` turns a user's path (folder, prefix or
Keras `.weights.h5`) into the file to load. A training run resumes with
`restore_training_state` (everything) or starts from another run's network
weights with `restore_weights` (no optimizer state, no step), after
`check_model_config` has refused a model the folder's checkpoints cannot
continue. Inference (eval, demo, export) rebuilds the model from the
folder's model_config.json (`hmr_tf.training.model_files`) with
`restore_model`, which restores only the encoder and the regressor (with
Θ_0): a checkpoint written with or without optimizer slots, discriminator or
metric state restores the same way.
"""

import dataclasses
import glob
import os
import re
import shutil
from typing import List, NamedTuple, Optional, Tuple

from absl import logging
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import trackable_object_graph_pb2
# The public tf.train.update_checkpoint_state is TF1-only (tf.compat.v1);
# this is what it and CheckpointManager call.
from tensorflow.python.checkpoint import checkpoint_management  # pylint: disable=g-direct-tensorflow-import

from hmr_tf import configs
from hmr_tf import errors
from hmr_tf.modeling import hmr_model
from hmr_tf.modeling import mean_params
from hmr_tf.smpl.model_io import BodyModel
from hmr_tf.training import model_files

CHECKPOINT_PREFIX = 'ckpt'
STATE_FILENAME = 'checkpoint'
EMERGENCY_SUBDIR = 'emergency'
_INDEX_RE = re.compile(r'^' + CHECKPOINT_PREFIX + r'-(\d+)\.index$')
_DATA_RE = re.compile(r'\.data-(\d+)-of-(\d+)$')

# What reading a damaged checkpoint raises: IndexError for a data file cut
# short, DataLossError for a CRC mismatch, NotFoundError for a missing
# shard, OpError/ValueError/RuntimeError for a bad index.
_READ_ERRORS = (tf.errors.OpError, IndexError, ValueError, RuntimeError,
                OSError)

# ModelConfig fields that decide the variables or the input of a trained
# model: a folder's checkpoints only restore into a model with these values.
STRUCTURAL_FIELDS = ('img_size', 'num_stage', 'encoder', 'regressor_units',
                     'd_pose_units')


# ---------------------------------------------------------------------------
# Files: listing, verifying, falling back, repairing the state file.


def step_of(prefix: str) -> int:
  """The N of `.../ckpt-N` (-1 if the name has no step)."""
  tail = os.path.basename(prefix).rsplit('-', 1)
  return int(tail[1]) if len(tail) == 2 and tail[1].isdigit() else -1


def list_checkpoints(directory: str) -> List[str]:
  """The `ckpt-N` prefixes with an index file in `directory`, oldest first."""
  found = []
  if not os.path.isdir(directory):
    return found
  for name in os.listdir(directory):
    match = _INDEX_RE.match(name)
    if match:
      found.append((int(match.group(1)),
                    os.path.join(directory, name[:-len('.index')])))
  return [prefix for _, prefix in sorted(found)]


def _missing_files(prefix: str) -> Optional[str]:
  """What is missing for `prefix` to be complete, or None."""
  if not os.path.isfile(prefix + '.index'):
    return 'no .index file'
  shards = glob.glob(glob.escape(prefix) + '.data-*')
  if not shards:
    return 'no .data file'
  match = _DATA_RE.search(shards[0])
  if match:
    expected = int(match.group(2))
    names = {f'{prefix}.data-{i:05d}-of-{expected:05d}'
             for i in range(expected)}
    absent = sorted(n for n in names if not os.path.isfile(n))
    if absent:
      return f'missing {os.path.basename(absent[0])}'
  return None


def verify(prefix: str) -> None:
  """Reads every tensor of a checkpoint; raises if any cannot be read.

  Args:
    prefix: a checkpoint prefix (`.../ckpt-N`).

  Raises:
    errors.CheckpointError: naming the checkpoint and the reason.
  """
  missing = _missing_files(prefix)
  if missing:
    raise errors.CheckpointError(f'checkpoint {prefix}: incomplete '
                                 f'({missing})')
  try:
    reader = tf.train.load_checkpoint(prefix)
    for name in reader.get_variable_to_dtype_map():
      reader.get_tensor(name)
  except _READ_ERRORS as e:
    reason = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
    raise errors.CheckpointError(
        f'checkpoint {prefix}: unreadable ({type(e).__name__}: {reason}); '
        'its files are damaged (cut short or overwritten)') from e


class Selection(NamedTuple):
  """The outcome of `newest_readable`.

  Attributes:
    prefix: the newest checkpoint that verifies, or None.
    unreadable: (prefix, reason) of newer checkpoints that did not verify.
    present: every `ckpt-N` with an index file, oldest first.
  """
  prefix: Optional[str]
  unreadable: List[Tuple[str, str]]
  present: List[str]


def newest_readable(directory: str) -> Selection:
  """The newest checkpoint of `directory` that verifies, from its files.

  The state file is not trusted: it may name deleted checkpoints or be
  garbage. Checkpoints are tried newest first; each one that fails is
  recorded with its reason.
  """
  present = list_checkpoints(directory)
  unreadable = []
  for prefix in reversed(present):
    try:
      verify(prefix)
    except errors.CheckpointError as e:
      unreadable.append((prefix, str(e)))
      continue
    return Selection(prefix, unreadable, present)
  return Selection(None, unreadable, present)


def _state_paths(directory: str) -> Tuple[Optional[str], List[str]]:
  """(latest, all) as the state file names them ((None, []) if unusable)."""
  try:
    state = tf.train.get_checkpoint_state(directory)
  except (tf.errors.OpError, ValueError) as e:
    logging.warning('%s: unreadable (%s)',
                    os.path.join(directory, STATE_FILENAME), e)
    return None, []
  if state is None:
    return None, []
  # TensorFlow has joined relative names with `directory` already.
  return (state.model_checkpoint_path or None,
          list(state.all_model_checkpoint_paths))


def repair_state(directory: str, selection: Selection) -> bool:
  """Makes the state file name `selection.prefix` and the files present.

  The state lists the complete checkpoints up to and including the chosen
  one (the lineage a resumed run continues), so the CheckpointManager built
  on it deletes, by `max_to_keep`, only checkpoints of that lineage; newer
  unreadable ones are left alone (a later save of the same step replaces
  them). Nothing is written when the state is already so.

  Args:
    directory: the model folder.
    selection: `newest_readable(directory)`, with a prefix.

  Returns:
    True if the state file was rewritten.
  """
  chosen = selection.prefix
  limit = step_of(chosen)
  keep = [p for p in selection.present
          if step_of(p) <= limit and (p == chosen or
                                      _missing_files(p) is None)]
  latest, listed = _state_paths(directory)

  def norm(path):
    return os.path.normpath(os.path.abspath(path))

  if (latest is not None and norm(latest) == norm(chosen) and
      [norm(p) for p in listed] == [norm(p) for p in keep]):
    return False
  checkpoint_management.update_checkpoint_state_internal(
      save_dir=directory, model_checkpoint_path=chosen,
      all_model_checkpoint_paths=keep, save_relative_paths=True)
  logging.warning(
      'Repaired %s: it named %s; now it names %s (the checkpoints present: '
      '%s).', os.path.join(directory, STATE_FILENAME),
      latest or 'nothing usable', chosen,
      ', '.join(os.path.basename(p) for p in keep))
  return True


def resume_checkpoint(directory: str, repair: bool = True) -> Optional[str]:
  """The checkpoint a training run in `directory` resumes from, or None.

  Falls back from unreadable checkpoints to the newest readable one
  (logging each one skipped and the one used) and, with `repair`, fixes the
  state file (see `repair_state`). None means the folder has no checkpoint
  files at all: a new run.

  Args:
    directory: the model folder.
    repair: rewrite a wrong state file (the chief; other workers only read).

  Returns:
    The checkpoint prefix to restore, or None.

  Raises:
    errors.CheckpointError: there are checkpoint files but none can be
      read; starting over would throw the run away, so the error names them.
  """
  selection = newest_readable(directory)
  for prefix, reason in selection.unreadable:
    logging.error('%s', reason)
  if selection.prefix is None:
    if selection.present:
      raise errors.CheckpointError(
          f'{directory}: no readable checkpoint (tried '
          f'{", ".join(os.path.basename(p) for p in selection.present)}); '
          'training will not start over on top of them: move them away to '
          'start a new run, or restore them from a copy')
    state = os.path.join(directory, STATE_FILENAME)
    if os.path.exists(state):
      latest, _ = _state_paths(directory)
      logging.warning('%s names %s, but no checkpoint files are there: '
                      'starting a new run.', state,
                      latest or 'nothing usable')
      if repair:
        # Else the new run's manager would go on listing the old names.
        os.remove(state)
    return None
  if selection.unreadable:
    logging.warning('Falling back to %s, the newest readable checkpoint.',
                    selection.prefix)
  if repair:
    repair_state(directory, selection)
  return selection.prefix


def readable_alternative(prefix: str) -> str:
  """' (the newest readable checkpoint there is X)' or '' (error hints)."""
  selection = newest_readable(os.path.dirname(os.path.abspath(prefix)))
  if selection.prefix and os.path.normpath(
      selection.prefix) != os.path.normpath(os.path.abspath(prefix)):
    return (f'; the newest readable checkpoint there is {selection.prefix}: '
            f'pass --checkpoint={selection.prefix}')
  return ''


# ---------------------------------------------------------------------------
# Resolving the path a user gives.


def resolve_checkpoint(path: str, flag: str = '--checkpoint',
                       allow_h5: bool = True) -> str:
  """The checkpoint to load: a folder's latest checkpoint, a prefix, or .h5.

  Args:
    path: a checkpoint folder (with a `checkpoint` index file), a checkpoint
      prefix such as `ckpt-1000` (with `ckpt-1000.index` beside it), or (with
      `allow_h5`) a Keras `.weights.h5` file.
    flag: the flag named in error messages.
    allow_h5: accept Keras weights files.

  Returns:
    The checkpoint prefix or weights file.

  Raises:
    FileNotFoundError: naming the flag, `path` and what was expected.
  """
  if os.path.isdir(path):
    latest = tf.train.latest_checkpoint(path)
    if latest is None:
      # No state file, a garbage one, or one naming deleted files: the
      # newest checkpoint whose files are there.
      present = list_checkpoints(path)
      if not present:
        raise FileNotFoundError(f'{flag} {path}: a folder without a '
                                'TensorFlow checkpoint in it')
      latest = present[-1]
      logging.warning('%s: its checkpoint state file names no checkpoint '
                      'that is there; using the newest one present, %s.',
                      path, latest)
    return latest
  if allow_h5 and path.endswith('.h5') and os.path.isfile(path):
    return path
  if os.path.isfile(path + '.index'):
    return path
  expected = ('a folder, a prefix with a .index file, or a .weights.h5 file'
              if allow_h5 else 'a folder or a prefix with a .index file')
  raise FileNotFoundError(
      f'{flag} {path}: no such checkpoint (expected {expected})')


# ---------------------------------------------------------------------------
# Saving.


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
# Restoring for training.


def check_model_config(directory: str,
                       config: configs.ModelConfig) -> None:
  """Refuses a config whose model cannot continue the folder's checkpoints.

  A folder with checkpoints keeps its model_config.json unless the new
  config changes only training options (rates, loss weights, dropout...);
  img_size, num_stage, encoder or a hidden width changed would make the
  checkpoints unrestorable (and eval, export and the demo would build the
  wrong model).

  Args:
    directory: the model folder.
    config: the config a training run is about to use.

  Raises:
    errors.UsageError: checkpoints are there and a structural field differs
      (one line naming the file and the fields).
  """
  path = os.path.join(directory, model_files.MODEL_CONFIG_FILENAME)
  if not list_checkpoints(directory) or not os.path.isfile(path):
    return
  saved = model_files.read_model_config(directory)
  changed = [f'{name} {getattr(saved, name)!r} -> {getattr(config, name)!r}'
             for name in STRUCTURAL_FIELDS
             if getattr(saved, name) != getattr(config, name)]
  if changed:
    raise errors.UsageError(
        f'{path}: the checkpoints in {directory} were trained with another '
        f'model ({"; ".join(changed)}); use another --model_dir/--output_dir '
        'or the same settings')


def restore_training_state(checkpoint: tf.train.Checkpoint,
                           prefix: str) -> None:
  """Restores a whole training checkpoint (model, optimizers, counters).

  Args:
    checkpoint: the run's tf.train.Checkpoint (see `hmr_tf.training.state`).
    prefix: the checkpoint to restore (`resume_checkpoint`'s choice).

  Raises:
    errors.CheckpointError: the checkpoint does not match the model.
  """
  try:
    checkpoint.restore(prefix).assert_existing_objects_matched()
  except AssertionError as e:
    raise errors.CheckpointError(
        f'checkpoint {prefix}: does not match the model being trained '
        f'({str(e).splitlines()[0][:200]})') from e


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
  path = resolve_checkpoint(path, flag='init_checkpoint', allow_h5=False)
  verify(path)
  # The same object-graph names as the training checkpoint ('model/encoder',
  # ...), without the optimizers hanging off the model.
  networks = tf.train.Checkpoint(encoder=model.encoder,
                                 regressor=model.regressor,
                                 discriminator=model.discriminator)
  status = tf.train.Checkpoint(model=networks).read(path)
  status.expect_partial()
  status.assert_existing_objects_matched()
  return path


# ---------------------------------------------------------------------------
# Restoring for inference.


def _checkpoint_root(prefix: str) -> str:
  """The name under which a tf.train.Checkpoint stored the HMRModel.

  Read from the checkpoint's object graph, not from variable names: a
  variable is listed under one path only (often an optimizer's), so the
  model's own path may not appear in any name.
  """
  graph = trackable_object_graph_pb2.TrackableObjectGraph()
  reader = tf.train.load_checkpoint(prefix)
  graph.ParseFromString(reader.get_tensor('_CHECKPOINTABLE_OBJECT_GRAPH'))
  roots = [child.local_name for child in graph.nodes[0].children
           if {'encoder', 'regressor'} <= {
               c.local_name for c in graph.nodes[child.node_id].children}]
  if len(roots) != 1:
    raise ValueError(f'checkpoint {prefix}: expected one HMRModel (an object '
                     f'with an encoder and a regressor), found {roots}')
  return roots[0]


def restore_model(checkpoint: str, body_model: BodyModel,
                  config: Optional[configs.ModelConfig] = None
                 ) -> hmr_model.HMRModel:
  """Builds an HMRModel and restores its encoder and regressor.

  Args:
    checkpoint: checkpoint folder, prefix or `.weights.h5` file.
    body_model: the body model the model was trained with.
    config: the ModelConfig; default: the JSON next to the checkpoint.

  Returns:
    The model, ready for `model(images, training=False)`.

  Raises:
    FileNotFoundError: no such checkpoint.
    errors.CheckpointError: an unreadable checkpoint (every tensor is read
      before the restore; the message names it and the newest readable one
      beside it) or one that does not match the model.
    ValueError: a malformed model config JSON.
  """
  path = resolve_checkpoint(checkpoint)
  if config is None:
    config = model_files.read_model_config(path)
  # Θ_0's value comes from the checkpoint; the initial value is a placeholder.
  theta0 = mean_params.mean_theta(np.zeros(mean_params.NUM_POSE),
                                  np.zeros(mean_params.NUM_SHAPE))
  # No ImageNet download for a model whose weights are restored anyway.
  config = dataclasses.replace(config, encoder_weights='none')
  model = hmr_model.HMRModel(body_model, theta0, config)
  if path.endswith('.h5'):
    try:
      model.load_weights(path)
    except (OSError, ValueError) as e:
      raise errors.CheckpointError(
          f'{path}: cannot load these weights into the model built from '
          f'its config ({str(e).splitlines()[0][:200]})') from e
  else:
    try:
      verify(path)
    except errors.CheckpointError as e:
      raise errors.CheckpointError(
          f'{e}{readable_alternative(path)}') from e
    inner = tf.train.Checkpoint(encoder=model.encoder,
                                regressor=model.regressor)
    status = tf.train.Checkpoint(**{_checkpoint_root(path): inner}).restore(
        path)
    try:
      status.expect_partial().assert_existing_objects_matched()
    except AssertionError as e:
      raise errors.CheckpointError(
          f'checkpoint {path}: does not match the model built from its '
          f'config ({str(e).splitlines()[0]})') from e
  logging.info('Restored %s (img_size %d).', path, config.img_size)
  return model
