"""Tests of hmr_tf.training.model_files (model_config.json by checkpoints)."""

import dataclasses
import json
import re

import pytest

from hmr_tf import configs
from hmr_tf.training import model_files


def test_round_trip_and_the_parent_folder(tmp_path):
  config = configs.ModelConfig(img_size=96, num_stage=2, e_lr=3e-5)
  path = model_files.save_model_config(str(tmp_path), config)
  assert path == str(tmp_path / model_files.MODEL_CONFIG_FILENAME)
  with open(path) as f:
    assert json.load(f) == dataclasses.asdict(config)
  assert model_files.read_model_config(str(tmp_path)) == config
  # A prefix in the folder, and one in a subfolder (exported weights).
  assert model_files.read_model_config(str(tmp_path / 'ckpt-4')) == config
  sub = tmp_path / 'export'
  sub.mkdir()
  assert model_files.read_model_config(str(sub / 'ckpt-4')) == config


def test_unknown_fields_are_ignored(tmp_path):
  values = dataclasses.asdict(configs.ModelConfig(img_size=64))
  values['from_a_newer_version'] = 1
  with open(tmp_path / model_files.MODEL_CONFIG_FILENAME, 'w') as f:
    json.dump(values, f)
  assert model_files.read_model_config(str(tmp_path)).img_size == 64


def test_missing_and_malformed_files(tmp_path):
  with pytest.raises(FileNotFoundError,
                     match=re.escape(model_files.MODEL_CONFIG_FILENAME)):
    model_files.read_model_config(str(tmp_path))
  fallback = configs.ModelConfig(img_size=128)
  assert model_files.read_model_config(str(tmp_path), fallback) is fallback
  path = tmp_path / model_files.MODEL_CONFIG_FILENAME
  path.write_text('{"img_size": ')
  with pytest.raises(ValueError, match='not a valid model config JSON'):
    model_files.read_model_config(str(tmp_path), fallback)
  path.write_text('[1, 2]')  # JSON, but not an object.
  with pytest.raises(ValueError, match=re.escape(str(path))):
    model_files.read_model_config(str(tmp_path))
