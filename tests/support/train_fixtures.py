"""Tiny training fixtures shared by the training tests and train_runner.py.

Writes a few TFRecords (a 2D dataset, a 3D dataset, a mocap dataset, each
with its sidecar) through the shared ShardedWriter, and builds the small
configurations the tests train with.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from hmr_tf import configs
from hmr_tf.data import schema
from hmr_tf.data import writer as writer_lib
from hmr_tf.modeling import mean_params
from hmr_tf.smpl import model_io
from hmr_tf.smpl import standin

STORED = 48  # stored image side, pixels
IMG = 32  # network input side
NUM_IMAGES = 6  # per image dataset
NUM_MOCAP = 24
BATCH = 2


def _image_example(rng, index, dataset, is_3d):
  image = rng.integers(0, 256, [STORED, STORED, 3]).astype(np.uint8)
  keypoints = np.zeros([19, 3])
  keypoints[:, :2] = rng.uniform(8, STORED - 8, [19, 2])
  keypoints[:, 2] = rng.integers(0, 2, 19)
  keypoints[:14, 2] = 1
  extra = {}
  if is_3d:
    extra = dict(pose=rng.normal(size=72) * 0.2, shape=rng.normal(size=10),
                 joints3d=rng.normal(size=[14, 3]) * 0.3)
  return schema.make_image_example(
      tf.io.encode_jpeg(image).numpy(), STORED, STORED,
      f'{dataset}_{index:03d}.jpg', (STORED / 2, STORED / 2), keypoints,
      dataset=dataset, **extra)


def write_tiny_data(root: str, seed: int = 0,
                    mocap_extra_records=()) -> str:
  """Writes datasets 'tiny2d', 'tiny3d' (NUM_IMAGES each) and 'tinymocap'.

  Args:
    root: the data root.
    seed: seed of the random content.
    mocap_extra_records: serialized records appended to the mocap split
      (e.g. a hand-made non-finite one).

  Returns:
    root.
  """
  rng = np.random.default_rng(seed)
  for name, kind in (('tiny2d', schema.KIND_2D),
                     ('tiny3d', schema.KIND_3D)):
    with writer_lib.ShardedWriter(root, name, kind, shard_size=4) as w:
      for i in range(NUM_IMAGES):
        w.write('train', _image_example(rng, i, name,
                                        kind == schema.KIND_3D))
  with writer_lib.ShardedWriter(root, 'tinymocap', schema.KIND_MOCAP) as w:
    for _ in range(NUM_MOCAP):
      w.write('train', schema.make_mocap_example(
          rng.normal(size=72) * 0.2, rng.normal(size=10)))
    for record in mocap_extra_records:
      w.write('train', record)
  return root


def nonfinite_mocap_record() -> bytes:
  """A mocap record whose pose is NaN (make_mocap_example refuses these)."""
  pose = np.full(72, np.nan, np.float32)
  return tf.train.Example(features=tf.train.Features(feature={
      schema.MOCAP_POSE: tf.train.Feature(
          float_list=tf.train.FloatList(value=pose)),
      schema.MOCAP_SHAPE: tf.train.Feature(
          float_list=tf.train.FloatList(value=np.zeros(10, np.float32))),
  })).SerializeToString()


def data_config(data_dir: str, **overrides) -> configs.DataConfig:
  config = configs.DataConfig(
      data_dir=data_dir, datasets=('tiny2d', 'tiny3d'),
      mocap_datasets=('tinymocap',), batch_size=BATCH, img_size=IMG,
      base_crop_size=40.0, shuffle_buffer=8, num_parallel_calls=1,
      cycle_length=1)
  return dataclasses.replace(config, **overrides)


def model_config(**overrides) -> configs.ModelConfig:
  return dataclasses.replace(configs.ModelConfig(img_size=IMG), **overrides)


def train_config(model_dir: str, **overrides) -> configs.TrainConfig:
  config = configs.TrainConfig(
      model_dir=model_dir, epochs=2, steps_per_epoch=3,
      checkpoint_every_steps=2, max_to_keep=2, summary_every_steps=1,
      image_summary_every_steps=3, num_summary_images=2, progress='none')
  return dataclasses.replace(config, **overrides)


def mean_theta() -> np.ndarray:
  return mean_params.mean_theta(np.zeros(72), np.zeros(10))


def write_body_model(path: str) -> str:
  """Builds the smallest procedural stand-in and saves it (fast to reload)."""
  model_io.save_model(standin.build(num_vertices=600), path)
  return path


def load_body_model(path: str):
  return model_io.load_model(path)


def fixed_images(num: int = 2, seed: int = 123) -> np.ndarray:
  """[num, IMG, IMG, 3] float32 inputs in [-1, 1] for prediction checks."""
  rng = np.random.default_rng(seed)
  return rng.uniform(-1, 1, [num, IMG, IMG, 3]).astype(np.float32)


def random_train_batch(img_size: int, num: int = 2, num_mocap: int = 6,
                       seed: int = 0):
  """(batch, mocap) of random 2D-only examples for a few train steps."""
  rng = np.random.default_rng(seed)
  kp = np.concatenate([rng.uniform(-1, 1, (num, 19, 2)),
                       np.ones((num, 19, 1))], -1).astype(np.float32)
  batch = dict(
      image=rng.uniform(-1, 1, (num, img_size, img_size, 3)).astype(
          np.float32),
      keypoints2d=kp,
      joints3d=np.zeros((num, 14, 3), np.float32),
      has_joints3d=np.zeros(num, np.float32),
      pose=np.zeros((num, 72), np.float32),
      shape=np.zeros((num, 10), np.float32),
      has_smpl=np.zeros(num, np.float32))
  mocap = dict(pose=(rng.normal(size=(num_mocap, 72)) * 0.2).astype(
      np.float32), shape=rng.normal(size=(num_mocap, 10)).astype(np.float32))
  return batch, mocap
