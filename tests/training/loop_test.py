"""Tests of hmr_tf.training's loop and its parts (in one process).

The loop, callbacks, nonfinite, steps, state, interrupt and the
checkpoint saver and worker roles it uses.

Subprocess tests (SIGKILL + resume, SIGINT, restore in a new process) and the
skip mode on real data are in train_resume_test.py (slow).
"""

import dataclasses
import glob
import logging as py_logging
import os
import shutil
import signal
import types

import numpy as np
import pytest
import tensorflow as tf
from absl import logging

import summary_events
import train_fixtures as tfx
from hmr_tf import configs
from hmr_tf.modeling import hmr_model
from hmr_tf.render import summaries
from hmr_tf.training import callbacks
from hmr_tf.training import checkpoints
from hmr_tf.training import distribute
from hmr_tf.training import interrupt as interrupt_lib
from hmr_tf.training import loop
from hmr_tf.training import nonfinite
from hmr_tf.training import state as state_lib
from hmr_tf.training import steps as steps_lib

TERMS = hmr_model.GENERATOR_TERMS + hmr_model.DISCRIMINATOR_TERMS


class _Lines(py_logging.Handler):

  def __init__(self):
    super().__init__(level=py_logging.INFO)
    self.lines = []

  def emit(self, record):
    self.lines.append(record.getMessage())


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
  root = tmp_path_factory.mktemp('train')
  data_dir = tfx.write_tiny_data(str(root / 'data'))
  body = tfx.load_body_model(tfx.write_body_model(str(root / 'body.npz')))
  return types.SimpleNamespace(root=root, data_dir=data_dir, body=body)


@pytest.fixture(scope='module')
def trained(workspace):
  """One run: 2 epochs x 3 steps, checkpoints every 2 steps, keep 2."""
  model_dir = str(workspace.root / 'run')
  handler = _Lines()
  absl_logger = py_logging.getLogger('absl')
  absl_logger.addHandler(handler)
  verbosity = logging.get_verbosity()
  logging.set_verbosity(logging.INFO)
  try:
    result = loop.train(tfx.model_config(),
                             tfx.data_config(workspace.data_dir),
                             tfx.train_config(model_dir), workspace.body,
                             tfx.mean_theta())
  finally:
    absl_logger.removeHandler(handler)
    logging.set_verbosity(verbosity)
  return types.SimpleNamespace(result=result, model_dir=model_dir,
                               lines=handler.lines)


@pytest.fixture(scope='module')
def trained_in_executions(workspace):
  """2 epochs x 4 steps, 3 steps per execution (so 2: it must divide 4)."""
  model_dir = str(workspace.root / 'run_executions')
  result = loop.train(tfx.model_config(),
                      tfx.data_config(workspace.data_dir),
                      tfx.train_config(model_dir, steps_per_epoch=4,
                                       steps_per_execution=3,
                                       checkpoint_every_steps=3),
                      workspace.body, tfx.mean_theta())
  return types.SimpleNamespace(result=result, model_dir=model_dir)


def _step_of(path):
  return int(os.path.basename(path).rsplit('-', 1)[1])


def _ckpt_value(path, name):
  return tf.train.load_checkpoint(path).get_tensor(
      f'{name}/.ATTRIBUTES/VARIABLE_VALUE')


# ---------------------------------------------------------------------------
# The training run.


def test_result_and_checkpoints(trained):
  result = trained.result
  assert result['global_step'] == 6 and result['start_step'] == 0
  assert result['steps_run'] == 6 and result['total_steps'] == 6
  assert result['steps_per_epoch'] == 3
  assert not result['interrupted'] and result['skipped_steps'] == 0
  assert result['checkpoint'] == os.path.join(trained.model_dir, 'ckpt-6')
  state = tf.train.get_checkpoint_state(trained.model_dir)
  # Saved at 2, 4, 6; max_to_keep=2 leaves the last two.
  assert [_step_of(p) for p in state.all_model_checkpoint_paths] == [4, 6]
  for step in (4, 6):
    path = os.path.join(trained.model_dir, f'ckpt-{step}')
    assert _ckpt_value(path, 'global_step') == step
    # One generator and one discriminator update per step.
    assert _ckpt_value(path, 'g_optimizer/_iterations') == step
    assert _ckpt_value(path, 'd_optimizer/_iterations') == step
  assert set(result['logs']) >= set(TERMS)
  assert all(np.isfinite(v) for v in result['logs'].values())


def test_tensorboard_scalars(trained):
  values, plugins = summary_events.read_events(
      os.path.join(trained.model_dir, 'train'))
  for term in TERMS:
    group = ('generator' if term in hmr_model.GENERATOR_TERMS else
             'discriminator')
    tag = f'{group}/{term}'
    assert sorted(values[tag]) == [1, 2, 3, 4, 5, 6], tag
    assert plugins[tag] == 'scalars'
    # summary_every_steps=1: each value is that step's loss, so their mean
    # over epoch 2 (steps 4-6) is Keras' epoch mean of the term.
    epoch2 = np.mean([float(values[tag][s]) for s in (4, 5, 6)])
    np.testing.assert_allclose(epoch2, trained.result['logs'][term],
                               rtol=1e-4, atol=1e-6)
  config = tfx.model_config()
  np.testing.assert_allclose(float(values['learning_rate/generator'][6]),
                             config.e_lr, rtol=1e-6)
  np.testing.assert_allclose(float(values['learning_rate/discriminator'][6]),
                             config.d_lr, rtol=1e-6)
  assert float(values['train/skipped_steps'][6]) == 0
  assert float(values['train/images_per_second'][6]) > 0


def test_steps_per_execution_keeps_the_step_count_and_periods(
    trained_in_executions):
  """Callbacks run after every 2nd step; periods act when first passed."""
  run = trained_in_executions
  assert run.result['global_step'] == 8 and run.result['steps_run'] == 8
  state = tf.train.get_checkpoint_state(run.model_dir)
  # Period 3, seen at steps 2, 4, 6, 8: saves at 4 (passed 3), 6, and the
  # final 8; max_to_keep=2.
  assert [_step_of(p) for p in state.all_model_checkpoint_paths] == [6, 8]
  for step in (6, 8):
    path = os.path.join(run.model_dir, f'ckpt-{step}')
    # Exactly `step` updates: Keras ran no step beyond the plan.
    assert _ckpt_value(path, 'global_step') == step
    assert _ckpt_value(path, 'g_optimizer/_iterations') == step
    assert _ckpt_value(path, 'd_optimizer/_iterations') == step
  values, _ = summary_events.read_events(os.path.join(run.model_dir, 'train'))
  for term in TERMS:
    group = ('generator' if term in hmr_model.GENERATOR_TERMS else
             'discriminator')
    tag = f'{group}/{term}'
    assert sorted(values[tag]) == [2, 4, 6, 8], tag
    # Each value is the mean over the 2 steps since the previous one, so
    # the mean of epoch 2's (steps 5-8) is Keras' epoch mean.
    epoch2 = np.mean([float(values[tag][s]) for s in (6, 8)])
    np.testing.assert_allclose(epoch2, run.result['logs'][term],
                               rtol=1e-4, atol=1e-6)
  assert sorted(values['images/examples']) == [4, 6]  # every 3 steps


def test_execution_size_and_crossed():
  assert steps_lib.execution_size(3400, 50) == 50
  assert steps_lib.execution_size(2550, 50) == 50
  assert steps_lib.execution_size(4, 3) == 2
  assert steps_lib.execution_size(7, 5) == 1
  assert steps_lib.execution_size(2, 50) == 2
  for steps, n in ((3400, 64), (97, 10), (12, 12), (1, 4)):
    size = steps_lib.execution_size(steps, n)
    assert steps % size == 0 and size <= n
    assert not any(steps % d == 0 for d in range(size + 1, min(n, steps) + 1))
  # (previous, step] holds a multiple of the period.
  assert steps_lib.crossed(2, 4, 3) and steps_lib.crossed(0, 3, 3)
  assert not steps_lib.crossed(3, 5, 3) and not steps_lib.crossed(4, 8, 0)
  assert [s for s in range(1, 13) if steps_lib.crossed(s - 1, s, 4)] == [
      4, 8, 12]


def test_image_summary(trained):
  values, plugins = summary_events.read_events(
      os.path.join(trained.model_dir, 'train'))
  tag = 'images/examples'
  assert plugins[tag] == 'images'
  assert sorted(values[tag]) == [3, 6]  # image_summary_every_steps=3
  blob = values[tag][6]
  assert blob.shape == (2 + 2,)  # width, height, 2 images
  width, height = int(blob[0]), int(blob[1])
  display = max(tfx.IMG, 160)
  assert (width, height) == (3 * display, display)
  image = tf.io.decode_png(blob[2]).numpy()
  assert image.shape == (display, 3 * display, 3)
  thirds = np.split(image.astype(int), 3, axis=1)
  # Ground-truth keypoints, predicted keypoints and the mesh differ.
  assert np.abs(thirds[0] - thirds[1]).sum() > 0
  assert np.abs(thirds[1] - thirds[2]).sum() > 0


def test_mesh_summary(trained, workspace):
  """The mesh plugin holds the model's meshes of the image panels' examples."""
  values, plugins = summary_events.read_events(
      os.path.join(trained.model_dir, 'train'))
  tag = 'meshes/examples'
  for part in ('VERTEX', 'FACE', 'COLOR'):
    assert plugins[f'{tag}_{part}'] == 'mesh'
    assert sorted(values[f'{tag}_{part}']) == [3, 6]  # with the images
  # The last summary's model is the step-6 checkpoint; the examples are the
  # fixed batch's first two (num_summary_meshes=2 by default).
  model = checkpoints.restore_model(
      os.path.join(trained.model_dir, 'ckpt-6'), workspace.body)
  images = loop._fixed_batch(  # pylint: disable=protected-access
      tfx.data_config(workspace.data_dir), 2)['image']
  expected = model(images, training=False)['vertices'].numpy()
  # Written y-up for the viewer: (x, y, z) -> (x, -y, -z).
  np.testing.assert_allclose(values[f'{tag}_VERTEX'][6],
                             expected * [1.0, -1.0, -1.0], atol=1e-5)
  faces = values[f'{tag}_FACE'][6]
  assert faces.shape == (2,) + workspace.body.faces.shape
  np.testing.assert_array_equal(faces[1], workspace.body.faces)
  assert values[f'{tag}_COLOR'][6].shape == expected.shape
  assert values[f'{tag}_COLOR'][6].dtype == np.uint8


def test_epoch_summary_lines(trained):
  epochs = [l for l in trained.lines if l.startswith('Epoch ')]
  assert len(epochs) == 2
  assert epochs[0].startswith('Epoch 1/2') and 'step 3/6' in epochs[0]
  assert epochs[1].startswith('Epoch 2/2') and 'step 6/6' in epochs[1]
  assert 'loss_kp=' in epochs[1] and 'd_loss=' in epochs[1]


def test_init_checkpoint_loads_weights_not_optimizer(workspace, trained):
  config = tfx.model_config()
  resumed = state_lib.build_state(
      config, tfx.train_config(trained.model_dir,
                               init_checkpoint='/ignored/when/resuming'),
      workspace.body, tfx.mean_theta())
  assert resumed.resumed_from == os.path.join(trained.model_dir, 'ckpt-6')
  assert resumed.initialized_from is None
  assert int(resumed.global_step.numpy()) == 6
  assert int(resumed.model.g_optimizer.iterations.numpy()) == 6

  fresh = state_lib.build_state(
      config, tfx.train_config(str(workspace.root / 'init_run'),
                               init_checkpoint=trained.model_dir),
      workspace.body, tfx.mean_theta())
  assert fresh.resumed_from is None
  assert fresh.initialized_from == os.path.join(trained.model_dir, 'ckpt-6')
  assert int(fresh.global_step.numpy()) == 0
  for part in ('encoder', 'regressor', 'discriminator'):
    got = getattr(fresh.model, part).weights
    want = getattr(resumed.model, part).weights
    assert len(got) == len(want) > 0
    for g, w in zip(got, want):
      np.testing.assert_array_equal(g.numpy(), w.numpy(), err_msg=g.path)
  for opt in (fresh.model.g_optimizer, fresh.model.d_optimizer):
    assert int(opt.iterations.numpy()) == 0
    slots = [v for v in opt.variables
             if 'momentum' in v.path or 'velocity' in v.path]
    assert slots
    assert all(not np.any(v.numpy()) for v in slots)
  # The resumed optimizer has non-zero slots (so the check above can fail).
  assert any(np.any(v.numpy()) for v in resumed.model.g_optimizer.variables
             if 'momentum' in v.path)
  with pytest.raises(FileNotFoundError, match='no_such_checkpoint'):
    checkpoints.restore_weights(fresh.model, str(workspace.root /
                                               'no_such_checkpoint'))


def test_nonfinite_loss_stops_with_emergency_checkpoint(workspace, trained):
  model_dir = str(workspace.root / 'nan_run')
  shutil.copytree(trained.model_dir, model_dir)
  huge = tfx.model_config(e_lr=1e30, d_lr=1e30)
  with pytest.raises(nonfinite.NonFiniteLossError) as info:
    loop.train(huge, tfx.data_config(workspace.data_dir),
                    tfx.train_config(model_dir, epochs=4,
                                     image_summary_every_steps=0),
                    workspace.body, tfx.mean_theta())
  error = info.value
  # Resumed at 6; step 7 starts from sane weights, so its loss is finite.
  assert 7 < error.step <= 12
  first_term = next(iter(error.terms))
  assert first_term in TERMS
  assert not np.isfinite(error.terms[first_term])
  message = str(error)
  assert f'step {error.step}:' in message and f'{first_term}=' in message
  expected = os.path.join(model_dir, 'emergency', f'nonfinite-{error.step}')
  assert error.checkpoint == expected and expected in message
  assert _ckpt_value(expected, 'global_step') == error.step
  # Resume picks the latest regular checkpoint, written before the bad step.
  latest = tf.train.latest_checkpoint(model_dir)
  assert _step_of(latest) < error.step
  reader = tf.train.load_checkpoint(latest)
  for key, dtype in reader.get_variable_to_dtype_map().items():
    if dtype.is_floating:
      assert np.all(np.isfinite(reader.get_tensor(key))), key


# ---------------------------------------------------------------------------
# Pieces.


@pytest.mark.parametrize('start,spe,epochs,expected', [
    (0, 4, 3, [(0, 3, 4)]),
    (6, 4, 3, [(1, 2, 2), (2, 3, 4)]),
    (8, 4, 3, [(2, 3, 4)]),
    (11, 4, 3, [(2, 3, 1)]),
    (12, 4, 3, []),
    (20, 4, 3, []),
])
def test_plan_segments(start, spe, epochs, expected):
  assert [tuple(s) for s in steps_lib.plan_segments(start, spe, epochs)] == (
      expected)


def test_plan_segments_total_steps():
  rng = np.random.default_rng(0)
  for _ in range(200):
    spe, epochs = int(rng.integers(1, 9)), int(rng.integers(1, 6))
    start = int(rng.integers(0, spe * epochs + 1))
    segments = steps_lib.plan_segments(start, spe, epochs)
    # Runs exactly the remaining steps, ending at the last epoch, and every
    # segment after the first starts on an epoch boundary.
    assert sum((s.epochs - s.initial_epoch) * s.steps_per_epoch
               for s in segments) == spe * epochs - start
    if segments:
      assert segments[-1].epochs == epochs
      assert segments[0].initial_epoch == start // spe


def test_steps_per_epoch(workspace, tmp_path):
  data = tfx.data_config(workspace.data_dir)
  config = tfx.train_config(str(tmp_path), steps_per_epoch=0)
  # (6 + 6 examples) // batch 2, from the sidecars.
  assert steps_lib.steps_per_epoch(data, config) == 6
  assert steps_lib.steps_per_epoch(
      dataclasses.replace(data, batch_size=5), config) == 2
  assert steps_lib.steps_per_epoch(
      data, dataclasses.replace(config, steps_per_epoch=7)) == 7
  # Shards without a sidecar: no count to derive the epoch from.
  bare = tmp_path / 'bare' / 'nometa'
  bare.mkdir(parents=True)
  shutil.copy(glob.glob(os.path.join(workspace.data_dir, 'tiny2d',
                                     '*.tfrecord'))[0],
              bare / 'train_00000.tfrecord')
  with pytest.raises(ValueError, match="'nometa'.*steps_per_epoch"):
    steps_lib.steps_per_epoch(
        tfx.data_config(str(tmp_path / 'bare'), datasets=('nometa',)), config)


def test_data_config_for_step():
  data = tfx.data_config('/data', seed=5)
  assert steps_lib.data_config_for_step(data, 0) is data
  seeds = {steps_lib.data_config_for_step(data, s).seed for s in (2, 4, 6)}
  assert len(seeds) == 3 and 5 not in seeds
  again = steps_lib.data_config_for_step(data, 4)
  assert again.seed == steps_lib.data_config_for_step(data, 4).seed
  assert dataclasses.replace(again, seed=5) == data


@pytest.mark.parametrize('field,value', [
    ('model_dir', ''), ('epochs', 0), ('on_nonfinite', 'ignore'),
    ('progress', 'loud'), ('checkpoint_every_steps', -1),
    ('max_to_keep', 0), ('steps_per_epoch', -3),
    ('steps_per_execution', 0)])
def test_train_config_validation(field, value):
  kwargs = {'model_dir': '/m', field: value}
  with pytest.raises(ValueError, match=field):
    configs.TrainConfig(**kwargs)


def test_configs_must_agree(workspace, tmp_path):
  with pytest.raises(ValueError, match='img_size'):
    loop.train(tfx.model_config(img_size=64),
                    tfx.data_config(workspace.data_dir),
                    tfx.train_config(str(tmp_path)), workspace.body,
                    tfx.mean_theta())


class _Resolver:

  def __init__(self, task_type, task_id, cluster):
    self.task_type, self.task_id = task_type, task_id
    self._cluster = cluster

  def cluster_spec(self):
    return tf.train.ClusterSpec(self._cluster)


def _strategy(task_type, task_id, cluster):
  return types.SimpleNamespace(
      cluster_resolver=_Resolver(task_type, task_id, cluster))


def test_worker_role():
  workers = {'worker': ['localhost:1', 'localhost:2']}
  with_chief = dict(workers, chief=['localhost:3'])
  assert distribute.worker_role(tf.distribute.get_strategy())[0]
  assert distribute.worker_role(_strategy('worker', 0, workers)) == (
      True, 'worker', 0)
  assert distribute.worker_role(_strategy('worker', 1, workers)) == (
      False, 'worker', 1)
  assert distribute.worker_role(_strategy('worker', 0, with_chief)) == (
      False, 'worker', 0)
  assert distribute.worker_role(_strategy('chief', 0, with_chief)) == (
      True, 'chief', 0)


def test_checkpoint_saver_chief_and_worker(tmp_path):
  value = tf.Variable(3.0)
  checkpoint = tf.train.Checkpoint(value=value)
  worker_dir = tmp_path / 'shared'
  worker = checkpoints.CheckpointSaver(checkpoint, str(worker_dir), 5,
                                     is_chief=False, task='worker_1')
  worker.save(2)
  worker.write_emergency(2)
  # A non-chief leaves nothing behind in the shared model_dir.
  assert not worker_dir.exists() or list(worker_dir.iterdir()) == []
  assert worker.latest is None
  chief = checkpoints.CheckpointSaver(checkpoint, str(tmp_path / 'chief'), 5)
  path = chief.save(4)
  assert path == str(tmp_path / 'chief' / 'ckpt-4') == chief.latest
  value.assign(-1.0)
  emergency = chief.write_emergency(5)
  assert emergency == str(tmp_path / 'chief' / 'emergency' / 'nonfinite-5')
  assert chief.latest == path  # The emergency one is not in the index.
  checkpoint.read(path).assert_consumed()
  assert value.numpy() == 3.0


def test_deferred_interrupt():
  before = signal.getsignal(signal.SIGINT)
  # pylint: disable-next=protected-access
  with interrupt_lib.deferred_interrupt() as interrupt:
    os.kill(os.getpid(), signal.SIGINT)
    assert interrupt.is_set()  # The first Ctrl-C only sets the flag.
    with pytest.raises(KeyboardInterrupt):
      os.kill(os.getpid(), signal.SIGINT)
  # Whatever was there before (Python's default, or "ignore" when pytest
  # runs in a background job or under nohup).
  assert signal.getsignal(signal.SIGINT) is before
  assert signal.set_wakeup_fd(-1) == -1  # The wakeup fd was given back.


def test_deferred_interrupt_restores_an_ignored_sigint():
  before = signal.signal(signal.SIGINT, signal.SIG_IGN)
  try:
    # pylint: disable-next=protected-access
    with interrupt_lib.deferred_interrupt():
      assert signal.getsignal(signal.SIGINT) is not signal.SIG_IGN
    assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
  finally:
    signal.signal(signal.SIGINT, before)


def test_interrupt_is_announced_during_a_long_native_call():
  """Issue 19 §5: a Ctrl-C during XLA compilation is announced at once.

  pbkdf2_hmac stands in for the compilation: native code that releases
  the GIL and does not return to Python (where signal handlers run) until
  it is done.
  """
  import hashlib  # pylint: disable=g-import-not-at-top
  import threading  # pylint: disable=g-import-not-at-top
  import time  # pylint: disable=g-import-not-at-top
  notices = []

  class _Timed(py_logging.Handler):

    def emit(self, record):
      notices.append((time.monotonic(), record.getMessage()))

  # Iterations for about 2 s of native work on this machine.
  probe = time.monotonic()
  hashlib.pbkdf2_hmac('sha256', b'password', b'salt', 200_000)
  iterations = int(200_000 * 2.0 / max(time.monotonic() - probe, 1e-3))
  handler = _Timed(level=py_logging.WARNING)
  absl_logger = py_logging.getLogger('absl')
  absl_logger.addHandler(handler)
  try:
    # pylint: disable-next=protected-access
    with interrupt_lib.deferred_interrupt() as interrupt:
      timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
      timer.start()
      start = time.monotonic()
      hashlib.pbkdf2_hmac('sha256', b'password', b'salt', iterations)
      returned = time.monotonic()
      timer.join()
      assert interrupt.is_set()
  finally:
    absl_logger.removeHandler(handler)
  assert returned - start > 1.0, 'the stand-in call was too short'
  received = [t for t, m in notices if m.startswith('Interrupt received')]
  assert len(received) == 1, notices  # Announced once, not twice.
  assert received[0] < returned - 0.5, (received[0] - start,
                                        returned - start)
  assert 'compiles' in notices[0][1] and 'checkpoint' in notices[0][1]


class _FakeModel:

  def __init__(self):
    self.stop_training = False
    self.resets = 0

  def reset_metrics(self):
    self.resets += 1


def _guard(mode, variables, status, max_consecutive=2):
  step = tf.Variable(0, dtype=tf.int64)
  skipped = tf.Variable(0, dtype=tf.int64)
  written = []
  guard = nonfinite.NonFiniteGuard(
      mode, step, status, lambda s: written.append(s) or f'/e/nonfinite-{s}',
      lambda: '/m/ckpt-2',
      snapshot=nonfinite.StateSnapshot(variables),
      skipped_steps=skipped, max_consecutive=max_consecutive)
  model = _FakeModel()
  guard.set_model(model)
  return guard, step, skipped, written, model


def test_nonfinite_guard_stop():
  status = callbacks.TrainingStatus()
  guard, step, _, written, model = _guard('stop', [tf.Variable(1.0)], status)
  step.assign(3)
  guard.on_train_batch_end(2, {'g_loss': 1.0, 'loss_kp': 0.5})
  assert status.error is None and not model.stop_training
  step.assign(4)
  guard.on_train_batch_end(3, {'g_loss': np.nan, 'loss_kp': np.inf,
                               'd_loss': 2.0})
  assert model.stop_training and written == [4]
  error = status.error
  assert error.step == 4 and list(error.terms) == ['loss_kp', 'g_loss']
  assert 'step 4: loss_kp=inf, g_loss=nan' in str(error)
  assert '/e/nonfinite-4' in str(error) and '/m/ckpt-2' in str(error)


def test_nonfinite_guard_skip_rolls_back_and_counts():
  weights = tf.Variable([1.0, 2.0])
  count = tf.Variable(7, dtype=tf.int64)
  status = callbacks.TrainingStatus()
  guard, step, skipped, written, model = _guard('skip', [weights, count],
                                                status)
  guard.on_train_begin()
  weights.assign([3.0, 4.0])
  count.assign(8)
  step.assign(1)
  guard.on_train_batch_end(0, {'g_loss': 1.0})  # Good: snapshot taken.
  weights.assign([np.nan, 5.0])
  count.assign(9)
  step.assign(2)
  guard.on_train_batch_end(1, {'g_loss': np.nan})
  np.testing.assert_array_equal(weights.numpy(), [3.0, 4.0])
  assert count.numpy() == 8 and skipped.numpy() == 1
  assert model.resets == 1 and not model.stop_training
  step.assign(3)
  guard.on_train_batch_end(2, {'d_loss': np.inf})  # Second in a row.
  assert not model.stop_training and skipped.numpy() == 2
  step.assign(4)  # max_consecutive=2: the third bad step in a row stops.
  guard.on_train_batch_end(3, {'d_loss': np.inf})
  assert model.stop_training and skipped.numpy() == 3
  assert status.error.step == 4 and written == [4]
  assert '3 consecutive steps' in str(status.error)
  np.testing.assert_array_equal(weights.numpy(), [3.0, 4.0])


def test_example_panels():
  display = 160
  images = np.zeros([1, tfx.IMG, tfx.IMG, 3], np.float32)  # grey 128
  gt = np.zeros([1, 19, 3], np.float32)
  gt[0, 0] = (0.0, 0.0, 1.0)  # the only visible point: the crop centre
  pred = np.full([1, 19, 2], -0.5, np.float32)  # pixel (40, 40)
  # A triangle in front of the camera: with cam (1, 0, 0) its corners land
  # on pixels (40, 40), (120, 40), (80, 120).
  vertices = np.array([[[-0.5, -0.5, 1.0], [0.5, -0.5, 1.0],
                        [0.0, 0.5, 1.0]]])
  cams = np.array([[1.0, 0.0, 0.0]])
  faces = np.array([[0, 1, 2]])
  panels = summaries.example_panels(images, gt, pred, vertices, cams,
                                          faces, display)
  assert panels.shape == (1, display, 3 * display, 3)
  assert panels.dtype == np.uint8
  gt_panel, pred_panel, mesh_panel = np.split(panels[0].astype(int), 3, 1)
  grey = 128
  assert np.any(gt_panel[80, 80] != grey)  # the ground-truth point
  assert np.all(gt_panel[40, 40] == grey)
  assert np.any(pred_panel[40, 40] != grey)  # the predicted points
  assert np.all(pred_panel[80, 80] == grey)
  assert np.any(mesh_panel[66, 80] != grey)  # inside the triangle
  assert np.all(mesh_panel[5, 5] == grey) and np.all(
      mesh_panel[150, 80] == grey)


def test_nonfinite_guard_checks_variables_when_losses_look_finite():
  # A finite loss can hide a non-finite gradient (oneDNN's ReLU maps a NaN
  # input to 0 in the forward pass), so the guard also checks the variables:
  # at checkpoint steps in 'stop' mode, so no regular checkpoint is non-finite.
  weights = tf.Variable([1.0, 2.0], name='kernel')
  status = callbacks.TrainingStatus()
  step = tf.Variable(0, dtype=tf.int64)
  written = []
  guard = nonfinite.NonFiniteGuard(
      'stop', step, status, lambda s: written.append(s) or f'/e/{s}',
      lambda: None, state_check=nonfinite.FiniteCheck([weights]),
      checkpoint_every_steps=2)
  guard.set_model(_FakeModel())
  step.assign(2)
  guard.on_train_begin()  # a run resumed at step 2
  assert nonfinite.FiniteCheck([weights]).bad_variables() == []
  weights.assign([np.nan, 2.0])
  step.assign(3)
  guard.on_train_batch_end(2, {'g_loss': 1.0})  # not a checkpoint step
  assert status.error is None
  step.assign(4)
  guard.on_train_batch_end(3, {'g_loss': 1.0})
  assert status.error is not None and status.error.step == 4
  assert written == [4] and 'kernel' in str(status.error)
  assert 'although the logged losses were finite' in str(status.error)
  # check_state (used before the final save) reports the same way.
  status2 = callbacks.TrainingStatus()
  guard2 = nonfinite.NonFiniteGuard(
      'stop', step, status2, lambda s: None, lambda: None,
      state_check=nonfinite.FiniteCheck([weights]))
  assert not guard2.check_state(9) and status2.error.step == 9
  weights.assign([1.0, 2.0])
  assert guard.check_state(10) is False  # already stopped: stays stopped
  status3 = callbacks.TrainingStatus()
  guard3 = nonfinite.NonFiniteGuard(
      'stop', step, status3, lambda s: None, lambda: None,
      state_check=nonfinite.FiniteCheck([weights]))
  assert guard3.check_state(10) and status3.error is None


def test_progress_bar_shows_main_losses(capsys):
  bar = callbacks.MainLossProgbar(total_epochs=75)
  bar.set_params({'verbose': 2, 'epochs': 3, 'steps': 2})
  assert bar.epochs == 75
  logs = {'g_loss': 1.5, 'loss_kp': 0.25, 'loss_g_wd': 9.0, 'd_out_real': 7.0}
  bar.on_train_begin()
  bar.on_epoch_begin(2)
  bar.on_train_batch_end(0, logs)
  bar.on_train_batch_end(1, logs)
  bar.on_epoch_end(2, logs)
  out = capsys.readouterr().out
  assert 'Epoch 3/75' in out
  assert 'g_loss: 1.5' in out and 'loss_kp: 0.25' in out
  assert 'loss_g_wd' not in out and 'd_out_real' not in out
  assert out.count('\n') == 2  # verbose=2: the epoch title and one line
