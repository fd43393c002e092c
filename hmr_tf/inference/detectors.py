"""Person detectors for the demo: TF SavedModels the user downloads, and HOG.

`load_detector(spec, config)` returns callable(uint8 RGB [H, W, 3]) -> list
of hmr_tf.inference.people.Person (every detection; `people.select_people`
thresholds them). Two public SavedModel signatures are read, told apart by
their `serving_default` outputs:

  * the TF2 Object Detection API's (the TF2 Detection Zoo's models, e.g.
    "SSD MobileNet v2 320x320", "CenterNet HourGlass104 Keypoints
    512x512"): input uint8 [1, H, W, 3], the image as it is; outputs
    `detection_boxes` [1, N, 4] (ymin, xmin, ymax, xmax, normalised to the
    image), `detection_classes` [1, N] (COCO's label map: person = 1),
    `detection_scores` [1, N], optionally `num_detections` [1] and, for the
    keypoint models, `detection_keypoints` [1, N, 17, 2] ((y, x),
    normalised) with `detection_keypoint_scores` [1, N, 17] in COCO's
    17-keypoint order. Other classes are ignored.
  * MoveNet MultiPose's (TF Hub / Kaggle "movenet/multipose/lightning"):
    input int32 [1, H, W, 3] with sides a multiple of 32 (the image is
    resized so that its longer side is `config.movenet_side`, keeping its
    aspect, and padded with black at the right and bottom); output
    `output_0` [1, 6, 56]: per person 17 x (y, x, score) normalised to that
    padded input, then ymin, xmin, ymax, xmax and the person's score.

Normalised coordinates are mapped back through the resize and the padding:
a box edge y_n becomes y_n * H_in / s (s: the resize factor), a keypoint
the same minus half a pixel (pixel-centre coordinates).

`--detector=hog`: the built-in detector, hmr_tf.inference.hog_detector.

Bad detectors stop with one line naming the folder: a path that is neither
`hog` nor a folder (a usage error, exit status 2), a folder TensorFlow
cannot load as a SavedModel, a SavedModel without a `serving_default`
signature or whose signature is neither of the two (exit status 1).
"""

import os
from typing import Callable, Dict, List

import cv2
import numpy as np

from hmr_tf import configs
from hmr_tf import errors
from hmr_tf.inference import people as people_lib
from hmr_tf.inference.sources import DemoInputError

OD_OUTPUTS = ('detection_boxes', 'detection_classes', 'detection_scores')
MOVENET_OUTPUT = 'output_0'
MOVENET_ROW = 56  # 17 x (y, x, score) + (ymin, xmin, ymax, xmax, score)
NUM_COCO_KEYPOINTS = 17


def _flag(path: str) -> str:
  return f'--detector {path}'


def load_detector(spec: str, config: configs.PeopleConfig) -> Callable:
  """The detector `spec` names: 'hog' or a SavedModel folder.

  Raises:
    errors.UsageError: neither 'hog' nor an existing folder.
    DemoInputError: a folder that is no loadable SavedModel of either
      signature (the message names it and what was expected).
  """
  if spec == configs.HOG_DETECTOR:
    from hmr_tf.inference import hog_detector  # pylint: disable=g-import-not-at-top
    return hog_detector.HogDetector()
  if not os.path.isdir(spec):
    raise errors.UsageError(
        f'{_flag(spec)}: expected "{configs.HOG_DETECTOR}" or a SavedModel '
        'folder (with saved_model.pb); no such folder')
  return load_saved_model_detector(spec, config)


def load_saved_model_detector(path: str,
                              config: configs.PeopleConfig) -> Callable:
  """A detector from a SavedModel folder (signatures in the module doc)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  if not (os.path.isfile(os.path.join(path, 'saved_model.pb')) or
          os.path.isfile(os.path.join(path, 'saved_model.pbtxt'))):
    raise DemoInputError(f'{_flag(path)}: not a SavedModel folder (no '
                         'saved_model.pb in it)')
  try:
    loaded = tf.saved_model.load(path)
  # TensorFlow reports a damaged SavedModel with many exception types.
  except (OSError, ValueError, RuntimeError, KeyError, TypeError,
          tf.errors.OpError) as e:
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e)
    raise DemoInputError(f'{_flag(path)}: TensorFlow cannot load it as a '
                         f'SavedModel ({first})') from e
  signature = loaded.signatures.get('serving_default')
  if signature is None:
    raise DemoInputError(
        f'{_flag(path)}: the SavedModel has no serving_default signature '
        f'(it has {sorted(loaded.signatures) or "none"})')
  outputs = signature.structured_outputs
  inputs = signature.structured_input_signature[1]
  if len(inputs) != 1:
    raise DemoInputError(
        f'{_flag(path)}: serving_default takes {sorted(inputs)}; expected '
        'one image input')
  (input_name, input_spec), = inputs.items()
  if all(k in outputs for k in OD_OUTPUTS):
    kind, dtype = 'object_detection', tf.uint8
  elif (MOVENET_OUTPUT in outputs and
        outputs[MOVENET_OUTPUT].shape[-1] == MOVENET_ROW):
    kind, dtype = 'movenet', tf.int32
  else:
    raise DemoInputError(
        f'{_flag(path)}: serving_default has neither the TF2 Object '
        f'Detection API\'s outputs ({", ".join(OD_OUTPUTS)}) nor MoveNet '
        f'MultiPose\'s ({MOVENET_OUTPUT} [1, 6, {MOVENET_ROW}]); its outputs: '
        f'{", ".join(sorted(outputs))}')
  if input_spec.dtype != dtype or input_spec.shape.rank not in (None, 4):
    raise DemoInputError(
        f'{_flag(path)}: a {kind} signature whose input {input_name} is '
        f'{input_spec.dtype.name} {input_spec.shape}; expected {dtype.name} '
        '[1, H, W, 3]')

  def call(batch: np.ndarray) -> Dict[str, np.ndarray]:
    out = signature(**{input_name: tf.constant(batch, dtype)})
    return {k: np.asarray(v) for k, v in out.items()}

  if kind == 'object_detection':
    return lambda image: object_detection_people(call(image[None]),
                                                 image.shape)
  return lambda image: movenet_people(call, image, config.movenet_side)


def object_detection_people(out: Dict[str, np.ndarray],
                            image_shape) -> List[people_lib.Person]:
  """The people among the TF2 Object Detection API's outputs for one image.

  Args:
    out: the signature's outputs (batch of one), see the module docstring.
    image_shape: (H, W, ...) of the image given to the detector.

  Returns:
    One Person per person-class detection (every score).
  """
  height, width = image_shape[:2]
  boxes = np.asarray(out['detection_boxes'], np.float64).reshape(-1, 4)
  classes = np.asarray(out['detection_classes']).reshape(-1)
  scores = np.asarray(out['detection_scores'], np.float64).reshape(-1)
  count = len(scores)
  if 'num_detections' in out:  # the rows past it are padding
    count = min(count, int(np.asarray(out['num_detections']).reshape(-1)[0]))
  keypoints = None
  if 'detection_keypoints' in out:
    yx = np.asarray(out['detection_keypoints'], np.float64).reshape(
        len(scores), -1, 2)
    kp_scores = np.asarray(
        out.get('detection_keypoint_scores', np.ones(yx.shape[:2])),
        np.float64).reshape(len(scores), -1)
    keypoints = _keypoints_px(yx[..., 0], yx[..., 1], kp_scores, height,
                              width)
  people = []
  for i in range(count):
    if int(round(float(classes[i]))) != configs.COCO_PERSON_CLASS:
      continue
    people.append(people_lib.Person(
        box=_box_px(boxes[i], height, width), score=float(scores[i]),
        keypoints=None if keypoints is None else keypoints[i]))
  return people


def _box_px(yxyx: np.ndarray, height: float, width: float) -> tuple:
  """Normalised (ymin, xmin, ymax, xmax) -> (x, y, w, h) in pixels."""
  ymin, xmin, ymax, xmax = (float(v) for v in yxyx)
  return (xmin * width, ymin * height, (xmax - xmin) * width,
          (ymax - ymin) * height)


def _keypoints_px(y: np.ndarray, x: np.ndarray, score: np.ndarray,
                  height: float, width: float) -> np.ndarray:
  """Normalised keypoints -> [..., K, 3] (x, y, score), pixel centres."""
  return np.stack([x * width - 0.5, y * height - 0.5, score], axis=-1)


def movenet_input(image: np.ndarray, side: int):
  """MoveNet's input: (int32 [1, Hp, Wp, 3], (h, w) of the resized image).

  The image is resized (bilinear) so that its longer side is `side`
  rounded up to a multiple of 32, its aspect kept, and padded with zeros at
  the right and bottom to multiples of 32.
  """
  multiple = configs.MIN_MOVENET_SIDE
  side = -(-int(side) // multiple) * multiple
  height, width = image.shape[:2]
  factor = side / max(height, width)
  h = max(1, int(round(height * factor)))
  w = max(1, int(round(width * factor)))
  resized = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
  padded = np.zeros((-(-h // multiple) * multiple,
                     -(-w // multiple) * multiple, 3), np.int32)
  padded[:h, :w] = resized
  return padded[None], (h, w)


def movenet_people(call: Callable, image: np.ndarray,
                   side: int) -> List[people_lib.Person]:
  """Runs MoveNet MultiPose on one image; one Person per output row."""
  batch, (h, w) = movenet_input(image, side)
  rows = np.asarray(call(batch)[MOVENET_OUTPUT], np.float64).reshape(
      -1, MOVENET_ROW)
  height, width = image.shape[:2]
  # Normalised to the padded input: scale by its sides, undo the resize.
  full_h = batch.shape[1] * height / h
  full_w = batch.shape[2] * width / w
  people = []
  for row in rows:
    kp = row[:3 * NUM_COCO_KEYPOINTS].reshape(NUM_COCO_KEYPOINTS, 3)
    people.append(people_lib.Person(
        box=_box_px(row[51:55], full_h, full_w), score=float(row[55]),
        keypoints=_keypoints_px(kp[:, 0], kp[:, 1], kp[:, 2], full_h,
                                full_w)))
  return people
