"""SavedModel export: reload in a fresh process (no hmr_tf), signatures, errors."""

import json
import logging
import os
import re
import subprocess
import sys
import textwrap

import cv2
import numpy as np
import pytest
import tensorflow as tf

from hmr_tf import configs
from hmr_tf.inference import cpu_features
from hmr_tf.inference import export
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
    boxes_fn = loaded.signatures['predict_boxes']
    data = [bytes(b) for b in inputs['bytes2']]
    for key, value in boxes_fn(image_bytes=tf.constant(data),
                               boxes=tf.constant(inputs['boxes2'])).items():
      out[f'boxes2/{key}'] = value.numpy()
    errors = {}
    for name, box in (('box_outside', [500.0, 10.0, 20.0, 30.0]),
                      ('box_empty', [10.0, 10.0, 0.0, 30.0])):
      try:
        boxes_fn(image_bytes=tf.constant(data[:1]), boxes=tf.constant([box]))
        errors[name] = 'no error'
      except tf.errors.InvalidArgumentError as e:
        errors[name] = e.message
    try:
      boxes_fn(image_bytes=tf.constant(data), boxes=tf.constant(
          inputs['boxes2'][:1]))
      errors['box_count'] = 'no error'
    except tf.errors.InvalidArgumentError as e:
      errors['box_count'] = e.message
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
      configs.ModelConfig(img_size=IMG))
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
      'boxes2': np.array([[20.0, 10.0, 60.0, 100.0], [90.0, 5.0, 50.0, 70.0]],
                         np.float32),
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


# --- Precision and XLA (a small encoder: these tests export four times) ----


def _op_dtypes(concrete_fn, op='Conv2D'):
  """The T attribute of every `op` in a function and the ones it calls."""
  graph_def = concrete_fn.graph.as_graph_def()
  nodes = list(graph_def.node)
  for fn in graph_def.library.function:
    nodes.extend(fn.node_def)
  return {tf.dtypes.as_dtype(n.attr['T'].type).name for n in nodes
          if n.op == op}


def _saved_variables(path):
  """{checkpoint key: dtype} of a SavedModel's variables."""
  reader = tf.train.load_checkpoint(os.path.join(path, 'variables',
                                                 'variables'))
  return {key: dtype for key, dtype in
          reader.get_variable_to_dtype_map().items()
          if not key.startswith('_CHECKPOINTABLE_OBJECT_GRAPH')}


def _xla_functions(concrete_fn):
  """{name: its op types} of the functions marked for XLA compilation."""
  graph_def = concrete_fn.graph.as_graph_def()
  return {fn.signature.name: {n.op for n in fn.node_def}
          for fn in graph_def.library.function
          if fn.attr['_XlaMustCompile'].b}


def _has_plain_conv(concrete_fn):
  """Whether a convolution runs outside XLA (on oneDNN)."""
  graph_def = concrete_fn.graph.as_graph_def()
  plain = [{n.op for n in graph_def.node}] + [
      {n.op for n in fn.node_def} for fn in graph_def.library.function
      if not fn.attr['_XlaMustCompile'].b]
  return any('Conv2D' in ops for ops in plain)


@pytest.fixture(scope='module')
def precisions(tmp_path_factory):
  tmp = tmp_path_factory.mktemp('precision')
  tf.keras.utils.set_random_seed(0)
  model = hmr_model.HMRModel(
      standin.build(num_vertices=300),
      mean_params.mean_theta(np.zeros(72), np.zeros(10)),
      configs.ModelConfig(img_size=IMG, encoder='resnet_v2_small'))
  export_dir = str(tmp / 'hmr')
  settings = {1: ('float32', 'none'), 2: ('bfloat16', 'none'),
              3: ('float32', 'all'), 4: ('float32', 'head'),
              5: ('float32', 'auto'), 6: ('bfloat16', 'auto')}
  loaded = {}
  # As on a CPU without bfloat16 instructions (an AVX2-only Zen 3), with the
  # export's warnings recorded.
  warnings = _Records()
  absl_logger = logging.getLogger('absl')
  absl_logger.addHandler(warnings)
  try:
    with pytest.MonkeyPatch.context() as patch:
      patch.setattr(cpu_features, 'cpu_flags', lambda: frozenset(
          {'sse2', 'avx', 'avx2', 'fma'}))
      for version, (precision, jit) in settings.items():
        path = export.export_saved_model(model, export_dir, version,
                                         precision=precision, jit_compile=jit)
        loaded[(precision, jit)] = (path, tf.saved_model.load(path))
  finally:
    absl_logger.removeHandler(warnings)
  crops = np.random.default_rng(2).uniform(
      -1, 1, (export.AUTO_XLA_MAX_BATCH + 2, IMG, IMG, 3))
  return dict(model=model, loaded=loaded, crops=crops.astype(np.float32),
              export_dir=export_dir, warnings=warnings.messages)


class _Records(logging.Handler):
  """Keeps the messages of warnings and above."""

  def __init__(self):
    super().__init__(logging.WARNING)
    self.messages = []

  def emit(self, record):
    self.messages.append(record.getMessage())


def test_bfloat16_export_warns_without_native_bfloat16(precisions):
  # Two bfloat16 exports among the six: one warning each, naming the cause.
  bf16 = [m for m in precisions['warnings'] if 'bfloat16' in m]
  assert len(bf16) == 2, precisions['warnings']
  assert 'without bfloat16 instructions' in bf16[0]
  assert 'slower than float32' in bf16[0]


def test_precision_is_recorded(precisions):
  for (precision, jit), (path, loaded) in precisions['loaded'].items():
    info = loaded.signatures['export_info']()
    assert info.pop('compute_dtype').dtype == precision
    info = {k: v.numpy().decode() for k, v in info.items()}
    assert info == {'precision': precision, 'jit_compile': jit,
                    'img_size': str(IMG)}
    with open(os.path.join(path, 'assets.extra', 'export_info.json')) as f:
      assert json.load(f) == {'precision': precision, 'jit_compile': jit,
                              'img_size': IMG, 'include_vertices': True}


def test_saved_model_cli_shows_the_precision(precisions):
  path = precisions['loaded'][('bfloat16', 'none')][0]
  proc = subprocess.run(
      [sys.executable, '-m', 'tensorflow.python.tools.saved_model_cli', 'show',
       '--dir', path, '--tag_set', 'serve', '--signature_def', 'export_info'],
      capture_output=True, text=True, timeout=300, check=True)
  assert re.search(r"\['compute_dtype'\] tensor_info:\s+dtype: DT_BFLOAT16",
                   proc.stdout), proc.stdout


def test_bfloat16_export_computes_in_bfloat16(precisions):
  loaded = precisions['loaded']
  bf16 = loaded[('bfloat16', 'none')][1].signatures['predict_crops']
  f32 = loaded[('float32', 'none')][1].signatures['predict_crops']
  assert _op_dtypes(bf16) == {'bfloat16'}
  assert _op_dtypes(f32) == {'float32'}
  # The regressor's dense layers stay float32 (so XLA can compile the head
  # as in a float32 export).
  assert _op_dtypes(bf16, 'MatMul') == {'float32'}
  # 'auto' holds both: float32 for small batches, bfloat16 above.
  auto = loaded[('bfloat16', 'auto')][1].signatures['predict_crops']
  assert _op_dtypes(auto) == {'bfloat16', 'float32'}
  # Exporting under a reduced precision leaves the caller's policies alone:
  # the global one and every layer's (the encoder is traced under
  # mixed_bfloat16 and given its own back).
  assert tf.keras.mixed_precision.global_policy().name == 'float32'
  encoder = precisions['model'].encoder
  assert {layer.dtype_policy.name for layer in
          encoder._flatten_layers()} == {'float32'}


def test_bfloat16_outputs_close_to_float32(precisions):
  crops = tf.constant(precisions['crops'])
  loaded = precisions['loaded']
  ref = loaded[('float32', 'none')][1].signatures['predict_crops'](images=crops)
  out = loaded[('bfloat16', 'none')][1].signatures['predict_crops'](
      images=crops)
  for key, value in out.items():
    assert value.dtype == tf.float32, key
  # bfloat16 keeps 8 significant bits: the small encoder's features move by
  # ~0.5%; the stated tolerances are 2e-2 in crop coordinates ([-1, 1], i.e.
  # 2.2 px in a 224 crop) and 1 cm.
  np.testing.assert_allclose(out['keypoints2d'], ref['keypoints2d'],
                             atol=2e-2, rtol=0)
  np.testing.assert_allclose(out['vertices'], ref['vertices'], atol=1e-2,
                             rtol=0)
  np.testing.assert_allclose(out['theta'], ref['theta'], atol=2e-2, rtol=0)
  # ... and it does differ: the reduced type is really in use.
  assert np.abs(out['theta'] - ref['theta']).max() > 1e-6


@pytest.mark.parametrize('jit', ['none', 'auto'])
def test_bfloat16_export_is_the_mixed_policy_encoder_and_float32_head(
    precisions, jit):
  # The reference, built independently of the export's trace-time policy
  # switch: the encoder rebuilt under Keras' mixed_bfloat16 policy with the
  # weights copied in, its features cast to float32, then the float32 head.
  model, crops = precisions['model'], precisions['crops']
  copy = export.model_in_precision(model, 'bfloat16')
  assert copy.encoder.compute_dtype == 'bfloat16'
  spec = [tf.TensorSpec([None, IMG, IMG, 3], tf.float32)]
  bf16_ref = tf.function(lambda x: model.head(
      tf.cast(copy.encoder(x, training=False), tf.float32)),
                         input_signature=spec)
  f32_ref = tf.function(lambda x: model(x, training=False),
                        input_signature=spec)
  fn = precisions['loaded'][('bfloat16', jit)][1].signatures['predict_crops']
  limit = export.AUTO_XLA_MAX_BATCH
  for batch in (1, limit + 1):
    x = tf.constant(crops[:batch])
    out = fn(images=x)
    bf16, f32 = bf16_ref(x), f32_ref(x)
    # 'auto' computes batches up to the limit in float32 (XLA's whole
    # model), larger ones as 'none' does.
    small_in_float32 = jit == 'auto' and batch <= limit
    want, other = (f32, bf16) if small_in_float32 else (bf16, f32)
    for key in ('theta', 'keypoints2d', 'vertices'):
      got = out[key].numpy()
      ref = want['theta_stages'][:, -1] if key == 'theta' else want[key]
      alt = other['theta_stages'][:, -1] if key == 'theta' else other[key]
      where = f'{jit}, batch {batch}, {key}'
      # Equal up to graph rewrites and XLA (measured <= 5e-7), while
      # bfloat16 and float32 differ by ~1e-4 here.
      np.testing.assert_allclose(got, ref, atol=1e-5, rtol=0, err_msg=where)
      assert np.abs(got - alt.numpy()).max() > 2e-5, where
  # One copy of the weights, float32, whatever graphs the export holds:
  # the same variables as the float32 export's.
  saved = _saved_variables(precisions['loaded'][('bfloat16', jit)][0])
  assert saved == _saved_variables(
      precisions['loaded'][('float32', 'auto')][0])
  assert set(saved.values()) == {tf.float32}


@pytest.mark.parametrize('jit', ['all', 'head', 'auto'])
def test_xla_export_keeps_dynamic_batch(precisions, jit):
  model, crops = precisions['model'], precisions['crops']
  fn = precisions['loaded'][('float32', jit)][1].signatures['predict_crops']
  compiled = _xla_functions(fn)
  assert compiled
  # 'all' compiles the encoder's convolutions too, 'head' leaves them out,
  # 'auto' holds both (the whole model and the head alone).
  xla_conv = any('Conv2D' in ops for ops in compiled.values())
  assert xla_conv == (jit != 'head'), compiled.keys()
  assert _has_plain_conv(fn) == (jit != 'all')
  assert not _xla_functions(
      precisions['loaded'][('float32', 'none')][1].signatures['predict_crops'])
  # Two batch sizes, the smaller after the larger (each one compiles); for
  # 'auto', which switches at AUTO_XLA_MAX_BATCH, both sides of the limit.
  limit = export.AUTO_XLA_MAX_BATCH
  for batch in (1, limit, limit + 1) if jit == 'auto' else (3, 1):
    out = fn(images=tf.constant(crops[:batch]))
    ref = model(crops[:batch], training=False)
    for key in ('cam', 'keypoints2d', 'vertices'):
      assert out[key].shape[0] == batch
      np.testing.assert_allclose(out[key], ref[key].numpy(), atol=1e-4,
                                 rtol=0, err_msg=f'{batch}/{key}')


def test_unknown_precision_is_refused(precisions, tmp_path):
  with pytest.raises(ValueError, match='precision: expected one of'):
    export.export_saved_model(precisions['model'], str(tmp_path), 1,
                              precision='int8')
  with pytest.raises(ValueError, match='jit_compile: expected one of'):
    export.export_saved_model(precisions['model'], str(tmp_path), 1,
                              jit_compile=True)
  assert not os.listdir(tmp_path)


def test_export_flags_reach_the_config(tmp_path):
  from absl import flags as absl_flags  # pylint: disable=g-import-not-at-top
  from absl.testing import flagsaver  # pylint: disable=g-import-not-at-top
  from hmr_tf import configs as config_lib  # pylint: disable=g-import-not-at-top
  from hmr_tf import flags as _  # pylint: disable=g-import-not-at-top,unused-import
  flag_values = absl_flags.FLAGS
  was_parsed = flag_values.is_parsed()
  try:
    with flagsaver.flagsaver(export_precision='bfloat16',
                             export_jit_compile='head',
                             output_dir=str(tmp_path)):
      flag_values.mark_as_parsed()
      cfg = config_lib.from_flags(flag_values).export
  finally:
    if not was_parsed:
      flag_values.unparse_flags()
  assert (cfg.precision, cfg.jit_compile) == ('bfloat16', 'head')
  with pytest.raises(absl_flags.IllegalFlagValueError):
    flag_values['export_precision'].parse('int8')


def test_predict_boxes_crops_as_the_demo(exported):
  # Outside hmr_tf (the loader process): the same crops, outputs and
  # full-image cameras as the demo's library on the same boxes.
  # pylint: disable=g-import-not-at-top
  from hmr_tf.inference import crops as crops_lib
  from hmr_tf.inference import demo_lib
  outputs, inputs = exported['outputs'], exported['inputs']
  images = [cv2.cvtColor(cv2.imdecode(np.frombuffer(b, np.uint8),
                                      cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
            for b in inputs['bytes2']]
  crops = [crops_lib.crop_from_bbox(box, im.shape)
           for box, im in zip(inputs['boxes2'], images)]
  results = demo_lib.run_on_images(exported['model'], images, crops)
  for i, result in enumerate(results):
    # JPEG decoding may differ by a grey level between OpenCV and TF.
    np.testing.assert_allclose(outputs['boxes2/keypoints2d_image'][i],
                               result['keypoints2d_image'], atol=0.05)
    np.testing.assert_allclose(outputs['boxes2/cam_t_full'][i],
                               result['cam_t_full'], rtol=1e-3, atol=1e-3)
    assert outputs['boxes2/focal_length'][i] == pytest.approx(
        np.hypot(*images[i].shape[:2]))
  np.testing.assert_array_equal(outputs['boxes2/image_size'],
                                [[128, 128], [96, 160]])


def test_predict_boxes_refuses_bad_boxes(exported):
  errors = exported['errors']
  assert 'predict_boxes: boxes [x, y, w, h] lies outside its image' in (
      errors['box_outside'])
  assert 'must have w > 0 and h > 0' in errors['box_empty']
  assert 'one entry per person' in errors['box_count']


def test_export_holds_only_the_inference_variables(exported):
  # The encoder, the regressor and Θ_0: no discriminator, optimizer or
  # metric state, no SMPL arrays.
  names = [n for n, _ in tf.train.list_variables(
      os.path.join(exported['path'], 'variables', 'variables'))]
  roots = {n.split('/')[0] for n in names if n != '_CHECKPOINTABLE_OBJECT_GRAPH'}
  assert roots == {'encoder', 'regressor'}, roots
  model = exported['model']
  count = len(model.encoder.weights) + len(model.regressor.weights)
  assert len(names) - 1 == count
