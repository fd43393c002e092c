"""LiteRT export: builtins only, parity with the SavedModel's crop signature, demo."""

import dataclasses
import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tensorflow as tf

from hmr_tf import configs
from hmr_tf import errors
from hmr_tf import stages
from hmr_tf.inference import crops
from hmr_tf.inference import export
from hmr_tf.inference import sources
from hmr_tf.inference import tflite_export
from hmr_tf.inference import tflite_runner
from hmr_tf.inference import writers
from hmr_tf.modeling import hmr_model
from hmr_tf.modeling import mean_params
from hmr_tf.render import renderer
from hmr_tf.smpl import standin
import repo_paths  # tests/support/

IMG = 64
ROOT = repo_paths.ROOT
# The tolerances, in pixels of a 224 crop, as crop coordinates in
# [-1, 1] (one pixel of an S crop is 2 / S of them).
FLOAT32_PX_224 = 0.5
QUANTIZED_PX_224 = 2.0
DYNAMIC_RANGE_PX_224 = 4.0  # the optional int8 variant (slow test)


def _px_224(a, b):
  """Largest keypoint distance, in pixels of a 224 crop."""
  return float(np.linalg.norm(np.asarray(a) - np.asarray(b), axis=-1).max()
               * 224 / 2)


def _run_config(output_dir, **flag_values):
  """The RunConfig hmr_tf.main would build from these flags."""
  from absl import flags as absl_flags  # pylint: disable=g-import-not-at-top
  from absl.testing import flagsaver  # pylint: disable=g-import-not-at-top
  from hmr_tf import flags as _  # pylint: disable=g-import-not-at-top,unused-import
  flag_values_ = absl_flags.FLAGS
  was_parsed = flag_values_.is_parsed()
  try:
    with flagsaver.flagsaver(output_dir=str(output_dir), **flag_values):
      for name in flag_values:  # as if given on the command line
        flag_values_[name].present = 1
      flag_values_.mark_as_parsed()
      return configs.from_flags(flag_values_)
  finally:
    if not was_parsed:
      flag_values_.unparse_flags()


def _photo():
  from skimage import data  # pylint: disable=g-import-not-at-top
  return data.astronaut()


@pytest.fixture(scope='module')
def litert(tmp_path_factory):
  tmp = tmp_path_factory.mktemp('litert')
  body = standin.build(num_vertices=300)
  tf.keras.utils.set_random_seed(0)
  model = hmr_model.HMRModel(
      body, mean_params.mean_theta(np.zeros(72), np.zeros(10)),
      configs.ModelConfig(img_size=IMG, encoder='resnet_v2_small'))
  # The regressor's last layer starts near zero, which keeps every output
  # at Θ_0; larger weights make Θ (and the mesh) follow the crop, so that
  # the parity checks see varied poses.
  rng = np.random.default_rng(0)
  fc3 = model.regressor.fc3.kernel
  fc3.assign(rng.normal(0, 0.05, fc3.shape).astype(np.float32))
  # Through the stage, as `--mode=export --export_format=tflite` runs it.
  cfg = _run_config(tmp / 'run', mode='export', export_format='tflite',
                    tflite_quantization='float16')
  folder = stages.export(cfg, model)
  # Three unlike crops: noise, a gradient, the photograph.
  ramp = np.linspace(-1, 1, IMG)
  crops = np.stack([
      rng.uniform(-1, 1, (IMG, IMG, 3)),
      np.broadcast_to(ramp[None, :, None] * ramp[:, None, None],
                      (IMG, IMG, 3)),
      cv2.resize(_photo(), (IMG, IMG), interpolation=cv2.INTER_AREA) / 127.5
      - 1]).astype(np.float32)
  # The SavedModel's predict_crops computation (export.crop_function).
  crop_fn = export.crop_function(model)
  reference = {b: {k: v.numpy() for k, v in crop_fn(crops[:b]).items()}
               for b in (3, 1)}
  photo_path = str(tmp / 'astronaut.png')
  cv2.imwrite(photo_path, cv2.cvtColor(_photo(), cv2.COLOR_RGB2BGR))
  return dict(tmp=tmp, model=model, body=body, folder=folder, cfg=cfg,
              crops=crops, reference=reference, photo=photo_path)


def _model_path(litert, variant):
  return os.path.join(litert['folder'],
                      tflite_export.model_filename(variant))


def test_layout_and_crop_rule(litert):
  folder = litert['folder']
  assert folder == os.path.join(litert['cfg'].export.export_dir, 'tflite')
  assert sorted(os.listdir(folder)) == sorted([
      'export_info.json', 'faces.npy', 'hmr_float16.tflite',
      'hmr_float32.tflite'])
  with open(os.path.join(folder, 'export_info.json')) as f:
    info = json.load(f)
  config = litert['model'].config
  assert info['img_size'] == IMG == config.img_size
  assert info['base_crop_size'] == config.base_crop_size
  assert info['models'] == {'float32': 'hmr_float32.tflite',
                            'float16': 'hmr_float16.tflite'}
  assert set(info['outputs']) == set(litert['reference'][1])
  assert info['num_vertices'] == litert['body'].num_vertices
  np.testing.assert_array_equal(np.load(os.path.join(folder, 'faces.npy')),
                                litert['body'].faces)
  # float16 stores the weights in half the bytes.
  ratio = (os.path.getsize(_model_path(litert, 'float16')) /
           os.path.getsize(_model_path(litert, 'float32')))
  assert 0.45 < ratio < 0.6


def _operators(path):
  from ai_edge_litert import schema_py_generated as schema  # pylint: disable=g-import-not-at-top
  with open(path, 'rb') as f:
    model = schema.ModelT.InitFromPackedBuf(f.read(), 0)
  names = {v: k for k, v in vars(schema.BuiltinOperator).items()
           if not k.startswith('_')}
  ops = set()
  for graph in model.subgraphs:
    for op in graph.operators:
      code = model.operatorCodes[op.opcodeIndex]
      ops.add(names[max(code.builtinCode, code.deprecatedBuiltinCode)]
              if code.customCode is None else f'custom:{code.customCode}')
  return ops


@pytest.mark.parametrize('variant', ['float32', 'float16'])
def test_builtin_ops_only_and_no_variables(litert, variant):
  ops = _operators(_model_path(litert, variant))
  assert 'CONV_2D' in ops and 'FULLY_CONNECTED' in ops
  # No Flex (SELECT_TF_OPS) or custom ops; no variables left to initialise
  # (the converter leaves Keras 3 variables unfrozen: NaN outputs).
  assert not [op for op in ops if op.startswith('custom:') or op == 'CUSTOM']
  assert not ops & {'VAR_HANDLE', 'READ_VARIABLE', 'ASSIGN_VARIABLE'}


def test_float32_equals_the_saved_model(litert):
  runner = tflite_runner.TFLiteModel(_model_path(litert, 'float32'),
                                     num_threads=2)
  assert runner.config.img_size == IMG
  assert runner.config.base_crop_size == litert['model'].config.base_crop_size
  crops = litert['crops']
  # Batch 3, then 1, then 3 again: the interpreter resizes its input.
  for batch in (3, 1, 3):
    ref = litert['reference'][batch]
    out = runner(crops[:batch])
    assert set(out) == set(ref)
    for key, value in ref.items():
      assert out[key].shape == value.shape, key
    assert _px_224(out['keypoints2d'], ref['keypoints2d']) <= FLOAT32_PX_224
    np.testing.assert_allclose(out['theta'], ref['theta'], atol=1e-4)
    np.testing.assert_allclose(out['vertices'], ref['vertices'], atol=1e-4)
    np.testing.assert_allclose(out['joints3d'], ref['joints3d'], atol=1e-4)
  # The check means something: the poses differ from crop to crop.
  ref = litert['reference'][3]
  assert _px_224(ref['keypoints2d'][0], ref['keypoints2d'][1]) > 5
  assert _px_224(ref['keypoints2d'][1], ref['keypoints2d'][2]) > 5


def test_float16_close_to_the_saved_model(litert):
  runner = tflite_runner.TFLiteModel(_model_path(litert, 'float16'))
  ref = litert['reference'][3]
  out = runner(litert['crops'])
  assert _px_224(out['keypoints2d'], ref['keypoints2d']) <= QUANTIZED_PX_224
  np.testing.assert_allclose(out['vertices'], ref['vertices'], atol=1e-2)
  # ... and it is not the float32 model.
  assert np.abs(out['theta'] - ref['theta']).max() > 1e-6


def test_runner_refuses_bad_exports(litert, tmp_path):
  source = _model_path(litert, 'float32')
  path = str(tmp_path / 'hmr.tflite')
  shutil.copy(source, path)
  with pytest.raises(tflite_runner.TFLiteModelError,
                     match='export_info.json: missing'):
    tflite_runner.TFLiteModel(path)
  with open(os.path.join(litert['folder'], 'export_info.json')) as f:
    info = json.load(f)
  info_path = tmp_path / 'export_info.json'
  info_path.write_text(json.dumps(dict(info, img_size=2 * IMG)))
  with pytest.raises(tflite_runner.TFLiteModelError,
                     match=rf'img_size {2 * IMG} \(expected'):
    tflite_runner.TFLiteModel(path)
  info_path.write_text(json.dumps({k: v for k, v in info.items()
                                   if k != 'base_crop_size'}))
  with pytest.raises(tflite_runner.TFLiteModelError,
                     match='no "base_crop_size" field'):
    tflite_runner.TFLiteModel(path)
  info_path.write_text(json.dumps(info))
  (tmp_path / 'faces.npy').write_bytes(b'not numpy')
  with pytest.raises(tflite_runner.TFLiteModelError, match='faces.npy'):
    tflite_runner.TFLiteModel(path)
  os.remove(tmp_path / 'faces.npy')
  (tmp_path / 'bad.tflite').write_bytes(b'not a flatbuffer')
  with pytest.raises(tflite_runner.TFLiteModelError,
                     match='bad.tflite: not a LiteRT model'):
    tflite_runner.TFLiteModel(str(tmp_path / 'bad.tflite'))
  runner = tflite_runner.TFLiteModel(path)  # no faces.npy: no faces
  assert runner.faces is None
  with pytest.raises(ValueError, match=r'expected \[B, 64, 64, 3\]'):
    runner(np.zeros((1, 32, 32, 3), np.float32))
  with pytest.raises(ValueError, match='inference'):
    runner(litert['crops'][:1], training=True)


def test_saved_model_flags_are_refused_with_tflite(litert, tmp_path):
  cfg = _run_config(tmp_path, mode='export', export_format='tflite',
                    export_precision='bfloat16')
  with pytest.raises(errors.UsageError, match='--export_precision=bfloat16: '
                     'applies to the SavedModel only'):
    stages.export(cfg, litert['model'])
  assert not os.path.exists(cfg.export.export_dir)


def _run_demo(*args):
  env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL='2')
  return subprocess.run([sys.executable, '-m', 'hmr_tf.demo', *args],
                        capture_output=True, text=True, cwd=ROOT, env=env,
                        timeout=300, check=False)


def test_demo_runs_the_tflite_model(litert):
  out_dir = str(litert['tmp'] / 'demo')
  path = _model_path(litert, 'float32')
  box = (140, 20, 240, 490)
  proc = _run_demo(f'--tflite={path}', f'--image={litert["photo"]}',
                   '--bbox=' + ','.join(str(v) for v in box),
                   f'--output_dir={out_dir}')
  assert proc.returncode == 0, proc.stderr[-3000:]
  paths = writers.output_paths(out_dir, 'astronaut')
  assert sorted(os.listdir(out_dir)) == sorted(
      os.path.basename(p) for p in paths.values())
  # The demo cropped with the export's crop rule and ran the model: its
  # keypoints are the TF model's on the same crop.
  image = sources.load_image(litert['photo'])
  crop = dataclasses.replace(
      crops.crop_from_bbox(box, image.shape),
      base_crop_size=litert['model'].config.base_crop_size)
  x = crops.crop_image(image, crop, IMG)[None].astype(np.float32)
  ref = litert['model'](x, training=False)
  with open(paths['params']) as f:
    params = json.load(f)
  assert _px_224(params['keypoints2d_crop'],
                 ref['keypoints2d'].numpy()[0]) <= FLOAT32_PX_224
  verts, faces = renderer.read_obj(paths['mesh'])
  assert verts.shape == (litert['body'].num_vertices, 3)
  np.testing.assert_array_equal(faces, litert['body'].faces)
  assert np.any(cv2.imread(paths['overlay']) != cv2.imread(litert['photo']))


@pytest.mark.parametrize('case', ['both', 'no_info'])
def test_demo_tflite_errors_are_one_line(litert, tmp_path, case):
  path = _model_path(litert, 'float32')
  args = [f'--tflite={path}']
  if case == 'both':
    args.append('--checkpoint=some/model')
    expected = 'give exactly one of --checkpoint and --tflite'
  else:
    shutil.copy(path, tmp_path / 'hmr.tflite')
    args = [f'--tflite={tmp_path / "hmr.tflite"}']
    expected = 'export_info.json: missing'
  out_dir = tmp_path / 'out'
  proc = _run_demo(*args, f'--image={litert["photo"]}',
                   f'--output_dir={out_dir}')
  # A flag misuse is a usage error (2); a bad model file a data error (1).
  assert proc.returncode == (2 if case == 'both' else 1), proc.stderr[-2000:]
  lines = proc.stderr.strip().splitlines()
  assert lines[-1].startswith('hmr_tf.demo: error: ')
  assert expected in lines[-1], lines[-1]
  assert not out_dir.exists()


# ResNet-50 v2 at 224 px and a 6,890-vertex body: a SavedModel export and
# three conversions of a 100 MB model take minutes on 2 cores.
@pytest.mark.slow
def test_resnet50_at_224_equals_the_loaded_saved_model(tmp_path):
  size = 224
  body = standin.build(num_vertices=6890)
  tf.keras.utils.set_random_seed(0)
  model = hmr_model.HMRModel(
      body, mean_params.mean_theta(np.zeros(72), np.zeros(10)),
      configs.ModelConfig(img_size=size))
  rng = np.random.default_rng(0)
  fc3 = model.regressor.fc3.kernel
  fc3.assign(rng.normal(0, 0.05, fc3.shape).astype(np.float32))
  export_dir = str(tmp_path / 'export')
  saved = tf.saved_model.load(export.export_saved_model(model, export_dir))
  folder = tflite_export.export_tflite(model, export_dir,
                                       quantization='dynamic_range')
  # The float16 variant too, beside the others (the same export_info.json).
  data = tflite_export.convert(model, variants=('float16',))['float16']
  with open(os.path.join(folder, tflite_export.model_filename('float16')),
            'wb') as f:
    f.write(data)
  crops = np.stack([
      cv2.resize(_photo(), (size, size), interpolation=cv2.INTER_AREA) /
      127.5 - 1, rng.uniform(-1, 1, (size, size, 3))]).astype(np.float32)
  ref = {k: v.numpy() for k, v in saved.signatures['predict_crops'](
      images=tf.constant(crops)).items()}
  assert _px_224(ref['keypoints2d'][0], ref['keypoints2d'][1]) > 5
  # dynamic_range (int8 weights and activations) is the coarser option: its
  # worst keypoint was 2.6 px and its worst vertex 2.9 cm off here, past the
  # 2 px and 2 cm of the default float16.
  for variant, px, metres in (('float32', FLOAT32_PX_224, 1e-4),
                              ('float16', QUANTIZED_PX_224, 2e-2),
                              ('dynamic_range', DYNAMIC_RANGE_PX_224, 5e-2)):
    runner = tflite_runner.TFLiteModel(
        os.path.join(folder, tflite_export.model_filename(variant)))
    out = runner(crops)
    assert set(out) == set(ref), variant
    assert _px_224(out['keypoints2d'], ref['keypoints2d']) <= px, variant
    np.testing.assert_allclose(out['vertices'], ref['vertices'], atol=metres,
                               err_msg=variant)
