"""The TF Serving client and REST example against a real export's signatures."""

import base64
import importlib.util
import json
import os

import numpy as np
import pytest
import tensorflow as tf
from tensorflow_serving.apis import predict_pb2

import repo_paths  # tests/support/
from hmr_tf import configs
from hmr_tf.inference import export
from hmr_tf.modeling import hmr_model
from hmr_tf.modeling import mean_params
from hmr_tf.smpl import standin

IMG = 32
ROOT = repo_paths.ROOT
SERVING = os.path.join(ROOT, 'src', 'serving')


def _client():
  spec = importlib.util.spec_from_file_location(
      'grpc_client', os.path.join(SERVING, 'grpc_client.py'))
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module


client = _client()


@pytest.fixture(scope='module')
def saved(tmp_path_factory):
  tmp = tmp_path_factory.mktemp('serving')
  tf.keras.utils.set_random_seed(0)
  model = hmr_model.HMRModel(
      standin.build(num_vertices=300),
      mean_params.mean_theta(np.zeros(72), np.zeros(10)),
      configs.ModelConfig(img_size=IMG))
  path = export.export_saved_model(model, str(tmp / 'hmr'), version=1)
  return dict(path=path, loaded=tf.saved_model.load(path))


def _rest_image_bytes():
  with open(os.path.join(SERVING, 'rest_request.json')) as f:
    doc = json.load(f)
  assert doc['signature_name'] == 'serving_default'
  return [base64.b64decode(inst['image_bytes']['b64'])
          for inst in doc['instances']]


def _serve(loaded, request):
  """What the server does with a request: run the signature, fill a response."""
  fn = loaded.signatures[request.model_spec.signature_name]
  inputs = {k: tf.constant(tf.make_ndarray(v))
            for k, v in request.inputs.items()}
  outputs = fn(**inputs)
  response = predict_pb2.PredictResponse()
  for name, value in outputs.items():
    if not request.output_filter or name in request.output_filter:
      response.outputs[name].CopyFrom(tf.make_tensor_proto(value.numpy()))
  return response


def test_models_config_names_the_model():
  with open(os.path.join(SERVING, 'models.config')) as f:
    text = f.read()
  assert "name: 'hmr'" in text and "model_platform: 'tensorflow'" in text
  assert client.DEFAULT_MODEL_NAME == 'hmr'


def test_image_request_is_valid_and_runs(saved, tmp_path):
  data = _rest_image_bytes()
  assert data[0][:3] == b'\xff\xd8\xff'  # a JPEG
  paths = []
  for i, d in enumerate(data * 2):
    paths.append(str(tmp_path / f'{i}.jpg'))
    with open(paths[-1], 'wb') as f:
      f.write(d)
  request = client.image_request(paths, output_filter=['cam', 'pose'])
  assert request.model_spec.name == 'hmr'
  signature = client.load_signature(saved['path'], 'serving_default')
  client.validate_request(request, signature)
  assert [d.size for d in request.inputs['image_bytes'].tensor_shape.dim] == [2]
  outputs = client.parse_response(_serve(saved['loaded'], request))
  assert sorted(outputs) == ['cam', 'pose']
  assert outputs['cam'].shape == (2, 3) and outputs['pose'].shape == (2, 72)
  # The same as calling the SavedModel directly.
  direct = saved['loaded'].signatures['serving_default'](
      image_bytes=tf.constant(data * 2))
  np.testing.assert_allclose(outputs['cam'], direct['cam'].numpy(), atol=1e-6)


def test_crops_request_validation(saved):
  signature = client.load_signature(saved['path'], 'predict_crops')
  good = client.build_request(
      {'images': np.zeros((3, IMG, IMG, 3), np.float32)},
      signature='predict_crops')
  client.validate_request(good, signature)
  outputs = client.parse_response(_serve(saved['loaded'], good))
  assert outputs['vertices'].shape[0] == 3
  bad_size = client.build_request(
      {'images': np.zeros((1, IMG + 1, IMG, 3), np.float32)},
      signature='predict_crops')
  with pytest.raises(ValueError, match=r"input 'images': shape"):
    client.validate_request(bad_size, signature)
  bad_dtype = client.build_request(
      {'images': np.zeros((1, IMG, IMG, 3), np.float64)},
      signature='predict_crops')
  with pytest.raises(ValueError, match='dtype float64'):
    client.validate_request(bad_dtype, signature)
  bad_name = client.build_request(
      {'crops': np.zeros((1, IMG, IMG, 3), np.float32)},
      signature='predict_crops')
  with pytest.raises(ValueError, match='do not match'):
    client.validate_request(bad_name, signature)
  bad_output = client.build_request(
      {'images': np.zeros((1, IMG, IMG, 3), np.float32)},
      signature='predict_crops', output_filter=['keypoints2d_image'])
  with pytest.raises(ValueError, match='output_filter'):
    client.validate_request(bad_output, signature)


def test_missing_signature_is_named(saved):
  with pytest.raises(ValueError, match="no signature 'nope'"):
    client.load_signature(saved['path'], 'nope')


def test_box_requests_rest_and_grpc(saved, tmp_path):
  # predict_boxes through the gRPC client's request and the REST example's
  # instance, both as the server would run them.
  with open(os.path.join(SERVING, 'rest_request_boxes.json')) as f:
    doc = json.load(f)
  assert doc['signature_name'] == 'predict_boxes'
  instance = doc['instances'][0]
  data = base64.b64decode(instance['image_bytes']['b64'])
  path = str(tmp_path / 'photo.jpg')
  with open(path, 'wb') as f:
    f.write(data)
  request = client.image_request([path], [instance['boxes']])
  assert request.model_spec.signature_name == 'predict_boxes'
  client.validate_request(request, client.load_signature(saved['path'],
                                                         'predict_boxes'))
  outputs = client.parse_response(_serve(saved['loaded'], request))
  direct = saved['loaded'].signatures['predict_boxes'](
      image_bytes=tf.constant([data]),
      boxes=tf.constant([instance['boxes']], tf.float32))
  for key in ('cam', 'keypoints2d_image', 'cam_t_full'):
    np.testing.assert_allclose(outputs[key], direct[key].numpy(), atol=1e-6)
  with pytest.raises(ValueError, match='one \\[x, y, w, h\\] per image'):
    client.image_request([path, path], [instance['boxes']])
