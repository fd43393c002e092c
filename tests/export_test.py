"""SavedModel export: reload in a fresh process (no hmr_tf), signatures, errors."""

import json
import os
import re
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest
import tensorflow as tf

from hmr_tf import export
from hmr_tf.modeling import hmr_model
from hmr_tf.modeling import mean_params
from hmr_tf.smpl import standin

IMG = 64

# Runs in a fresh interpreter with only TensorFlow: loads the SavedModel,
# runs both signatures on the saved inputs, and tries bad inputs.
_LOADER = textwrap.dedent('''
    import json, sys
    import numpy as np
    import tensorflow as tf
    export_dir, inputs_path, out_path = sys.argv[1:4]
    inputs = np.load(inputs_path, allow_pickle=True)
    loaded = tf.saved_model.load(export_dir + '/1')
    crops_fn = loaded.signatures['predict_crops']
    bytes_fn = loaded.signatures['serving_default']
    out = {}
    for name in ('crops1', 'crops3'):
      for key, value in crops_fn(images=tf.constant(inputs[name])).items():
        out[f'{name}/{key}'] = value.numpy()
    for name in ('bytes1', 'bytes2'):
      data = [bytes(b) for b in inputs[name]]
      for key, value in bytes_fn(image_bytes=tf.constant(data)).items():
        out[f'{name}/{key}'] = value.numpy()
    errors = {}
    try:
      bytes_fn(image_bytes=tf.constant([b'this is not an image']))
    except tf.errors.InvalidArgumentError as e:
      errors['not_an_image'] = e.message
    try:
      crops_fn(images=tf.zeros([64, 64, 3]))
    except tf.errors.InvalidArgumentError as e:
      errors['wrong_rank'] = e.message
    try:
      crops_fn(images=tf.zeros([1, 32, 32, 3]))
    except tf.errors.InvalidArgumentError as e:
      errors['wrong_size'] = e.message
    try:
      bytes_fn(image_bytes=tf.constant(b'x'))
    except tf.errors.InvalidArgumentError as e:
      errors['scalar_bytes'] = e.message
    for name, data in (('gif', b'GIF89a' + bytes([1, 0, 1, 0, 128, 255])),
                       ('random', bytes(range(250, 256)) + bytes(20))):
      try:
        bytes_fn(image_bytes=tf.constant([data]))
      except tf.errors.InvalidArgumentError as e:
        errors[name] = e.message
    for name, fn, arg in (
        ('empty_bytes', bytes_fn, dict(image_bytes=tf.constant([], tf.string))),
        ('empty_crops', crops_fn, dict(images=tf.zeros([0, 64, 64, 3])))):
      try:
        fn(**arg)
        errors[name] = 'no error'
      except tf.errors.InvalidArgumentError as e:
        errors[name] = e.message
    # Still alive and working after the errors.
    again = crops_fn(images=tf.constant(inputs['crops1']))['cam'].numpy()
    errors['alive'] = bool(np.allclose(again, out['crops1/cam']))
    v2 = tf.saved_model.load(export_dir + '/2').signatures['predict_crops']
    errors['v2_outputs'] = sorted(v2.structured_outputs)
    errors['hmr_tf_imported'] = any(m.startswith('hmr_tf') for m in sys.modules)
    np.savez(out_path, **out)
    print('ERRORS_JSON=' + json.dumps(errors))
''')


def _png(image):
  return cv2.imencode('.png', cv2.cvtColor(image, cv2.COLOR_RGB2BGR))[1].tobytes()


def _jpeg(image):
  return cv2.imencode('.jpg', cv2.cvtColor(image, cv2.COLOR_RGB2BGR))[1].tobytes()


@pytest.fixture(scope='module')
def exported(tmp_path_factory):
  tmp = tmp_path_factory.mktemp('export')
  tf.keras.utils.set_random_seed(0)
  model = hmr_model.HMRModel(
      standin.build(num_vertices=300),
      mean_params.mean_theta(np.zeros(72), np.zeros(10)),
      hmr_model.ModelConfig(img_size=IMG))
  export_dir = str(tmp / 'hmr')
  path = export.export_saved_model(model, export_dir, version=1)
  export.export_saved_model(model, export_dir, version=2,
                            include_vertices=False)
  rng = np.random.default_rng(0)
  square = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
  wide = rng.integers(0, 256, (96, 160, 3), dtype=np.uint8)
  inputs = {
      'crops1': rng.uniform(-1, 1, (1, IMG, IMG, 3)).astype(np.float32),
      'crops3': rng.uniform(-1, 1, (3, IMG, IMG, 3)).astype(np.float32),
      'bytes1': np.array([_png(square)], dtype=object),
      'bytes2': np.array([_png(square), _jpeg(wide)], dtype=object),
  }
  inputs_path = str(tmp / 'inputs.npz')
  np.savez(inputs_path, **inputs)
  out_path = str(tmp / 'outputs.npz')
  env = dict(os.environ)
  env.pop('PYTHONPATH', None)
  script = tmp / 'load.py'
  script.write_text(_LOADER)
  proc = subprocess.run(
      [sys.executable, str(script), export_dir, inputs_path, out_path],
      capture_output=True, text=True, cwd=str(tmp), env=env, timeout=300,
      check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  errors = json.loads(re.search(r'ERRORS_JSON=(.*)', proc.stdout).group(1))
  with np.load(out_path, allow_pickle=True) as z:
    outputs = dict(z)
  return dict(model=model, path=path, export_dir=export_dir, inputs=inputs,
              outputs=outputs, errors=errors, square=square)


def test_layout_and_atomic_write(exported):
  assert os.path.isfile(os.path.join(exported['path'], 'saved_model.pb'))
  assert sorted(os.listdir(exported['export_dir'])) == ['1', '2']
  with pytest.raises(FileExistsError, match='exists already'):
    export.export_saved_model(exported['model'], exported['export_dir'], 1)


def test_predict_crops_matches_keras(exported):
  model, outputs = exported['model'], exported['outputs']
  for name in ('crops1', 'crops3'):
    ref = model(exported['inputs'][name], training=False)
    for key in ('cam', 'pose', 'shape', 'joints3d', 'keypoints2d', 'vertices'):
      np.testing.assert_allclose(outputs[f'{name}/{key}'], ref[key].numpy(),
                                 atol=1e-5, rtol=0, err_msg=f'{name}/{key}')


def test_in_graph_crop_is_a_box_average():
  # A 128-px square image into a 64-px crop: output pixel u samples the image
  # at 2u + 0.5, the mean of pixels 2u and 2u + 1 in each direction.
  rng = np.random.default_rng(1)
  image = rng.integers(0, 256, (128, 128, 3), dtype=np.uint8)
  crop, center, window, size = export.decode_and_crop(tf.constant(_png(image)),
                                                      IMG)
  expected = image.astype(np.float64).reshape(64, 2, 64, 2, 3).mean((1, 3))
  np.testing.assert_allclose(crop.numpy(), expected / 127.5 - 1, atol=1e-4)
  np.testing.assert_allclose(center.numpy(), [63.5, 63.5])
  assert float(window) == 128.0
  np.testing.assert_array_equal(size.numpy(), [128, 128])


def test_serving_default_matches_keras(exported):
  model, outputs = exported['model'], exported['outputs']
  for name in ('bytes1', 'bytes2'):
    data = exported['inputs'][name]
    crops, centers, windows = [], [], []
    for d in data:
      crop, center, window, _ = export.decode_and_crop(tf.constant(bytes(d)),
                                                       IMG)
      crops.append(crop.numpy())
      centers.append(center.numpy())
      windows.append(float(window))
    ref = model(np.stack(crops), training=False)
    for key in ('cam', 'pose', 'shape', 'joints3d', 'keypoints2d', 'vertices'):
      np.testing.assert_allclose(outputs[f'{name}/{key}'], ref[key].numpy(),
                                 atol=1e-5, rtol=0, err_msg=f'{name}/{key}')
    kp = ref['keypoints2d'].numpy()
    expected = (np.stack(centers)[:, None] +
                kp * np.array(windows)[:, None, None] / 2)
    np.testing.assert_allclose(outputs[f'{name}/keypoints2d_image'], expected,
                               atol=1e-3)
  np.testing.assert_array_equal(outputs['bytes2/image_size'],
                                [[128, 128], [96, 160]])


def test_bad_inputs_give_clear_errors(exported):
  errors = exported['errors']
  assert 'JPEG or PNG' in errors['not_an_image']
  assert 'serving_default' in errors['not_an_image']
  assert re.search(r'images \[64,64,3\] is not compatible with expected '
                   r'shape \[\?,64,64,3\]', errors['wrong_rank'])
  assert 'images [1,32,32,3] is not compatible' in errors['wrong_size']
  assert 'image_bytes [] is not compatible' in errors['scalar_bytes']
  # Binary input: a printable message (the client decodes it as text).
  assert ('(12 bytes; the first in hex: 47 49 46 38 39 61 01 00)' in
          errors['gif']), errors['gif']
  assert 'fa fb fc fd fe ff 00 00' in errors['random']
  for name in ('empty_bytes', 'empty_crops'):
    assert 'empty batch; expected at least one' in errors[name], errors[name]
  assert errors['alive']
  assert not errors['hmr_tf_imported']


def test_export_is_readable_by_others_under_the_umask(exported):
  """Issue 19 §6: mkdtemp's 0700 made the export private."""
  mask = os.umask(0o022)
  os.umask(mask)
  version = exported['path']
  assert os.stat(version).st_mode & 0o777 == 0o777 & ~mask
  for root, _, files in os.walk(version):
    for name in files:
      mode = os.stat(os.path.join(root, name)).st_mode & 0o777
      assert mode & 0o044 == 0o644 & ~mask & 0o044, (name, oct(mode))


def test_vertices_can_be_left_out(exported):
  assert exported['errors']['v2_outputs'] == [
      'cam', 'joints3d', 'keypoints2d', 'keypoints3d', 'pose', 'shape',
      'theta']


def test_saved_model_cli_lists_signatures(exported):
  proc = subprocess.run(
      [sys.executable, '-m', 'tensorflow.python.tools.saved_model_cli', 'show',
       '--dir', exported['path'], '--all'],
      capture_output=True, text=True, timeout=300, check=True)
  text = proc.stdout
  blocks = dict(re.findall(r"signature_def\['(\w+)'\]:(.*?)Method name",
                           text, re.S))
  assert set(blocks) >= {'serving_default', 'predict_crops'}
  crops, served = blocks['predict_crops'], blocks['serving_default']

  def spec(block, name):
    m = re.search(rf"\['{name}'\] tensor_info:\s+dtype: (\w+)\s+shape: "
                  r'(\([^)]*\))', block)
    assert m, f'{name} missing'
    return m.group(1), m.group(2)

  assert spec(crops, 'images') == ('DT_FLOAT', f'(-1, {IMG}, {IMG}, 3)')
  assert spec(served, 'image_bytes') == ('DT_STRING', '(-1)')
  n = exported['model'].smpl.num_vertices
  for block in (crops, served):
    assert spec(block, 'cam') == ('DT_FLOAT', '(-1, 3)')
    assert spec(block, 'pose') == ('DT_FLOAT', '(-1, 72)')
    assert spec(block, 'shape') == ('DT_FLOAT', '(-1, 10)')
    assert spec(block, 'joints3d') == ('DT_FLOAT', '(-1, 24, 3)')
    assert spec(block, 'keypoints2d') == ('DT_FLOAT', '(-1, 19, 2)')
    assert spec(block, 'vertices') == ('DT_FLOAT', f'(-1, {n}, 3)')
  assert spec(served, 'keypoints2d_image') == ('DT_FLOAT', '(-1, 19, 2)')
