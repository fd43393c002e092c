"""Benchmark: exported SavedModel throughput and precision, next to the bare ResNet50V2.

  python src/bench/infer_bench.py [--img_size=224] [--batches=1,32]
      [--iters=5] [--num_vertices=6890] [--accuracy_examples=32]

Builds an HMRModel (random weights: speed does not depend on them), exports
it with hmr_tf.inference.export five ways (float32 and bfloat16, each without XLA
and with XLA on the head: IEF + SMPL; float32 all XLA), reloads each with tf.saved_model.load, and times in the same run,
the configurations taking turns call by call (so that other jobs on the
machine slow them alike):
  * bare encoder float32: the model's ResNet50V2 alone (tf.function), the
    baseline;
  * bare encoder bfloat16: the same under Keras' mixed_bfloat16 policy (what
    the reduced type can gain at most);
  * the exports' `predict_crops`: encoder + 3 IEF iterations + SMPL (+ mesh).
Prints images/s (median over the timed calls), the ratio to the bare
float32 encoder, and the ratio of the bfloat16 export to the float32 export.

Then the accuracy cost of bfloat16: held-out synthetic crops (the synthetic
3D test split rendered from the same body at img_size, through the
evaluation input pipeline) go through the float32 and the bfloat16 exports;
the table gives the keypoint difference in pixels of the crop and the vertex
difference in mm (mean and max over keypoints/vertices and images). With
--checkpoint (a trained hmr_tf checkpoint with its model_config.json; the
body model must match: --num_vertices for the stand-in) the trained weights
are used; without it the weights are random, whose outputs stay near Θ_0,
so the differences then understate a trained model's.

Targets (issue 18): bfloat16 export >= 1.6x the float32 export at batch 32;
float32 export >= 0.95x the bare float32 encoder at batch 1 and 32;
bfloat16 keypoints within 1 px of float32 in a 224 crop. The default sizes
are small so that it finishes in a few minutes on 2 CPU cores; use
--img_size=224 --num_vertices=6890 for the targets' setting.
"""

import collections
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..'))

import keras  # pylint: disable=g-import-not-at-top
import numpy as np
import tensorflow as tf
from absl import app
from absl import flags
from absl import logging

from hmr_tf import configs
from hmr_tf.data import input_pipeline
from hmr_tf.inference import export
from hmr_tf.modeling import encoder as encoder_lib
from hmr_tf.modeling import hmr_model
from hmr_tf.modeling import mean_params
from hmr_tf.smpl import standin
from hmr_tf.synthetic import generator
from hmr_tf.training import checkpoints

_IMG_SIZE = flags.DEFINE_integer('img_size', 128, 'Model input size S.')
_BATCHES = flags.DEFINE_list('batches', ['1', '32'], 'Batch sizes.')
_ITERS = flags.DEFINE_integer('iters', 5, 'Timed calls per configuration.')
_WARMUP = flags.DEFINE_integer('warmup', 2, 'Untimed calls first.')
_NUM_VERTICES = flags.DEFINE_integer(
    'num_vertices', 1200, 'Stand-in body size (about 1700 at the minimum; '
    '6890-ish for SMPL-like cost).')
_VERTICES = flags.DEFINE_bool('include_vertices', True,
                              'Export the mesh output.')
_ACCURACY_EXAMPLES = flags.DEFINE_integer(
    'accuracy_examples', 32, 'Held-out synthetic crops for the bfloat16 '
    'accuracy table (0: skip it).')
_CHECKPOINT = flags.DEFINE_string(
    'checkpoint', '', 'A trained hmr_tf checkpoint (folder or prefix) to '
    'export instead of random weights.')

TARGET_BF16_SPEEDUP = 1.6
TARGET_F32_VS_BARE = 0.95
TARGET_KEYPOINT_PX = 1.0

_EXPORTS = (('float32 export', 'float32', 'none'),
            ('float32 export, XLA head', 'float32', 'head'),
            ('float32 export, XLA all', 'float32', 'all'),
            ('bfloat16 export', 'bfloat16', 'none'),
            ('bfloat16 export, XLA head', 'bfloat16', 'head'))


def _fetch(out):
  tf.nest.map_structure(lambda t: t.numpy(), out)


def _time_interleaved(fns, iters: int, warmup: int):
  """{name: median seconds per call}; the functions take turns."""
  for fn in fns.values():
    for _ in range(warmup):
      _fetch(fn())
  times = collections.defaultdict(list)
  for _ in range(iters):
    for name, fn in fns.items():
      start = time.perf_counter()
      _fetch(fn())
      times[name].append(time.perf_counter() - start)
  return {name: float(np.median(t)) for name, t in times.items()}


def _model(body_model, size):
  tf.keras.utils.set_random_seed(0)
  if _CHECKPOINT.value:
    return checkpoints.restore_model(_CHECKPOINT.value, body_model)
  return hmr_model.HMRModel(
      body_model, mean_params.mean_theta(np.zeros(72), np.zeros(10)),
      configs.ModelConfig(img_size=size))


def _held_out_crops(body_model, size: int, count: int, tmp: str) -> np.ndarray:
  """[count, S, S, 3] crops of the synthetic 3D test split, as eval sees them."""
  data_dir = os.path.join(tmp, 'data')
  generator.generate(data_dir, num_train=0, num_test=count, num_mocap=0,
                     body_model=body_model, img_size=size, kinds=('3d',))
  config = configs.DataConfig(data_dir=data_dir, img_size=size,
                                     base_crop_size=size, batch_size=count)
  batch = next(iter(input_pipeline.eval_dataset(config, 'synthetic_3d')))
  return batch['image'].numpy()


def _accuracy(exports, crops, size):
  """bfloat16 vs float32 export: (keypoint px, vertex mm) mean and max."""
  f32 = exports['float32 export'](images=tf.constant(crops))
  bf16 = exports['bfloat16 export'](images=tf.constant(crops))
  kp = np.linalg.norm(bf16['keypoints2d'].numpy() -
                      f32['keypoints2d'].numpy(), axis=-1) * size / 2
  rows = [('keypoints2d, px of the crop', kp)]
  if 'vertices' in f32:
    mm = np.linalg.norm(bf16['vertices'].numpy() - f32['vertices'].numpy(),
                        axis=-1) * 1000
    rows.append(('vertices, mm', mm))
  joints = np.linalg.norm(bf16['joints3d'].numpy() - f32['joints3d'].numpy(),
                          axis=-1) * 1000
  rows.append(('joints3d, mm', joints))
  return [(name, float(v.mean()), float(v.max())) for name, v in rows]


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  size = _IMG_SIZE.value
  body_model = standin.build(num_vertices=_NUM_VERTICES.value)
  model = _model(body_model, size)
  size = model.config.img_size
  keras.mixed_precision.set_global_policy('mixed_bfloat16')
  encoder_bf16 = encoder_lib.build_encoder(size, 'none', model.config.encoder)
  keras.mixed_precision.set_global_policy('float32')
  encoder_bf16.set_weights(model.encoder.get_weights())
  bare = {
      'bare encoder float32':
          tf.function(lambda x: model.encoder(x, training=False)),
      'bare encoder bfloat16':
          tf.function(lambda x: encoder_bf16(x, training=False)),
  }
  rng = np.random.default_rng(0)
  rows = []
  accuracy = None
  with tempfile.TemporaryDirectory() as tmp:
    exports = {}
    for version, (name, precision, jit) in enumerate(_EXPORTS, 1):
      path = export.export_saved_model(
          model, os.path.join(tmp, 'export'), version=version,
          include_vertices=_VERTICES.value, precision=precision,
          jit_compile=jit)
      exports[name] = tf.saved_model.load(path).signatures['predict_crops']
    for batch in (int(b) for b in _BATCHES.value):
      x = tf.constant(rng.uniform(-1, 1, (batch, size, size, 3)), tf.float32)
      fns = {name: (lambda f=f: f(x)) for name, f in bare.items()}
      fns.update({name: (lambda f=f: f(images=x))
                  for name, f in exports.items()})
      secs = _time_interleaved(fns, _ITERS.value, _WARMUP.value)
      base = secs['bare encoder float32']
      for name, s in secs.items():
        rows.append((batch, name, batch / s, base / s,
                     secs['float32 export'] / s))
    if _ACCURACY_EXAMPLES.value:
      crops = _held_out_crops(body_model, size, _ACCURACY_EXAMPLES.value, tmp)
      accuracy = _accuracy(exports, crops, size)

  out = sys.stdout.write
  out(f'Inference throughput: img_size {size}, encoder '
      f'{model.config.encoder}, {body_model.num_vertices} vertices, vertices '
      f'output {_VERTICES.value}, weights '
      f'{_CHECKPOINT.value or "random"}, median of {_ITERS.value} calls '
      f'(configurations interleaved), {os.cpu_count()} CPUs visible, devices '
      f'{[d.device_type for d in tf.config.list_logical_devices()]}\n')
  out(f'{"batch":>5}  {"what":<28}{"images/s":>10}{"vs bare f32":>13}'
      f'{"vs f32 export":>15}\n')
  for batch, name, ips, vs_bare, vs_f32 in rows:
    out(f'{batch:>5}  {name:<28}{ips:>10.1f}{vs_bare:>13.2f}{vs_f32:>15.2f}\n')
  for batch, name, _, vs_bare, vs_f32 in rows:
    if name == 'float32 export':
      verdict = 'meets' if vs_bare >= TARGET_F32_VS_BARE else 'MISSES'
      out(f'batch {batch}: float32 export at {vs_bare:.2f}x the bare float32 '
          f'encoder, {verdict} the {TARGET_F32_VS_BARE}x target\n')
    if name == 'bfloat16 export' and batch >= 32:
      verdict = 'meets' if vs_f32 >= TARGET_BF16_SPEEDUP else 'MISSES'
      out(f'batch {batch}: bfloat16 export at {vs_f32:.2f}x the float32 '
          f'export, {verdict} the {TARGET_BF16_SPEEDUP}x target\n')
  if accuracy:
    out(f'\nbfloat16 export vs float32 export on {_ACCURACY_EXAMPLES.value} '
        f'held-out synthetic crops ({size} px):\n')
    out(f'{"output":<30}{"mean":>8}{"max":>8}\n')
    for name, mean, worst in accuracy:
      out(f'{name:<30}{mean:>8.3f}{worst:>8.3f}\n')
    px_224 = accuracy[0][1] * 224 / size
    verdict = 'meets' if px_224 <= TARGET_KEYPOINT_PX else 'MISSES'
    out(f'keypoints: mean {px_224:.3f} px in a 224 crop, {verdict} the '
        f'{TARGET_KEYPOINT_PX:.0f} px target\n')
    if not _CHECKPOINT.value:
      out('(random weights: outputs stay near the mean parameters, so these '
          'differences understate a trained model\'s; pass --checkpoint)\n')


if __name__ == '__main__':
  app.run(main)
