"""The TFRecord schema: keys, dtypes, shapes, parse specs and serialisation.

This module is the single source of truth for every record hmr_tf writes or
reads. Converters build records only through `make_image_example` and
`make_mocap_example`; the decoder parses them only through the specs here.

Three record kinds:
  * 2D: the keys of the original HMR converters (so TFRecords made with the
    original code read as they are), plus two optional added keys
    (`image/scale`, `image/dataset`).
  * 3D: 2D plus `mosh/pose`, `mosh/shape`, `mosh/gt3d`, `meta/has_3d` and the
    added optional `meta/has_3d_joints`.
  * Mocap: `pose`, `shape`.

Optional per-person facts some evaluation sets need (added keys, written
only when set, so other records are unchanged): `meta/gender` ('male' or
'female': the SMPL model the ground-truth pose and shape belong to, 3DPW)
and `meta/activity` (the dataset's activity code, MPI-INF-3DHP test set:
1..7; 0 = none).

`image/face_pts` keeps the original layout: the [3, 5] array of
(x row, y row, visibility row) flattened row-major, i.e. the 5 x values, then
the 5 y values, then the 5 visibilities. The original reader reshapes it to
[3, 5], so records written here and by the original code agree.
"""

from typing import Dict, Optional, Sequence, Union

import numpy as np
import tensorflow as tf

from hmr_tf.smpl import joints as joints_lib

# Record kinds, as written into the dataset sidecar's "kind" field.
KIND_2D = '2d'
KIND_3D = '3d'
KIND_MOCAP = 'mocap'
KINDS = (KIND_2D, KIND_3D, KIND_MOCAP)

NUM_LSP_JOINTS = joints_lib.NUM_LSP_JOINTS  # 14
NUM_FACE_POINTS = joints_lib.NUM_FACE_POINTS  # 5
NUM_KEYPOINTS = joints_lib.NUM_COCOPLUS_JOINTS  # 19
POSE_DIM = 3 * joints_lib.NUM_SMPL_JOINTS  # 72
SHAPE_DIM = 10
GT3D_DIM = 3 * NUM_LSP_JOINTS  # 42
FACE_PTS_DIM = 3 * NUM_FACE_POINTS  # 15

# 2D keys (original HMR names).
IMAGE_ENCODED = 'image/encoded'
IMAGE_HEIGHT = 'image/height'
IMAGE_WIDTH = 'image/width'
IMAGE_FILENAME = 'image/filename'
IMAGE_FORMAT = 'image/format'
IMAGE_CENTER = 'image/center'
IMAGE_X = 'image/x'
IMAGE_Y = 'image/y'
IMAGE_VISIBILITY = 'image/visibility'
IMAGE_FACE_PTS = 'image/face_pts'
# Added 2D keys (optional on read).
IMAGE_SCALE = 'image/scale'
IMAGE_DATASET = 'image/dataset'

# 3D keys (original HMR names).
MOSH_POSE = 'mosh/pose'
MOSH_SHAPE = 'mosh/shape'
MOSH_GT3D = 'mosh/gt3d'
META_HAS_3D = 'meta/has_3d'
# Added 3D key (optional on read).
META_HAS_3D_JOINTS = 'meta/has_3d_joints'

# Added optional keys of some evaluation sets (see the module docstring).
META_GENDER = 'meta/gender'
META_ACTIVITY = 'meta/activity'
GENDER_MALE = 'male'
GENDER_FEMALE = 'female'
GENDERS = (GENDER_MALE, GENDER_FEMALE)
NO_ACTIVITY = 0

# Mocap keys (original HMR names).
MOCAP_POSE = 'pose'
MOCAP_SHAPE = 'shape'

IMAGE_FORMAT_JPEG = b'jpeg'

# Value the decoder sees for `meta/has_3d_joints` when the key is missing;
# it then derives the flag from whether `mosh/gt3d` is present.
HAS_3D_JOINTS_UNSET = -1

ArrayLike = Union[np.ndarray, Sequence[float]]


def image_feature_spec() -> Dict[str, Union[tf.io.FixedLenFeature,
                                            tf.io.VarLenFeature]]:
  """The `tf.io` parse spec for 2D and 3D image records.

  Every key missing from an original record gets a default: face points
  zeros, scale 1, dataset b'', pose/shape zeros, has_3d 0. `mosh/gt3d` is
  parsed as a variable-length feature so the decoder can tell a 2D record
  (no gt3d) from a 3D record that predates `meta/has_3d_joints`.

  Returns:
    A dict from feature key to `tf.io.FixedLenFeature` / `VarLenFeature`.
  """
  fixed = tf.io.FixedLenFeature
  return {
      IMAGE_ENCODED: fixed([], tf.string),
      IMAGE_HEIGHT: fixed([], tf.int64, default_value=-1),
      IMAGE_WIDTH: fixed([], tf.int64, default_value=-1),
      IMAGE_FILENAME: fixed([], tf.string, default_value=''),
      IMAGE_FORMAT: fixed([], tf.string, default_value=''),
      IMAGE_CENTER: fixed([2], tf.int64),
      IMAGE_X: fixed([NUM_LSP_JOINTS], tf.float32),
      IMAGE_Y: fixed([NUM_LSP_JOINTS], tf.float32),
      IMAGE_VISIBILITY: fixed([NUM_LSP_JOINTS], tf.int64),
      IMAGE_FACE_PTS: fixed([FACE_PTS_DIM], tf.float32,
                            default_value=[0.0] * FACE_PTS_DIM),
      IMAGE_SCALE: fixed([], tf.float32, default_value=1.0),
      IMAGE_DATASET: fixed([], tf.string, default_value=''),
      MOSH_POSE: fixed([POSE_DIM], tf.float32, default_value=[0.0] * POSE_DIM),
      MOSH_SHAPE: fixed([SHAPE_DIM], tf.float32,
                        default_value=[0.0] * SHAPE_DIM),
      MOSH_GT3D: tf.io.VarLenFeature(tf.float32),
      META_HAS_3D: fixed([], tf.int64, default_value=0),
      META_HAS_3D_JOINTS: fixed([], tf.int64,
                                default_value=HAS_3D_JOINTS_UNSET),
      META_GENDER: fixed([], tf.string, default_value=''),
      META_ACTIVITY: fixed([], tf.int64, default_value=NO_ACTIVITY),
  }


def mocap_feature_spec() -> Dict[str, tf.io.FixedLenFeature]:
  """The `tf.io` parse spec for mocap records (both keys required)."""
  return {
      MOCAP_POSE: tf.io.FixedLenFeature([POSE_DIM], tf.float32),
      MOCAP_SHAPE: tf.io.FixedLenFeature([SHAPE_DIM], tf.float32),
  }


def _int64(values) -> tf.train.Feature:
  values = np.asarray(values).reshape(-1)
  return tf.train.Feature(
      int64_list=tf.train.Int64List(value=[int(v) for v in values]))


def _float(values) -> tf.train.Feature:
  values = np.asarray(values, dtype=np.float64).reshape(-1)
  return tf.train.Feature(
      float_list=tf.train.FloatList(value=[float(v) for v in values]))


def _bytes(value: Union[bytes, str]) -> tf.train.Feature:
  if isinstance(value, str):
    value = value.encode('utf-8')
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _check_shape(name: str, array: np.ndarray, shape) -> np.ndarray:
  if array.shape != tuple(shape):
    raise ValueError(f'{name}: expected shape {tuple(shape)}, got '
                     f'{array.shape}')
  if not np.all(np.isfinite(array)):
    raise ValueError(f'{name}: contains non-finite values')
  return array


def make_image_example(encoded_image: bytes,
                       height: int,
                       width: int,
                       filename: str,
                       center: ArrayLike,
                       keypoints: ArrayLike,
                       *,
                       scale: float = 1.0,
                       dataset: str = '',
                       image_format: bytes = IMAGE_FORMAT_JPEG,
                       is_3d: bool = False,
                       pose: Optional[ArrayLike] = None,
                       shape: Optional[ArrayLike] = None,
                       joints3d: Optional[ArrayLike] = None,
                       gender: str = '',
                       activity: int = NO_ACTIVITY
                      ) -> tf.train.Example:
  """Serialises one image example (2D, or 3D when `is_3d`).

  Args:
    encoded_image: the encoded image bytes (JPEG).
    height: image height in pixels.
    width: image width in pixels.
    filename: the source file name (stored for evaluation and debugging).
    center: [2] person centre (x, y) in pixels; truncated to int64 (towards
      zero) as the original converters stored it (`center.astype(np.int)`).
    keypoints: [14, 3] or [19, 3] (x px, y px, visibility 0/1) in LSP order
      (then the 5 face points when 19 rows are given).
    scale: how much the stored image is already scaled relative to HMR's
      normalisation (a ~150 px tall person); 1 for the converters here.
    dataset: the dataset name.
    image_format: the image format name stored in `image/format`.
    is_3d: write the 3D keys. Implied by any of `pose`/`joints3d`.
    pose: [72] SMPL axis-angle pose from MoSh, or None.
    shape: [10] SMPL betas from MoSh; required with `pose`.
    joints3d: [14, 3] 3D joints in metres (LSP order), or None.
    gender: '' or one of GENDERS: the body model of `pose` and `shape`.
    activity: the dataset's activity code (> 0), or NO_ACTIVITY.

  Returns:
    A `tf.train.Example`.

  Raises:
    ValueError: on wrong shapes, non-finite values, visibility not in {0,1},
      an unknown gender or a negative activity.
  """
  if gender and gender not in GENDERS:
    raise ValueError(f'gender: expected one of {GENDERS} or empty, got '
                     f'{gender!r}')
  if int(activity) < 0:
    raise ValueError(f'activity: expected >= 0, got {activity}')
  keypoints = np.asarray(keypoints, dtype=np.float64)
  if (keypoints.ndim != 2 or keypoints.shape[1] != 3 or
      keypoints.shape[0] not in (NUM_LSP_JOINTS, NUM_KEYPOINTS)):
    raise ValueError('keypoints: expected shape [14, 3] or [19, 3], got '
                     f'{keypoints.shape}')
  _check_shape('keypoints', keypoints, keypoints.shape)
  if not np.all(np.isin(keypoints[:, 2], (0.0, 1.0))):
    raise ValueError('keypoints: visibility must be 0 or 1, got '
                     f'{np.unique(keypoints[:, 2])}')
  center = _check_shape('center', np.asarray(center, np.float64), [2])
  face = np.zeros([NUM_FACE_POINTS, 3])
  if keypoints.shape[0] == NUM_KEYPOINTS:
    face = keypoints[NUM_LSP_JOINTS:]
  body = keypoints[:NUM_LSP_JOINTS]
  feature = {
      IMAGE_ENCODED: _bytes(encoded_image),
      IMAGE_HEIGHT: _int64(height),
      IMAGE_WIDTH: _int64(width),
      IMAGE_FILENAME: _bytes(filename),
      IMAGE_FORMAT: _bytes(image_format),
      IMAGE_CENTER: _int64(np.trunc(center).astype(np.int64)),
      IMAGE_X: _float(body[:, 0]),
      IMAGE_Y: _float(body[:, 1]),
      IMAGE_VISIBILITY: _int64(body[:, 2].astype(np.int64)),
      # Row-major [3, 5]: the original layout (see the module docstring).
      IMAGE_FACE_PTS: _float(face.T),
      IMAGE_SCALE: _float(scale),
      IMAGE_DATASET: _bytes(dataset),
  }
  if gender:
    feature[META_GENDER] = _bytes(gender)
  if int(activity) != NO_ACTIVITY:
    feature[META_ACTIVITY] = _int64(int(activity))
  if pose is not None or joints3d is not None:
    is_3d = True
  if is_3d:
    has_smpl = pose is not None
    if has_smpl:
      if shape is None:
        raise ValueError('shape: required when pose is given')
      pose = _check_shape('pose', np.asarray(pose, np.float64), [POSE_DIM])
      shape = _check_shape('shape', np.asarray(shape, np.float64),
                           [SHAPE_DIM])
    else:
      pose = np.zeros([POSE_DIM])
      shape = np.zeros([SHAPE_DIM])
    has_joints3d = joints3d is not None
    if has_joints3d:
      joints3d = _check_shape('joints3d', np.asarray(joints3d, np.float64),
                              [NUM_LSP_JOINTS, 3])
    else:
      joints3d = np.zeros([NUM_LSP_JOINTS, 3])
    feature.update({
        MOSH_POSE: _float(pose),
        MOSH_SHAPE: _float(shape),
        MOSH_GT3D: _float(joints3d),
        META_HAS_3D: _int64(int(has_smpl)),
        META_HAS_3D_JOINTS: _int64(int(has_joints3d)),
    })
  return tf.train.Example(features=tf.train.Features(feature=feature))


def make_mocap_example(pose: ArrayLike, shape: ArrayLike) -> tf.train.Example:
  """Serialises one mocap example.

  Args:
    pose: [72] SMPL axis-angle pose.
    shape: [10] SMPL betas.

  Returns:
    A `tf.train.Example` with the original keys `pose` and `shape`.
  """
  pose = _check_shape('pose', np.asarray(pose, np.float64), [POSE_DIM])
  shape = _check_shape('shape', np.asarray(shape, np.float64), [SHAPE_DIM])
  return tf.train.Example(features=tf.train.Features(feature={
      MOCAP_POSE: _float(pose),
      MOCAP_SHAPE: _float(shape),
  }))
