"""Checking the checkpoint files of a model folder before restoring them.

A `tf.train.CheckpointManager` folder holds `ckpt-<step>.index`,
`ckpt-<step>.data-KKKKK-of-NNNNN` and the `checkpoint` state file naming the
latest checkpoint and the ones the manager keeps. Things go wrong outside
TensorFlow's control: a copy or a full disk cuts a data file short, a user
deletes the newest checkpoint, the state file is overwritten. TensorFlow then
fails deep inside a restore (`IndexError: Read less bytes than requested`),
or, with a state file naming missing files, silently finds no checkpoint, so
that training restarts at step 0 while its manager deletes the older intact
checkpoints it still lists.

This module:
  * `verify` reads every tensor of a checkpoint (TensorFlow checks each
    one's CRC32C) and raises CheckpointError naming the file;
  * `newest_readable` picks the newest checkpoint that verifies, from the
    files present (the state file may be wrong), and names the others;
  * `repair_state` rewrites the state file from the files present, listing
    only checkpoints up to the one restored, so that the manager of a resumed
    run deletes nothing it did not restore from;
  * `resume_checkpoint` combines them for the trainer.
"""

import glob
import os
import re
from typing import List, NamedTuple, Optional, Tuple

from absl import logging
import tensorflow as tf
# The public tf.train.update_checkpoint_state is TF1-only (tf.compat.v1);
# this is what it and CheckpointManager call.
from tensorflow.python.checkpoint import checkpoint_management  # pylint: disable=g-direct-tensorflow-import

from hmr_tf import errors

CHECKPOINT_PREFIX = 'ckpt'
STATE_FILENAME = 'checkpoint'
_INDEX_RE = re.compile(r'^' + CHECKPOINT_PREFIX + r'-(\d+)\.index$')
_DATA_RE = re.compile(r'\.data-(\d+)-of-(\d+)$')

# What reading a damaged checkpoint raises: IndexError for a data file cut
# short, DataLossError for a CRC mismatch, NotFoundError for a missing
# shard, OpError/ValueError/RuntimeError for a bad index.
_READ_ERRORS = (tf.errors.OpError, IndexError, ValueError, RuntimeError,
                OSError)


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
