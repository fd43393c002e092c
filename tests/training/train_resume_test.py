"""Slow tests of the training loop: kill/resume, Ctrl-C and restore across processes,
and the 'skip' mode on data with a non-finite record.

Each training process builds ResNet50V2 and traces its train step (about half
a minute on 2 CPU cores), so these are marked slow.
"""

import glob
import json
import os
import signal
import subprocess
import sys
import time
import types

import numpy as np
import pytest
import tensorflow as tf

import repo_paths  # tests/support/
import train_fixtures as tfx
from hmr_tf.training import loop
from hmr_tf.training import state as state_lib

REPO = repo_paths.ROOT
RUNNER = os.path.join(REPO, 'tests', 'support', 'train_runner.py')

pytestmark = pytest.mark.slow


def _latest_step(model_dir):
  state = tf.train.get_checkpoint_state(model_dir)
  if state is None or not state.model_checkpoint_path:
    return -1
  return int(state.model_checkpoint_path.rsplit('-', 1)[1])


class _Run:
  """One train_runner.py process with its config and log file."""

  def __init__(self, tmp_path, name, **config):
    self.config_path = str(tmp_path / f'{name}.json')
    self.log_path = str(tmp_path / f'{name}.log')
    self.result_path = str(tmp_path / f'{name}_result.json')
    config['result'] = self.result_path
    with open(self.config_path, 'w', encoding='utf-8') as f:
      json.dump(config, f)
    env = dict(os.environ, PYTHONPATH=REPO, TF_CPP_MIN_LOG_LEVEL='2')
    self._log = open(self.log_path, 'w', encoding='utf-8')
    self.process = subprocess.Popen(
        [sys.executable, RUNNER, self.config_path], cwd=REPO, env=env,
        stdout=self._log, stderr=subprocess.STDOUT)

  def wait_for(self, condition, timeout=400.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
      if condition():
        return
      if self.process.poll() is not None:
        raise AssertionError(f'runner exited ({self.process.returncode}) '
                             f'early:\n{self.log()[-3000:]}')
      time.sleep(0.05)
    self.process.kill()
    raise AssertionError(f'timed out:\n{self.log()[-3000:]}')

  def finish(self, timeout=400.0) -> int:
    try:
      return self.process.wait(timeout)
    finally:
      self._log.close()

  def log(self):
    with open(self.log_path, encoding='utf-8') as f:
      return f.read()

  def result(self):
    with open(self.result_path, encoding='utf-8') as f:
      return json.load(f)


@pytest.fixture(scope='module')
def workspace(tmp_path_factory):
  root = tmp_path_factory.mktemp('resume')
  return types.SimpleNamespace(
      root=root, data_dir=tfx.write_tiny_data(str(root / 'data')),
      body_path=tfx.write_body_model(str(root / 'body.npz')))


def test_kill_interrupt_resume_and_restore(workspace, tmp_path):
  model_dir = str(tmp_path / 'run')
  total = 12
  config = dict(data_dir=workspace.data_dir, model_dir=model_dir,
                body_model=workspace.body_path, epochs=3, steps_per_epoch=4,
                checkpoint_every_steps=2, max_to_keep=10,
                summary_every_steps=2, image_summary_every_steps=0,
                sleep_per_step=0.4)

  # 1. SIGKILL right after the first checkpoint: resume loses < 2 steps.
  run = _Run(tmp_path, 'killed', **config)
  run.wait_for(lambda: _latest_step(model_dir) >= 2)
  run.process.send_signal(signal.SIGKILL)
  assert run.finish() == -signal.SIGKILL
  killed_at = _latest_step(model_dir)
  assert killed_at >= 2 and killed_at % 2 == 0

  # 2. Resume, then Ctrl-C after its first new checkpoint: a checkpoint at
  # the step where it stopped, exit status 0.
  run = _Run(tmp_path, 'interrupted', **config)
  run.wait_for(lambda: _latest_step(model_dir) > killed_at)
  run.process.send_signal(signal.SIGINT)
  assert run.finish() == 0, run.log()[-3000:]
  result = run.result()
  stopped_at = result['global_step']
  assert result['start_step'] == killed_at
  assert result['resumed_from'] == os.path.join(model_dir,
                                                f'ckpt-{killed_at}')
  assert result['interrupted'] and killed_at < stopped_at < total
  assert result['steps_run'] == stopped_at - killed_at
  assert result['checkpoint'] == os.path.join(model_dir, f'ckpt-{stopped_at}')
  assert _latest_step(model_dir) == stopped_at
  assert f'saved checkpoint {result["checkpoint"]}' in run.log()

  # 3. Resume to the end; keep the trained model's predictions.
  predictions = str(tmp_path / 'predictions.npz')
  run = _Run(tmp_path, 'finished', predictions=predictions, **config)
  assert run.finish() == 0, run.log()[-3000:]
  result = run.result()
  assert result['start_step'] == stopped_at
  assert result['steps_run'] == total - stopped_at
  assert result['global_step'] == total and not result['interrupted']
  final = os.path.join(model_dir, f'ckpt-{total}')
  assert result['checkpoint'] == final
  reader = tf.train.load_checkpoint(final)
  # Exactly `total` updates along the resumed lineage (none lost or doubled).
  assert reader.get_tensor(
      'g_optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE') == total
  assert reader.get_tensor('global_step/.ATTRIBUTES/VARIABLE_VALUE') == total

  # 4. Restore in this (another) process: the same predictions.
  body = tfx.load_body_model(workspace.body_path)
  state = state_lib.build_state(tfx.model_config(),
                                tfx.train_config(model_dir), body,
                                tfx.mean_theta())
  assert state.resumed_from == final
  saved = np.load(predictions)
  images = tfx.fixed_images()
  restored = state.model(images, training=False)
  for key in saved.files:
    np.testing.assert_allclose(restored[key].numpy(), saved[key], rtol=1e-5,
                               atol=1e-5, err_msg=key)
  # A model without the checkpoint predicts something else.
  fresh = state_lib.build_state(tfx.model_config(),
                                tfx.train_config(str(tmp_path / 'empty')),
                                body, tfx.mean_theta())
  assert not np.allclose(fresh.model(images)['theta_stages'].numpy(),
                         saved['theta_stages'], atol=1e-5)


def _scalars(log_dir, tag):
  out = {}
  for path in glob.glob(os.path.join(log_dir, 'events.out.tfevents.*')):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        if value.tag == tag:
          out[event.step] = float(tf.make_ndarray(value.tensor))
  return out


def test_skip_mode_rolls_back_nonfinite_steps(workspace, tmp_path):
  # One mocap record of 25 is NaN: the discriminator step of every batch
  # that draws it is non-finite (8 batches of 6 draw it at least once).
  data_dir = tfx.write_tiny_data(
      str(tmp_path / 'data'),
      mocap_extra_records=[tfx.nonfinite_mocap_record()])
  model_dir = str(tmp_path / 'run')
  result = loop.train(
      tfx.model_config(), tfx.data_config(data_dir),
      tfx.train_config(model_dir, epochs=2, steps_per_epoch=4,
                       on_nonfinite='skip', image_summary_every_steps=0,
                       checkpoint_every_steps=4),
      tfx.load_body_model(workspace.body_path), tfx.mean_theta())
  assert result['global_step'] == 8
  skipped = result['skipped_steps']
  assert 1 <= skipped < 8
  model = result['model']
  for v in model.variables + model.g_optimizer.variables:
    assert np.all(np.isfinite(v.numpy())), v.path
  # Skipped steps are not updates: the optimizers count only the others.
  assert int(model.g_optimizer.iterations.numpy()) == 8 - skipped
  assert int(model.d_optimizer.iterations.numpy()) == 8 - skipped
  counts = _scalars(os.path.join(model_dir, 'train'), 'train/skipped_steps')
  assert counts[8] == skipped
  reader = tf.train.load_checkpoint(result['checkpoint'])
  assert reader.get_tensor(
      'skipped_steps/.ATTRIBUTES/VARIABLE_VALUE') == skipped
