"""The shared sharded writer: shard sizes, sidecar, temp names, skipping."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

import fixtures_datasets as fx
from hmr_tf.data import schema
from hmr_tf.data import writer as writer_lib


def _example(i):
  return schema.make_mocap_example(np.full(72, float(i)), np.zeros(10))


def test_shards_sidecar_and_order(tmp_path):
  out = str(tmp_path)
  with writer_lib.ShardedWriter(out, 'toy', schema.KIND_MOCAP,
                                shard_size=3) as w:
    w.add_split('test')  # Declared, stays empty.
    for i in range(7):
      w.write('train', _example(i))
    w.filtered('train', 'too small', 2)
  meta = json.load(open(os.path.join(out, 'toy', 'toy_meta.json')))
  assert meta['dataset'] == 'toy' and meta['kind'] == 'mocap'
  train = meta['splits']['train']
  assert train['num_examples'] == 7
  assert train['files'] == ['train_00000.tfrecord', 'train_00001.tfrecord',
                            'train_00002.tfrecord']
  assert train['filtered'] == {'too small': 2}
  assert train['records_per_file'] == [3, 3, 1]
  assert meta['splits']['test'] == {'num_examples': 0, 'files': [],
                                    'records_per_file': [],
                                    'num_skipped': 0, 'filtered': {}}
  sizes = [sum(1 for _ in tf.data.TFRecordDataset(
      os.path.join(out, 'toy', f))) for f in train['files']]
  assert sizes == [3, 3, 1]
  records, _ = fx.read_split(out, 'toy', 'train', mocap=True)
  assert [r['pose'][0] for r in records] == list(range(7))
  # Only final names remain: no temp files.
  assert fx.final_files(out, 'toy') == sorted(train['files'] +
                                              ['toy_meta.json'])


def test_failure_leaves_no_partial_shard_and_no_sidecar(tmp_path):
  out = str(tmp_path)
  with pytest.raises(RuntimeError, match='boom'):
    with writer_lib.ShardedWriter(out, 'toy', schema.KIND_MOCAP,
                                  shard_size=3) as w:
      for i in range(5):
        w.write('train', _example(i))
      raise RuntimeError('boom')
  # Neither the complete first shard nor the half-written second one stays.
  assert fx.final_files(out, 'toy') == []


def _convert(out, values, shard_size=2):
  with writer_lib.ShardedWriter(out, 'toy', schema.KIND_MOCAP,
                                shard_size=shard_size) as w:
    for i in values:
      w.write('train', _example(i))


def test_failed_run_leaves_the_previous_conversion_byte_identical(tmp_path):
  out = str(tmp_path)
  _convert(out, range(5))
  before = fx.snapshot(out, 'toy')
  assert sorted(before) == ['toy_meta.json', 'train_00000.tfrecord',
                            'train_00001.tfrecord', 'train_00002.tfrecord']
  with pytest.raises(RuntimeError, match='boom'):
    with writer_lib.ShardedWriter(out, 'toy', schema.KIND_MOCAP,
                                  shard_size=1) as w:
      for i in range(4):  # Writes over the old shards' names, staged.
        w.write('train', _example(10 + i))
      # Mid-run, the previous conversion is still whole and readable.
      assert {k: v for k, v in fx.snapshot(out, 'toy').items()
              if not k.startswith('.')} == before
      raise RuntimeError('boom')
  assert fx.snapshot(out, 'toy') == before


def test_failure_while_closing_keeps_the_previous_conversion(tmp_path,
                                                             monkeypatch):
  out = str(tmp_path)
  _convert(out, range(3))
  before = fx.snapshot(out, 'toy')

  def full_disk(*args, **kwargs):
    raise OSError('No space left on device')

  monkeypatch.setattr(writer_lib.json, 'dump', full_disk)
  with pytest.raises(OSError, match='No space'):
    _convert(out, range(7))
  assert fx.snapshot(out, 'toy') == before


def test_leftovers_of_a_crashed_run_are_removed(tmp_path):
  out = str(tmp_path)
  _convert(out, range(3))
  folder = tmp_path / 'toy'
  # The last two: sidecar temporaries of older and of current runs.
  for name in ('.train_00000.tfrecord.tmp', '.train_00001.tfrecord.new',
               'toy_meta.json.tmp', '.tmp_k3j9x2.json'):
    (folder / name).write_bytes(b'partial')
  _convert(out, range(1))
  assert fx.final_files(out, 'toy') == ['toy_meta.json',
                                        'train_00000.tfrecord']


def test_new_run_removes_outputs_of_an_earlier_run(tmp_path):
  out = str(tmp_path)
  with writer_lib.ShardedWriter(out, 'toy', schema.KIND_MOCAP,
                                shard_size=1) as w:
    for i in range(4):
      w.write('train', _example(i))
  with writer_lib.ShardedWriter(out, 'toy', schema.KIND_MOCAP,
                                shard_size=1) as w:
    w.write('train', _example(9))
  assert fx.final_files(out, 'toy') == ['toy_meta.json',
                                        'train_00000.tfrecord']


def test_guard_stops_or_skips_and_counts(tmp_path):
  out = str(tmp_path)
  with pytest.raises(writer_lib.BadRecordError, match=r'a\.mat: record 3'):
    with writer_lib.ShardedWriter(out, 'toy', schema.KIND_MOCAP) as w:
      with w.guard('train', 'a.mat', 3):
        raise writer_lib.BadRecordError('a.mat', 3, 'broken')
  # Other ValueErrors/OSErrors are named after the file and record.
  with pytest.raises(writer_lib.BadRecordError,
                     match=r'b\.mat: record 7: ValueError: bad value'):
    with writer_lib.ShardedWriter(out, 'toy', schema.KIND_MOCAP) as w:
      with w.guard('train', 'b.mat', 7):
        raise ValueError('bad value')
  with writer_lib.ShardedWriter(out, 'toy', schema.KIND_MOCAP,
                                skip_bad=True) as w:
    for i in range(4):
      with w.guard('train', 'c.mat', i):
        if i % 2:
          raise OSError('unreadable')
        w.write('train', _example(i))
  meta = writer_lib.read_sidecar(out, 'toy')
  assert meta['splits']['train']['num_examples'] == 2
  assert meta['splits']['train']['num_skipped'] == 2
  assert meta['num_skipped'] == 2
  assert 'c.mat: record 1' in meta['skipped_examples'][0]


def test_rejects_bad_arguments(tmp_path):
  with pytest.raises(ValueError, match='kind'):
    writer_lib.ShardedWriter(str(tmp_path), 'toy', 'video')
  with pytest.raises(ValueError, match='shard_size'):
    writer_lib.ShardedWriter(str(tmp_path), 'toy', '2d', shard_size=0)
  with pytest.raises(FileNotFoundError, match='sidecar'):
    writer_lib.read_sidecar(str(tmp_path), 'nothing')
