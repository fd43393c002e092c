"""The crop rule travels with the model (issue: inference matches training)."""

import dataclasses
import types

import pytest

from hmr_tf import configs
from hmr_tf.modeling import hmr_model
from hmr_tf import stages
from hmr_tf.training import model_files
import train_fixtures  # tests/support/


def _cfg(explicit=(), img_size=224, base_crop_size=224.0):
  return types.SimpleNamespace(
      checkpoint='runs/x/model', explicit_flags=frozenset(explicit),
      data=types.SimpleNamespace(img_size=img_size,
                                 base_crop_size=base_crop_size))


def test_model_config_keeps_the_crop_rule(tmp_path):
  config = configs.ModelConfig(img_size=64, base_crop_size=170.0)
  model_files.save_model_config(str(tmp_path), config)
  assert model_files.read_model_config(str(tmp_path)) == config
  # An older model_config.json without the field: the paper's rule.
  assert configs.ModelConfig().base_crop_size == 224.0


def test_eval_takes_the_models_rule_and_refuses_a_conflicting_flag():
  model_config = configs.ModelConfig(img_size=64, base_crop_size=170.0)
  # Flags left at their defaults: the model's values win, silently.
  assert stages._crop_rule(_cfg(), model_config) == {
      'img_size': 64, 'base_crop_size': 170.0}
  # The same values given explicitly: fine.
  assert stages._crop_rule(
      _cfg(('img_size', 'base_crop_size'), 64, 170.0), model_config)
  # Another value given explicitly: one line naming the flag and both values.
  with pytest.raises(stages.CropRuleError,
                     match=r'--base_crop_size=224: .* trained with '
                           r'base_crop_size 170'):
    stages._crop_rule(_cfg(('base_crop_size',)), model_config)
  with pytest.raises(stages.CropRuleError, match='--img_size=224'):
    stages._crop_rule(_cfg(('img_size',)), model_config)


def test_demo_crop_window_follows_the_model():
  from hmr_tf.inference import crops  # pylint: disable=g-import-not-at-top
  crop = crops.crop_whole_image((300, 400, 3))
  assert crop.window == pytest.approx(400.0)  # the paper's rule
  trained = dataclasses.replace(crop, base_crop_size=170.0)
  assert trained.window == pytest.approx(400.0 * 170.0 / 224.0)


def test_eval_demo_and_serving_crop_the_same_person_alike(tmp_path):
  # A tiny model trained (two steps) at a non-default crop rule (32-px
  # crops, base_crop_size 170); the same person through the evaluation
  # parser, the demo, and the SavedModel's serving_default and
  # predict_boxes gives the same keypoints in the image (within 1 px).
  # pylint: disable=g-import-not-at-top
  import cv2
  import numpy as np
  import tensorflow as tf
  from hmr_tf.inference import crops
  from hmr_tf.inference import demo_lib
  from hmr_tf.inference import export
  from hmr_tf.data import decoder
  from hmr_tf.data import schema
  from hmr_tf.data import parser
  from hmr_tf.modeling import mean_params
  from hmr_tf.smpl import standin
  config = configs.ModelConfig(img_size=32, encoder='resnet_v2_small',
                                 base_crop_size=170.0)
  tf.keras.utils.set_random_seed(0)
  model = hmr_model.HMRModel(standin.build(num_vertices=300),
                             mean_params.mean_theta(np.zeros(72),
                                                    np.zeros(10)), config)
  model.compile()
  batch, mocap = train_fixtures.random_train_batch(32, num_mocap=4)
  for _ in range(2):
    model.train_step((batch, mocap))
  # A 97 x 97 image whose person is centred at pixel (48, 48) with the
  # record scale 224 / 97: every rule below then asks for the same window.
  yy, xx = np.mgrid[0:97, 0:97] / 97.0
  image = (127.5 + 120 * np.stack([np.sin(7 * xx), np.cos(5 * yy),
                                   np.sin(4 * (xx + yy))], -1)).astype(
                                       np.uint8)
  center, scale = (48.0, 48.0), 224.0 / 97.0
  window = 170.0 / scale

  def image_px(x_n):
    return np.asarray(center) + np.asarray(x_n) * window / 2

  # Evaluation: the parser with the model's crop rule (stages._crop_rule).
  data_config = configs.DataConfig(
      **stages._crop_rule(_cfg(), config))
  png = cv2.imencode('.png', cv2.cvtColor(image, cv2.COLOR_RGB2BGR))[1]
  record = schema.make_image_example(
      png.tobytes(), 97, 97, 'person.png', center, np.zeros((14, 3)),
      scale=scale, image_format=b'png').SerializeToString()
  parsed = parser.parse_fn(data_config, is_training=False)(
      decoder.decode_image_example(tf.constant(record)))
  assert float(parsed['crop_size']) == pytest.approx(window, rel=1e-5)
  evaluated = image_px(model(parsed['image'][None])['keypoints2d'][0])
  # The demo: the record's crop, the model's rule applied by the library.
  demo = demo_lib.run_on_images(
      model, [image], [crops.Crop(center=center, scale=scale,
                                  source='record')])[0]
  # The SavedModel: the whole image, and a person box of side 150 / scale.
  path = export.export_saved_model(model, str(tmp_path / 'export'), 1)
  loaded = tf.saved_model.load(path)
  served = loaded.signatures['serving_default'](
      image_bytes=tf.constant([png.tobytes()]))
  side = 150.0 / scale
  box = [center[0] + 0.5 - side / 2, center[1] + 0.5 - side / 2, side, side]
  boxed = loaded.signatures['predict_boxes'](
      image_bytes=tf.constant([png.tobytes()]), boxes=tf.constant([box]))
  for name, got in (('demo', demo['keypoints2d_image']),
                    ('serving_default', served['keypoints2d_image'][0]),
                    ('predict_boxes', boxed['keypoints2d_image'][0])):
    np.testing.assert_allclose(np.asarray(got), evaluated, atol=1.0,
                               err_msg=name)
  # The full-image cameras agree too.
  np.testing.assert_allclose(boxed['cam_t_full'][0], demo['cam_t_full'],
                             rtol=1e-3)
