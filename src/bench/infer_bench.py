"""Benchmark: exported SavedModel throughput next to the bare ResNet50V2.

  python src/bench/infer_bench.py [--img_size=224] [--batches=1,32]
      [--iters=10] [--num_vertices=6890]

Builds an HMRModel (random weights: speed does not depend on them), exports
it with hmr_tf.export, reloads it with tf.saved_model.load, and times in the
same run:
  * bare encoder: the model's ResNet50V2 alone (tf.function), the baseline;
  * SavedModel `predict_crops`: encoder + 3 IEF iterations + SMPL (+ mesh);
  * SavedModel `serving_default`: the same plus JPEG decoding and the crop
    (its input is different, so it is listed but not the target's ratio).
Prints images/s (median over the timed calls) and the ratio to the bare
encoder; the target is predict_crops >= 90% of the bare encoder. The default
sizes are tiny so that it finishes in about a minute on 2 CPU cores; use
--img_size=224 (and --num_vertices=6890 for an SMPL-sized mesh) for real
numbers.
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

from hmr_tf import export
from hmr_tf.modeling import hmr_model
from hmr_tf.modeling import mean_params
from hmr_tf.smpl import standin

_IMG_SIZE = flags.DEFINE_integer('img_size', 64, 'Model input size S.')
_BATCHES = flags.DEFINE_list('batches', ['1', '32'], 'Batch sizes.')
_ITERS = flags.DEFINE_integer('iters', 5, 'Timed calls per configuration.')
_WARMUP = flags.DEFINE_integer('warmup', 2, 'Untimed calls first.')
_NUM_VERTICES = flags.DEFINE_integer(
    'num_vertices', 1200, 'Stand-in body size (about 1700 at the minimum; '
    '6890-ish for SMPL-like cost).')
_VERTICES = flags.DEFINE_bool('include_vertices', True,
                              'Export the mesh output.')
TARGET = 0.9


def _time(fn, iters: int, warmup: int) -> float:
  """Median seconds per call; each call's outputs are fetched to host."""
  for _ in range(warmup):
    tf.nest.map_structure(lambda t: t.numpy(), fn())
  times = []
  for _ in range(iters):
    start = time.perf_counter()
    tf.nest.map_structure(lambda t: t.numpy(), fn())
    times.append(time.perf_counter() - start)
  return float(np.median(times))


def main(argv):
  del argv
  size = _IMG_SIZE.value
  body_model = standin.build(num_vertices=_NUM_VERTICES.value)
  tf.keras.utils.set_random_seed(0)
  model = hmr_model.HMRModel(
      body_model, mean_params.mean_theta(np.zeros(72), np.zeros(10)),
      hmr_model.ModelConfig(img_size=size))
  with tempfile.TemporaryDirectory() as tmp:
    path = export.export_saved_model(model, tmp, version=1,
                                     include_vertices=_VERTICES.value)
    loaded = tf.saved_model.load(path)
    crops_fn = loaded.signatures['predict_crops']
    bytes_fn = loaded.signatures['serving_default']
    encoder = tf.function(lambda x: model.encoder(x, training=False))
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
    jpeg = cv2.imencode('.jpg', photo)[1].tobytes()
    rows = []
    for batch in (int(b) for b in _BATCHES.value):
      x = tf.constant(rng.uniform(-1, 1, (batch, size, size, 3)), tf.float32)
      data = tf.constant([jpeg] * batch)
      bare = _time(lambda: encoder(x), _ITERS.value, _WARMUP.value)
      crops = _time(lambda: crops_fn(images=x), _ITERS.value, _WARMUP.value)
      served = _time(lambda: bytes_fn(image_bytes=data), _ITERS.value,
                     _WARMUP.value)
      for name, secs in (('bare ResNet50V2 encoder', bare),
                         ('SavedModel predict_crops', crops),
                         ('SavedModel serving_default (JPEG)', served)):
        rows.append((batch, name, batch / secs, bare / secs))
  sys.stdout.write(
      f'Inference throughput: img_size {size}, {body_model.num_vertices} '
      f'vertices, vertices output {_VERTICES.value}, median of '
      f'{_ITERS.value} calls, {os.cpu_count()} CPUs visible, devices '
      f'{[d.device_type for d in tf.config.list_logical_devices()]}\n')
  sys.stdout.write(f'{"batch":>5}  {"what":<36}{"images/s":>10}'
                   f'{"vs bare":>9}\n')
  for batch, name, ips, ratio in rows:
    sys.stdout.write(f'{batch:>5}  {name:<36}{ips:>10.1f}{ratio:>9.2f}\n')
  for batch, name, _, ratio in rows:
    if 'predict_crops' in name:
      verdict = 'meets' if ratio >= TARGET else 'MISSES'
      sys.stdout.write(f'batch {batch}: predict_crops at {ratio:.0%} of the '
                       f'bare encoder, {verdict} the {TARGET:.0%} target\n')


if __name__ == '__main__':
  app.run(main)
