"""The crop rule travels with the model (issue: inference matches training)."""

import dataclasses
import types

import pytest

from hmr_tf import model_restore
from hmr_tf import run_modes
from hmr_tf.modeling import hmr_model


def _cfg(explicit=(), img_size=224, base_crop_size=224.0):
  return types.SimpleNamespace(
      checkpoint='runs/x/model', explicit_flags=frozenset(explicit),
      data=types.SimpleNamespace(img_size=img_size,
                                 base_crop_size=base_crop_size))


def test_model_config_keeps_the_crop_rule(tmp_path):
  config = hmr_model.ModelConfig(img_size=64, base_crop_size=170.0)
  model_restore.save_model_config(str(tmp_path), config)
  assert model_restore.read_model_config(str(tmp_path)) == config
  # An older model_config.json without the field: the paper's rule.
  assert hmr_model.ModelConfig().base_crop_size == 224.0


def test_eval_takes_the_models_rule_and_refuses_a_conflicting_flag():
  model_config = hmr_model.ModelConfig(img_size=64, base_crop_size=170.0)
  # Flags left at their defaults: the model's values win, silently.
  assert run_modes._crop_rule(_cfg(), model_config) == {
      'img_size': 64, 'base_crop_size': 170.0}
  # The same values given explicitly: fine.
  assert run_modes._crop_rule(
      _cfg(('img_size', 'base_crop_size'), 64, 170.0), model_config)
  # Another value given explicitly: one line naming the flag and both values.
  with pytest.raises(run_modes.CropRuleError,
                     match=r'--base_crop_size=224: .* trained with '
                           r'base_crop_size 170'):
    run_modes._crop_rule(_cfg(('base_crop_size',)), model_config)
  with pytest.raises(run_modes.CropRuleError, match='--img_size=224'):
    run_modes._crop_rule(_cfg(('img_size',)), model_config)


def test_demo_crop_window_follows_the_model():
  from hmr_tf import demo_lib  # pylint: disable=g-import-not-at-top
  crop = demo_lib.crop_whole_image((300, 400, 3))
  assert crop.window == pytest.approx(400.0)  # the paper's rule
  trained = dataclasses.replace(crop, base_crop_size=170.0)
  assert trained.window == pytest.approx(400.0 * 170.0 / 224.0)
