"""The shared sharded TFRecord writer every converter writes through.

Layout (see the data contract):
  <output_dir>/<dataset>/<split>_<index:05d>.tfrecord
  <output_dir>/<dataset>/<dataset>_meta.json   (the sidecar)

Each shard is written to a hidden temp name and renamed once it holds
`shard_size` records (or the split ends), so a shard under its final name is
always complete. The sidecar is written last, also via a temp name: its
presence marks a finished conversion, and readers take every count from it
instead of hard-coding dataset sizes. A conversion that fails deletes its
open temp shard and writes no sidecar.
"""

import collections
import contextlib
import glob
import json
import os
from typing import Dict, Iterator, List, Optional, Union

from absl import logging
import tensorflow as tf

from hmr_tf.data import features

DEFAULT_SHARD_SIZE = 500
DEFAULT_MOCAP_SHARD_SIZE = 10000
_MAX_REPORTED_SKIPS = 50


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
    self.num_examples = 0
    self.num_skipped = 0
    self.filtered: Dict[str, int] = collections.Counter()


class ShardedWriter:
  """Writes examples of one dataset into sharded TFRecords plus a sidecar.

  Use as a context manager; `close()` (called on a clean exit) finishes the
  open shards and writes the sidecar. On an exception the open temp shards
  are deleted and no sidecar is written.

  Example:
    with ShardedWriter(out, 'lsp', features.KIND_2D, skip_bad=True) as w:
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
    """Creates the dataset folder and removes outputs of earlier runs.

    Args:
      output_dir: the root output folder.
      dataset: the dataset name (sub-folder and sidecar name).
      kind: one of `features.KINDS`.
      shard_size: records per shard (> 0).
      skip_bad: count and skip records that raise `BadRecordError` inside
        `guard` instead of stopping.
      extra: more JSON-serialisable facts to store in the sidecar.
    """
    if kind not in features.KINDS:
      raise ValueError(f'kind: expected one of {features.KINDS}, got {kind!r}')
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
    # Shards of an earlier run would mix with this one's; the sidecar goes
    # first so a crash below never leaves a sidecar naming missing files.
    stale = [sidecar_path(output_dir, dataset)]
    stale += glob.glob(os.path.join(self.directory, '*.tfrecord'))
    stale += glob.glob(os.path.join(self.directory, '.*.tmp'))
    stale.append(sidecar_path(output_dir, dataset) + '.tmp')
    for path in stale:
      if os.path.exists(path):
        logging.info('Removing output of an earlier run: %s', path)
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

  def _finish_shard(self, split: str, state: _SplitShards) -> None:
    state.writer.close()
    name = shard_name(split, state.next_index)
    os.replace(state.temp_path, os.path.join(self.directory, name))
    state.files.append(name)
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
    """Closes and deletes every open temp shard; writes no sidecar."""
    for state in self._splits.values():
      if state.writer is not None:
        state.writer.close()
        state.writer = None
      if state.temp_path and os.path.exists(state.temp_path):
        os.remove(state.temp_path)
      state.temp_path = None
    self._closed = True

  def summary(self) -> dict:
    """The sidecar's content."""
    splits = {}
    for split, state in sorted(self._splits.items()):
      splits[split] = {
          'num_examples': state.num_examples,
          'files': list(state.files),
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

  def close(self) -> dict:
    """Finishes the open shards, writes the sidecar and returns its content."""
    if self._closed:
      raise RuntimeError('ShardedWriter: closed twice')
    for split, state in self._splits.items():
      if state.writer is not None:
        self._finish_shard(split, state)
    self._closed = True
    meta = self.summary()
    path = sidecar_path(self._output_dir, self.dataset)
    temp = path + '.tmp'
    with open(temp, 'w', encoding='utf-8') as f:
      json.dump(meta, f, indent=2, sort_keys=True)
    os.replace(temp, path)
    for split, info in meta['splits'].items():
      logging.info('%s/%s: %d examples in %d shards, %d bad records skipped',
                   self.dataset, split, info['num_examples'],
                   len(info['files']), info['num_skipped'])
    return meta
