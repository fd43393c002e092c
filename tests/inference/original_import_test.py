"""--mode=import_original: the original HMR's checkpoint in hmr_tf.

A checkpoint with the original's variable names and shapes is built here
from TF-Slim's resnet_v2_50 and slim layers in the original's scopes (small
body model: 200 vertices); hmr_tf imports it and must compute what a float64
NumPy implementation of the IEF loop and of SMPL computes on the slim
features, and what the original graph itself computed.
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from hmr_tf import configs
from hmr_tf.inference import export as export_lib
from hmr_tf.inference import original_import
from hmr_tf.modeling import hmr_model
from hmr_tf.smpl import model_io
from hmr_tf.training import checkpoints
from hmr_tf.training import model_files
import repo_paths  # tests/support/
import slim_reference  # tests/support/
import smpl_reference  # tests/support/

_ROOT = repo_paths.ROOT
_STEP = 667589


_mean_param = slim_reference.sample_mean_param
_d_inputs = slim_reference.sample_d_inputs


@pytest.fixture(scope='module')
def imported(original, tmp_path_factory):
  """The import (the library call `--mode=import_original` makes)."""
  model_dir = tmp_path_factory.mktemp('run') / 'hmr_released' / 'model'
  original_import.import_original(original['prefix'], str(model_dir))
  return str(model_dir)


@pytest.mark.slow
def test_import_through_the_command_line(original, tmp_path):
  # `python -m hmr_tf.main --mode=import_original` (the command users run)
  # writes the same model folder as the library call.
  out = tmp_path / 'hmr_released'
  proc = subprocess.run(
      [sys.executable, '-m', 'hmr_tf.main', '--mode=import_original',
       f'--original_checkpoint={original["prefix"]}', f'--output_dir={out}'],
      cwd=_ROOT, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  assert tf.train.latest_checkpoint(str(out / 'model')).endswith(
      f'ckpt-{_STEP}')


# ---------------------------------------------------------------------------
# Float64 NumPy reference: the IEF loop and SMPL on the slim features.


def _numpy_ief(prefix, features):
  reader = tf.train.load_checkpoint(prefix)
  w = {n: reader.get_tensor(n).astype(np.float64)
       for n in ('3D_module/fc1/weights', '3D_module/fc1/biases',
                 '3D_module/fc2/weights', '3D_module/fc2/biases',
                 '3D_module/fc3/weights', '3D_module/fc3/biases',
                 'mean_param')}
  relu = lambda x: np.maximum(x, 0)
  theta = np.tile(w['mean_param'], (len(features), 1))
  thetas = []
  for _ in range(3):
    x = np.concatenate([features.astype(np.float64), theta], 1)
    x = relu(x @ w['3D_module/fc1/weights'] + w['3D_module/fc1/biases'])
    x = relu(x @ w['3D_module/fc2/weights'] + w['3D_module/fc2/biases'])
    theta = theta + x @ w['3D_module/fc3/weights'] + w['3D_module/fc3/biases']
    thetas.append(theta)
  return np.stack(thetas, 1)  # [B, T, 85]


def _numpy_body(body, theta):
  """theta [85] -> (vertices [N, 3], keypoints [19, 3], x2d [19, 2])."""
  cam, pose, betas = theta[:3], theta[3:75], theta[75:]
  verts, _ = smpl_reference.smpl_forward(body, pose, betas)
  keypoints = body.cocoplus_regressor @ verts
  x2d = cam[0] * (keypoints[:, :2] + cam[1:])  # the original's s * (X + t)
  return verts, keypoints, x2d


# ---------------------------------------------------------------------------
# The import itself.


@pytest.fixture(scope='module')
def original(original_hmr):
  return original_hmr


def test_import_writes_an_hmr_tf_model(imported, original):
  files = set(os.listdir(imported))
  assert {'checkpoint', model_files.MODEL_CONFIG_FILENAME,
          original_import.ORIGINAL_IMPORT_FILENAME} <= files
  assert tf.train.latest_checkpoint(imported).endswith(f'ckpt-{_STEP}')
  config = model_files.read_model_config(imported)
  assert (config.img_size, config.num_stage, config.encoder) == (
      224, 3, 'resnet50v2')
  with open(os.path.join(imported,
                         original_import.ORIGINAL_IMPORT_FILENAME)) as f:
    record = json.load(f)
  assert record['global_step'] == _STEP
  assert record['discriminator_imported'] is True
  assert record['smpl_model_path'] == ''
  # 270 encoder + 6 regressor + Θ_0 + 4 + 46 + 12 discriminator.
  assert record['variables_read'] == 270 + 7 + 4 + 46 + 12
  # The licensed SMPL arrays are not copied into hmr_tf's outputs.
  saved = {n for n, _ in tf.train.list_variables(
      tf.train.latest_checkpoint(imported))}
  assert not any('v_template' in n or 'shapedirs' in n for n in saved)
  run = os.path.dirname(imported)
  assert sorted(os.listdir(run)) == ['model']


def test_imported_model_equals_the_float64_reference(imported, original):
  body = original_import.recorded_body_model(imported)
  model = checkpoints.restore_model(imported, body)
  crops, ref = original['crops'], original['ref']
  out = {k: v.numpy() for k, v in model(crops, training=False).items()}
  # The encoder reproduces slim's features.
  features = model.encoder(crops, training=False).numpy()
  spread = np.ptp(ref['features'])
  assert np.abs(features - ref['features']).max() < 1e-4 * spread
  # Θ after each iteration: the float64 reference on slim's features, and
  # the original graph itself.
  expected = _numpy_ief(original['prefix'], ref['features'])
  np.testing.assert_allclose(out['theta_stages'], expected, atol=1e-4)
  np.testing.assert_allclose(out['theta_stages'],
                             np.transpose(ref['thetas'], (1, 0, 2)),
                             atol=1e-4)
  # The last iteration's body, keypoints and projection.
  for i in range(len(crops)):
    verts, keypoints, x2d = _numpy_body(original['body'], expected[i, -1])
    np.testing.assert_allclose(out['vertices'][i], verts, atol=1e-4)
    np.testing.assert_allclose(out['keypoints3d'][i], keypoints, atol=1e-4)
    # Within 0.25 px of a 224 crop (x2d is in [-1, 1] units: 112 px each).
    # (a tenth of the 0.25 px the acceptance check allows).
    assert np.abs(out["keypoints2d"][i] - x2d).max() * 112 < 0.025


def test_discriminator_equals_the_originals(imported, original):
  body = original_import.recorded_body_model(imported)
  model = hmr_model.HMRModel(body, _mean_param(),
                             model_files.read_model_config(imported))
  checkpoints.restore_weights(model, imported)  # what --init_checkpoint does
  rot, betas = _d_inputs()
  got = model.discriminator(tf.constant(rot, tf.float32),
                            tf.constant(betas, tf.float32)).numpy()
  np.testing.assert_allclose(got, original['ref']['d_out'], rtol=1e-4,
                             atol=1e-4)
  # Fine-tuning starts from the released weights.
  restored = checkpoints.restore_model(imported, body)
  for a, b in zip(model.encoder.weights, restored.encoder.weights):
    np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_body_model_from_checkpoint_arrays_equals_the_file(imported, original):
  body = original_import.recorded_body_model(imported)
  ref = original['body']
  for key in ('v_template', 'J_regressor', 'weights', 'shapedirs', 'posedirs',
              'cocoplus_regressor'):
    np.testing.assert_allclose(getattr(body, key), getattr(ref, key),
                               rtol=1e-6, atol=1e-7)
  np.testing.assert_array_equal(body.parents, ref.parents)
  assert body.faces.shape == (0, 3)  # faces are not in the checkpoint


def test_import_then_export_predicts_the_same(imported, original, tmp_path):
  body = original_import.recorded_body_model(imported)
  model = checkpoints.restore_model(imported, body)
  path = export_lib.export_saved_model(model, str(tmp_path / 'export'), 1)
  loaded = tf.saved_model.load(path)
  crops = original['crops']
  served = loaded.signatures['predict_crops'](tf.constant(crops))
  keras_out = model(crops, training=False)
  for key in ('cam', 'pose', 'shape', 'keypoints3d', 'keypoints2d',
              'vertices'):
    np.testing.assert_allclose(served[key].numpy(), keras_out[key].numpy(),
                               atol=1e-5, err_msg=key)
  np.testing.assert_allclose(served['theta'].numpy(),
                             keras_out['theta_stages'].numpy()[:, -1],
                             atol=1e-5)
  # The export holds the networks the prediction runs, not the SMPL arrays.
  names = [n for n, _ in tf.train.list_variables(
      os.path.join(path, 'variables', 'variables'))]
  assert not any('v_template' in n or 'posedirs' in n for n in names)


def test_smpl_file_is_checked_against_the_checkpoint(original, tmp_path):
  # The same body, with HMR's [N, 24] J_regressor layout: accepted.
  same = model_io.to_file_dict(original['body'])
  same['J_regressor'] = same['J_regressor'].T
  same_path = str(tmp_path / 'same.npz')
  np.savez(same_path, **same)
  record = original_import.import_original(
      original['prefix'], str(tmp_path / 'ok' / 'model'), same_path)
  assert record['smpl_model_path'] == os.path.abspath(same_path)
  assert record['body_model'] == 'file'
  # The recorded file is the body model later stages use (with its faces).
  body = original_import.recorded_body_model(str(tmp_path / 'ok' / 'model'))
  assert body.faces.shape == original['body'].faces.shape
  # Another body: the first differing array is named; nothing is written.
  other = smpl_reference.random_body_model(num_vertices=200, seed=5)
  other_path = str(tmp_path / 'other.npz')
  model_io.save_model(other, other_path)
  with pytest.raises(original_import.OriginalImportError,
                     match='not the body model of.*v_template differs'):
    original_import.import_original(original['prefix'],
                                    str(tmp_path / 'bad' / 'model'),
                                    other_path)
  assert not os.path.exists(tmp_path / 'bad')


def _arrays(prefix):
  reader = tf.train.load_checkpoint(prefix)
  return {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()}


@pytest.mark.parametrize('case, pattern', [
    ('missing', 'missing variable 3D_module/fc2/biases'),
    ('shape', r'variable 3D_module/fc3/weights has shape \[1024, 84\], '
              r'expected \[1024, 85\]'),
    ('smpl', 'missing variable posedirs'),
    ('not_hmr', 'missing variable mean_param'),
])
def test_bad_checkpoints_name_the_variable(original, tmp_path, case, pattern):
  arrays = _arrays(original['prefix'])
  if case == 'missing':
    del arrays['3D_module/fc2/biases']
  elif case == 'shape':
    arrays['3D_module/fc3/weights'] = arrays['3D_module/fc3/weights'][:, :84]
  elif case == 'smpl':
    del arrays['posedirs']
  else:
    del arrays['mean_param']
  prefix = slim_reference.write_checkpoint(str(tmp_path / 'bad.ckpt-1'),
                                           arrays)
  out = tmp_path / 'out'
  with pytest.raises(original_import.OriginalImportError, match=pattern):
    original_import.import_original(prefix, str(out / 'model'))
  assert not out.exists()


def test_checkpoint_without_discriminator_starts_it_fresh(original, tmp_path):
  arrays = {n: a for n, a in _arrays(original['prefix']).items()
            if not n.startswith('D/')}
  prefix = slim_reference.write_checkpoint(str(tmp_path / 'noD.ckpt-5'),
                                           arrays)
  record = original_import.import_original(prefix, str(tmp_path / 'm'))
  assert record['discriminator_imported'] is False
  assert record['global_step'] == _STEP  # from the global_step variable
  # --init_checkpoint still works (the fresh discriminator is saved too).
  body = original_import.recorded_body_model(str(tmp_path / 'm'))
  model = hmr_model.HMRModel(body, _mean_param(), configs.ModelConfig())
  checkpoints.restore_weights(model, str(tmp_path / 'm'))


# Slow (two processes); the bad checkpoints themselves are checked in
# process by test_bad_checkpoints_name_the_variable.
@pytest.mark.slow
def test_main_rejects_bad_input_with_one_line_and_exit_2(tmp_path):
  junk = tmp_path / 'junk.ckpt-1'
  (tmp_path / 'junk.ckpt-1.index').write_bytes(b'not a checkpoint index')
  out = tmp_path / 'out'
  proc = subprocess.run(
      [sys.executable, '-m', 'hmr_tf.main', '--mode=import_original',
       f'--original_checkpoint={junk}', f'--output_dir={out}'],
      cwd=_ROOT, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert 'Traceback' not in proc.stderr
  errors = [l for l in proc.stderr.splitlines()
            if l.startswith('hmr_tf.main: error')]
  assert len(errors) == 1 and 'not a readable TensorFlow checkpoint' in (
      errors[0]), proc.stderr[-2000:]
  assert str(junk) in errors[0]
  assert not out.exists()
  # No --original_checkpoint at all: the flag validator, before any work.
  proc = subprocess.run(
      [sys.executable, '-m', 'hmr_tf.main', '--mode=import_original',
       f'--output_dir={out}'],
      cwd=_ROOT, capture_output=True, text=True, timeout=300)
  assert proc.returncode == 2
  assert '--original_checkpoint' in proc.stderr
  assert not out.exists()


def test_existing_model_folder_is_not_overwritten(original, tmp_path):
  model_dir = tmp_path / 'model'
  model_dir.mkdir()
  (model_dir / 'ckpt-1.index').write_bytes(b'x')
  with pytest.raises(original_import.OriginalImportError,
                     match='already exists and is not empty'):
    original_import.import_original(original['prefix'], str(model_dir))
  assert os.listdir(model_dir) == ['ckpt-1.index']


@pytest.mark.slow
def test_demo_on_a_photo_with_the_imported_model(original, tmp_path):
  # The import with the SMPL file: `python -m hmr_tf.demo` finds the body
  # model through the import record and renders with its faces.
  model_dir = tmp_path / 'run' / 'model'
  original_import.import_original(original['prefix'], str(model_dir),
                                  original['smpl_file'])
  import cv2  # pylint: disable=g-import-not-at-top
  rgb = np.round((original['crops'][0] + 1) * 127.5).astype(np.uint8)
  photo = str(tmp_path / 'photo.png')
  cv2.imwrite(photo, rgb[..., ::-1])
  out = tmp_path / 'demo'
  proc = subprocess.run(
      [sys.executable, '-m', 'hmr_tf.demo', f'--checkpoint={model_dir}',
       f'--image={photo}', f'--output_dir={out}'],
      cwd=_ROOT, capture_output=True, text=True, timeout=600)
  assert proc.returncode == 0, proc.stderr[-3000:]
  with open(out / 'photo_params.json') as f:
    params = json.load(f)
  assert (out / 'photo_overlay.png').is_file()
  # A 224 x 224 photo is its own crop (the original demo's no-json rule:
  # the longer side scaled to 224): the keypoints are the model's on it.
  model = checkpoints.restore_model(
      str(model_dir), original_import.recorded_body_model(str(model_dir)))
  crop = (rgb.astype(np.float32) / 127.5 - 1.0)[None]
  x2d = model(crop, training=False)['keypoints2d'].numpy()[0]
  # Pixel centres are integers: the 224-px image spans [-0.5, 223.5], its
  # centre is 111.5 and a crop unit is 112 px.
  np.testing.assert_allclose(params['keypoints2d_image'], 111.5 + 112 * x2d,
                             atol=1e-2)


def test_demo_without_faces_asks_for_the_smpl_file(imported):
  from hmr_tf.inference import demo_lib  # pylint: disable=g-import-not-at-top
  body = original_import.recorded_body_model(imported)
  with pytest.raises(demo_lib.DemoInputError, match='--smpl_model_path'):
    demo_lib.check_faces(body)


def test_later_stages_take_the_recorded_body_model(imported, original):
  # --mode=eval/export/demo with --output_dir of the import: the body model
  # comes from where the import recorded it, and nothing is copied into the
  # run folder; --smpl_model_path given again wins.
  import types  # pylint: disable=g-import-not-at-top
  from hmr_tf import stages  # pylint: disable=g-import-not-at-top
  run = os.path.dirname(imported)

  def cfg(smpl_path=''):
    return types.SimpleNamespace(
        checkpoint=imported,
        body=types.SimpleNamespace(smpl_model_path=smpl_path),
        paths=types.SimpleNamespace(
            body_model_file=os.path.join(run, 'body_model', 'body_model.npz')))

  body = stages._run_body_model(cfg())
  np.testing.assert_allclose(body.v_template, original['body'].v_template,
                             atol=1e-6)
  assert body.faces.shape == (0, 3)  # from the checkpoint's arrays
  given = stages._run_body_model(cfg(original['smpl_file']))
  np.testing.assert_array_equal(given.faces, original['body'].faces)
  assert sorted(os.listdir(run)) == ['model']
