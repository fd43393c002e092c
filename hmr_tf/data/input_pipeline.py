"""The tf.data input pipeline: sharded readers, mixing, the mocap stream.

Data flow (training):

  per dataset: shard files (from the sidecar) -> shuffled, repeated ->
    interleaved TFRecord readers (each shard checked for corruption) ->
    shuffled records
  datasets mixed by weight (`sample_from_datasets`, seeded) -> enumerate ->
  decode + parse (per-element stateless seed = (config.seed, index)) ->
  batch B -> zip with the mocap stream (batches of num_stage x B) -> prefetch

  With `cache_crops` (no augmentation): per dataset, the records in stored
  order -> decode + parse -> cached in memory after the first pass ->
  shuffled (a buffer of the whole split, reseeded every pass), repeated;
  then mixed, batched and zipped as above. The mocap samples are cached
  the same way.

Every random choice (shard order, shuffle buffers, mixing, augmentation)
takes its seed from `configs.DataConfig.seed`; with `deterministic=True` two runs
with the same seed give the same batches.

Checks before reading (`check_shards`, cheap: framing headers and one record
per shard, not the contents). Each shard's records are counted by walking
the TFRecord framing (an 8-byte length per record) and compared with the
sidecar's count (per shard where the sidecar lists `records_per_file` or
`shard_size`, else the split total), so a shard cut at a record boundary, cut
mid-record or with a broken length field is found before training; and the
first record of every shard must carry the keys the decoder requires. Either
problem raises `InputDataError`, one line naming the file, the record or
field, and what was expected; with `skip_corrupt_records=True` a shard with
missing records is read as far as it goes and the lost records are counted
(`corrupt_record_counter()`) and logged once.

Corrupt records inside a shard. TensorFlow's TFRecord reader reports a bad
record (e.g. a failed checksum) without naming the file and cannot read past
it. Each shard is therefore read with errors caught, and at its end the
bytes read (record lengths plus the 16 framing bytes per record) are
compared with the file size: a shard that stopped early raises an error
naming the file and the record, or, with `skip_corrupt_records=True`, its
remaining records are skipped, and how many were lost is counted and logged
once per shard (not on every pass over the data). (Uncompressed TFRecords
only, which is what hmr_tf writes.)
"""

import dataclasses
import glob
import json
import os
import struct
import threading
import zlib
from typing import Dict, List, Optional, Sequence, Tuple

from absl import logging
from google.protobuf import message as pb_message
import tensorflow as tf

from hmr_tf import configs
from hmr_tf.data import decoder
from hmr_tf.data import parser
from hmr_tf.data import schema

AUTOTUNE = tf.data.AUTOTUNE

# TFRecord framing around each record: uint64 length, uint32 length CRC,
# then the data, then uint32 data CRC.
_FRAMING_BYTES = 16


class InputDataError(ValueError):
  """Training or evaluation data that cannot be used as it is.

  The message is one line naming the file, the record or field, and what
  was expected.
  """


# ---------------------------------------------------------------------------
# Finding shards.


@dataclasses.dataclass(frozen=True)
class ShardList:
  """The shards of one dataset split.

  Attributes:
    dataset: the dataset name.
    files: shard paths, sorted.
    sizes: file size of each shard in bytes.
    num_examples: examples in the split (from the sidecar), or None.
    kind: '2d', '3d' or 'mocap' (from the sidecar), or None.
    records: records the sidecar expects in each of `files`, or None when
      it gives only the split's total (or there is no sidecar).
    sidecar: the sidecar's path, or None.
  """
  dataset: str
  files: Tuple[str, ...]
  sizes: Tuple[int, ...]
  num_examples: Optional[int]
  kind: Optional[str]
  records: Optional[Tuple[int, ...]] = None
  sidecar: Optional[str] = None


def _records_per_file(meta: dict, split_meta: dict, num_files: int,
                      num_examples: int) -> Optional[Tuple[int, ...]]:
  """The sidecar's record count of each shard, where it tells them.

  Sidecars list `records_per_file`; older ones written by the shared writer
  give `shard_size` (every shard full but the last).
  """
  listed = split_meta.get('records_per_file')
  if isinstance(listed, list) and len(listed) == num_files:
    return tuple(int(n) for n in listed)
  shard_size = meta.get('shard_size')
  if isinstance(shard_size, int) and shard_size > 0 and num_files:
    last = num_examples - shard_size * (num_files - 1)
    if 0 < last <= shard_size:
      return (shard_size,) * (num_files - 1) + (last,)
  return None


def read_sidecar(data_dir: str, dataset: str) -> Optional[dict]:
  """A dataset's sidecar JSON as a dict, or None when there is none.

  Raises:
    ValueError: naming the file when it is not valid JSON.
  """
  sidecar = os.path.join(data_dir, dataset, f'{dataset}_meta.json')
  if not tf.io.gfile.exists(sidecar):
    return None
  with tf.io.gfile.GFile(sidecar, 'r') as f:
    try:
      return json.load(f)
    except json.JSONDecodeError as e:
      raise ValueError(f'{sidecar}: not valid JSON ({e})') from e


def list_shards(data_dir: str, dataset: str, split: str) -> ShardList:
  """Lists a split's shards from the dataset's sidecar JSON.

  Without a sidecar (records made by the original HMR code) the shards are
  found by name: `<dataset>/<split>_*.tfrecord`, else
  `<dataset>/<split>/*.tfrecord`; counts and kind are then unknown.

  Args:
    data_dir: the data root.
    dataset: dataset directory name.
    split: split name, e.g. 'train' or 'test'.

  Returns:
    A `ShardList`.

  Raises:
    FileNotFoundError: no shards, or a shard named in the sidecar is missing.
    ValueError: a malformed sidecar (named).
  """
  dataset_dir = os.path.join(data_dir, dataset)
  sidecar = os.path.join(dataset_dir, f'{dataset}_meta.json')
  num_examples = kind = records = None
  if tf.io.gfile.exists(sidecar):
    with tf.io.gfile.GFile(sidecar, 'r') as f:
      try:
        meta = json.load(f)
      except json.JSONDecodeError as e:
        raise ValueError(f'{sidecar}: not valid JSON ({e})') from e
    try:
      kind = meta['kind']
      split_meta = meta['splits'][split]
      num_examples = int(split_meta['num_examples'])
      names = list(split_meta['files'])
      records = _records_per_file(meta, split_meta, len(names), num_examples)
    except (KeyError, TypeError, ValueError) as e:
      raise ValueError(
          f'{sidecar}: expected "kind" and "splits"/"{split}" with '
          f'"num_examples" and "files" ({e!r})') from e
    if kind not in schema.KINDS:
      raise ValueError(f'{sidecar}: "kind" must be one of {schema.KINDS}, '
                       f'got {kind!r}')
    files = [n if os.path.isabs(n) else os.path.join(dataset_dir, n)
             for n in names]
    missing = [f for f in files if not tf.io.gfile.exists(f)]
    if missing:
      raise FileNotFoundError(f'{sidecar}: lists shard(s) that do not exist: '
                              f'{missing[:3]}')
  else:
    files = sorted(glob.glob(os.path.join(dataset_dir, f'{split}_*.tfrecord')))
    if not files:
      files = sorted(glob.glob(os.path.join(dataset_dir, split, '*.tfrecord')))
    if files:
      logging.warning('%s: no sidecar %s; using %d shards found by name.',
                      dataset, sidecar, len(files))
  if not files:
    raise FileNotFoundError(
        f'no {split!r} shards for dataset {dataset!r} under {dataset_dir} '
        f'(expected {sidecar} or {split}_*.tfrecord files)')
  if records is not None:
    # Sorted below: keep each count with its file.
    records = tuple(n for _, n in sorted(zip(files, records)))
  files = sorted(files)
  sizes = tuple(int(tf.io.gfile.stat(f).length) for f in files)
  return ShardList(dataset, tuple(files), sizes, num_examples, kind, records,
                   sidecar if num_examples is not None else None)


# ---------------------------------------------------------------------------
# Checking shards before reading: record counts and keys.

# Each record: uint64 length, uint32 masked CRC of the length, the data,
# uint32 masked CRC of the data.
_HEADER_BYTES = 12


@dataclasses.dataclass(frozen=True)
class _Framing:
  """What walking a shard's framing headers found.

  Attributes:
    records: whole records framed.
    end: byte offset where the walk stopped (the file size when whole).
    first_features: {key: (value list kind, number of values)} of record 0,
      or None when the shard has no record or record 0 is not an Example.
  """
  records: int
  end: int
  first_features: Optional[Dict[str, Tuple[Optional[str], int]]]


_FRAMING_CACHE: Dict[Tuple[str, int, int], _Framing] = {}


def _feature_summary(record: bytes
                     ) -> Optional[Dict[str, Tuple[Optional[str], int]]]:
  """{key: (kind, count)} of a serialised Example; None if it is not one."""
  try:
    example = tf.train.Example.FromString(record)
  except pb_message.DecodeError:
    return None
  summary = {}
  for key, feature in example.features.feature.items():
    kind = feature.WhichOneof('kind')
    summary[key] = (kind, len(getattr(feature, kind).value) if kind else 0)
  return summary


def _walk_framing(path: str, size: int) -> _Framing:
  """Counts a shard's records from their length headers (no data read but
  record 0's); cached by path, size and modification time."""
  key = (path, size, int(tf.io.gfile.stat(path).mtime_nsec))
  if key in _FRAMING_CACHE:
    return _FRAMING_CACHE[key]
  records = pos = 0
  first = None
  # A small buffer: a header read after a seek costs one short read.
  with (tf.io.gfile.GFile(path, 'rb') if '://' in path
        else open(path, 'rb', buffering=8192)) as f:
    while pos + _HEADER_BYTES <= size:
      f.seek(pos)
      header = f.read(_HEADER_BYTES)
      if len(header) < _HEADER_BYTES:
        break
      (length,) = struct.unpack('<Q', header[:8])
      end = pos + _HEADER_BYTES + length + 4
      if end > size:
        break
      if records == 0:
        first = _feature_summary(f.read(length))
      records += 1
      pos = end
  framing = _Framing(records, pos, first)
  _FRAMING_CACHE[key] = framing
  return framing


def _required_features(spec) -> Dict[str, Tuple[str, int]]:
  """{key: (list kind, number of values)} of the spec's features without a
  default (a record lacking one fails to parse)."""
  kinds = {tf.string: 'bytes_list', tf.int64: 'int64_list',
           tf.float32: 'float_list'}
  required = {}
  for key, feature in spec.items():
    if (isinstance(feature, tf.io.FixedLenFeature) and
        feature.default_value is None):
      size = 1
      for n in feature.shape:
        size *= int(n)
      required[key] = (kinds[feature.dtype], size)
  return required


def _check_keys(path: str, dataset: str, framing: _Framing, spec,
                what: str) -> None:
  """Raises InputDataError when record 0 lacks a key the decoder needs."""
  if framing.records == 0:
    return
  present = framing.first_features
  if present is None:
    raise InputDataError(
        f'{path}: record 0 of dataset {dataset!r} is not a tf.train.Example; '
        f'expected {what} records')
  required = _required_features(spec)
  for key, (kind, size) in sorted(required.items()):
    if key not in present:
      raise InputDataError(
          f'{path}: record 0 of dataset {dataset!r} has no feature {key!r}; '
          f'expected {what} records with {", ".join(sorted(required))} '
          f'(found {", ".join(sorted(present)) or "no features"})')
    found, count = present[key]
    if found != kind or count != size:
      raise InputDataError(
          f'{path}: record 0 of dataset {dataset!r}: feature {key!r} holds '
          f'{count} {found or "values"}, expected {size} {kind}')


_REPORT_LOCK = threading.Lock()
# (damaged shard or sidecar, its size) -> records lost.
_REPORTED: Dict[Tuple[str, int], int] = {}


def _report_lost(where: Tuple[str, int], lost: int, message: str) -> int:
  """Logs a damaged shard's lost records once (per process and file
  version); returns the number newly lost."""
  with _REPORT_LOCK:
    if where in _REPORTED:
      return 0
    _REPORTED[where] = lost
  logging.warning('Skipping %d record(s): %s', lost, message)
  return lost


def _count_lost(counter: Optional[tf.Variable], lost: int) -> None:
  if counter is not None and lost:
    with tf.init_scope():
      counter.assign_add(lost)


def check_shards(shards: ShardList, spec, what: str,
                 skip_corrupt: bool = False,
                 counter: Optional[tf.Variable] = None,
                 whole_split: bool = True) -> Tuple[int, ...]:
  """Checks shards' record counts and first records before reading them.

  Cheap: reads each record's 12-byte framing header and each shard's first
  record, not the data. A shard is damaged when its framing stops before its
  end (cut mid-record, a broken length field) or when it holds another
  number of records than the sidecar lists (cut at a record boundary).

  Args:
    shards: the split's shards (from `list_shards`).
    spec: the decoder's `tf.io` parse spec; the first record of every shard
      must hold its required features.
    what: the records expected, for messages (e.g. 'image (2D/3D)').
    skip_corrupt: log (once per shard) and count the records a damaged shard
      lost instead of raising.
    counter: where lost records are counted (with skip_corrupt).
    whole_split: `shards` lists the whole split (so the sidecar's total
      applies); False for one worker's part.

  Returns:
    The records expected in each shard (the sidecar's count where it gives
    one, else the count framed), for the reader's end-of-shard check.

  Raises:
    InputDataError: naming the shard (or the sidecar), the record or field,
      and what was expected.
  """
  framings = [_walk_framing(f, n) for f, n in zip(shards.files, shards.sizes)]
  for path, framing in zip(shards.files, framings):
    _check_keys(path, shards.dataset, framing, spec, what)
  wanted = (list(shards.records) if shards.records is not None
            else [None] * len(shards.files))
  for path, size, framing, want in zip(shards.files, shards.sizes, framings,
                                       wanted):
    listed = '' if want is None else f'; the sidecar lists {want} records'
    if framing.end != size:
      message = (f'{path}: record {framing.records}: truncated or corrupt '
                 f'(its framing stops at byte {framing.end} of {size}, after '
                 f'{framing.records} whole records{listed})')
      lost = max(1, (want or 0) - framing.records)
    elif want is not None and framing.records != want:
      message = (f'{path}: holds {framing.records} records, the sidecar '
                 f'{shards.sidecar} lists {want} ' +
                 ('(cut at a record boundary?)' if framing.records < want
                  else '(from another conversion?)'))
      lost = max(0, want - framing.records)
      if framing.records > want or not skip_corrupt:
        raise InputDataError(message)
    else:
      continue
    if not skip_corrupt:
      raise InputDataError(message + '; set skip_corrupt_records to skip it')
    _count_lost(counter, _report_lost((path, size), lost, message))
  framed = sum(f.records for f in framings)
  if (whole_split and shards.records is None and
      shards.num_examples is not None and framed != shards.num_examples):
    message = (f'{shards.sidecar}: lists {shards.num_examples} examples, its '
               f'{len(shards.files)} shard(s) hold {framed} ' +
               ('(a shard cut at a record boundary?)'
                if framed < shards.num_examples
                else '(shards from another conversion?)'))
    if not skip_corrupt or framed > shards.num_examples:
      raise InputDataError(message)
    # Records of shards already reported (cut mid-record) count there.
    unexplained = (shards.num_examples - framed -
                   sum(_REPORTED.get(key, 0)
                       for key in zip(shards.files, shards.sizes)))
    if unexplained > 0:
      _count_lost(counter, _report_lost((shards.sidecar, framed), unexplained,
                                        message))
  return tuple(f.records if w is None else w for f, w in zip(framings, wanted))


# ---------------------------------------------------------------------------
# Reading shards with corruption checks.

_COUNTER: List[tf.Variable] = []


def corrupt_record_counter() -> tf.Variable:
  """The process-wide count of records lost to damaged shards.

  Only `skip_corrupt_records=True` pipelines add to it, each damaged shard
  once per process: the records its check or its reader could not read (the
  reader cannot resynchronise after a bad record, so the rest of that shard
  is lost). The trainer can log it as a metric.
  """
  if not _COUNTER:
    with tf.init_scope():
      _COUNTER.append(
          tf.Variable(0, dtype=tf.int64, trainable=False,
                      name='corrupt_records'))
  return _COUNTER[0]


def _report_skipped(path, records_read, expected, read_bytes, size):
  """py_function: logs a shard that stopped early, once; returns the
  number of records newly lost."""
  path = path.numpy().decode('utf-8', 'replace')
  read = int(records_read)
  lost = max(int(expected) - read, 1)
  message = (f'corrupt, truncated or unreadable TFRecord file {path}: record '
             f'{read} is bad (read {int(read_bytes)} of {int(size)} bytes); '
             f'the rest of the shard is skipped')
  return tf.constant(_report_lost((path, int(size)), lost, message),
                     tf.int64)


def _read_shard(path: tf.Tensor, size: tf.Tensor, expected: tf.Tensor,
                skip_corrupt: bool,
                counter: Optional[tf.Variable]) -> tf.data.Dataset:
  """Records of one shard; at its end checks the whole file was read."""
  records = tf.data.TFRecordDataset(path).ignore_errors()
  records = records.map(lambda r: (r, tf.constant(False)))
  end_marker = tf.data.Dataset.from_tensors((tf.constant(b''),
                                             tf.constant(True)))
  records = records.concatenate(end_marker)

  def count_bytes(state, element):
    read_bytes, read_records = state
    record, is_end = element
    length = tf.cast(tf.strings.length(record), tf.int64) + _FRAMING_BYTES
    zero = tf.constant(0, tf.int64)
    read_bytes += tf.where(is_end, zero, length)
    read_records += tf.where(is_end, zero, tf.constant(1, tf.int64))
    return ((read_bytes, read_records),
            (record, is_end, read_bytes, read_records))

  records = records.scan((tf.constant(0, tf.int64), tf.constant(0, tf.int64)),
                         count_bytes)

  def check_end(record, is_end, read_bytes, read_records):
    complete = tf.logical_or(tf.logical_not(is_end),
                             tf.equal(read_bytes, size))
    if skip_corrupt:
      def count():
        lost = tf.py_function(_report_skipped,
                              [path, read_records, expected, read_bytes, size],
                              tf.int64)
        return counter.assign_add(lost)
      done = tf.cond(complete, lambda: counter.read_value(), count)
      deps = [done]
    else:
      message = tf.strings.format(
          'Corrupt, truncated or unreadable TFRecord file {}: record {} is '
          'bad (read {} of {} bytes; {} records expected). Set '
          'skip_corrupt_records to skip the rest of such shards.',
          [path, read_records, read_bytes, size, expected], summarize=-1)
      deps = [tf.debugging.Assert(complete, [message])]
    with tf.control_dependencies(deps):
      return tf.identity(record), is_end

  records = records.map(check_end)
  return records.filter(lambda record, is_end: tf.logical_not(is_end)).map(
      lambda record, is_end: record)


def _sub_seed(seed: int, tag: str) -> int:
  """A stable seed for one random choice, derived from config.seed."""
  return (int(seed) * 1000003 + zlib.crc32(tag.encode('utf-8'))) % (2**31 - 1)


_IMAGE_RECORDS = 'image (2D/3D)'
_MOCAP_RECORDS = 'mocap'


def _records(config: configs.DataConfig, shards: ShardList, training: bool,
             counter: Optional[tf.Variable],
             worker_shard: Optional[Tuple[int, int]] = None,
             mocap: bool = False) -> tf.data.Dataset:
  """Serialised records of one dataset split (shuffled, repeated if training).

  The shards are checked first (`check_shards`). `worker_shard` =
  (num_workers, index): read only the shard files index, index +
  num_workers, ... (see train_dataset). `mocap`: the records are mocap
  records (else image records).
  """
  if config.skip_corrupt_records and counter is None:
    counter = corrupt_record_counter()
  if worker_shard is not None:
    num_workers, index = worker_shard
    if len(shards.files) < num_workers:
      raise ValueError(
          f'dataset {shards.dataset!r}: {len(shards.files)} shard file(s) '
          f'cannot be split over {num_workers} input workers (use data '
          f'sharding, or write at least {num_workers} shards)')
    part = slice(index, None, num_workers)
    shards = dataclasses.replace(
        shards, files=shards.files[part], sizes=shards.sizes[part],
        records=None if shards.records is None else shards.records[part])
  spec = (schema.mocap_feature_spec() if mocap
          else schema.image_feature_spec())
  expected = check_shards(
      shards, spec, _MOCAP_RECORDS if mocap else _IMAGE_RECORDS,
      config.skip_corrupt_records, counter, whole_split=worker_shard is None)
  files_list = list(shards.files)
  files = tf.data.Dataset.from_tensor_slices(
      (files_list, tf.constant(shards.sizes, tf.int64),
       tf.constant(expected, tf.int64)))
  if training:
    files = files.shuffle(len(files_list),
                          seed=_sub_seed(config.seed, 'files/' + shards.dataset),
                          reshuffle_each_iteration=True).repeat()
    cycle_length = config.cycle_length
    if cycle_length < 0:
      cycle_length = min(len(files_list), 4)
  else:
    cycle_length = 1  # Keeps the stored order for evaluation.
  read = lambda path, size, num: _read_shard(
      path, size, num, config.skip_corrupt_records, counter)
  if cycle_length > 1:
    records = files.interleave(read, cycle_length=cycle_length,
                               num_parallel_calls=AUTOTUNE,
                               deterministic=config.deterministic)
  else:
    records = files.interleave(read, cycle_length=1)
  if training:
    records = records.shuffle(
        config.shuffle_buffer,
        seed=_sub_seed(config.seed, 'records/' + shards.dataset),
        reshuffle_each_iteration=True)
  return records


def _mix(config: configs.DataConfig, streams: Sequence[tf.data.Dataset],
         weights: Sequence[float], tag: str) -> tf.data.Dataset:
  if len(streams) == 1:
    return streams[0]
  total = float(sum(weights))
  return tf.data.Dataset.sample_from_datasets(
      list(streams), weights=[w / total for w in weights],
      seed=_sub_seed(config.seed, tag), stop_on_empty_dataset=False)


def mixing_weights(config: configs.DataConfig,
                   shard_lists: Sequence[ShardList]) -> List[float]:
  """The sampling weight of each training dataset (sums to 1).

  Args:
    config: the data config (explicit `dataset_weights` win).
    shard_lists: one `ShardList` per `config.datasets` entry.

  Returns:
    Weights in `config.datasets` order.

  Raises:
    ValueError: default weights requested but a dataset has no sidecar.
  """
  if config.dataset_weights is not None:
    total = sum(config.dataset_weights)
    return [w / total for w in config.dataset_weights]
  for shards in shard_lists:
    if shards.kind is None or shards.num_examples is None:
      raise ValueError(
          f'dataset {shards.dataset!r} has no sidecar with its kind and size; '
          'give dataset_weights explicitly')
  groups = [[s for s in shard_lists if s.kind == schema.KIND_3D],
            [s for s in shard_lists if s.kind == schema.KIND_2D]]
  groups = [g for g in groups if g]
  weights = []
  for shards in shard_lists:
    group = next(g for g in groups if shards in g)
    group_size = sum(s.num_examples for s in group)
    share = shards.num_examples / group_size if group_size else 1.0 / len(group)
    weights.append(share / len(groups))
  return weights


# ---------------------------------------------------------------------------
# Public datasets.


def _options(config: configs.DataConfig) -> tf.data.Options:
  options = tf.data.Options()
  options.deterministic = config.deterministic
  return options


def image_dataset(config: configs.DataConfig,
                  counter: Optional[tf.Variable] = None,
                  worker_shard: Optional[Tuple[int, int]] = None
                  ) -> tf.data.Dataset:
  """The mixed, augmented training image batches (without mocap).

  Args:
    config: the data config.
    counter: where skipped corrupt records are counted (default
      `corrupt_record_counter()`).
    worker_shard: (num_workers, index) to read only this worker's shard
      files (see train_dataset); None reads all.

  Returns:
    A dataset of dicts of [B, ...] parser outputs (parser.TRAIN_KEYS).
  """
  shard_lists = [list_shards(config.data_dir, name, config.train_split)
                 for name in config.datasets]
  for shards in shard_lists:
    if shards.kind == schema.KIND_MOCAP:
      raise ValueError(f'dataset {shards.dataset!r} is a mocap dataset; list '
                       'it in mocap_datasets, not datasets')
  weights = mixing_weights(config, shard_lists)
  logging.info('Training datasets and weights: %s',
               list(zip(config.datasets, [round(w, 4) for w in weights])))
  parse = parser.parse_fn(config, is_training=True)
  seed = tf.constant(config.seed, tf.int64)
  if config.cache_crops:
    streams = [_cached_examples(config, s, parse, counter, worker_shard)
               for s in shard_lists]
    examples = _mix(config, streams, weights, 'mix/images')
    return examples.batch(config.batch_size, drop_remainder=True)

  streams = [_records(config, s, True, counter, worker_shard)
             for s in shard_lists]
  records = _mix(config, streams, weights, 'mix/images')

  def decode_and_parse(index, record):
    return parse(decoder.decode_image_example(record),
                 seed=tf.stack([seed, index]))

  ds = records.enumerate().map(decode_and_parse,
                               num_parallel_calls=config.num_parallel_calls,
                               deterministic=config.deterministic)
  return ds.batch(config.batch_size, drop_remainder=True)


def _cached_examples(config: configs.DataConfig, shards: ShardList, parse,
                     counter: Optional[tf.Variable],
                     worker_shard: Optional[Tuple[int, int]]
                     ) -> tf.data.Dataset:
  """One dataset's parsed examples, cached in memory, reshuffled, endless.

  The first pass reads the records in stored order, decodes and crops them
  (no augmentation: `cache_crops` requires it, so a crop never changes) and
  caches the examples; every pass, the first included, draws them through
  a shuffle buffer of the whole split (at least `shuffle_buffer`), reseeded
  each pass.
  """
  records = _records(config, shards, False, counter, worker_shard)
  # Without augmentation the draws are unused; one seed for all elements.
  seed = tf.constant([config.seed, 0], tf.int64)
  return _cached_reshuffled(
      config, shards,
      lambda r: parse(decoder.decode_image_example(r), seed=seed), records)


def _cached_reshuffled(config: configs.DataConfig, shards: ShardList, decode,
                       records: tf.data.Dataset) -> tf.data.Dataset:
  """decode(record) over `records`, cached after the first pass, endless,
  through a shuffle buffer of the whole split reseeded every pass."""
  elements = records.map(decode, num_parallel_calls=config.num_parallel_calls,
                         deterministic=config.deterministic).cache()
  buffer = max(config.shuffle_buffer, shards.num_examples or 0)
  return elements.shuffle(
      buffer, seed=_sub_seed(config.seed, 'cached/' + shards.dataset),
      reshuffle_each_iteration=True).repeat()


def _cached_mocap(config: configs.DataConfig, shards: ShardList,
                  counter: Optional[tf.Variable],
                  worker_shard: Optional[Tuple[int, int]]) -> tf.data.Dataset:
  """One mocap dataset's decoded samples, cached, reshuffled, endless.

  As `_cached_examples` for the images: stored order on the first read,
  then a shuffle buffer of the whole split reseeded every pass.
  """
  records = _records(config, shards, False, counter, worker_shard,
                     mocap=True)
  return _cached_reshuffled(config, shards, decoder.decode_mocap_example,
                            records)


def mocap_dataset(config: configs.DataConfig,
                  counter: Optional[tf.Variable] = None,
                  worker_shard: Optional[Tuple[int, int]] = None
                  ) -> tf.data.Dataset:
  """Batches of real SMPL parameters for the discriminator (endless).

  Args:
    config: the data config.
    counter: where skipped corrupt records are counted.
    worker_shard: (num_workers, index), as for train_dataset.

  Returns:
    A dataset of {'pose': [num_stage * B, 72], 'shape': [num_stage * B, 10]}.
  """
  shard_lists = [list_shards(config.data_dir, name, config.train_split)
                 for name in config.mocap_datasets]
  if not shard_lists:
    raise ValueError('mocap_datasets is empty')
  for shards in shard_lists:
    if shards.kind not in (None, schema.KIND_MOCAP):
      raise ValueError(f'mocap dataset {shards.dataset!r} has kind '
                       f'{shards.kind!r}, expected {schema.KIND_MOCAP!r}')
  # In proportion to their sizes (the original read all files through one
  # queue); shard counts stand in where a sidecar is missing.
  weights = [s.num_examples if s.num_examples is not None else len(s.files)
             for s in shard_lists]
  if config.cache_crops:
    # Decoded samples in memory after the first pass: reading and checking
    # ~100 records a step otherwise costs about as much CPU as the whole
    # cached image stream (the mocap sets are small: 82 floats a sample).
    streams = [_cached_mocap(config, s, counter, worker_shard)
               for s in shard_lists]
    ds = _mix(config, streams, weights, 'mix/mocap')
  else:
    streams = [_records(config, s, True, counter, worker_shard, mocap=True)
               for s in shard_lists]
    records = _mix(config, streams, weights, 'mix/mocap')
    ds = records.map(decoder.decode_mocap_example,
                     num_parallel_calls=config.num_parallel_calls,
                     deterministic=config.deterministic)
  ds = ds.batch(config.num_stage * config.batch_size, drop_remainder=True)
  return ds.with_options(_options(config))


def train_dataset(config: configs.DataConfig,
                  counter: Optional[tf.Variable] = None,
                  worker_shard: Optional[Tuple[int, int]] = None
                  ) -> tf.data.Dataset:
  """Training batches: (images and labels, mocap), endless.

  Args:
    config: the data config.
    counter: where skipped corrupt records are counted.
    worker_shard: (num_workers, index) for multi-worker training: this
      worker reads only the shard files index, index + num_workers, ... of
      every dataset (its own disjoint part of the data; each dataset needs
      at least num_workers shards). tf.data's FILE auto-sharding cannot do
      this itself here: its graph rewrite stops at the mixing and indexing
      sources (sample_from_datasets, enumerate). See hmr_tf.training.distribute.
      None: read every shard.

  Returns:
    A dataset of (batch, mocap): batch is a dict of parser outputs
    ('image' [B, S, S, 3], 'keypoints2d' [B, 19, 3], 'joints3d' [B, 14, 3],
    'has_joints3d' [B], 'pose' [B, 72], 'shape' [B, 10], 'has_smpl' [B]);
    mocap is {'pose': [num_stage * B, 72], 'shape': [num_stage * B, 10]}.
  """
  ds = tf.data.Dataset.zip((image_dataset(config, counter, worker_shard),
                            mocap_dataset(config, counter, worker_shard)))
  return ds.prefetch(AUTOTUNE).with_options(_options(config))


def eval_dataset(config: configs.DataConfig, dataset_name: str, split: str = 'test',
                 counter: Optional[tf.Variable] = None) -> tf.data.Dataset:
  """Evaluation batches of one dataset split, in stored order, one pass.

  Args:
    config: the data config (img_size, base_crop_size, batch_size used).
    dataset_name: the dataset directory name.
    split: the split name.
    counter: where skipped corrupt records are counted.

  Returns:
    A dataset of dicts of eval parser outputs batched to [<=B, ...]
    (parser.TRAIN_KEYS plus 'filename', 'center', 'crop_size').
  """
  shards = list_shards(config.data_dir, dataset_name, split)
  parse = parser.parse_fn(config, is_training=False)
  records = _records(config, shards, False, counter)
  ds = records.map(lambda r: parse(decoder.decode_image_example(r)),
                   num_parallel_calls=config.num_parallel_calls,
                   deterministic=True)
  ds = ds.batch(config.batch_size, drop_remainder=False)
  return ds.prefetch(AUTOTUNE).with_options(_options(config))


def num_examples(config: configs.DataConfig, dataset_name: str,
                 split: str) -> Optional[int]:
  """Examples in a split according to its sidecar (None without one)."""
  return list_shards(config.data_dir, dataset_name, split).num_examples


def describe(config: configs.DataConfig) -> Dict[str, float]:
  """The training datasets' mixing weights by name (for logging)."""
  shard_lists = [list_shards(config.data_dir, name, config.train_split)
                 for name in config.datasets]
  return dict(zip(config.datasets, mixing_weights(config, shard_lists)))
