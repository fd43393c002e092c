"""Tests of hmr_tf.training.checkpoints: verification, fall-back, state repair.

Small `tf.train.Checkpoint`s of two variables stand in for training
checkpoints; train_recovery_test.py runs the trainer on damaged folders.
"""

import dataclasses
import glob
import os

import numpy as np
import pytest
import tensorflow as tf

from hmr_tf import configs
from hmr_tf import errors
from hmr_tf.training import checkpoints
from hmr_tf.training import model_files


def _write(directory, steps=(2, 4, 6), max_to_keep=10):
  """ckpt-N for each step through a CheckpointManager; returns the values."""
  value = tf.Variable(np.zeros([64, 64], np.float32))
  manager = tf.train.CheckpointManager(tf.train.Checkpoint(value=value),
                                       directory, max_to_keep=max_to_keep)
  for step in steps:
    value.assign(np.full([64, 64], step, np.float32))
    manager.save(checkpoint_number=step)
  return os.path.join(directory, 'ckpt-%d')


def _data_file(prefix):
  (path,) = glob.glob(prefix + '.data-*')
  return path


def _truncate(prefix):
  path = _data_file(prefix)
  with open(path, 'r+b') as f:
    f.truncate(os.path.getsize(path) // 2)


def _delete(prefix):
  for path in glob.glob(prefix + '.*'):
    os.remove(path)


def _state(directory):
  state = tf.train.get_checkpoint_state(directory)
  return (os.path.basename(state.model_checkpoint_path),
          [os.path.basename(p) for p in state.all_model_checkpoint_paths])


def test_verify_names_a_truncated_checkpoint(tmp_path):
  ckpt = _write(str(tmp_path))
  checkpoints.verify(ckpt % 6)
  _truncate(ckpt % 6)
  with pytest.raises(errors.CheckpointError) as e:
    checkpoints.verify(ckpt % 6)
  message = str(e.value)
  assert ckpt % 6 in message and 'unreadable' in message
  assert len(message.splitlines()) == 1


def test_verify_names_a_bit_flip_and_a_missing_data_file(tmp_path):
  ckpt = _write(str(tmp_path))
  path = _data_file(ckpt % 4)
  with open(path, 'r+b') as f:
    f.seek(100)
    byte = f.read(1)
    f.seek(100)
    f.write(bytes([byte[0] ^ 0xFF]))
  with pytest.raises(errors.CheckpointError, match='ckpt-4: unreadable'):
    checkpoints.verify(ckpt % 4)
  os.remove(_data_file(ckpt % 2))
  with pytest.raises(errors.CheckpointError, match='ckpt-2: incomplete'):
    checkpoints.verify(ckpt % 2)


def test_newest_readable_skips_damaged_checkpoints(tmp_path):
  ckpt = _write(str(tmp_path))
  _truncate(ckpt % 6)
  os.remove(_data_file(ckpt % 4))
  selection = checkpoints.newest_readable(str(tmp_path))
  assert selection.prefix == ckpt % 2
  assert [p for p, _ in selection.unreadable] == [ckpt % 6, ckpt % 4]
  assert selection.present == [ckpt % s for s in (2, 4, 6)]


def test_resume_falls_back_and_repairs_the_state(tmp_path):
  directory = str(tmp_path)
  ckpt = _write(directory)
  _truncate(ckpt % 6)
  assert checkpoints.resume_checkpoint(directory) == ckpt % 4
  # The state names the restored checkpoint and its lineage; the damaged
  # newer one stays on disk (not listed, so no manager deletes it).
  assert _state(directory) == ('ckpt-4', ['ckpt-2', 'ckpt-4'])
  assert os.path.exists((ckpt % 6) + '.index')
  # Repairing twice changes nothing.
  assert not checkpoints.repair_state(
      directory, checkpoints.newest_readable(directory))


def test_a_deleted_latest_checkpoint_resumes_from_the_previous(tmp_path):
  directory = str(tmp_path)
  ckpt = _write(directory)
  _delete(ckpt % 6)  # The "obvious fix" after a damaged checkpoint.
  assert tf.train.latest_checkpoint(directory) is None  # TensorFlow gives up.
  assert checkpoints.resume_checkpoint(directory) == ckpt % 4
  assert _state(directory) == ('ckpt-4', ['ckpt-2', 'ckpt-4'])
  assert tf.train.latest_checkpoint(directory) == ckpt % 4


def test_a_garbage_state_file_is_rebuilt_from_the_files(tmp_path):
  directory = str(tmp_path)
  ckpt = _write(directory)
  with open(os.path.join(directory, 'checkpoint'), 'w') as f:
    f.write('garbage {{{\n')
  assert checkpoints.resume_checkpoint(directory) == ckpt % 6
  assert _state(directory) == ('ckpt-6', ['ckpt-2', 'ckpt-4', 'ckpt-6'])


def test_a_repaired_manager_deletes_only_the_restored_lineage(tmp_path):
  """The issue's data loss: a manager built on the stale state deleted them."""
  directory = str(tmp_path)
  ckpt = _write(directory, max_to_keep=2, steps=(2, 4, 6))  # keeps 4 and 6
  _delete(ckpt % 6)
  restored = checkpoints.resume_checkpoint(directory)
  assert restored == ckpt % 4
  value = tf.Variable(np.zeros([64, 64], np.float32))
  checkpoint = tf.train.Checkpoint(value=value)
  checkpoint.restore(restored).assert_consumed()
  assert value.numpy()[0, 0] == 4  # Not step 0.
  manager = tf.train.CheckpointManager(checkpoint, directory, max_to_keep=2)
  manager.save(checkpoint_number=5)
  assert checkpoints.list_checkpoints(directory) == [ckpt % 4, ckpt % 5]


def test_no_readable_checkpoint_refuses_to_start_over(tmp_path):
  directory = str(tmp_path)
  ckpt = _write(directory, steps=(2, 4))
  _truncate(ckpt % 2)
  _truncate(ckpt % 4)
  with pytest.raises(errors.CheckpointError) as e:
    checkpoints.resume_checkpoint(directory)
  assert 'no readable checkpoint' in str(e.value)
  assert 'ckpt-2, ckpt-4' in str(e.value)
  assert len(checkpoints.list_checkpoints(directory)) == 2


def test_a_state_without_files_starts_a_new_run(tmp_path):
  directory = str(tmp_path)
  ckpt = _write(directory, steps=(2,))
  _delete(ckpt % 2)
  assert checkpoints.resume_checkpoint(directory) is None
  assert not os.path.exists(os.path.join(directory, 'checkpoint'))
  assert checkpoints.resume_checkpoint(str(tmp_path / 'new')) is None


def test_readable_alternative_names_the_fallback(tmp_path):
  ckpt = _write(str(tmp_path))
  _truncate(ckpt % 6)
  hint = checkpoints.readable_alternative(ckpt % 6)
  assert f'--checkpoint={ckpt % 4}' in hint
  assert checkpoints.readable_alternative(ckpt % 4) == ''


def test_a_sound_state_is_left_alone_with_any_spelling_of_the_folder(
    tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  _write('run', steps=(1, 2))
  with open(os.path.join('run', 'checkpoint')) as f:
    state = f.read()
  for directory in ('run', 'run/', str(tmp_path / 'run')):
    selection = checkpoints.newest_readable(directory)
    assert not checkpoints.repair_state(directory, selection), directory
    assert checkpoints.resume_checkpoint(directory).endswith('ckpt-2')
  with open(os.path.join('run', 'checkpoint')) as f:
    assert f.read() == state  # Timestamps and all.


def test_check_model_config_refuses_another_model(tmp_path):
  directory = str(tmp_path)
  config = configs.ModelConfig(img_size=64, num_stage=2)
  model_files.save_model_config(directory, config)
  # No checkpoints yet: any model may take the folder over.
  checkpoints.check_model_config(directory, configs.ModelConfig())
  _write(directory, steps=(2,))
  checkpoints.check_model_config(
      directory, dataclasses.replace(config, e_lr=1e-3, dropout_rate=0.0))
  with pytest.raises(errors.UsageError) as e:
    checkpoints.check_model_config(
        directory, dataclasses.replace(config, img_size=96, num_stage=3))
  message = str(e.value)
  assert 'img_size 64 -> 96' in message and 'num_stage 2 -> 3' in message
  assert 'encoder' not in message.split('(')[1]
  # The hidden widths decide the variables' shapes too.
  with pytest.raises(errors.UsageError, match='regressor_units 1024 -> 256'):
    checkpoints.check_model_config(
        directory, dataclasses.replace(config, regressor_units=256))
  with pytest.raises(errors.UsageError, match='d_pose_units 1024 -> 256'):
    checkpoints.check_model_config(
        directory, dataclasses.replace(config, d_pose_units=256))


def test_restore_training_state(tmp_path):
  ckpt = _write(str(tmp_path), steps=(2, 4))
  value = tf.Variable(np.zeros([64, 64], np.float32))
  checkpoints.restore_training_state(tf.train.Checkpoint(value=value),
                                     ckpt % 2)
  np.testing.assert_array_equal(value.numpy(), np.full([64, 64], 2.0))
  # A variable the checkpoint does not hold: not the model it was saved for.
  other = tf.train.Checkpoint(value=tf.Variable(np.zeros([64, 64],
                                                         np.float32)),
                              extra=tf.Variable(1.0))
  with pytest.raises(errors.CheckpointError, match='does not match the model'):
    checkpoints.restore_training_state(other, ckpt % 4)
