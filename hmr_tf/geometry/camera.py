"""Weak-perspective camera: 3D points to normalised 2D crop coordinates.

HMR's camera has three numbers, cam = [s, tx, ty]: a scale and a 2D
translation. It looks straight down the z axis (no rotation; the global body
rotation lives in the pose) and ignores depth:

  x_2d = s * (X_x + tx)
  y_2d = s * (X_y + ty)

Note the translation is added *before* scaling (the original code's
convention), so (tx, ty) are in metres of the body's frame and s converts
metres into crop units. The output is in the crop's normalised coordinates,
where -1 is the left/top edge and +1 the right/bottom edge of the S x S crop
(hmr_tf.geometry.crop): (x_2d + 1) / 2 * S pixels from the crop's left edge,
the pixel-centre coordinate (x_2d + 1) / 2 * S - 0.5 (crop.crop_to_pixels).

Worked example: a point X = (0.5, -0.2, 3.0) metres, cam = (0.9, 0.1, 0.0):
  x_2d = 0.9 * (0.5 + 0.1) = 0.54,  y_2d = 0.9 * (-0.2 + 0.0) = -0.18;
  the depth 3.0 plays no part. In a 224-pixel crop this is
  ((0.54 + 1) / 2 * 224, (-0.18 + 1) / 2 * 224) = (172.48, 91.84) pixels
  from the crop's top-left corner, i.e. inside pixel (column 172, row 91),
  whose centre is (172, 91).

The full-image camera (`full_image_translation`) has a NumPy twin
(`full_image_translation_np`, float64), as `default_focal_length` has.
"""

import numpy as np
import tensorflow as tf

from hmr_tf.geometry import crop as crop_lib


def project(points: tf.Tensor, cam: tf.Tensor) -> tf.Tensor:
  """Projects 3D points with a weak-perspective camera.

  Args:
    points: [B, K, 3] points in the body's frame.
    cam: [B, 3] cameras (s, tx, ty).

  Returns:
    [B, K, 2] points in normalised crop coordinates.
  """
  points = tf.convert_to_tensor(points)
  cam = tf.cast(cam, points.dtype)
  scale = cam[:, None, 0:1]  # [B, 1, 1]
  trans = cam[:, None, 1:3]  # [B, 1, 2]
  return scale * (points[..., :2] + trans)


def default_focal_length(image_size) -> tf.Tensor:
  """The full-image camera's default focal length: the image diagonal, px.

  Args:
    image_size: [..., 2] (height, width) in pixels.

  Returns:
    [...] sqrt(height² + width²): a ~53° diagonal field of view, a usual
    guess for photographs of unknown cameras (later HMR systems use it).
  """
  image_size = tf.cast(image_size, tf.float32)
  return tf.norm(image_size, axis=-1)


def default_focal_length_np(image_size) -> np.ndarray:
  """NumPy twin of `default_focal_length` (float64; [] for one image)."""
  image_size = np.asarray(image_size, np.float64)
  return np.hypot(image_size[..., 0], image_size[..., 1])


def full_image_translation(cam, box_center, box_size, image_size,
                           focal_length) -> tf.Tensor:
  """The body's translation in a perspective camera of the whole image.

  The weak-perspective camera (s, tx, ty) is relative to the crop: a point
  X of the body lands at image pixel box_center + (box_size / 2) * s *
  (X_xy + t). A pinhole camera of the whole image (focal length f pixels,
  principal point at the image centre c = ((W - 1) / 2, (H - 1) / 2) in
  pixel-centre coordinates, crop.image_center) that images the body moved
  by T = (TX, TY, TZ) puts X at c + f * (X_xy + T_xy) / (X_z + TZ). For a
  body far from the camera (X_z << TZ) the two agree when
    TZ = 2 f / (box_size * s),
    T_xy = t + 2 (box_center - c) / (box_size * s).

  Args:
    cam: [B, 3] (s, tx, ty).
    box_center: [B, 2] (x, y) crop-window centre in image pixels.
    box_size: [B] crop-window side in image pixels.
    image_size: [B, 2] (height, width) in pixels.
    focal_length: [B] focal length in pixels (see default_focal_length).

  Returns:
    [B, 3] (TX, TY, TZ) in the body's units (metres). A non-positive scale
    s is clamped to 1e-6 (the body then lies far away instead of behind the
    camera).
  """
  cam = tf.cast(cam, tf.float32)
  s = tf.maximum(cam[:, 0], 1e-6)
  half_scale = tf.cast(box_size, tf.float32) * s / 2.0  # px per metre
  size = tf.cast(image_size, tf.float32)
  principal = tf.stack(crop_lib.image_center(size[:, 0], size[:, 1]),
                       axis=-1)
  offset = (tf.cast(box_center, tf.float32) - principal) / half_scale[:, None]
  tz = tf.cast(focal_length, tf.float32) / half_scale
  return tf.concat([cam[:, 1:3] + offset, tz[:, None]], axis=-1)


def full_image_translation_np(cam, box_center, box_size, image_size,
                              focal_length) -> np.ndarray:
  """NumPy twin of `full_image_translation` (float64).

  Args:
    cam: [..., 3] (s, tx, ty).
    box_center: [..., 2] (x, y) crop-window centre in image pixels.
    box_size: [...] crop-window side in image pixels.
    image_size: [..., 2] (height, width) in pixels.
    focal_length: [...] focal length in pixels.

  Returns:
    [..., 3] (TX, TY, TZ), s clamped to 1e-6 as there.
  """
  cam = np.asarray(cam, np.float64)
  # s <= 0 would put the body behind the camera.
  s = np.maximum(cam[..., 0], 1e-6)
  half_scale = np.asarray(box_size, np.float64) * s / 2.0  # px per metre
  size = np.asarray(image_size, np.float64)
  principal = np.stack(crop_lib.image_center(size[..., 0], size[..., 1]),
                       axis=-1)
  offset = ((np.asarray(box_center, np.float64) - principal) /
            half_scale[..., None])
  tz = np.asarray(focal_length, np.float64) / half_scale
  return np.concatenate([cam[..., 1:3] + offset, tz[..., None]], axis=-1)
