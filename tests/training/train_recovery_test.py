"""The trainer and the restore on damaged or busy model folders (issue 19 §1).

A damaged latest checkpoint, a deleted one, a garbage state file, a folder
with no readable checkpoint, a second trainer, an incompatible model config.
Tiny data and the small encoder keep each training run to seconds.
"""

import glob
import logging as py_logging
import os
import shutil
import time
import types

import pytest
import tensorflow as tf
from absl import logging

import train_fixtures as tfx
from hmr_tf import errors
from hmr_tf.training import checkpoints
from hmr_tf.training import loop
from hmr_tf.training import model_files
from hmr_tf.training import run_lock


def _model_config(**overrides):
  return tfx.model_config(encoder='resnet_v2_small', **overrides)


def _train(model_dir, data_dir, body, epochs, model_config=None, **overrides):
  """loop.train; returns (result, absl log lines)."""
  lines = []

  class _Lines(py_logging.Handler):

    def emit(self, record):
      lines.append(record.getMessage())

  handler = _Lines(level=py_logging.INFO)
  absl_logger = py_logging.getLogger('absl')
  absl_logger.addHandler(handler)
  verbosity = logging.get_verbosity()
  logging.set_verbosity(logging.INFO)
  config = dict(epochs=epochs, steps_per_epoch=2, checkpoint_every_steps=2,
                max_to_keep=5, image_summary_every_steps=0,
                summary_every_steps=0)
  config.update(overrides)
  try:
    result = loop.train(model_config or _model_config(),
                             tfx.data_config(data_dir),
                             tfx.train_config(model_dir, **config), body,
                             tfx.mean_theta())
  finally:
    absl_logger.removeHandler(handler)
    logging.set_verbosity(verbosity)
  return result, lines


@pytest.fixture(scope='module')
def base(tmp_path_factory):
  """A run trained for 4 steps: ckpt-2, ckpt-4 and model_config.json."""
  root = tmp_path_factory.mktemp('recovery')
  data_dir = tfx.write_tiny_data(str(root / 'data'))
  body = tfx.load_body_model(tfx.write_body_model(str(root / 'body.npz')))
  model_dir = str(root / 'base')
  result, _ = _train(model_dir, data_dir, body, epochs=2)
  assert result['global_step'] == 4
  return types.SimpleNamespace(data_dir=data_dir, body=body,
                               model_dir=model_dir)


def _copy(base, tmp_path):
  model_dir = str(tmp_path / 'model')
  shutil.copytree(base.model_dir, model_dir)
  return model_dir


def _truncate(prefix):
  (path,) = glob.glob(prefix + '.data-*')
  with open(path, 'r+b') as f:
    f.truncate(os.path.getsize(path) // 2)


def _snapshot(model_dir):
  return {name: os.path.getmtime(os.path.join(model_dir, name))
          for name in os.listdir(model_dir)
          if os.path.isfile(os.path.join(model_dir, name))}


def test_a_truncated_latest_checkpoint_falls_back(base, tmp_path):
  model_dir = _copy(base, tmp_path)
  _truncate(os.path.join(model_dir, 'ckpt-4'))
  result, lines = _train(model_dir, base.data_dir, base.body, epochs=3)
  assert result['start_step'] == 2 and result['global_step'] == 6
  assert result['resumed_from'] == os.path.join(model_dir, 'ckpt-2')
  named = [l for l in lines if 'ckpt-4: unreadable' in l]
  assert named and os.path.join(model_dir, 'ckpt-4') in named[0]
  assert any('Falling back to' in l and 'ckpt-2' in l for l in lines)
  # ckpt-4 was written again by this run; every checkpoint reads.
  for step in (2, 4, 6):
    tf.train.load_checkpoint(os.path.join(model_dir, f'ckpt-{step}'))


def test_a_deleted_latest_checkpoint_resumes_and_deletes_nothing(base,
                                                                 tmp_path):
  model_dir = _copy(base, tmp_path)
  for path in glob.glob(os.path.join(model_dir, 'ckpt-4.*')):
    os.remove(path)
  # One more step, keeping 2: the run restarted at 0 and its
  # manager deleted the intact older checkpoints.
  result, _ = _train(model_dir, base.data_dir, base.body, epochs=2,
                     steps_per_epoch=3, checkpoint_every_steps=100,
                     max_to_keep=2)
  assert result['start_step'] == 2 and result['global_step'] == 6
  assert os.path.exists(os.path.join(model_dir, 'ckpt-2.index'))
  assert os.path.exists(os.path.join(model_dir, 'ckpt-6.index'))


def test_a_garbage_state_file_resumes_from_the_newest(base, tmp_path):
  model_dir = _copy(base, tmp_path)
  with open(os.path.join(model_dir, 'checkpoint'), 'w') as f:
    f.write('\x00garbage\n')
  result, _ = _train(model_dir, base.data_dir, base.body, epochs=2)
  assert result['start_step'] == 4 and result['steps_run'] == 0
  assert tf.train.latest_checkpoint(model_dir) == os.path.join(model_dir,
                                                               'ckpt-4')


def test_no_readable_checkpoint_stops_without_touching_them(base, tmp_path):
  model_dir = _copy(base, tmp_path)
  for step in (2, 4):
    _truncate(os.path.join(model_dir, f'ckpt-{step}'))
  before = _snapshot(model_dir)
  with pytest.raises(errors.CheckpointError, match='no readable checkpoint'):
    _train(model_dir, base.data_dir, base.body, epochs=3)
  assert _snapshot(model_dir) == before
  assert not os.path.exists(os.path.join(model_dir, run_lock.LOCK_FILENAME))


def test_a_second_trainer_stops_at_once(base, tmp_path):
  model_dir = _copy(base, tmp_path)
  before = _snapshot(model_dir)
  with run_lock.ModelDirLock(model_dir, pid=os.getppid()):
    start = time.monotonic()
    with pytest.raises(errors.ModelDirLockedError) as e:
      _train(model_dir, base.data_dir, base.body, epochs=3)
    assert time.monotonic() - start < 5.0  # No model was built.
  assert f'PID {os.getppid()}' in str(e.value)
  before.pop(run_lock.LOCK_FILENAME, None)
  assert _snapshot(model_dir) == before


def test_an_incompatible_model_config_is_refused(base, tmp_path):
  model_dir = _copy(base, tmp_path)
  path = os.path.join(model_dir, model_files.MODEL_CONFIG_FILENAME)
  with open(path) as f:
    saved = f.read()
  with pytest.raises(errors.UsageError) as e:
    _train(model_dir, base.data_dir, base.body, epochs=3,
           model_config=tfx.model_config(encoder='resnet50v2'))
  assert "encoder 'resnet_v2_small' -> 'resnet50v2'" in str(e.value)
  assert path in str(e.value)
  assert e.value.exit_code == 2
  with open(path) as f:
    assert f.read() == saved


def test_model_config_is_written_only_once_training_runs(base, tmp_path):
  model_dir = str(tmp_path / 'new')
  bad_data = tfx.data_config(base.data_dir, mocap_datasets=('no_such',))
  with pytest.raises((FileNotFoundError, ValueError)):
    loop.train(_model_config(), bad_data,
                    tfx.train_config(model_dir, epochs=1, steps_per_epoch=2,
                                     image_summary_every_steps=0),
                    base.body, tfx.mean_theta())
  assert not os.path.exists(
      os.path.join(model_dir, model_files.MODEL_CONFIG_FILENAME))
  assert not os.path.exists(os.path.join(model_dir, run_lock.LOCK_FILENAME))


def test_restore_names_an_unreadable_checkpoint_and_the_readable_one(
    base, tmp_path):
  model_dir = _copy(base, tmp_path)
  _truncate(os.path.join(model_dir, 'ckpt-4'))
  with pytest.raises(errors.CheckpointError) as e:
    checkpoints.restore_model(model_dir, base.body)
  message = str(e.value)
  assert len(message.splitlines()) == 1
  assert os.path.join(model_dir, 'ckpt-4') in message
  assert f'--checkpoint={os.path.join(model_dir, "ckpt-2")}' in message
  # The named one restores.
  model = checkpoints.restore_model(os.path.join(model_dir, 'ckpt-2'),
                                      base.body)
  assert model.config.encoder == 'resnet_v2_small'


def test_an_unreadable_init_checkpoint_is_named(base, tmp_path):
  source = _copy(base, tmp_path)
  _truncate(os.path.join(source, 'ckpt-4'))
  with pytest.raises(errors.CheckpointError) as e:
    _train(str(tmp_path / 'new'), base.data_dir, base.body, epochs=1,
           init_checkpoint=os.path.join(source, 'ckpt-4'))
  assert f'checkpoint {os.path.join(source, "ckpt-4")}: unreadable' in str(
      e.value)
