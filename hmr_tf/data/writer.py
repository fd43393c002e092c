"""The shared sharded TFRecord writer every converter writes through.

Layout (see the data contract):
  <output_dir>/<dataset>/<split>_<index:05d>.tfrecord
  <output_dir>/<dataset>/<dataset>_meta.json   (the sidecar)

Each shard is written to a hidden temp name (`.<shard>.tmp`) and, once it
holds `shard_size` records (or the split ends), renamed to a hidden staged
name (`.<shard>.new`) beside the previous conversion, which stays untouched
while the new one is written. Only when the whole conversion is complete
does `close()` replace the previous one: it removes the old sidecar, renames
the staged shards to their final names, deletes old shards the new
conversion does not have, and writes the new sidecar last (via a temp name,
hmr_tf.files.atomic_io).
The sidecar's presence marks a finished conversion, and readers take every
count from it instead of hard-coding dataset sizes. A conversion that fails
deletes its temp and staged shards, writes no sidecar, and leaves the
previous conversion byte-identical.
"""

import collections
import contextlib
import glob
import json
import os
from typing import Dict, Iterator, List, Optional, Union

from absl import logging
import tensorflow as tf

from hmr_tf import configs
from hmr_tf.data import schema
from hmr_tf.files import atomic_io

DEFAULT_SHARD_SIZE = 500
DEFAULT_MOCAP_SHARD_SIZE = 10000
_MAX_REPORTED_SKIPS = 50
_STAGED = '.new'  # Suffix of complete shards waiting for close().


class BadRecordError(ValueError):
  """One input record is malformed; names the file and the record."""

  def __init__(self, file: str, record: Union[str, int], message: str):
    self.file = str(file)
    self.record = record
    self.message = message
    super().__init__(f'{file}: record {record}: {message}')


def sidecar_path(output_dir: str, dataset: str) -> str:
  """Path of a dataset's JSON sidecar."""
  return os.path.join(output_dir, dataset, f'{dataset}_meta.json')


def shard_name(split: str, index: int) -> str:
  """File name of shard `index` of `split`."""
  return f'{split}_{index:05d}.tfrecord'


def read_sidecar(output_dir: str, dataset: str) -> dict:
  """Reads a dataset's sidecar (raises FileNotFoundError naming it)."""
  path = sidecar_path(output_dir, dataset)
  if not os.path.exists(path):
    raise FileNotFoundError(f'{path}: no sidecar; convert the dataset first')
  with open(path, 'r', encoding='utf-8') as f:
    return json.load(f)


class _SplitShards:
  """The open shard and counts of one split."""

  def __init__(self):
    self.writer: Optional[tf.io.TFRecordWriter] = None
    self.temp_path: Optional[str] = None
    self.in_shard = 0
    self.next_index = 0
    self.files: List[str] = []
    self.file_records: List[int] = []  # Records in each of `files`.
    self.num_examples = 0
    self.num_skipped = 0
    self.filtered: Dict[str, int] = collections.Counter()


class ShardedWriter:
  """Writes examples of one dataset into sharded TFRecords plus a sidecar.

  Use as a context manager; `close()` (called on a clean exit) finishes the
  open shards and writes the sidecar. On an exception the open temp shards
  are deleted and no sidecar is written.

  Example:
    with ShardedWriter(out, 'lsp', schema.KIND_2D, skip_bad=True) as w:
      for i, item in enumerate(items):
        with w.guard('train', path, i):
          w.write('train', make_example(item))
  """

  def __init__(self,
               output_dir: str,
               dataset: str,
               kind: str,
               shard_size: int = DEFAULT_SHARD_SIZE,
               skip_bad: bool = False,
               extra: Optional[dict] = None):
    """Creates the dataset folder and removes leftovers of crashed runs.

    A previous complete conversion (sidecar and shards) stays until `close()`
    replaces it.

    Args:
      output_dir: the root output folder.
      dataset: the dataset name (sub-folder and sidecar name).
      kind: one of `schema.KINDS`.
      shard_size: records per shard (> 0).
      skip_bad: count and skip records that raise `BadRecordError` inside
        `guard` instead of stopping.
      extra: more JSON-serialisable facts to store in the sidecar.
    """
    configs.check_choice('kind', kind, schema.KINDS)
    if shard_size <= 0:
      raise ValueError(f'shard_size: expected > 0, got {shard_size}')
    self.dataset = dataset
    self.kind = kind
    self.shard_size = int(shard_size)
    self.skip_bad = skip_bad
    self.extra = dict(extra or {})
    self.directory = os.path.join(output_dir, dataset)
    self._output_dir = output_dir
    self._splits: Dict[str, _SplitShards] = {}
    self._skip_messages: List[str] = []
    self._closed = False
    os.makedirs(self.directory, exist_ok=True)
    # Temp and staged shards of a run that crashed are never part of a
    # finished conversion.
    leftovers = glob.glob(os.path.join(self.directory, '.*.tmp'))
    leftovers += glob.glob(os.path.join(self.directory, '.*' + _STAGED))
    leftovers += glob.glob(os.path.join(self.directory,
                                        atomic_io.TEMP_PREFIX + '*'))
    leftovers.append(sidecar_path(output_dir, dataset) + '.tmp')  # Older runs.
    for path in leftovers:
      if os.path.exists(path):
        logging.info('Removing a leftover of an interrupted run: %s', path)
        os.remove(path)

  def __enter__(self) -> 'ShardedWriter':
    return self

  def __exit__(self, exc_type, exc, tb) -> None:
    if exc_type is None:
      self.close()
    else:
      self.abort()

  def _split(self, split: str) -> _SplitShards:
    if split not in self._splits:
      self._splits[split] = _SplitShards()
    return self._splits[split]

  def add_split(self, split: str) -> None:
    """Declares a split so the sidecar lists it even when it stays empty."""
    self._split(split)

  def write(self, split: str,
            example: Union[tf.train.Example, bytes]) -> None:
    """Appends one example (a `tf.train.Example` or its serialisation)."""
    if self._closed:
      raise RuntimeError('ShardedWriter: write after close')
    state = self._split(split)
    if state.writer is None:
      name = shard_name(split, state.next_index)
      state.temp_path = os.path.join(self.directory, f'.{name}.tmp')
      state.writer = tf.io.TFRecordWriter(state.temp_path)
    if isinstance(example, tf.train.Example):
      example = example.SerializeToString()
    state.writer.write(example)
    state.in_shard += 1
    state.num_examples += 1
    if state.in_shard >= self.shard_size:
      self._finish_shard(split, state)

  def _staged_path(self, name: str) -> str:
    return os.path.join(self.directory, f'.{name}{_STAGED}')

  def _finish_shard(self, split: str, state: _SplitShards) -> None:
    state.writer.close()
    name = shard_name(split, state.next_index)
    os.replace(state.temp_path, self._staged_path(name))
    state.files.append(name)
    state.file_records.append(state.in_shard)
    state.writer = None
    state.temp_path = None
    state.in_shard = 0
    state.next_index += 1

  def skip(self, split: str, error: Exception) -> None:
    """Counts one skipped bad record of `split` and logs why."""
    state = self._split(split)
    state.num_skipped += 1
    logging.warning('Skipping bad record: %s', error)
    if len(self._skip_messages) < _MAX_REPORTED_SKIPS:
      self._skip_messages.append(str(error))

  def filtered(self, split: str, reason: str, count: int = 1) -> None:
    """Counts records the dataset's own selection rules left out."""
    self._split(split).filtered[reason] += count

  @contextlib.contextmanager
  def guard(self, split: str, file: str,
            record: Union[str, int]) -> Iterator[None]:
    """Runs the body; a bad record stops the run or (skip_bad) is counted.

    `BadRecordError` passes through unchanged (it already names its file and
    record). Other `ValueError`s and `OSError`s raised while reading one
    record are turned into a `BadRecordError` naming `file` and `record`.

    Args:
      split: the split the record belongs to.
      file: the input file the record comes from.
      record: the record's index or name inside that file.

    Yields:
      Nothing.
    """
    try:
      yield
    except BadRecordError as e:
      if not self.skip_bad:
        raise
      self.skip(split, e)
    except (ValueError, OSError) as e:
      error = BadRecordError(file, record, f'{type(e).__name__}: {e}')
      if not self.skip_bad:
        raise error from e
      self.skip(split, error)

  def abort(self) -> None:
    """Deletes this run's temp and staged shards; writes no sidecar.

    The previous conversion in the folder (if any) is left as it was.
    """
    for state in self._splits.values():
      if state.writer is not None:
        state.writer.close()
        state.writer = None
      staged = [self._staged_path(name) for name in state.files]
      for path in [state.temp_path] + staged:
        if path and os.path.exists(path):
          os.remove(path)
      state.temp_path = None
    self._closed = True

  def summary(self) -> dict:
    """The sidecar's content."""
    splits = {}
    for split, state in sorted(self._splits.items()):
      splits[split] = {
          'num_examples': state.num_examples,
          'files': list(state.files),
          'records_per_file': list(state.file_records),
          'num_skipped': state.num_skipped,
          'filtered': dict(sorted(state.filtered.items())),
      }
    return {
        'dataset': self.dataset,
        'kind': self.kind,
        'shard_size': self.shard_size,
        'splits': splits,
        'num_skipped': sum(s.num_skipped for s in self._splits.values()),
        'skipped_examples': list(self._skip_messages),
        **self.extra,
    }

  def _replace_previous(self, path: str, meta: dict) -> None:
    """Puts the staged shards in place of the previous conversion's.

    The old sidecar goes first so that no sidecar ever names a mix of shards.
    """
    if os.path.exists(path):
      os.remove(path)
    new_files = {f for info in meta['splits'].values() for f in info['files']}
    for name in sorted(new_files):
      os.replace(self._staged_path(name), os.path.join(self.directory, name))
    for old in glob.glob(os.path.join(self.directory, '*.tfrecord')):
      if os.path.basename(old) not in new_files:
        logging.info('Removing a shard of the previous conversion: %s', old)
        os.remove(old)

  def close(self) -> dict:
    """Finishes the open shards, replaces the previous conversion with this
    one (sidecar last) and returns the sidecar's content."""
    if self._closed:
      raise RuntimeError('ShardedWriter: closed twice')
    path = sidecar_path(self._output_dir, self.dataset)
    with atomic_io.atomic_path(path) as temp:
      try:
        for split, state in self._splits.items():
          if state.writer is not None:
            self._finish_shard(split, state)
        meta = self.summary()
        with open(temp, 'w', encoding='utf-8') as f:
          json.dump(meta, f, indent=2, sort_keys=True)
      except BaseException:
        # Not complete (a full disk, an interrupt): keep the previous one
        # (leaving the block deletes the temp sidecar).
        self.abort()
        raise
      self._closed = True
      self._replace_previous(path, meta)
      # Leaving the block renames the new sidecar into place, last.
    for split, info in meta['splits'].items():
      logging.info('%s/%s: %d examples in %d shards, %d bad records skipped',
                   self.dataset, split, info['num_examples'],
                   len(info['files']), info['num_skipped'])
    return meta
