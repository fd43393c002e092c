"""Benchmark: training input pipeline images/s against the training step's rate.

  python src/bench/input_bench.py [--batch_size=64] [--img_size=224]
      [--num_batches=20] [--num_steps=3] [--num_records=400] [--threads=2]
      [--consumer=hmr|resnet50v2]

Writes `num_records` synthetic records of realistic size (300 x 300 JPEG
crops around a person, as HMR's converters stored them; 2D and 3D datasets and
a mocap set) into a temp dir through the shared shard writer, then measures

  1. the training pipeline (`input_pipeline.train_dataset`: read, decode,
     crop/scale/jitter/flip, batch, zip with the mocap stream) alone, and
  2. the training step alone, fed one fixed batch: `HMRModel.train_step`
     (encoder + IEF + SMPL on the stand-in body + losses + discriminator;
     --consumer=hmr) or the bare Keras ResNet50V2 forward + backward
     (--consumer=resnet50v2),

both with TensorFlow limited to `threads` CPU threads, and prints images/s
and the ratio pipeline / step (target >= 3: the pipeline never starves the
step).
"""

import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..'))

import cv2  # pylint: disable=g-import-not-at-top
import numpy as np
import tensorflow as tf
from absl import app
from absl import flags

from hmr_tf import configs
from hmr_tf.data import input_pipeline
from hmr_tf.data import schema
from hmr_tf.data import writer as writer_lib

_BATCH = flags.DEFINE_integer('batch_size', 64, 'Images per batch.')
_IMG = flags.DEFINE_integer('img_size', 224, 'Network input side S.')
_BATCHES = flags.DEFINE_integer('num_batches', 20,
                                'Pipeline batches timed (after 2 warm-up).')
_STEPS = flags.DEFINE_integer('num_steps', 3,
                              'Training steps timed (after 1 warm-up).')
_RECORDS = flags.DEFINE_integer('num_records', 400,
                                'Synthetic image records written.')
_SIDE = flags.DEFINE_integer('stored_side', 300,
                             'Side of the stored JPEG crops in pixels.')
_THREADS = flags.DEFINE_integer('threads', 2, 'CPU threads TensorFlow uses.')
_CONSUMER = flags.DEFINE_enum('consumer', 'hmr', ['hmr', configs.RESNET50_V2],
                              'What consumes the batches.')


def _synthetic_image(rng, side):
  """A smooth, photo-like image (JPEG size similar to real crops)."""
  coarse = rng.uniform(0, 255, [8, 8, 3]).astype(np.float32)
  image = cv2.resize(coarse, (side, side), interpolation=cv2.INTER_CUBIC)
  image += rng.normal(0, 8, image.shape)
  return np.clip(image, 0, 255).astype(np.uint8)


def write_records(root, num_records, side, seed=0):
  """Writes a 2D, a 3D and a mocap dataset; returns their names."""
  rng = np.random.default_rng(seed)
  sizes = []
  for name, kind, count in (('bench_2d', schema.KIND_2D, num_records // 2),
                            ('bench_3d', schema.KIND_3D,
                             num_records - num_records // 2)):
    with writer_lib.ShardedWriter(root, name, kind, shard_size=50) as w:
      for i in range(count):
        ok, jpeg = cv2.imencode('.jpg', _synthetic_image(rng, side),
                                [cv2.IMWRITE_JPEG_QUALITY, 90])
        assert ok
        sizes.append(len(jpeg))
        kp = np.concatenate([rng.uniform(0.2 * side, 0.8 * side, [19, 2]),
                             np.ones([19, 1])], axis=1)
        extra = {}
        if kind == schema.KIND_3D:
          extra = dict(pose=rng.normal(size=72) * 0.2,
                       shape=rng.normal(size=10),
                       joints3d=rng.normal(size=[14, 3]) * 0.3)
        w.write('train', schema.make_image_example(
            jpeg.tobytes(), side, side, f'{name}_{i}.jpg',
            (side / 2, side / 2), kp, dataset=name, **extra))
  with writer_lib.ShardedWriter(root, 'bench_mocap', schema.KIND_MOCAP,
                                shard_size=1000) as w:
    for _ in range(2000):
      w.write('train', schema.make_mocap_example(rng.normal(size=72) * 0.2,
                                                   rng.normal(size=10)))
  return ('bench_2d', 'bench_3d'), ('bench_mocap',), float(np.mean(sizes))


def time_pipeline(config, num_batches):
  iterator = iter(input_pipeline.train_dataset(config))
  for _ in range(2):  # warm-up: tracing, first shards, shuffle buffers
    next(iterator)
  start = time.perf_counter()
  for _ in range(num_batches):
    batch, _ = next(iterator)
  batch['image'].numpy()
  seconds = time.perf_counter() - start
  return num_batches * config.batch_size / seconds


def _hmr_step(config, data):
  from hmr_tf.modeling import hmr_model  # pylint: disable=g-import-not-at-top
  from hmr_tf.modeling import mean_params
  from hmr_tf.smpl import standin
  body = standin.build(num_vertices=1200)
  theta0 = mean_params.mean_theta(np.zeros(72), np.zeros(10))
  model = hmr_model.HMRModel(
      body, theta0, configs.ModelConfig(img_size=config.img_size,
                                          num_stage=config.num_stage))
  model.compile()
  return tf.function(lambda: model.train_step(data))


def _resnet_step(config, data):
  model = tf.keras.applications.ResNet50V2(
      weights=None, include_top=False, pooling='avg',
      input_shape=(config.img_size, config.img_size, 3))
  optimizer = tf.keras.optimizers.Adam(1e-5)
  images = data[0]['image']

  @tf.function
  def step():
    with tf.GradientTape() as tape:
      loss = tf.reduce_mean(tf.square(model(images, training=True)))
    grads = tape.gradient(loss, model.trainable_variables)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    return loss

  return step


def time_step(config, consumer, num_steps):
  data = next(iter(input_pipeline.train_dataset(config)))
  step = (_hmr_step if consumer == 'hmr' else _resnet_step)(config, data)
  tf.nest.map_structure(np.asarray, step())  # warm-up: trace + first run
  start = time.perf_counter()
  for _ in range(num_steps):
    out = step()
  tf.nest.map_structure(np.asarray, out)
  seconds = time.perf_counter() - start
  return num_steps * config.batch_size / seconds


def main(argv):
  del argv
  tf.config.threading.set_intra_op_parallelism_threads(_THREADS.value)
  tf.config.threading.set_inter_op_parallelism_threads(_THREADS.value)
  with tempfile.TemporaryDirectory() as root:
    datasets, mocap, jpeg_bytes = write_records(root, _RECORDS.value,
                                                _SIDE.value)
    config = configs.DataConfig(
        data_dir=root, datasets=datasets, mocap_datasets=mocap,
        batch_size=_BATCH.value, img_size=_IMG.value,
        shuffle_buffer=min(2000, _RECORDS.value))
    pipeline = time_pipeline(config, _BATCHES.value)
    consumer = time_step(config, _CONSUMER.value, _STEPS.value)
  print(f'Input pipeline benchmark: {_THREADS.value} CPU threads, batch '
        f'{_BATCH.value}, {_IMG.value}x{_IMG.value} crops from '
        f'{_SIDE.value}x{_SIDE.value} JPEGs (mean {jpeg_bytes / 1024:.1f} KiB), '
        f'{_RECORDS.value} records')
  print(f'{"what":<44}{"images/s":>12}')
  print(f'{"training pipeline (train_dataset)":<44}{pipeline:>12.1f}')
  step_name = ('HMRModel.train_step (stand-in body)' if _CONSUMER.value == 'hmr'
               else 'ResNet50V2 forward+backward')
  print(f'{step_name:<44}{consumer:>12.1f}')
  ratio = pipeline / consumer
  print(f'{"ratio pipeline / step (target >= 3)":<44}{ratio:>12.2f}'
        f'  {"OK" if ratio >= 3 else "BELOW TARGET"}')


if __name__ == '__main__':
  app.run(main)
