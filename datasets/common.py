"""Helpers shared by the dataset converters.

* Person normalisation, following the original HMR converters' rules: the
  image is scaled so that the person is about 150 px tall (the diagonal of
  the visible-keypoint box when an ankle is visible, else a 75 px torso), then
  a square window of +-margin px around the person centre (the midpoint of the
  visible-keypoint box) is stored, not the full-resolution image.
* Image reading and JPEG encoding with OpenCV.
* The absl flags every converter shares.
"""

import os
import sys
from typing import Callable, NamedTuple, Optional, Sequence, Union

from absl import app
from absl import flags
import cv2
import numpy as np
import tensorflow as tf

from hmr_tf import configs
from hmr_tf.data import schema
from hmr_tf.data import writer as writer_lib
from hmr_tf.geometry import crop as crop_lib
from hmr_tf.smpl import joints as joints_lib

BadRecordError = writer_lib.BadRecordError


# Target sizes of the original rules, in pixels of the stored image (the
# person's height: crop_lib.PERSON_HEIGHT_PX).
TORSO_LENGTH_PX = 75.0
# Fallback when neither an ankle nor a whole torso side is visible (the
# original COCO converter's rule).
PARTIAL_PERSON_PX = 50.0

_LSP = joints_lib.LSP_JOINT_NAMES
_ANKLES = (_LSP.index('R_ankle'), _LSP.index('L_ankle'))
_TORSO_SIDES = ((_LSP.index('L_shoulder'), _LSP.index('L_hip')),
                (_LSP.index('R_shoulder'), _LSP.index('R_hip')))
# Body joints other than the head and neck (ankles .. wrists).
_LIMB_JOINTS = tuple(range(12))


def define_flags(default_shard_size: int) -> None:
  """Defines the flags every converter takes (call once, before app.run).

  Args:
    default_shard_size: the converter's default records per shard.
  """
  flags.DEFINE_string('input_dir', None,
                      'Folder holding the dataset as its owners distribute it.')
  flags.DEFINE_string('output_dir', None,
                      'Root output folder; shards go to '
                      '<output_dir>/<dataset>.')
  flags.DEFINE_integer('shard_size', default_shard_size,
                       'Records per TFRecord shard.', lower_bound=1)
  flags.DEFINE_bool('skip_bad', False,
                    'Skip malformed records (and count them) instead of '
                    'stopping at the first one.')
  flags.mark_flags_as_required(['input_dir', 'output_dir'])


def run(main: Callable, prog: str) -> None:
  """`app.run(main)` for a converter: bad input ends in one line and exit 1.

  The converters' errors (`ValueError`, `BadRecordError`, `OSError` such as
  `FileNotFoundError`) already name the file, the record and what was
  expected; a traceback would only bury that line.

  Args:
    main: the converter's absl main.
    prog: the command's name for the message, e.g. 'datasets.coco'.
  """

  def checked_main(argv):
    try:
      return main(argv)
    except (ValueError, OSError) as e:
      sys.stderr.write(f'{prog}: error: {e}\n')
      sys.exit(1)

  app.run(checked_main)


def load_mat(path: str, **kwargs) -> dict:
  """`scipy.io.loadmat(path, **kwargs)`; a damaged file is a ValueError.

  A truncated or corrupt .mat file makes scipy raise many kinds of error
  (OSError, IndexError, MatReadError, ...); each becomes one ValueError
  naming the file.
  """
  import scipy.io  # pylint: disable=g-import-not-at-top
  try:
    return scipy.io.loadmat(path, **kwargs)
  except (ValueError, OSError, NotImplementedError, IndexError, TypeError,
          EOFError, scipy.io.matlab.MatReadError) as e:
    raise ValueError(f'{path}: cannot read the .mat file ({e})') from e


def require_file(path: str, what: str = 'file') -> str:
  """Returns `path`; raises FileNotFoundError naming it when it is missing."""
  if not os.path.isfile(path):
    raise FileNotFoundError(f'{path}: {what} not found')
  return path


def first_existing(candidates: Sequence[str], what: str) -> str:
  """The first existing path of `candidates`, or FileNotFoundError."""
  for path in candidates:
    if os.path.isfile(path):
      return path
  raise FileNotFoundError(f'{what} not found; looked for: ' +
                          ', '.join(candidates))


def read_image(path: str, record: Union[int, str]) -> np.ndarray:
  """Reads an image file as BGR uint8 [H, W, 3].

  Raises:
    BadRecordError: naming the file and record when the file is missing or
      cannot be decoded.
  """
  if not os.path.isfile(path):
    raise BadRecordError(path, record, 'image file not found')
  data = np.fromfile(path, dtype=np.uint8)
  image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
  if image is None:
    raise BadRecordError(path, record, 'cannot decode the image')
  return image


def encode_jpeg(image: np.ndarray) -> bytes:
  """Encodes a BGR uint8 [H, W, 3] image (OpenCV order) as JPEG bytes."""
  ok, buffer = cv2.imencode('.jpg', image,
                            [cv2.IMWRITE_JPEG_QUALITY, configs.JPEG_QUALITY])
  if not ok:
    raise ValueError(f'JPEG encoding failed for an image of shape '
                     f'{image.shape}')
  return buffer.tobytes()


def check_array(value, shape: Sequence[Optional[int]], file: str,
                record: Union[int, str], name: str) -> np.ndarray:
  """Returns `value` as float64 after checking its shape (None = any size).

  Raises:
    BadRecordError: when the shape differs or values are not finite.
  """
  try:
    array = np.asarray(value, dtype=np.float64)
  except (TypeError, ValueError) as e:
    raise BadRecordError(file, record, f'{name}: not numeric ({e})') from e
  ok = array.ndim == len(shape) and all(
      s is None or s == a for s, a in zip(shape, array.shape))
  if not ok:
    want = '[' + ', '.join('*' if s is None else str(s) for s in shape) + ']'
    raise BadRecordError(file, record,
                         f'{name}: expected shape {want}, got {array.shape}')
  if not np.all(np.isfinite(array)):
    raise BadRecordError(file, record, f'{name}: non-finite values')
  return array


def visible_box(keypoints: np.ndarray):
  """Min and max corner [2] of the visible keypoints ([K, 3] x, y, vis)."""
  visible = keypoints[:, 2] > 0
  if not np.any(visible):
    raise ValueError('no visible keypoints')
  points = keypoints[visible, :2]
  return points.min(axis=0), points.max(axis=0)


def person_scale(keypoints: np.ndarray) -> Optional[float]:
  """Image scale factor that normalises the person, by the original rules.

  * an ankle visible: 150 / diagonal of the visible-keypoint box (the
    original called this the person height);
  * else a torso side (shoulder-hip) visible: 75 / mean torso length;
  * else some limb joint visible: 50 / box diagonal;
  * else None (face only: the person is not used).

  Args:
    keypoints: [K >= 14, 3] (x, y, visibility) in LSP order (face points may
      follow and count towards the box).

  Returns:
    The scale factor, or None when the person cannot be normalised.
  """
  visible = keypoints[:, 2] > 0
  if not np.any(visible):
    return None
  low, high = visible_box(keypoints)
  diagonal = float(np.linalg.norm(high - low))
  if visible[list(_ANKLES)].any():
    return crop_lib.PERSON_HEIGHT_PX / diagonal if diagonal > 0 else None
  torso = [
      np.linalg.norm(keypoints[a, :2] - keypoints[b, :2])
      for a, b in _TORSO_SIDES
      if visible[a] and visible[b]
  ]
  torso = [t for t in torso if t > 0]
  if torso:
    return TORSO_LENGTH_PX / float(np.mean(torso))
  if visible[list(_LIMB_JOINTS)].any() and diagonal > 0:
    return PARTIAL_PERSON_PX / diagonal
  return None


class PersonCrop(NamedTuple):
  """A stored crop around one person.

  Attributes:
    image: BGR uint8 [h, w, 3], the scaled and cropped image.
    keypoints: [K, 3] (x, y, vis) in the crop's pixels; invisible = zeros.
    center: [2] (x, y) person centre in the crop's pixels.
    scale_factors: [2] (x, y) the factors the source image was resized by.
    offset: [2] (x, y) the crop's top-left corner in the resized image.
  """
  image: np.ndarray
  keypoints: np.ndarray
  center: np.ndarray
  scale_factors: np.ndarray
  offset: np.ndarray


def scale_points(points: np.ndarray, factors: np.ndarray) -> np.ndarray:
  """Maps pixel coordinates [..., 2] through a cv2.resize by `factors`.

  cv2.resize aligns pixel centres: source pixel x lands at (x + 0.5) f - 0.5.
  """
  return (points + 0.5) * factors - 0.5


def crop_person(image: np.ndarray, keypoints: np.ndarray, scale: float,
                margin: int) -> PersonCrop:
  """Scales the image by `scale` and keeps +-margin px around the person.

  The centre is the midpoint of the visible-keypoint box after scaling; the
  window is clipped to the image (the parser pads when it needs more).

  Args:
    image: [H, W, 3] uint8 source image.
    keypoints: [K, 3] (x, y, vis) in source pixels.
    scale: the resize factor (see `person_scale`).
    margin: half the side of the stored window, in scaled pixels.

  Returns:
    A `PersonCrop`.
  """
  height, width = image.shape[:2]
  new_size = np.floor(np.array([width, height]) * scale).astype(int)
  if np.any(new_size < 1):
    raise ValueError(f'scale {scale} shrinks the {width}x{height} image to '
                     'nothing')
  factors = new_size / np.array([width, height], dtype=np.float64)
  if scale < 1:
    interpolation = cv2.INTER_AREA  # Averages instead of aliasing.
  else:
    interpolation = cv2.INTER_LINEAR
  resized = cv2.resize(image, (int(new_size[0]), int(new_size[1])),
                       interpolation=interpolation)
  visible = keypoints[:, 2] > 0
  points = scale_points(keypoints[:, :2], factors)
  low, high = points[visible].min(axis=0), points[visible].max(axis=0)
  center = (low + high) / 2.0
  start = np.maximum(np.floor(center - margin), 0).astype(int)
  end = np.minimum(np.floor(center + margin).astype(int), new_size)
  crop = resized[start[1]:end[1], start[0]:end[0]]
  out = np.zeros_like(keypoints, dtype=np.float64)
  out[visible, :2] = points[visible] - start
  out[visible, 2] = 1.0
  return PersonCrop(image=np.ascontiguousarray(crop), keypoints=out,
                    center=center - start, scale_factors=factors,
                    offset=start)


def image_example(image: np.ndarray,
                  keypoints: np.ndarray,
                  center: np.ndarray,
                  filename: str,
                  dataset: str,
                  **kwargs) -> tf.train.Example:
  """JPEG-encodes a BGR image and builds the record (see make_image_example).

  Args:
    image: BGR uint8 [H, W, 3].
    keypoints: [14, 3] or [19, 3] (x, y, vis) in the image's pixels.
    center: [2] person centre (x, y).
    filename: the source file name to store.
    dataset: the dataset name to store.
    **kwargs: 3D fields (`pose`, `shape`, `joints3d`, `is_3d`).

  Returns:
    A `tf.train.Example`.
  """
  height, width = image.shape[:2]
  return schema.make_image_example(
      encode_jpeg(image), height, width, filename, center, keypoints,
      dataset=dataset, **kwargs)
