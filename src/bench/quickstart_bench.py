"""Benchmark: the quickstart's training step next to its bare encoder, images/s.

  python src/bench/quickstart_bench.py [--flagfile=src/flags/quickstart.flags]
      [--bench_steps=50] [--bench_rounds=3] [--bench_images=256]
      [any hmr_tf.main flag, e.g. --batch_size=8 --img_size=48]

Reads the quickstart's configuration the way `hmr_tf.main` does (the
flagfile, then any flag given after it), renders a small synthetic dataset
with the quickstart's scene options into a temporary folder, builds the
model as training does (the configured encoder, body model, loss weights
and XLA setting), and times, in alternating rounds (the fastest round of
each counts, so other load on the machine hurts all alike):

  1. the bare encoder (the same network and crop size) forward + backward
     with an Adam update, on one fixed batch: the floor of any HMR step;
  2. the generator's update alone on the same fixed batch: + 3 IEF
     iterations, SMPL keypoints, the losses and the 25 discriminators'
     generator term (their forward and backward on the predictions);
  3. `HMRModel.train_step` on the same fixed batch: + the discriminator
     update against a mocap batch;
  4. the same step fed by the training input pipeline
     (`input_pipeline.train_dataset`: read, decode, crop, mix, batch, zip
     with mocap; with --cache_crops the crops come from memory after the
     first pass);
  5. `model.fit` as training runs it: the same pipeline, the loop's
     callbacks (step counter, loss check, summaries, checkpoints, epoch
     log) at the configured periods and --steps_per_execution; timed from
     the end of its first execution to the end of its last, so the
     iterator's start is not counted.

Prints seconds per step, images/s and each ratio to the bare encoder, then
the quickstart's projected training time (its steps at the rate of 5). The
README's performance section lists measured ratios and the CPU they ran on.
"""

import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..'))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

from hmr_tf import flags as _  # pylint: disable=unused-import  (defines flags)

_STEPS = flags.DEFINE_integer('bench_steps', 50, 'Timed steps per round.',
                              lower_bound=1)
_ROUNDS = flags.DEFINE_integer('bench_rounds', 3,
                               'Alternating timed rounds of each.',
                               lower_bound=1)
_IMAGES = flags.DEFINE_integer(
    'bench_images', 256,
    'Training images of each synthetic image dataset rendered for the '
    'pipeline (the pipeline repeats them).', lower_bound=16)
_WARMUP = 3
_DEFAULT_FLAGFILE = os.path.join(os.path.dirname(__file__), '..', 'flags',
                                 'quickstart.flags')


def _sync(out):
  # Reading a value waits for the step to finish.
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  tf.nest.map_structure(lambda t: t.numpy(), out)


def _time(step, steps):
  start = time.perf_counter()
  for _ in range(steps):
    out = step()
  _sync(out)
  return (time.perf_counter() - start) / steps


def _fit_timer(model, dataset, callbacks, steps_per_execution, steps):
  """A function timing `model.fit` over about `steps` steps (s/step)."""
  import keras  # pylint: disable=g-import-not-at-top
  executions = max(1, -(-steps // steps_per_execution))

  class Clock(keras.callbacks.Callback):

    def __init__(self):
      super().__init__()
      self.ends = []

    def on_train_batch_end(self, batch, logs=None):
      self.ends.append((time.perf_counter(), batch))

  def run():
    clock = Clock()
    model.fit(dataset, epochs=1,
              steps_per_epoch=(executions + 1) * steps_per_execution,
              callbacks=[*callbacks, clock], shuffle=False, verbose=0)
    (start, first), (end, last) = clock.ends[0], clock.ends[-1]
    return (end - start) / (last - first)

  return run


def _dataset(cfg, body, folder):
  """Renders a small quickstart-like dataset into `folder`."""
  from hmr_tf.synthetic import generator  # pylint: disable=g-import-not-at-top
  s = cfg.synthetic
  scene, prior = generator.scene_and_prior(s)
  generator.generate(
      folder, _IMAGES.value, 1, None, body, img_size=s.img_size, seed=s.seed,
      num_workers=s.workers, scene=scene, prior=prior)


def main(argv):
  del argv
  # pylint: disable=g-import-not-at-top
  import dataclasses
  import keras
  import tensorflow as tf
  from hmr_tf import configs
  from hmr_tf.data import input_pipeline
  from hmr_tf.modeling import encoder as encoder_lib
  from hmr_tf.modeling import hmr_model
  from hmr_tf.modeling import mean_params
  from hmr_tf.smpl import body_models
  from hmr_tf.training import loop
  from hmr_tf.training import state as state_lib
  # pylint: enable=g-import-not-at-top
  cfg = configs.from_flags(flags.FLAGS)
  b = cfg.body
  body = body_models.resolve_body_model(b.smpl_model_path, b.body_model,
                                        b.standin_num_vertices, b.seed)
  jit = cfg.train.jit_compile
  batch_size = cfg.data.batch_size
  with tempfile.TemporaryDirectory() as folder:
    _dataset(cfg, body, folder)
    data_config = dataclasses.replace(cfg.data, data_dir=folder)
    theta = mean_params.load_mean_params(
        os.path.join(folder, 'mean_params.npz'))
    stream = iter(input_pipeline.train_dataset(data_config))
    fixed = next(stream)

    # The encoder as training builds it (its XLA layers under XLA).
    encoder = encoder_lib.build_encoder(cfg.model.img_size,
                                        name=cfg.model.encoder,
                                        xla_layers=jit)
    optimizer = keras.optimizers.Adam(cfg.model.e_lr)
    optimizer.build(encoder.trainable_variables)

    @tf.function(jit_compile=jit)
    def bare_step(images):
      with tf.GradientTape() as tape:
        features = encoder(images, training=True)
        loss = tf.reduce_mean(tf.square(features))
      grads = tape.gradient(loss, encoder.trainable_variables)
      optimizer.apply_gradients(zip(grads, encoder.trainable_variables))
      return loss

    model = hmr_model.HMRModel(body, theta, cfg.model, xla_layers=jit)
    model.compile()
    train_step = tf.function(model.train_step, jit_compile=jit)
    # The step without the discriminator's update: where the time splits.
    generator_step = tf.function(
        lambda data: model._generator_step(data[0])[0],  # pylint: disable=protected-access
        jit_compile=jit)

    # model.fit as training runs it: the loop's state and callbacks.
    train_config = dataclasses.replace(
        cfg.train, model_dir=os.path.join(folder, 'model'),
        log_dir=os.path.join(folder, 'logs'), progress='none')
    state = state_lib.build_state(cfg.model, train_config, body, theta)
    per_execution = train_config.steps_per_execution
    loop.set_steps_per_execution(state.model, per_execution)
    fit = _fit_timer(state.model, input_pipeline.train_dataset(data_config),
                     loop.fit_callbacks(state, train_config, data_config,
                                        body),
                     per_execution, _STEPS.value)

    timed = lambda step: lambda: _time(step, _STEPS.value)
    runs = {
        'bare encoder fwd+bwd (Adam), fixed batch':
            timed(lambda: bare_step(fixed[0]['image'])),
        'HMR generator update alone, fixed batch':
            timed(lambda: generator_step(fixed)),
        'HMR train_step, fixed batch': timed(lambda: train_step(fixed)),
        'HMR train_step fed by the input pipeline':
            timed(lambda: train_step(next(stream))),
        f'model.fit + callbacks ({per_execution} steps/execution)': fit,
    }
    for step in (lambda: bare_step(fixed[0]['image']),
                 lambda: generator_step(fixed), lambda: train_step(fixed),
                 lambda: train_step(next(stream))):
      for _ in range(_WARMUP):
        _sync(step())
    fit()  # Compiles.
    best = {name: float('inf') for name in runs}
    for _ in range(_ROUNDS.value):
      for name, run in runs.items():
        best[name] = min(best[name], run())

  bare = best[next(iter(runs))]
  print('The quickstart\'s training step vs its bare encoder')
  print(f'setting: encoder {cfg.model.encoder}, crops {cfg.model.img_size} '
        f'px, batch {batch_size}, jit_compile={jit}, body '
        f'{body.metadata.get("name", "unnamed")} ({body.num_vertices} '
        f'vertices), best of {_ROUNDS.value} alternating rounds of '
        f'{_STEPS.value} steps, {os.cpu_count()} CPUs')
  print(f'cache_crops={cfg.data.cache_crops}; CPU: {_cpu_name()}')
  print(f'{"measured":48s} {"s/step":>8s} {"images/s":>9s} {"ratio":>6s}')
  for name, seconds in best.items():
    print(f'{name:48s} {seconds:8.4f} {batch_size / seconds:9.1f} '
          f'{bare / seconds:6.2f}')
  fit_seconds = list(best.values())[-1]
  total = cfg.train.epochs * cfg.train.steps_per_epoch
  print(f'{total} steps at the model.fit rate: {total * fit_seconds / 60:.1f} '
        'min of training (plus compilation and the first pass over the data)')


def _cpu_name() -> str:
  """The CPU model and its AVX-512 / AMX flags (Linux), else the platform."""
  import platform  # pylint: disable=g-import-not-at-top
  try:
    with open('/proc/cpuinfo', encoding='utf-8') as f:
      info = f.read()
  except OSError:
    return platform.processor() or platform.machine()
  name = next((l.split(':', 1)[1].strip() for l in info.splitlines()
               if l.startswith('model name')), platform.machine())
  flags = next((l.split(':', 1)[1].split() for l in info.splitlines()
                if l.startswith('flags')), [])
  shown = [f for f in ('avx2', 'avx512f', 'avx512_bf16', 'amx_bf16')
           if f in flags]
  return f'{name} ({", ".join(shown) or "no AVX2"})'



if __name__ == '__main__':
  if not any(a.startswith('--flagfile') for a in sys.argv[1:]):
    sys.argv.insert(1, f'--flagfile={_DEFAULT_FLAGFILE}')
  app.run(main)
