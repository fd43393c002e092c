"""Benchmark: synthetic examples rendered per second, against the target.

  python src/bench/synthetic_bench.py [--num=200] [--img_size=224] \
      [--num_workers=2] [--standin_num_vertices=4000]

Writes `--num` 3D training records (pose, render, JPEG, serialise, write)
with `hmr_tf.synthetic.generator.generate` into a temporary folder and prints
examples/second (wall clock, with and without the worker pool's start-up),
the time per example of each stage (posing in this process; rendering and
JPEG encoding summed over the worker processes; writing), and the ratio to
the target of 50 rendered 224x224 examples/s on 2 cores (issue 3 section 3).
Stage times are seconds per example inside each process, so with N workers
the rendering column can exceed the wall time per example. The machine may be
shared: the table also gives the CPU seconds all processes used per example
(this one and the workers, from getrusage) and the rate two otherwise idle
cores would reach at that cost (2 / CPU seconds per example), which does not
depend on other load as the wall-clock rate does.
"""

import os
import resource
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..'))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

from hmr_tf.smpl import standin
from hmr_tf.synthetic import generator

TARGET_EXAMPLES_PER_S = 50.0

_NUM = flags.DEFINE_integer('num', 200, 'Examples to write.', lower_bound=1)
_IMG_SIZE = flags.DEFINE_integer('img_size', 224, 'Image side in pixels.',
                                 lower_bound=8)
_NUM_WORKERS = flags.DEFINE_integer('num_workers', 2,
                                    'Rendering worker processes.',
                                    lower_bound=0)
_VERTICES = flags.DEFINE_integer('standin_num_vertices', 4000,
                                 'Target vertex count of the stand-in body.')
_BATCH = flags.DEFINE_integer('batch_size', 64, 'Examples posed together.',
                              lower_bound=1)


def _cpu_seconds() -> float:
  """User + system CPU seconds of this process and its joined children."""
  total = 0.0
  for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
    usage = resource.getrusage(who)
    total += usage.ru_utime + usage.ru_stime
  return total


def main(argv):
  del argv
  body = standin.build(num_vertices=_VERTICES.value)
  num = _NUM.value
  timings = {}
  with tempfile.TemporaryDirectory() as out:
    cpu_start = _cpu_seconds()
    start = time.perf_counter()
    generator.generate(out, num, 0, 0, body, img_size=_IMG_SIZE.value,
                       num_workers=_NUM_WORKERS.value, kinds=('3d',),
                       batch_size=_BATCH.value, timings=timings)
    wall = time.perf_counter() - start
    cpu = _cpu_seconds() - cpu_start
  startup = timings.get('startup', 0.0)
  rate = num / wall
  steady = num / max(wall - startup, 1e-9)
  print(f'Synthetic dataset benchmark: {num} 3D examples, '
        f'{_IMG_SIZE.value}x{_IMG_SIZE.value}, {body.num_vertices} vertices '
        f'/ {len(body.faces)} faces, {_NUM_WORKERS.value} render workers, '
        f'{os.cpu_count()} CPUs visible')
  print(f'{"measure":<34}{"value":>12}')
  print(f'{"examples/s (wall, all)":<34}{rate:>12.1f}')
  print(f'{"examples/s (wall, after start-up)":<34}{steady:>12.1f}')
  print(f'{"worker start-up (s)":<34}{startup:>12.2f}')
  for stage in ('posing', 'rendering', 'jpeg', 'writing'):
    ms = 1000.0 * timings.get(stage, 0.0) / num
    print(f'{stage + " (ms/example)":<34}{ms:>12.2f}')
  cpu_ms = 1000.0 * cpu / num
  print(f'{"CPU ms/example (all processes)":<34}{cpu_ms:>12.2f}')
  print(f'{"examples/s on 2 idle cores (CPU)":<34}{2000.0 / cpu_ms:>12.1f}')
  print(f'{"target examples/s":<34}{TARGET_EXAMPLES_PER_S:>12.1f}')
  print(f'{"ratio to target (after start-up)":<34}'
        f'{steady / TARGET_EXAMPLES_PER_S:>12.2f}')
  print(f'{"ratio to target (2 idle cores)":<34}'
        f'{2000.0 / cpu_ms / TARGET_EXAMPLES_PER_S:>12.2f}')


if __name__ == '__main__':
  app.run(main)
