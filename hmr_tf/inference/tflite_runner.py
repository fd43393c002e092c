"""Runs an exported LiteRT model as the demo runs an HMRModel (no TensorFlow).

`TFLiteModel(path)` loads a `.tflite` file written by
hmr_tf.inference.tflite_export and the `export_info.json` and `faces.npy`
beside it, and offers what hmr_tf.inference.demo_lib uses of a model:
`config.img_size` and `config.base_crop_size` (the crop rule the model was
trained with) and `model(crops)` -> {cam, pose, shape, theta, joints3d,
keypoints3d, keypoints2d, vertices} as NumPy arrays; `faces` [F, 3] draws
the mesh. It runs on the LiteRT interpreter (the `ai-edge-litert` package)
with its default CPU delegate, XNNPACK.

Bad files fail with ValueError (DemoInputError for the demo) naming the file
and what was expected.
"""

import json
import os
from typing import Dict, Optional

import numpy as np

from hmr_tf import configs

INFO_FILENAME = 'export_info.json'  # tflite_export.INFO_FILENAME
_REQUIRED_INFO = ('img_size', 'base_crop_size', 'outputs', 'faces')


class TFLiteModelError(ValueError):
  """A .tflite export that cannot be used; one line naming the file."""


def _interpreter_class():
  # Imported when a model is loaded: the package is only needed here.
  from ai_edge_litert import interpreter  # pylint: disable=g-import-not-at-top
  return interpreter.Interpreter


def read_info(path: str) -> Dict:
  """The export_info.json beside a .tflite file, checked.

  Raises:
    TFLiteModelError: no such file, not JSON, or a missing or bad field.
  """
  info_path = os.path.join(os.path.dirname(os.path.abspath(path)),
                           INFO_FILENAME)
  try:
    with open(info_path, encoding='utf-8') as f:
      info = json.load(f)
  except FileNotFoundError as e:
    raise TFLiteModelError(
        f'{info_path}: missing; a .tflite export keeps its crop rule there '
        '(python -m hmr_tf.main --mode=export --export_format=tflite writes '
        'both)') from e
  except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
    raise TFLiteModelError(f'{info_path}: not readable JSON ({e})') from e
  if not isinstance(info, dict):
    raise TFLiteModelError(f'{info_path}: expected a JSON object')
  for key in _REQUIRED_INFO:
    if key not in info:
      raise TFLiteModelError(f'{info_path}: no "{key}" field')
  size, base = info['img_size'], info['base_crop_size']
  if not (isinstance(size, int) and size >= configs.MIN_IMG_SIZE):
    raise TFLiteModelError(f'{info_path}: "img_size" must be an integer >= '
                           f'{configs.MIN_IMG_SIZE}, got {size!r}')
  if not (isinstance(base, (int, float)) and base > 0):
    raise TFLiteModelError(f'{info_path}: "base_crop_size" must be a '
                           f'positive number, got {base!r}')
  info['_path'] = info_path
  return info


class TFLiteModel:
  """A LiteRT export with the interface the demo uses of an HMRModel.

  Args:
    path: a .tflite file from hmr_tf.inference.tflite_export, with its
      export_info.json (and faces.npy) in the same folder.
    num_threads: CPU threads of the interpreter (None: LiteRT's default).

  Attributes:
    config: a ModelConfig with the export's img_size and base_crop_size.
    faces: [F, 3] int32 triangles of the body model, or None when the
      export has no faces file.
    info: the export_info.json contents.

  Raises:
    TFLiteModelError: a missing or unreadable file, or a model whose input
      does not match its export_info.json.
  """

  def __init__(self, path: str, num_threads: Optional[int] = None):
    if not os.path.isfile(path):
      raise TFLiteModelError(f'{path}: no such file')
    self.info = read_info(path)
    self.path = path
    self.config = configs.ModelConfig(
        img_size=self.info['img_size'],
        base_crop_size=float(self.info['base_crop_size']))
    self.faces = self._faces()
    try:
      self._interpreter = _interpreter_class()(model_path=path,
                                               num_threads=num_threads)
    except (ValueError, RuntimeError) as e:
      first = str(e).strip().splitlines()[0] if str(e).strip() else ''
      raise TFLiteModelError(f'{path}: not a LiteRT model the interpreter '
                             f'can load ({first})') from e
    signatures = self._interpreter.get_signature_list()
    if len(signatures) != 1:
      raise TFLiteModelError(f'{path}: expected one signature, found '
                             f'{sorted(signatures)}')
    self._runner = self._interpreter.get_signature_runner()
    inputs = self._runner.get_input_details()
    if list(inputs) != ['images']:
      raise TFLiteModelError(f'{path}: expected one input "images", found '
                             f'{sorted(inputs)}')
    shape = list(inputs['images']['shape_signature'])
    size = self.config.img_size
    if shape[1:] != [size, size, 3]:
      raise TFLiteModelError(
          f'{path}: its input is {shape}, but {self.info["_path"]} says '
          f'img_size {size} (expected [-1, {size}, {size}, 3])')

  def _faces(self) -> Optional[np.ndarray]:
    faces_path = os.path.join(os.path.dirname(self.info['_path']),
                              self.info['faces'])
    try:
      faces = np.load(faces_path, allow_pickle=False)
    except FileNotFoundError:
      return None
    except (OSError, ValueError) as e:
      raise TFLiteModelError(f'{faces_path}: not a NumPy array file '
                             f'({e})') from e
    if faces.ndim != 2 or faces.shape[1] != 3 or faces.dtype.kind not in 'iu':
      raise TFLiteModelError(f'{faces_path}: expected integer triangles '
                             f'[F, 3], got {faces.dtype} {faces.shape}')
    return faces.astype(np.int32)

  def __call__(self, images, training: bool = False) -> Dict[str, np.ndarray]:
    """Runs the model on a batch of crops.

    Args:
      images: float32 [B, S, S, 3] crops in [-1, 1] (crops.crop_image).
      training: must be False (accepted for the HMRModel interface).

    Returns:
      {output name: float32 array [B, ...]} (see tflite_export).
    """
    if training:
      raise ValueError('a LiteRT model only runs inference (training=True)')
    images = np.ascontiguousarray(images, np.float32)
    size = self.config.img_size
    if images.ndim != 4 or images.shape[1:] != (size, size, 3):
      raise ValueError(f'images: expected [B, {size}, {size}, 3], got '
                       f'{list(images.shape)}')
    # The signature runner resizes the input (and reallocates) when the
    # batch size changes.
    out = self._runner(images=images)
    return {k: np.asarray(v) for k, v in out.items()}
