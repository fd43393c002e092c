"""Benchmark: SMPL layer meshes per second, against a measured hardware floor.

  python src/bench/smpl_bench.py [--batches=1,64,512] [--iters=10]

For each body model (the stand-in and a random 6890-vertex SMPL-shaped model),
batch size and execution mode (eager, tf.function, XLA) it measures the
forward pass and forward+backward, and prints meshes/second. The floor of one
forward call is max(bytes that must be read / measured memory bandwidth,
FLOPs / measured matmul rate), both measured in this same run; the last
column is measured time over that floor (1.0 = at the floor).
"""

import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..'))

import numpy as np  # pylint: disable=g-import-not-at-top
import tensorflow as tf
from absl import app
from absl import flags

from hmr_tf.smpl import joints as joints_lib
from hmr_tf.smpl.model_io import BodyModel
from hmr_tf.smpl import SMPL
from hmr_tf.smpl import standin

_BATCHES = flags.DEFINE_list('batches', ['1', '64', '512'], 'Batch sizes.')
_ITERS = flags.DEFINE_integer('iters', 10, 'Timed calls per configuration.')
_MODES = flags.DEFINE_list('modes', ['eager', 'function', 'xla'],
                           'Execution modes.')


def random_smpl_sized(num_vertices=6890, seed=0):
  """A random model with SMPL's array sizes (timing only; not a body)."""
  rng = np.random.default_rng(seed)
  n = num_vertices
  return BodyModel(
      v_template=rng.normal(size=(n, 3)),
      faces=rng.integers(0, n, (2 * n, 3)).astype(np.int32),
      weights=rng.dirichlet(np.full(24, 0.2), n),
      parents=np.asarray(joints_lib.SMPL_PARENTS, np.int32),
      J_regressor=rng.dirichlet(np.ones(n), 24),
      shapedirs=rng.normal(size=(n, 3, 10)) * 0.03,
      posedirs=rng.normal(size=(n, 3, 207)) * 0.01,
      cocoplus_regressor=rng.dirichlet(np.ones(n), 19))


def _time(fn, iters):
  fn()  # warm up (traces / compiles)
  fn()
  start = time.perf_counter()
  for _ in range(iters):
    out = fn()
  np.asarray(out)  # make sure the work is done
  return (time.perf_counter() - start) / iters


def measure_bandwidth():
  """Bytes/s of a large array copy (read + write)."""
  src = np.ones(64 * 2**20 // 4, np.float32)
  dst = np.empty_like(src)
  np.copyto(dst, src)
  start = time.perf_counter()
  reps = 10
  for _ in range(reps):
    np.copyto(dst, src)
  return 2 * src.nbytes * reps / (time.perf_counter() - start)


def measure_matmul_rate():
  """FLOP/s of a 1024^3 float32 matmul under XLA."""
  a = tf.random.normal([1024, 1024])
  fn = tf.function(lambda x: tf.matmul(x, x), jit_compile=True)
  t = _time(lambda: fn(a), 10)
  return 2 * 1024**3 / t


def forward_cost(model, batch):
  """(bytes read, FLOPs) of one forward call, counting the big operands."""
  n, b = model.num_vertices, batch
  read = 4 * (model.posedirs.size + model.shapedirs.size +
              model.J_regressor.size + model.weights.size)
  flops = 2 * b * n * 3 * (207 + model.num_betas)  # blend shapes
  flops += 2 * b * 24 * n * 3  # joint regression
  flops += 2 * b * n * 24 * 12 + 2 * b * n * 12  # skinning
  written = 4 * b * n * 3
  return read + written, flops


def main(argv):
  del argv
  bandwidth = measure_bandwidth()
  rate = measure_matmul_rate()
  print(f'Measured memory bandwidth {bandwidth / 1e9:.1f} GB/s, '
        f'XLA matmul rate {rate / 1e9:.1f} GFLOP/s, '
        f'{os.cpu_count()} CPUs visible.')
  models = {
      'stand-in': standin.build(),
      'random-6890': random_smpl_sized(),
  }
  header = (f'{"model":<12} {"N":>5} {"batch":>5} {"mode":<8} {"pass":<8} '
            f'{"ms/call":>9} {"meshes/s":>10} {"floor ms":>9} {"x floor":>8}')
  print(header)
  print('-' * len(header))
  for name, model in models.items():
    smpl = SMPL(model)
    for batch in [int(b) for b in _BATCHES.value]:
      theta = tf.random.normal([batch, 72], stddev=0.3, seed=1)
      betas = tf.random.normal([batch, 10], seed=2)
      bytes_, flops = forward_cost(model, batch)
      floor = max(bytes_ / bandwidth, flops / rate)

      def forward(t, b):
        return smpl(t, b).vertices

      def forward_backward(t, b):
        with tf.GradientTape() as tape:
          tape.watch([t, b])
          loss = tf.reduce_sum(tf.square(smpl(t, b).vertices))
        return tape.gradient(loss, t)

      for mode in _MODES.value:
        for pass_name, fn in (('fwd', forward), ('fwd+bwd', forward_backward)):
          if mode == 'function':
            fn = tf.function(fn)
          elif mode == 'xla':
            fn = tf.function(fn, jit_compile=True)
          t = _time(lambda fn=fn: fn(theta, betas), _ITERS.value)
          ratio = f'{t / floor:8.2f}' if pass_name == 'fwd' else f'{"":>8}'
          print(f'{name:<12} {model.num_vertices:>5} {batch:>5} {mode:<8} '
                f'{pass_name:<8} {1e3 * t:9.3f} {batch / t:10.0f} '
                f'{1e3 * floor:9.3f} {ratio}')
  print('Target: XLA forward at batch 64 within 3x of the floor on the CPU.')


if __name__ == '__main__':
  app.run(main)
