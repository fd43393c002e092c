"""Benchmark: exported SavedModel and LiteRT throughput, next to the bare encoder.

  python src/bench/infer_bench.py [--img_size=224] [--batches=1,32]
      [--iters=5] [--num_vertices=6890] [--accuracy_examples=32]
      [--exports=...] [--litert_threads=2]

Builds an HMRModel (random weights: speed does not depend on them), exports
it with hmr_tf.inference.export (float32 and bfloat16, with the XLA settings
of --exports) and hmr_tf.inference.tflite_export (LiteRT float32 and
--litert_quantization, run by the LiteRT interpreter with XNNPACK on
--litert_threads threads), reloads each, and times in the same run, the
configurations taking turns call by call (so that other jobs on the machine
slow them alike):
  * bare encoder float32: the model's encoder alone (tf.function), the
    baseline;
  * bare encoder bfloat16: the same under Keras' mixed_bfloat16 policy (what
    the reduced type gains on this CPU);
  * the exports' `predict_crops`: encoder + 3 IEF iterations + SMPL (+ mesh);
  * the LiteRT models on the same crops.
Prints images/s (median over the timed calls) and each configuration's speed
relative to the bare float32 encoder and to the float32 export, as the
median and the range of the per-round ratios (one round = every
configuration called once, back to back). Then the targets (issue 26):
  * the default float32 export (export.DEFAULT_JIT_COMPILE) >= 0.95x the
    bare float32 encoder at every batch;
  * the bfloat16 export's gain over the float32 export >= 0.95 of the bare
    encoder's own bfloat16/float32 gain on this machine (the ratio of
    ratios): bfloat16 pays only on CPUs with native bfloat16, and this
    states the export's target relative to what the CPU can give;
  * LiteRT float32 at batch 1 >= 1.2x the float32 export at batch 1.
The first line names the CPU (model, AVX/AMX flags) and whether it computes
bfloat16 natively; ONEDNN_MAX_CPU_ISA and XLA_FLAGS are echoed when set
(`ONEDNN_MAX_CPU_ISA=AVX2 XLA_FLAGS=--xla_cpu_max_isa=AVX2` emulates an
AVX2-only CPU for TensorFlow's oneDNN kernels and XLA; LiteRT's XNNPACK
still uses every instruction the CPU has).

Then the accuracy cost of bfloat16 and of the quantised LiteRT model:
held-out synthetic crops (the synthetic 3D test split rendered from the same
body at img_size, through the evaluation input pipeline) go through the
float32 export and the others; the table gives the keypoint difference in
pixels of the crop and the vertex difference in mm (mean and max over
keypoints/vertices and images). With --checkpoint (a trained hmr_tf
checkpoint with its model_config.json; the body model must match:
--num_vertices for the stand-in) the trained weights are used; without it
the weights are random, whose outputs stay near Θ_0, so the differences then
understate a trained model's.

The default sizes are small so that it finishes in a few minutes on 2 CPU
cores; use --img_size=224 --num_vertices=6890 for the targets' setting.
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
from hmr_tf.inference import cpu_features
from hmr_tf.inference import export
from hmr_tf.inference import tflite_export
from hmr_tf.inference import tflite_runner
from hmr_tf.modeling import encoder as encoder_lib
from hmr_tf.modeling import hmr_model
from hmr_tf.modeling import mean_params
from hmr_tf.smpl import standin
from hmr_tf.synthetic import generator
from hmr_tf.training import checkpoints

_IMG_SIZE = flags.DEFINE_integer('img_size', 128, 'Model input size S.')
_BATCHES = flags.DEFINE_list('batches', ['1', '32'], 'Batch sizes.')
_ITERS = flags.DEFINE_integer('iters', 5, 'Timed rounds (calls per '
                              'configuration).')
_WARMUP = flags.DEFINE_integer('warmup', 2, 'Untimed calls first.')
_NUM_VERTICES = flags.DEFINE_integer(
    'num_vertices', 1200, 'Stand-in body size (about 1700 at the minimum; '
    '6890-ish for SMPL-like cost).')
_VERTICES = flags.DEFINE_bool('include_vertices', True,
                              'Export the mesh output.')
_ACCURACY_EXAMPLES = flags.DEFINE_integer(
    'accuracy_examples', 32, 'Held-out synthetic crops for the accuracy '
    'table (0: skip it).')
_CHECKPOINT = flags.DEFINE_string(
    'checkpoint', '', 'A trained hmr_tf checkpoint (folder or prefix) to '
    'export instead of random weights.')
_EXPORTS = flags.DEFINE_list(
    'exports', ['float32:head', 'float32:all', 'bfloat16:none',
                'bfloat16:head'],
    'SavedModel exports to time, PRECISION:JIT_COMPILE each (the default '
    'settings\' float32 and bfloat16 exports are always added).')
_BFLOAT16 = flags.DEFINE_bool(
    'bfloat16', True, 'Time the bfloat16 encoder and export too (off under '
    'ONEDNN_MAX_CPU_ISA=AVX2 on a CPU with bfloat16: TensorFlow still picks '
    'oneDNN\'s bfloat16 kernels, which the capped ISA cannot create).')
_LITERT = flags.DEFINE_bool('litert', True, 'Time the LiteRT models too.')
_LITERT_THREADS = flags.DEFINE_integer('litert_threads', 2,
                                       'LiteRT interpreter threads.')
_LITERT_QUANTIZATION = flags.DEFINE_enum(
    'litert_quantization', configs.TFLITE_QUANTIZATIONS[0],
    configs.TFLITE_QUANTIZATIONS, 'The quantised LiteRT model timed next to '
    'float32.')

TARGET_F32_VS_BARE = 0.95
TARGET_BF16_RATIO_OF_RATIOS = 0.95
TARGET_LITERT_VS_EXPORT = 1.2
TARGET_KEYPOINT_PX = 1.0  # bfloat16 export, 224 crop
TARGET_LITERT_QUANTIZED_PX = 2.0  # issue 26, 224 crop
BARE_F32 = 'bare encoder float32'
BARE_BF16 = 'bare encoder bfloat16'


def _export_name(precision: str, jit: str) -> str:
  default = ' (default)' if jit == export.DEFAULT_JIT_COMPILE else ''
  return f'{precision} export, XLA {jit}{default}'


def _litert_name(variant: str) -> str:
  return f'LiteRT {variant}, XNNPACK'


def _fetch(out):
  tf.nest.map_structure(lambda t: np.asarray(t), out)


def _time_interleaved(fns, iters: int, warmup: int):
  """{name: [seconds of each round]}; the functions take turns."""
  for fn in fns.values():
    for _ in range(warmup):
      _fetch(fn())
  times = collections.defaultdict(list)
  for _ in range(iters):
    for name, fn in fns.items():
      start = time.perf_counter()
      _fetch(fn())
      times[name].append(time.perf_counter() - start)
  return {name: np.asarray(t) for name, t in times.items()}


def _ratio(times, faster: str, slower: str):
  """(median, min, max) over rounds of how much faster `faster` ran."""
  per_round = times[slower] / times[faster]
  return (float(np.median(per_round)), float(per_round.min()),
          float(per_round.max()))


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


def _differences(ref, out, size):
  """(name, mean, max) of keypoint px, vertex mm and joint mm differences."""
  kp = np.linalg.norm(np.asarray(out['keypoints2d']) -
                      np.asarray(ref['keypoints2d']), axis=-1) * size / 2
  rows = [('keypoints2d, px of the crop', kp)]
  if 'vertices' in ref:
    mm = np.linalg.norm(np.asarray(out['vertices']) -
                        np.asarray(ref['vertices']), axis=-1) * 1000
    rows.append(('vertices, mm', mm))
  joints = np.linalg.norm(np.asarray(out['joints3d']) -
                          np.asarray(ref['joints3d']), axis=-1) * 1000
  rows.append(('joints3d, mm', joints))
  return [(name, float(v.mean()), float(v.max())) for name, v in rows]


def _exports_to_time():
  """[(precision, jit)]: --exports plus the default settings' two."""
  wanted = []
  default = export.DEFAULT_JIT_COMPILE
  for item in _EXPORTS.value + [f'float32:{default}', f'bfloat16:{default}']:
    precision, _, jit = item.partition(':')
    if precision == 'bfloat16' and not _BFLOAT16.value:
      continue
    configs.check_choice('--exports precision', precision,
                         configs.EXPORT_PRECISIONS)
    configs.check_choice('--exports jit_compile', jit,
                         configs.EXPORT_JIT_COMPILE)
    if (precision, jit) not in wanted:
      wanted.append((precision, jit))
  return wanted


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
      BARE_F32: tf.function(lambda x: model.encoder(x, training=False)),
      BARE_BF16: tf.function(lambda x: encoder_bf16(x, training=False)),
  }
  if not _BFLOAT16.value:
    del bare[BARE_BF16]
  rng = np.random.default_rng(0)
  times = {}
  accuracy = {}
  f32_default = _export_name('float32', export.DEFAULT_JIT_COMPILE)
  bf16_default = _export_name('bfloat16', export.DEFAULT_JIT_COMPILE)
  with tempfile.TemporaryDirectory() as tmp:
    exports = {}
    for version, (precision, jit) in enumerate(_exports_to_time(), 1):
      path = export.export_saved_model(
          model, os.path.join(tmp, 'export'), version=version,
          include_vertices=_VERTICES.value, precision=precision,
          jit_compile=jit)
      signature = tf.saved_model.load(path).signatures['predict_crops']
      exports[_export_name(precision, jit)] = (
          lambda x, f=signature: f(images=tf.constant(x)))
    if _LITERT.value:
      folder = tflite_export.export_tflite(
          model, os.path.join(tmp, 'export'), include_vertices=_VERTICES.value,
          quantization=_LITERT_QUANTIZATION.value)
      for variant in ('float32', _LITERT_QUANTIZATION.value):
        runner = tflite_runner.TFLiteModel(
            os.path.join(folder, tflite_export.model_filename(variant)),
            num_threads=_LITERT_THREADS.value)
        exports[_litert_name(variant)] = runner
    for batch in (int(b) for b in _BATCHES.value):
      x = rng.uniform(-1, 1, (batch, size, size, 3)).astype(np.float32)
      x_tf = tf.constant(x)
      fns = {name: (lambda f=f: f(x_tf)) for name, f in bare.items()}
      fns.update({name: (lambda f=f: f(x)) for name, f in exports.items()})
      times[batch] = _time_interleaved(fns, _ITERS.value, _WARMUP.value)
    if _ACCURACY_EXAMPLES.value:
      crops = _held_out_crops(body_model, size, _ACCURACY_EXAMPLES.value, tmp)
      ref = exports[f32_default](crops)
      for name, fn in exports.items():
        if name != f32_default and not name.startswith('float32'):
          accuracy[name] = _differences(ref, fn(crops), size)

  out = sys.stdout.write
  flags_ = cpu_features.cpu_flags()
  native = {True: 'yes', False: 'no', None: 'unknown'}[
      cpu_features.has_native_bf16(flags_)]
  out(f'CPU: {cpu_features.describe_cpu()}; native bfloat16: {native}; '
      f'{os.cpu_count()} CPUs visible\n')
  for var in ('ONEDNN_MAX_CPU_ISA', 'XLA_FLAGS', 'TF_ENABLE_ONEDNN_OPTS'):
    if os.environ.get(var):
      out(f'  {var}={os.environ[var]}\n')
  out(f'Inference throughput: img_size {size}, encoder '
      f'{model.config.encoder}, {body_model.num_vertices} vertices, vertices '
      f'output {_VERTICES.value}, weights '
      f'{_CHECKPOINT.value or "random"}, {_ITERS.value} rounds '
      '(configurations interleaved); ratios: median [min–max] over rounds; '
      f'LiteRT: {_LITERT_THREADS.value} threads\n')
  out(f'{"batch":>5}  {"what":<38}{"images/s":>9}{"vs bare f32":>20}'
      f'{"vs f32 export":>20}\n')
  for batch, t in times.items():
    for name in t:
      ips = batch / float(np.median(t[name]))
      cols = []
      for base in (BARE_F32, f32_default):
        median, lo, hi = _ratio(t, name, base)
        cols.append(f'{median:5.2f} [{lo:.2f}–{hi:.2f}]')
      out(f'{batch:>5}  {name:<38}{ips:>9.2f}{cols[0]:>20}{cols[1]:>20}\n')
  out('\nTargets (issue 26):\n')
  for batch, t in times.items():
    median, lo, hi = _ratio(t, f32_default, BARE_F32)
    verdict = 'meets' if median >= TARGET_F32_VS_BARE else 'MISSES'
    out(f'batch {batch}: the default float32 export (XLA '
        f'{export.DEFAULT_JIT_COMPILE}) at {median:.2f}x [{lo:.2f}–{hi:.2f}] '
        f'the bare float32 encoder: {verdict} the {TARGET_F32_VS_BARE}x '
        'target\n')
  for batch, t in times.items():
    if bf16_default not in t:
      break
    export_gain = t[f32_default] / t[bf16_default]
    bare_gain = t[BARE_F32] / t[BARE_BF16]
    per_round = export_gain / bare_gain
    median = float(np.median(per_round))
    verdict = ('meets' if median >= TARGET_BF16_RATIO_OF_RATIOS else
               'MISSES')
    out(f'batch {batch}: bfloat16/float32 export {np.median(export_gain):.2f}'
        f'x, bare encoder {np.median(bare_gain):.2f}x; ratio of ratios '
        f'{median:.2f} [{per_round.min():.2f}–{per_round.max():.2f}]: '
        f'{verdict} the {TARGET_BF16_RATIO_OF_RATIOS} target\n')
  if _LITERT.value and 1 in times:
    median, lo, hi = _ratio(times[1], _litert_name('float32'), f32_default)
    verdict = 'meets' if median >= TARGET_LITERT_VS_EXPORT else 'MISSES'
    out(f'batch 1: LiteRT float32 at {median:.2f}x [{lo:.2f}–{hi:.2f}] the '
        f'default float32 export: {verdict} the {TARGET_LITERT_VS_EXPORT}x '
        'target\n')
  if accuracy:
    out(f'\nvs the default float32 export on {_ACCURACY_EXAMPLES.value} '
        f'held-out synthetic crops ({size} px):\n')
    out(f'{"what":<38}{"output":<30}{"mean":>8}{"max":>8}\n')
    for name, rows in accuracy.items():
      for row, mean, worst in rows:
        out(f'{name:<38}{row:<30}{mean:>8.3f}{worst:>8.3f}\n')
    for name, target in ((bf16_default, TARGET_KEYPOINT_PX),
                         (_litert_name(_LITERT_QUANTIZATION.value),
                          TARGET_LITERT_QUANTIZED_PX)):
      if name in accuracy:
        px_224 = accuracy[name][0][1] * 224 / size
        verdict = 'meets' if px_224 <= target else 'MISSES'
        out(f'{name}: keypoints mean {px_224:.3f} px in a 224 crop, '
            f'{verdict} the {target:g} px target\n')
    if not _CHECKPOINT.value:
      out('(random weights: outputs stay near the mean parameters, so these '
          'differences understate a trained model\'s; pass --checkpoint)\n')


if __name__ == '__main__':
  app.run(main)
