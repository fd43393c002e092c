"""Benchmark: HMR training throughput over replicas, XLA and mixed precision.

  python src/bench/scale_bench.py [--batch_size=8] [--img_size=48]
      [--steps=3] [--warmup=1] [--standin_vertices=1200]

Measures images per second of the full HMR training step (generator +
discriminator update, `HMRModel.train_step` through `model.fit`, so the
dataset is split per replica by Keras' tf.distribute path) with a fixed
global batch, for:

  * 1 replica and 2 replicas (MirroredStrategy). Without GPUs the CPU is
    split into two logical devices (they share the machine's cores, so this
    shows the cost of distribution, not a speed-up); with GPUs, GPU 0 and
    GPU 0 + 1;
  * float32 and mixed precision (mixed_bfloat16 on CPU, mixed_float16 on
    GPU);
  * with and without XLA (jit_compile). XLA runs with one replica only:
    Keras' TensorFlow trainer compiles the whole `strategy.run` as one XLA
    function, which cannot place variables on several devices, and
    hmr_tf.training.loop ignores jit_compile with several replicas.

Each row prints images/s and the speed-up relative to the single-replica
float32 baseline measured in the same run, the encoder's achieved
FLOP rate (training ~ 3 x the forward FLOPs of ResNet50V2, counted from its
layers) as a fraction of the matmul rate measured on the same device and
dtype (a 2048^3 matmul; x replicas), and on GPUs the mean GPU utilisation
reported by nvidia-smi while the timed steps ran. The defaults take about
2-3 minutes on 2 CPU cores (one fixed synthetic batch: no input pipeline).
The body is the procedural stand-in.
"""

import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..'))

import tensorflow as tf  # pylint: disable=g-import-not-at-top

# Two logical CPU devices must be configured before TensorFlow initialises
# its devices, i.e. before anything below touches them.
_GPUS = tf.config.list_physical_devices('GPU')
if not _GPUS:
  tf.config.set_logical_device_configuration(
      tf.config.list_physical_devices('CPU')[0],
      [tf.config.LogicalDeviceConfiguration()] * 2)

import keras  # pylint: disable=g-import-not-at-top
import numpy as np  # pylint: disable=g-import-not-at-top
from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags  # pylint: disable=g-import-not-at-top

from hmr_tf import configs
from hmr_tf.modeling import hmr_model  # pylint: disable=g-import-not-at-top
from hmr_tf.modeling import mean_params  # pylint: disable=g-import-not-at-top
from hmr_tf.smpl import standin  # pylint: disable=g-import-not-at-top
from hmr_tf.training import distribute  # pylint: disable=g-import-not-at-top

_BATCH = flags.DEFINE_integer('batch_size', 8, 'Global images per step.')
_IMG = flags.DEFINE_integer('img_size', 48, 'Side of the square crops.')
_STEPS = flags.DEFINE_integer('steps', 3, 'Timed steps per configuration.')
_WARMUP = flags.DEFINE_integer('warmup', 1, 'Untimed steps (tracing) first.')
_VERTICES = flags.DEFINE_integer(
    'standin_vertices', 1200, 'Target vertex count of the stand-in body.')


def _devices():
  kind = 'GPU' if _GPUS else 'CPU'
  return [d.name for d in tf.config.list_logical_devices(kind)], kind


def _data(batch, img):
  rng = np.random.default_rng(0)
  kp = np.concatenate([rng.uniform(-1, 1, (batch, 19, 2)),
                       np.ones((batch, 19, 1))], -1).astype(np.float32)
  images = dict(
      image=rng.uniform(-1, 1, (batch, img, img, 3)).astype(np.float32),
      keypoints2d=kp,
      joints3d=rng.normal(size=(batch, 14, 3)).astype(np.float32) * 0.3,
      has_joints3d=np.ones(batch, np.float32),
      pose=(rng.normal(size=(batch, 72)) * 0.2).astype(np.float32),
      shape=rng.normal(size=(batch, 10)).astype(np.float32),
      has_smpl=np.ones(batch, np.float32))
  mocap = dict(pose=(rng.normal(size=(3 * batch, 72)) * 0.2).astype(
      np.float32), shape=rng.normal(size=(3 * batch, 10)).astype(np.float32))
  return tf.data.Dataset.from_tensors((images, mocap)).repeat()


class _StepTimes(keras.callbacks.Callback):

  def __init__(self):
    super().__init__()
    self.times = []

  def on_train_batch_end(self, batch, logs=None):
    self.times.append(time.perf_counter())


class _GpuUtilisation:
  """Samples nvidia-smi's utilization.gpu every 200 ms in a thread."""

  def __init__(self):
    self.samples = []
    self._stop = threading.Event()
    self._thread = threading.Thread(target=self._run, daemon=True)

  def _run(self):
    while not self._stop.is_set():
      try:
        out = subprocess.run(
            ['nvidia-smi', '--query-gpu=utilization.gpu',
             '--format=csv,noheader,nounits'], capture_output=True,
            text=True, timeout=5).stdout
        self.samples.append([float(x) for x in out.split()])
      except (OSError, subprocess.SubprocessError, ValueError):
        return
      self._stop.wait(0.2)

  def __enter__(self):
    self._thread.start()
    return self

  def __exit__(self, *exc):
    self._stop.set()
    self._thread.join(timeout=10)

  def mean(self, num_gpus):
    rows = [r[:num_gpus] for r in self.samples if len(r) >= num_gpus]
    return float(np.mean(rows)) if rows else float('nan')


def encoder_forward_flops(encoder: keras.Model) -> float:
  """Multiply-add FLOPs (x2) of one image through the encoder's convs/denses."""
  total = 0.0
  for layer in encoder.layers:
    if isinstance(layer, keras.layers.Conv2D):
      kh, kw, cin, cout = layer.kernel.shape
      _, h, w, _ = layer.output.shape
      total += 2.0 * h * w * kh * kw * cin * cout
    elif isinstance(layer, keras.layers.Dense):
      cin, cout = layer.kernel.shape
      total += 2.0 * cin * cout
  return total


def matmul_rate(device: str, dtype: str, n: int = 2048, reps: int = 10
                ) -> float:
  """Achieved FLOP/s of an n^3 matmul on `device` in `dtype`."""
  with tf.device(device):
    a = tf.random.normal([n, n], dtype=tf.float32)
    a = tf.cast(a, dtype)
    fn = tf.function(lambda x: tf.reduce_sum(
        tf.cast(tf.matmul(x, x), tf.float32)))
    fn(a).numpy()
    start = time.perf_counter()
    for _ in range(reps):
      out = fn(a)
    out.numpy()
    seconds = time.perf_counter() - start
  return 2.0 * n**3 * reps / seconds


def _measure(replicas, precision, jit, body, mean_theta):
  devices, kind = _devices()
  if replicas > len(devices):
    return None
  if replicas == 1:
    strategy = tf.distribute.OneDeviceStrategy(devices[0])
  else:
    strategy = tf.distribute.MirroredStrategy(devices[:replicas])
  distribute.set_precision_policy(precision)
  try:
    with strategy.scope():
      keras.utils.set_random_seed(0)
      model = hmr_model.HMRModel(
          body, mean_theta, configs.ModelConfig(img_size=_IMG.value))
      model.compile(jit_compile=jit)
  finally:
    distribute.set_precision_policy('none')
  data = _data(_BATCH.value, _IMG.value)
  model.fit(data, epochs=1, steps_per_epoch=_WARMUP.value, verbose=0)
  timer = _StepTimes()
  with _GpuUtilisation() if kind == 'GPU' else _NoMonitor() as monitor:
    model.fit(data, epochs=1, steps_per_epoch=_STEPS.value + 1, verbose=0,
              callbacks=[timer])
  # From the end of the first timed step to the end of the last.
  seconds = timer.times[-1] - timer.times[0]
  rate = _STEPS.value * _BATCH.value / seconds
  utilisation = monitor.mean(replicas) if kind == 'GPU' else float('nan')
  return rate, utilisation, model.encoder


class _NoMonitor:

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    return None


def main(argv):
  del argv
  devices, kind = _devices()
  if _BATCH.value % 2:
    raise app.UsageError('--batch_size must be even (split over 2 replicas)')
  mixed = 'mixed_float16' if kind == 'GPU' else 'mixed_bfloat16'
  body = standin.build(num_vertices=_VERTICES.value)
  mean_theta = mean_params.mean_theta(np.zeros(72), np.zeros(10))
  configs = [(1, 'none', False), (1, 'none', True), (1, mixed, False),
             (1, mixed, True), (2, 'none', False), (2, mixed, False)]
  print(f'HMR training step, global batch {_BATCH.value}, {_IMG.value} px, '
        f'{_STEPS.value} timed steps after {_WARMUP.value} warm-up; devices: '
        f'{kind} x {len(devices)}'
        + ('' if _GPUS else ' (logical devices sharing the same CPU cores)'))
  rates = {}
  flops = None
  for replicas, precision, jit in configs:
    result = _measure(replicas, precision, jit, body, mean_theta)
    rates[(replicas, precision, jit)] = result
    if result is not None and flops is None:
      flops = 3.0 * encoder_forward_flops(result[2])
  peak = {p: matmul_rate(devices[0], 'float32' if p == 'none' else
                         p.split('_')[1]) for p in ('none', mixed)}
  base = rates[(1, 'none', False)][0]
  print(f'Encoder training FLOPs per image (3 x forward): {flops / 1e9:.2f} G;'
        f' matmul rate on {devices[0]}: float32 {peak["none"] / 1e9:.1f} '
        f'GFLOP/s, {mixed.split("_")[1]} {peak[mixed] / 1e9:.1f} GFLOP/s')
  header = (f'{"replicas":>8} {"precision":>15} {"XLA":>4} {"images/s":>9} '
            f'{"speed-up":>8} {"matmul frac":>11} {"GPU util %":>10}')
  print(header)
  print('-' * len(header))
  for replicas, precision, jit in configs:
    result = rates[(replicas, precision, jit)]
    name = 'float32' if precision == 'none' else precision
    if result is None:
      print(f'{replicas:>8} {name:>15} {"on" if jit else "off":>4} '
            f'{"n/a (fewer devices)":>20}')
      continue
    rate, utilisation, _ = result
    fraction = rate * flops / (peak[precision] * replicas)
    util = 'n/a' if np.isnan(utilisation) else f'{utilisation:.0f}'
    print(f'{replicas:>8} {name:>15} {"on" if jit else "off":>4} '
          f'{rate:>9.2f} {rate / base:>7.2f}x {fraction:>11.3f} {util:>10}')
  print('2 replicas with XLA: not run (Keras compiles the whole strategy.run '
        'into one XLA function, which cannot span devices).')
  if not _GPUS:
    print('No GPU here: GPU utilisation not measured; the 2 "replicas" share '
          'the same CPU cores.')


if __name__ == '__main__':
  app.run(main)
