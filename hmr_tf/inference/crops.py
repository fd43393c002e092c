"""The demo's crops: where the network's input comes from in the image.

Cropping follows the original HMR demo's rule: the network works best on a
person about 150 px tall in a 224-px crop. A crop is a square window of side
`window = 224 / scale` image pixels around `center`, resized to the model's
S x S input (hmr_tf.geometry.crop.warp_np: one bilinear warp with edge
pixels repeated outside the image, the twin of the data parser's warp):

  * a person box (x, y, w, h): centre of the box, scale = 150 / max(w, h);
  * an OpenPose json: the most confident person (mean confidence of the
    keypoints above 0.2) or `person_index`; the box of their keypoints above
    0.2; scale = 150 / the box's diagonal; centre = the box's centre (the
    original's rule);
  * a detector's person (hmr_tf.inference.people): their keypoints above
    the threshold, by the OpenPose rule, when the detector gives keypoints
    (COCO's 17); else their box, by the box rule;
  * neither: the whole image, centred, scale = 224 / max(H, W) (the original
    demo's rule: the image is assumed to show one person, tightly framed).

Coordinates (hmr_tf.geometry.crop's convention): image pixels with integer
values at pixel centres (OpenCV's, also `hmr_tf.render.renderer`'s); a box's
(x, y, w, h) are continuous edges, the image spanning [0, W] x [0, H]. A crop
coordinate x_n in [-1, 1] (the model's output space) maps to the image point
center + x_n * window / 2 (crop.crop_to_image_np).
"""

import dataclasses
import json
from typing import List, Optional, Sequence

from absl import logging
import numpy as np

from hmr_tf import configs
from hmr_tf.geometry import crop as crop_lib
from hmr_tf.inference.sources import DemoInputError

OPENPOSE_THRESHOLD = configs.KEYPOINT_THRESHOLD


@dataclasses.dataclass(frozen=True)
class Crop:
  """Where the network's input comes from in the image.

  Attributes:
    center: (x, y) window centre in image pixels.
    scale: how much the image is scaled so that the person is about 150 px
      tall (HMR's normalisation, as the dataset records' `scale`).
    source: how the crop was chosen ('bbox', 'openpose', 'whole_image', or
      'held-out record': a dataset record's own person window).
    base_crop_size: the model's crop rule (ModelConfig.base_crop_size): the
      window side at scale 1; `run_on_images` sets the model's.
    box: the person's box (x, y, w, h) in image pixels (edges), when a box
      or a detector gave one; None otherwise.
    score: the detector's score of the person, or None.
  """
  center: tuple
  scale: float
  source: str
  base_crop_size: float = crop_lib.BASE_CROP_SIZE
  box: Optional[tuple] = None
  score: Optional[float] = None

  @property
  def window(self) -> float:
    """Window side in image pixels."""
    return crop_lib.window_side(self.scale, self.base_crop_size)


def _check_shape(image_shape) -> tuple:
  height, width = int(image_shape[0]), int(image_shape[1])
  if height <= 0 or width <= 0:
    raise DemoInputError(f'image: empty ({height}x{width} pixels)')
  return height, width


def crop_whole_image(image_shape) -> Crop:
  """The whole image, centred: the window is the image's longer side."""
  height, width = _check_shape(image_shape)
  return Crop(center=crop_lib.image_center(height, width),
              scale=crop_lib.BASE_CROP_SIZE / max(height, width),
              source='whole_image')


def parse_bbox(text: str) -> tuple:
  """Parses '--bbox=x,y,w,h' into four floats."""
  try:
    values = tuple(float(t) for t in text.split(','))
  except ValueError:
    values = ()
  if len(values) != 4 or not all(np.isfinite(values)):
    raise DemoInputError(f'--bbox {text!r}: expected four numbers x,y,w,h')
  return values


def crop_from_bbox(bbox: Sequence[float], image_shape) -> Crop:
  """Crop around a person box.

  Args:
    bbox: (x, y, w, h): left and top edges, width and height in pixels.
    image_shape: (H, W, ...).

  Raises:
    DemoInputError: a box with no area or outside the image.
  """
  height, width = _check_shape(image_shape)
  x, y, w, h = (float(v) for v in bbox)
  if not (np.isfinite([x, y, w, h]).all() and w > 0 and h > 0):
    raise DemoInputError(f'--bbox {x:g},{y:g},{w:g},{h:g}: width and height '
                         'must be positive')
  if x >= width or y >= height or x + w <= 0 or y + h <= 0:
    raise DemoInputError(
        f'--bbox {x:g},{y:g},{w:g},{h:g}: the box lies outside the '
        f'{width}x{height} image')
  return Crop(center=crop_lib.box_center(x, y, w, h),
              scale=crop_lib.PERSON_HEIGHT_PX / max(w, h), source='bbox',
              box=(x, y, w, h))


def points_window(points: np.ndarray):
  """(center, scale) of the OpenPose rule for confident points [K, 2].

  The box around the points: centre = the box's centre, scale = 150 / the
  box's diagonal (the original demo's `get_bbox`). None when the points
  span no length (one point, or all at one place).
  """
  points = np.asarray(points, np.float64).reshape(-1, 2)
  if len(points) < 2:
    return None
  lo, hi = points.min(0), points.max(0)
  size = float(np.linalg.norm(hi - lo))
  if size <= 0:
    return None
  center = (lo + hi) / 2.0
  return (float(center[0]), float(center[1])), crop_lib.PERSON_HEIGHT_PX / size


def read_openpose_people(json_path: str) -> List[np.ndarray]:
  """Each person's body keypoints [K, 3] (x, y, confidence) from OpenPose.

  Reads the current key `pose_keypoints_2d` or the old `pose_keypoints`.
  """
  try:
    with open(json_path) as f:
      data = json.load(f)
  except FileNotFoundError as e:
    raise DemoInputError(f'--openpose_json {json_path}: no such file') from e
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise DemoInputError(f'--openpose_json {json_path}: not valid JSON '
                         f'({e})') from e
  people = data.get('people') if isinstance(data, dict) else None
  if not isinstance(people, list):
    raise DemoInputError(f'--openpose_json {json_path}: expected an OpenPose '
                         'file with a "people" list')
  out = []
  for i, person in enumerate(people):
    values = None
    if isinstance(person, dict):
      values = person.get('pose_keypoints_2d', person.get('pose_keypoints'))
    try:
      kp = np.asarray(values, np.float64).reshape(-1, 3)
    except (TypeError, ValueError) as e:
      raise DemoInputError(
          f'--openpose_json {json_path}: person {i} has no '
          '"pose_keypoints_2d" (or "pose_keypoints") list of x, y, '
          'confidence triples') from e
    out.append(kp)
  return out


def _openpose_crop(points: np.ndarray, json_path: str, index: int,
                   height: int, width: int) -> Crop:
  """The crop of one person's confident keypoints [K, 2] (module rule)."""
  window = points_window(points)
  if window is None:
    raise DemoInputError(f'--openpose_json {json_path}: person {index} has '
                         'a single confident keypoint; cannot size the crop')
  center, scale = window
  if not (0 <= center[0] < width and 0 <= center[1] < height):
    raise DemoInputError(f'--openpose_json {json_path}: person {index} '
                         f'lies outside the {width}x{height} image')
  return Crop(center=center, scale=scale, source=f'openpose person {index}')


def crops_from_openpose(json_path: str, image_shape,
                        threshold: float = OPENPOSE_THRESHOLD) -> List[Crop]:
  """A crop for every person of an OpenPose file (the module's rule).

  People with fewer than two keypoints above the threshold, or whose box
  centre lies outside the image, are left out (and logged).

  Raises:
    DemoInputError: nobody is left.
  """
  height, width = _check_shape(image_shape)
  crops = []
  for i, kp in enumerate(read_openpose_people(json_path)):
    points = kp[kp[:, 2] > threshold][:, :2]
    if len(points) < 2:
      logging.info('%s: person %d has %d keypoint(s) above %g; skipped.',
                   json_path, i, len(points), threshold)
      continue
    try:
      crops.append(_openpose_crop(points, json_path, i, height, width))
    except DemoInputError as e:
      logging.info('%s; skipped.', e)
  if not crops:
    raise DemoInputError(f'--openpose_json {json_path}: no person with two '
                         f'or more keypoints above confidence {threshold}')
  return crops


def read_bboxes(path: str) -> List[tuple]:
  """Person boxes from a text file: one `x,y,w,h` (or `x y w h`) a line.

  Blank lines and lines starting with '#' are skipped.

  Raises:
    DemoInputError: naming the file and line of a malformed box, or a file
      without boxes.
  """
  try:
    with open(path) as f:
      lines = f.read().splitlines()
  except (OSError, UnicodeDecodeError) as e:
    raise DemoInputError(f'--bboxes {path}: cannot read it ({e})') from e
  boxes = []
  for number, line in enumerate(lines, start=1):
    text = line.strip()
    if not text or text.startswith('#'):
      continue
    try:
      box = tuple(float(t) for t in text.replace(',', ' ').split())
    except ValueError:
      box = ()
    if len(box) != 4 or not np.all(np.isfinite(box)) or min(box[2:]) <= 0:
      raise DemoInputError(f'--bboxes {path}: line {number}: expected four '
                           f'numbers x,y,w,h with w, h > 0, got {text!r}')
    boxes.append(box)
  if not boxes:
    raise DemoInputError(f'--bboxes {path}: no boxes in the file')
  return boxes


def crop_from_openpose(json_path: str, image_shape,
                       person_index: Optional[int] = None,
                       threshold: float = OPENPOSE_THRESHOLD) -> Crop:
  """Crop around an OpenPose detection (rule in the module docstring).

  Raises:
    DemoInputError: no person with a keypoint above the threshold, a bad
      person_index, or a detection outside the image.
  """
  height, width = _check_shape(image_shape)
  people = read_openpose_people(json_path)
  confident = [kp[kp[:, 2] > threshold] for kp in people]
  if person_index is not None:
    if not 0 <= person_index < len(people):
      raise DemoInputError(f'--person_index {person_index}: the file has '
                           f'{len(people)} people ({json_path})')
    chosen = person_index
    if not len(confident[chosen]):
      raise DemoInputError(f'--openpose_json {json_path}: person '
                           f'{person_index} has no keypoint with confidence '
                           f'above {threshold}')
  else:
    scores = [kp[:, 2].mean() if len(kp) else -np.inf for kp in confident]
    if not scores or max(scores) == -np.inf:
      raise DemoInputError(f'--openpose_json {json_path}: no person with a '
                           f'keypoint confidence above {threshold}')
    chosen = int(np.argmax(scores))
  return dataclasses.replace(
      _openpose_crop(confident[chosen][:, :2], json_path, chosen, height,
                     width), source='openpose')


def crop_image(image: np.ndarray, crop: Crop, img_size: int) -> np.ndarray:
  """The network input: float32 [S, S, 3] in [-1, 1].

  Output pixel (u, v) samples the image at center + (u + 0.5 - S / 2) *
  window / S (bilinear, edge pixels repeated): crop_lib.warp_np, the twin of
  the data parser's warp.
  """
  out = crop_lib.warp_np(image, crop.center, crop.window, img_size)
  return out / 127.5 - 1.0
