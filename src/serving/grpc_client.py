"""gRPC client for an hmr_tf SavedModel served by TensorFlow Serving.

  tensorflow_model_server --port=8500 --rest_api_port=8501 \
      --model_config_file=src/serving/models.config
  python src/serving/grpc_client.py --server=localhost:8500 \
      --image=photo.jpg [--box=x,y,w,h] [--saved_model_dir=EXPORT_DIR/1]

Without `--box` it calls `serving_default` (the whole image); with one
`--box` per `--image` it calls `predict_boxes` (a person box each, cropped
in the server's graph).

Needs `tensorflow-serving-api` (client only; see SERVING.md). With
`--saved_model_dir`, the request is checked against the exported signature
before it is sent, so a mismatch is reported by name rather than by the
server.
"""

import os
import sys
from typing import Dict, Optional, Sequence

from absl import app
from absl import flags
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2
from tensorflow_serving.apis import predict_pb2

DEFAULT_MODEL_NAME = 'hmr'
SIGNATURE_BYTES = 'serving_default'
SIGNATURE_CROPS = 'predict_crops'
SIGNATURE_BOXES = 'predict_boxes'


def load_signature(saved_model_dir: str, signature: str):
  """Reads one SignatureDef from a SavedModel folder's saved_model.pb."""
  path = os.path.join(saved_model_dir, 'saved_model.pb')
  if not os.path.isfile(path):
    raise FileNotFoundError(f'{path}: no SavedModel (expected a version '
                            'folder such as EXPORT_DIR/1)')
  saved = saved_model_pb2.SavedModel()
  with open(path, 'rb') as f:
    saved.ParseFromString(f.read())
  for meta_graph in saved.meta_graphs:
    if signature in meta_graph.signature_def:
      return meta_graph.signature_def[signature]
  raise ValueError(f'{path}: no signature {signature!r}')


def build_request(inputs: Dict[str, np.ndarray],
                  signature: str = SIGNATURE_BYTES,
                  model_name: str = DEFAULT_MODEL_NAME,
                  version: Optional[int] = None,
                  output_filter: Sequence[str] = ()
                 ) -> predict_pb2.PredictRequest:
  """A PredictRequest with the given named input arrays.

  Args:
    inputs: input name -> array (object/bytes arrays for string inputs).
    signature: the signature to call.
    model_name: the model's name in models.config.
    version: a model version, or None for the latest.
    output_filter: output names to return (default: all).
  """
  request = predict_pb2.PredictRequest()
  request.model_spec.name = model_name
  request.model_spec.signature_name = signature
  if version is not None:
    request.model_spec.version.value = int(version)
  for name, value in inputs.items():
    request.inputs[name].CopyFrom(tf.make_tensor_proto(value))
  request.output_filter.extend(output_filter)
  return request


def image_request(image_files: Sequence[str],
                  boxes: Optional[Sequence[Sequence[float]]] = None,
                  **kwargs) -> predict_pb2.PredictRequest:
  """A request for encoded image files (JPEG/PNG).

  Args:
    image_files: the files to send.
    boxes: None for `serving_default` (whole images), or one person box
      [x, y, w, h] (pixels) per file for `predict_boxes`.
    **kwargs: see `build_request`.
  """
  data = []
  for path in image_files:
    with open(path, 'rb') as f:
      data.append(f.read())
  inputs = {'image_bytes': np.array(data, dtype=object)}
  if boxes is None:
    return build_request(inputs, signature=SIGNATURE_BYTES, **kwargs)
  boxes = np.asarray(boxes, np.float32)
  if boxes.shape != (len(data), 4):
    raise ValueError(f'boxes: expected one [x, y, w, h] per image '
                     f'({len(data)}), got shape {list(boxes.shape)}')
  inputs['boxes'] = boxes
  return build_request(inputs, signature=SIGNATURE_BOXES, **kwargs)


def validate_request(request: predict_pb2.PredictRequest,
                     signature_def) -> None:
  """Checks a request's inputs and output filter against a SignatureDef.

  Raises:
    ValueError: naming the first input or output that does not match (a
      missing or unknown name, a dtype, a rank or a fixed dimension).
  """
  expected = signature_def.inputs
  missing = sorted(set(expected) - set(request.inputs))
  unknown = sorted(set(request.inputs) - set(expected))
  if missing or unknown:
    raise ValueError(f'request inputs {sorted(request.inputs)} do not match '
                     f'the signature inputs {sorted(expected)}')
  for name, tensor in request.inputs.items():
    spec = expected[name]
    if tensor.dtype != spec.dtype:
      raise ValueError(
          f'input {name!r}: dtype {tf.dtypes.as_dtype(tensor.dtype).name}, '
          f'the signature expects {tf.dtypes.as_dtype(spec.dtype).name}')
    if spec.tensor_shape.unknown_rank:
      continue
    want = [d.size for d in spec.tensor_shape.dim]
    got = [d.size for d in tensor.tensor_shape.dim]
    if len(got) != len(want) or any(w >= 0 and g != w
                                    for g, w in zip(got, want)):
      raise ValueError(f'input {name!r}: shape {got}, the signature expects '
                       f'{want} (-1 = any size)')
  bad = sorted(set(request.output_filter) - set(signature_def.outputs))
  if bad:
    raise ValueError(f'output_filter {bad}: not outputs of the signature '
                     f'({sorted(signature_def.outputs)})')


def parse_response(response) -> Dict[str, np.ndarray]:
  """A PredictResponse's outputs as numpy arrays."""
  return {name: tf.make_ndarray(t) for name, t in response.outputs.items()}


def predict(server: str, request: predict_pb2.PredictRequest,
            timeout_s: float = 30.0) -> Dict[str, np.ndarray]:
  """Sends a request to TF Serving's gRPC port and returns the outputs."""
  # Imported here: only sending needs grpc.
  import grpc  # pylint: disable=g-import-not-at-top
  from tensorflow_serving.apis import prediction_service_pb2_grpc  # pylint: disable=g-import-not-at-top
  with grpc.insecure_channel(server) as channel:
    stub = prediction_service_pb2_grpc.PredictionServiceStub(channel)
    return parse_response(stub.Predict(request, timeout=timeout_s))


def _define_flags():
  flags.DEFINE_string('server', 'localhost:8500', 'TF Serving gRPC address.')
  flags.DEFINE_string('model_name', DEFAULT_MODEL_NAME, 'Model name.')
  flags.DEFINE_multi_string('image', None, 'Image file(s) to send.')
  flags.DEFINE_multi_string('box', None, 'A person box x,y,w,h per --image '
                            '(then the predict_boxes signature).')
  flags.DEFINE_string('saved_model_dir', None, 'Optional SavedModel version '
                      'folder to check the request against.')
  flags.DEFINE_list('outputs', [], 'Outputs to return (default: all).')
  flags.mark_flag_as_required('image')


def main(argv):
  del argv
  f = flags.FLAGS
  boxes = None
  if f.box:
    boxes = [[float(v) for v in b.split(',')] for b in f.box]
  request = image_request(f.image, boxes, model_name=f.model_name,
                          output_filter=f.outputs)
  if f.saved_model_dir:
    validate_request(request, load_signature(
        f.saved_model_dir, request.model_spec.signature_name))
  outputs = predict(f.server, request)
  for name in sorted(outputs):
    value = outputs[name]
    sys.stdout.write(f'{name}: {value.dtype} {list(value.shape)}\n')
  if 'keypoints2d_image' in outputs:
    sys.stdout.write(f'keypoints2d_image[0]:\n{outputs["keypoints2d_image"][0]}'
                     '\n')


if __name__ == '__main__':
  _define_flags()
  app.run(main)
