"""Tests of hmr_tf.data.input_pipeline on small sharded fixtures."""

import dataclasses
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from hmr_tf.data import features
from hmr_tf.data import input_pipeline

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
  return features.make_image_example(
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
        if kind == features.KIND_MOCAP:
          record = features.make_mocap_example(
              np.full(72, float(index)), np.full(10, float(seed))
          ).SerializeToString()
        else:
          record = _image_record(rng, index, name, kind == features.KIND_3D)
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
  _write_dataset(root, 'two_d', features.KIND_2D, 2, 10, seed=1)
  _write_dataset(root, 'three_d', features.KIND_3D, 2, 10, seed=2)
  _write_dataset(root, 'three_d', features.KIND_3D, 1, 7, seed=3,
                 split='test')
  _write_dataset(root, 'mocap', features.KIND_MOCAP, 2, 20, seed=4)
  # The test split of three_d overwrote the sidecar; rewrite both splits.
  meta = {'dataset': 'three_d', 'kind': '3d', 'splits': {
      'train': {'num_examples': 20,
                'files': ['train_00000.tfrecord', 'train_00001.tfrecord']},
      'test': {'num_examples': 7, 'files': ['test_00000.tfrecord']}}}
  with open(os.path.join(root, 'three_d', 'three_d_meta.json'), 'w') as f:
    json.dump(meta, f)
  return root


def _config(data_dir, **changes):
  config = input_pipeline.DataConfig(
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


def test_default_weights_follow_original_scheme(tmp_path):
  root = str(tmp_path)
  _write_dataset(root, 'a', features.KIND_2D, 1, 1, seed=0)
  _write_dataset(root, 'b', features.KIND_2D, 1, 3, seed=0)
  _write_dataset(root, 'c', features.KIND_3D, 1, 2, seed=0)
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


@pytest.mark.parametrize('how', ['corrupt', 'truncated'])
def test_corrupt_shard_names_file_or_is_skipped_and_counted(tmp_path, how):
  root = str(tmp_path)
  files = _write_dataset(root, 'ds', features.KIND_2D, 2, 6, seed=5,
                         split='test')
  _damage(files[1], how)
  config = _config(root, batch_size=4)
  with pytest.raises(tf.errors.InvalidArgumentError, match='test_00001'):
    for _ in input_pipeline.eval_dataset(config, 'ds', 'test'):
      pass
  counter = tf.Variable(0, dtype=tf.int64)
  skip = dataclasses.replace(config, skip_corrupt_records=True)
  names = [n for b in input_pipeline.eval_dataset(skip, 'ds', 'test', counter)
           for n in b['filename'].numpy()]
  assert int(counter.numpy()) == 1
  # The intact shard is whole; the damaged one gives its good prefix only.
  assert names[:6] == [f'ds_{i:04d}.jpg'.encode() for i in range(6)]
  assert 6 <= len(names) < 12


def test_corrupt_shard_stops_training_stream(tmp_path):
  root = str(tmp_path)
  files = _write_dataset(root, 'ds', features.KIND_2D, 1, 6, seed=6)
  _write_dataset(root, 'mocap', features.KIND_MOCAP, 1, 20, seed=7)
  _damage(files[0], 'corrupt')
  config = _config(root, datasets=('ds',), batch_size=2)
  with pytest.raises(tf.errors.InvalidArgumentError, match='train_00000'):
    for _ in input_pipeline.train_dataset(config).take(20):
      pass


def test_missing_sidecar_falls_back_to_names(tmp_path):
  root = str(tmp_path)
  _write_dataset(root, 'orig', features.KIND_2D, 2, 2, seed=8, sidecar=False)
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
    input_pipeline.DataConfig(datasets=('a', 'b'), dataset_weights=(1.0,))
  config = input_pipeline.DataConfig(datasets=['a'], dataset_weights=[2])
  assert config.datasets == ('a',) and config.dataset_weights == (2.0,)
  defaults = input_pipeline.DataConfig()
  assert (defaults.scale_min, defaults.scale_max, defaults.trans_max,
          defaults.img_size, defaults.num_stage) == (0.8, 1.23, 20.0, 224, 3)
