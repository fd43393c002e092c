"""Tests of hmr_tf.data.input_pipeline on small sharded fixtures."""

import dataclasses
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from hmr_tf import configs
from hmr_tf.data import input_pipeline
from hmr_tf.data import schema

IMG = 24


def _image_record(rng, index, dataset, is_3d):
  image = rng.integers(0, 256, [IMG, IMG, 3]).astype(np.uint8)
  kp = np.zeros([14, 3])
  kp[:, :2] = rng.uniform(4, IMG - 4, [14, 2])
  kp[:, 2] = 1
  kwargs = {}
  if is_3d:
    kwargs = dict(pose=rng.normal(size=72) * 0.2, shape=rng.normal(size=10),
                  joints3d=rng.normal(size=[14, 3]))
  return schema.make_image_example(
      tf.io.encode_jpeg(image).numpy(), IMG, IMG, f'{dataset}_{index:04d}.jpg',
      (IMG / 2, IMG / 2), kp, dataset=dataset, **kwargs).SerializeToString()


def _write_dataset(root, name, kind, num_shards, per_shard, seed,
                   split='train', sidecar=True):
  rng = np.random.default_rng(seed)
  directory = os.path.join(root, name)
  os.makedirs(directory, exist_ok=True)
  files = []
  index = 0
  for s in range(num_shards):
    fname = f'{split}_{s:05d}.tfrecord'
    with tf.io.TFRecordWriter(os.path.join(directory, fname)) as writer:
      for _ in range(per_shard):
        if kind == schema.KIND_MOCAP:
          record = schema.make_mocap_example(
              np.full(72, float(index)), np.full(10, float(seed))
          ).SerializeToString()
        else:
          record = _image_record(rng, index, name, kind == schema.KIND_3D)
        writer.write(record)
        index += 1
    files.append(fname)
  if sidecar:
    meta = {'dataset': name, 'kind': kind,
            'splits': {split: {'num_examples': index, 'files': files}}}
    with open(os.path.join(directory, f'{name}_meta.json'), 'w') as f:
      json.dump(meta, f)
  return [os.path.join(directory, f) for f in files]


@pytest.fixture(scope='module')
def data_dir(tmp_path_factory):
  root = str(tmp_path_factory.mktemp('data'))
  _write_dataset(root, 'two_d', schema.KIND_2D, 2, 10, seed=1)
  _write_dataset(root, 'three_d', schema.KIND_3D, 2, 10, seed=2)
  _write_dataset(root, 'three_d', schema.KIND_3D, 1, 7, seed=3,
                 split='test')
  _write_dataset(root, 'mocap', schema.KIND_MOCAP, 2, 20, seed=4)
  # The test split of three_d overwrote the sidecar; rewrite both splits.
  meta = {'dataset': 'three_d', 'kind': '3d', 'splits': {
      'train': {'num_examples': 20,
                'files': ['train_00000.tfrecord', 'train_00001.tfrecord']},
      'test': {'num_examples': 7, 'files': ['test_00000.tfrecord']}}}
  with open(os.path.join(root, 'three_d', 'three_d_meta.json'), 'w') as f:
    json.dump(meta, f)
  return root


def _config(data_dir, **changes):
  config = configs.DataConfig(
      data_dir=data_dir, datasets=('two_d', 'three_d'),
      mocap_datasets=('mocap',), batch_size=4, img_size=16,
      base_crop_size=IMG, shuffle_buffer=8, seed=3, num_parallel_calls=2)
  return dataclasses.replace(config, **changes)


def test_train_batch_structure_and_mocap_size(data_dir):
  config = _config(data_dir)
  batch, mocap = next(iter(input_pipeline.train_dataset(config)))
  assert batch['image'].shape == (4, 16, 16, 3)
  assert batch['keypoints2d'].shape == (4, 19, 3)
  assert batch['joints3d'].shape == (4, 14, 3)
  assert batch['pose'].shape == (4, 72) and batch['shape'].shape == (4, 10)
  assert batch['has_smpl'].shape == (4,)
  assert batch['has_joints3d'].shape == (4,)
  img = batch['image'].numpy()
  assert -1.0 <= img.min() and img.max() <= 1.0
  # num_stage x B mocap examples for the discriminator.
  assert mocap['pose'].shape == (12, 72) and mocap['shape'].shape == (12, 10)


def test_mocap_stream_is_shuffled_and_repeats(data_dir):
  config = _config(data_dir)
  seen = []
  for mocap in input_pipeline.mocap_dataset(config).take(10):  # 120 > 40
    seen.extend(mocap['pose'].numpy()[:, 0].astype(int).tolist())
  assert len(seen) == 120
  assert set(seen) == set(range(40))  # every stored example, repeated
  assert seen[:40] != sorted(seen[:40])  # not in stored order


def test_cached_mocap_holds_every_sample_once_per_pass_reshuffled(data_dir):
  """cache_crops also caches the mocap samples: each of the 40 stored
  samples once per pass (pose and shape intact), a new order every pass."""
  plain = dict(scale_min=1.0, scale_max=1.0, trans_max=0.0, flip_prob=0.0)
  config = _config(data_dir, cache_crops=True, batch_size=5, **plain)
  poses, shapes = [], []
  for mocap in input_pipeline.mocap_dataset(config).take(8):  # 8 x 15 = 3 x 40
    poses.extend(mocap['pose'].numpy())
    shapes.extend(mocap['shape'].numpy())
  ids = [int(p[0]) for p in poses]
  passes = [ids[:40], ids[40:80], ids[80:]]
  for one in passes:
    assert sorted(one) == list(range(40))
  assert passes[0] != passes[1] != passes[2]
  assert passes[0] != sorted(passes[0])
  for pose, shape in zip(poses, shapes):
    np.testing.assert_array_equal(pose, np.full(72, pose[0]))
    np.testing.assert_array_equal(shape, np.full(10, 4.0))  # the seed


def test_default_weights_follow_original_scheme(tmp_path):
  root = str(tmp_path)
  _write_dataset(root, 'a', schema.KIND_2D, 1, 1, seed=0)
  _write_dataset(root, 'b', schema.KIND_2D, 1, 3, seed=0)
  _write_dataset(root, 'c', schema.KIND_3D, 1, 2, seed=0)
  config = _config(root, datasets=('a', 'b', 'c'))
  # Half 3D, half 2D; within 2D by size (1 : 3).
  np.testing.assert_allclose(
      list(input_pipeline.describe(config).values()), [0.125, 0.375, 0.5])
  explicit = dataclasses.replace(config, dataset_weights=(1, 1, 2))
  np.testing.assert_allclose(
      list(input_pipeline.describe(explicit).values()), [0.25, 0.25, 0.5])


def test_mixing_weights_hold_over_many_batches(data_dir):
  config = _config(data_dir, dataset_weights=(0.25, 0.75), batch_size=16)
  flags = []
  for batch, _ in input_pipeline.train_dataset(config).take(40):
    flags.append(batch['has_joints3d'].numpy())
  fraction_3d = np.concatenate(flags).mean()
  # 640 draws: the binomial standard deviation is 0.017.
  assert abs(fraction_3d - 0.75) < 0.06


def _first_batches(config, n=3):
  return [b for b, _ in input_pipeline.train_dataset(config).take(n)]


def test_deterministic_with_fixed_seed(data_dir):
  a = _first_batches(_config(data_dir))
  b = _first_batches(_config(data_dir))
  c = _first_batches(_config(data_dir, seed=4))
  for x, y in zip(a, b):
    for key in x:
      np.testing.assert_array_equal(x[key].numpy(), y[key].numpy())
  assert not np.array_equal(a[0]['image'].numpy(), c[0]['image'].numpy())


def test_eval_dataset_reads_split_in_order_once(data_dir):
  config = _config(data_dir, batch_size=3)
  batches = list(input_pipeline.eval_dataset(config, 'three_d', 'test'))
  assert [len(b['filename']) for b in batches] == [3, 3, 1]
  names = [n.decode() for b in batches for n in b['filename'].numpy()]
  assert names == [f'three_d_{i:04d}.jpg' for i in range(7)]
  np.testing.assert_allclose(batches[0]['crop_size'].numpy(), IMG)
  assert input_pipeline.num_examples(config, 'three_d', 'test') == 7


def _damage(path, how):
  data = bytearray(open(path, 'rb').read())
  if how == 'corrupt':
    data[len(data) // 2] ^= 0xFF
  else:
    data = data[:-40]
  with open(path, 'wb') as f:
    f.write(bytes(data))


def _eval_names(config, counter=None):
  return [n for b in input_pipeline.eval_dataset(config, 'ds', 'test', counter)
          for n in b['filename'].numpy()]


def _skipping_warnings(caplog, path):
  return [r.getMessage() for r in caplog.records
          if r.levelname == 'WARNING' and os.path.basename(path) in
          r.getMessage()]


def test_corrupt_record_names_the_file_and_record(tmp_path):
  root = str(tmp_path)
  files = _write_dataset(root, 'ds', schema.KIND_2D, 2, 6, seed=5,
                         split='test')
  _damage(files[1], 'corrupt')
  config = _config(root, batch_size=4)
  with pytest.raises(tf.errors.InvalidArgumentError,
                     match=r'test_00001\.tfrecord\W{0,3}: record \d is bad'):
    _eval_names(config)


def test_skipped_corrupt_shard_counts_lost_records_once(tmp_path, caplog):
  root = str(tmp_path)
  files = _write_dataset(root, 'ds', schema.KIND_2D, 2, 6, seed=5,
                         split='test')
  _damage(files[1], 'corrupt')
  counter = tf.Variable(0, dtype=tf.int64)
  skip = _config(root, batch_size=4, skip_corrupt_records=True)
  caplog.set_level('WARNING')
  names = _eval_names(skip, counter)
  # The intact shard is whole; the damaged one gives its good prefix only.
  assert names[:6] == [f'ds_{i:04d}.jpg'.encode() for i in range(6)]
  assert 6 <= len(names) < 12
  lost = 12 - len(names)
  assert int(counter.numpy()) == lost
  # A second pass over the data: no new count, no new warning.
  assert _eval_names(skip, counter) == names
  assert int(counter.numpy()) == lost
  warnings = _skipping_warnings(caplog, files[1])
  assert len(warnings) == 1
  assert warnings[0].startswith(f'Skipping {lost} record(s): ')
  assert f'record {len(names) - 6} is bad' in warnings[0]


def test_shard_cut_mid_record_found_before_reading(tmp_path, caplog):
  root = str(tmp_path)
  files = _write_dataset(root, 'ds', schema.KIND_2D, 2, 6, seed=5,
                         split='test')
  _damage(files[1], 'truncated')
  config = _config(root, batch_size=4)
  with pytest.raises(input_pipeline.InputDataError,
                     match=r'test_00001\.tfrecord: record 5: truncated or '
                     r'corrupt .*set skip_corrupt_records'):
    input_pipeline.eval_dataset(config, 'ds', 'test')  # Before reading.
  counter = tf.Variable(0, dtype=tf.int64)
  caplog.set_level('WARNING')
  skip = dataclasses.replace(config, skip_corrupt_records=True)
  for _ in range(2):
    assert len(_eval_names(skip, counter)) == 11
  assert int(counter.numpy()) == 1
  assert len(_skipping_warnings(caplog, files[1])) == 1


def _cut_after(path, num_records):
  """Cuts a shard right after its first `num_records` records."""
  data = open(path, 'rb').read()
  offset = 0
  for _ in range(num_records):
    offset += 16 + int.from_bytes(data[offset:offset + 8], 'little')
  with open(path, 'wb') as f:
    f.write(data[:offset])


def test_shard_cut_at_record_boundary_named_by_per_shard_count(tmp_path,
                                                               caplog):
  """Sidecars of the shared writer give each shard's count."""
  from hmr_tf.data import writer as writer_lib  # pylint: disable=import-outside-toplevel
  root = str(tmp_path)
  rng = np.random.default_rng(0)
  with writer_lib.ShardedWriter(root, 'ds', schema.KIND_2D,
                                shard_size=6) as w:
    for i in range(12):
      w.write('test', _image_record(rng, i, 'ds', False))
  path = os.path.join(root, 'ds', 'test_00000.tfrecord')
  _cut_after(path, 4)
  config = _config(root, batch_size=4)
  with pytest.raises(input_pipeline.InputDataError,
                     match=r'test_00000\.tfrecord: holds 4 records, the '
                     r'sidecar .*ds_meta\.json lists 6'):
    input_pipeline.eval_dataset(config, 'ds', 'test')
  counter = tf.Variable(0, dtype=tf.int64)
  caplog.set_level('WARNING')
  skip = dataclasses.replace(config, skip_corrupt_records=True)
  assert len(_eval_names(skip, counter)) == 10
  assert len(_eval_names(skip, counter)) == 10
  assert int(counter.numpy()) == 2
  assert len(_skipping_warnings(caplog, path)) == 1


def test_shard_cut_at_record_boundary_found_by_split_total(tmp_path):
  """Sidecars with the split's total only (no per-shard counts)."""
  root = str(tmp_path)
  files = _write_dataset(root, 'ds', schema.KIND_2D, 2, 6, seed=5,
                         split='test')
  _cut_after(files[1], 3)
  config = _config(root, batch_size=4)
  with pytest.raises(input_pipeline.InputDataError,
                     match=r'ds_meta\.json: lists 12 examples, its 2 '
                     r'shard\(s\) hold 9'):
    input_pipeline.eval_dataset(config, 'ds', 'test')
  counter = tf.Variable(0, dtype=tf.int64)
  skip = dataclasses.replace(config, skip_corrupt_records=True)
  assert len(_eval_names(skip, counter)) == 9
  assert int(counter.numpy()) == 3


def test_training_stops_before_reading_a_cut_shard(tmp_path):
  root = str(tmp_path)
  files = _write_dataset(root, 'ds', schema.KIND_2D, 2, 6, seed=6)
  _write_dataset(root, 'mocap', schema.KIND_MOCAP, 1, 20, seed=7)
  _cut_after(files[0], 5)
  config = _config(root, datasets=('ds',), batch_size=2)
  with pytest.raises(input_pipeline.InputDataError, match='hold 11'):
    input_pipeline.train_dataset(config)


def test_records_with_wrong_keys_name_file_dataset_and_key(tmp_path):
  root = str(tmp_path)
  # Mocap records where image records belong, and the reverse.
  _write_dataset(root, 'ds', schema.KIND_2D, 1, 4, seed=8)
  _write_dataset(root, 'mocap', schema.KIND_MOCAP, 1, 4, seed=7)
  os.replace(os.path.join(root, 'mocap', 'train_00000.tfrecord'),
             os.path.join(root, 'ds', 'train_00000.tfrecord'))
  _write_dataset(root, 'mocap', schema.KIND_MOCAP, 1, 20, seed=7)
  config = _config(root, datasets=('ds',), batch_size=2)
  with pytest.raises(input_pipeline.InputDataError,
                     match=r"ds/train_00000\.tfrecord: record 0 of dataset "
                     r"'ds' has no feature 'image/center'; expected image "
                     r"\(2D/3D\) records with image/center, image/encoded"):
    input_pipeline.train_dataset(config)
  _write_dataset(root, 'ds', schema.KIND_2D, 1, 4, seed=8)
  # An image record without its centre (the error the issue quotes).
  example = tf.train.Example.FromString(
      _image_record(np.random.default_rng(0), 0, 'ds', False))
  del example.features.feature[schema.IMAGE_CENTER]
  with tf.io.TFRecordWriter(os.path.join(root, 'ds',
                                         'train_00000.tfrecord')) as w:
    for _ in range(4):
      w.write(example.SerializeToString())
  with pytest.raises(input_pipeline.InputDataError,
                     match=r"train_00000\.tfrecord: record 0 of dataset 'ds' "
                     r"has no feature 'image/center'"):
    input_pipeline.image_dataset(config)
  # A value of the wrong size; mocap records checked against their keys.
  _write_dataset(root, 'ds', schema.KIND_2D, 1, 4, seed=8)
  bad = tf.train.Example()
  bad.features.feature['pose'].float_list.value.extend([0.0] * 69)
  bad.features.feature['shape'].float_list.value.extend([0.0] * 10)
  with tf.io.TFRecordWriter(os.path.join(root, 'mocap',
                                         'train_00000.tfrecord')) as w:
    for _ in range(20):
      w.write(bad.SerializeToString())
  with pytest.raises(input_pipeline.InputDataError,
                     match=r"record 0 of dataset 'mocap': feature 'pose' "
                     r"holds 69 float_list, expected 72 float_list"):
    input_pipeline.mocap_dataset(config)


def test_corrupt_shard_stops_training_stream(tmp_path):
  root = str(tmp_path)
  files = _write_dataset(root, 'ds', schema.KIND_2D, 1, 6, seed=6)
  _write_dataset(root, 'mocap', schema.KIND_MOCAP, 1, 20, seed=7)
  _damage(files[0], 'corrupt')
  config = _config(root, datasets=('ds',), batch_size=2)
  with pytest.raises(tf.errors.InvalidArgumentError, match='train_00000'):
    for _ in input_pipeline.train_dataset(config).take(20):
      pass


def test_missing_sidecar_falls_back_to_names(tmp_path):
  root = str(tmp_path)
  _write_dataset(root, 'orig', schema.KIND_2D, 2, 2, seed=8, sidecar=False)
  shards = input_pipeline.list_shards(root, 'orig', 'train')
  assert [os.path.basename(f) for f in shards.files] == [
      'train_00000.tfrecord', 'train_00001.tfrecord']
  assert shards.num_examples is None
  config = _config(root, datasets=('orig',))
  with pytest.raises(ValueError, match='dataset_weights'):
    input_pipeline.describe(config)
  with pytest.raises(FileNotFoundError, match='nothing'):
    input_pipeline.list_shards(root, 'nothing', 'train')


def test_config_validation():
  with pytest.raises(ValueError, match='dataset_weights'):
    configs.DataConfig(datasets=('a', 'b'), dataset_weights=(1.0,))
  config = configs.DataConfig(datasets=['a'], dataset_weights=[2])
  assert config.datasets == ('a',) and config.dataset_weights == (2.0,)
  defaults = configs.DataConfig()
  assert (defaults.scale_min, defaults.scale_max, defaults.trans_max,
          defaults.img_size, defaults.num_stage) == (0.8, 1.23, 20.0, 224, 3)


def test_record_that_is_not_an_example_is_named(tmp_path):
  root = str(tmp_path)
  _write_dataset(root, 'ds', schema.KIND_2D, 1, 2, seed=8)
  with tf.io.TFRecordWriter(os.path.join(root, 'ds',
                                         'train_00000.tfrecord')) as w:
    for _ in range(2):
      w.write(b'\xff' * 10)
  with pytest.raises(input_pipeline.InputDataError,
                     match=r"train_00000\.tfrecord: record 0 of dataset 'ds' "
                     r'is not a tf.train.Example; expected image'):
    input_pipeline.image_dataset(_config(root, datasets=('ds',)))


def test_cached_crops_are_the_uncached_ones_reshuffled_each_pass(data_dir):
  """cache_crops: every pass holds each record's crop once, in a new order."""
  plain = dict(scale_min=1.0, scale_max=1.0, trans_max=0.0, flip_prob=0.0)
  config = _config(data_dir, datasets=('three_d',), cache_crops=True,
                   **plain)
  examples = {k: [] for k in ('image', 'joints3d', 'keypoints2d')}
  for batch in input_pipeline.image_dataset(config).take(10):  # 2 x 20
    for key, values in examples.items():
      values.extend(batch[key].numpy())
  # The reference: each record parsed alone (the eval parser crops the same
  # window when training has no augmentation), keyed by its 3D joints.
  reference = {}
  for batch in input_pipeline.eval_dataset(
      _config(data_dir, **plain), 'three_d', 'train'):
    for i in range(len(batch['filename'])):
      reference[batch['joints3d'][i].numpy().tobytes()] = (
          batch['image'][i].numpy(), batch['keypoints2d'][i].numpy())
  assert len(reference) == 20
  keys = [j.tobytes() for j in examples['joints3d']]
  passes = [keys[:20], keys[20:]]
  for one in passes:
    assert sorted(one) == sorted(reference)  # each record once
  assert passes[0] != passes[1]  # reshuffled
  for key, image, kp in zip(keys, examples['image'], examples['keypoints2d']):
    np.testing.assert_array_equal(image, reference[key][0])
    np.testing.assert_array_equal(kp, reference[key][1])
  with pytest.raises(ValueError, match='cache_crops.*flip_prob 0.5'):
    _config(data_dir, cache_crops=True, **dict(plain, flip_prob=0.5))
