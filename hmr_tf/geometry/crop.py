"""The crop: HMR's person window, its warp, and its coordinates.

One home for the crop geometry of training (the data parser), inference
(the demo, the SavedModel) and the pictures (TensorBoard panels, renders).
TF functions have plain names; their NumPy twins (float64, OpenCV for the
warp) end in `_np` and give the same numbers.

Pixel convention (the only one used):

  * Pixels, of an image and of a crop alike, have integer coordinates at
    their centres: pixel (row r, column c) is the point (x, y) = (c, r),
    OpenCV's convention and `hmr_tf.render.renderer`'s. A W x H image
    spans [-0.5, W - 0.5] x [-0.5, H - 0.5]; its centre is
    ((W - 1) / 2, (H - 1) / 2). Stored keypoints and record centres are in
    this convention; a box's (x, y, w, h) are continuous edges, so its
    centre is (x + w / 2 - 0.5, y + h / 2 - 0.5).
  * The crop window is a square of side `window = base_crop_size / scale`
    image pixels around `center` (HMR's normalisation: at scale 1 a person
    is ~150 px tall in a 224-px window).
  * Crop coordinates x_n in [-1, 1] (the network's keypoints2d, the weak
    perspective camera's output): an image point p has
    x_n = (p - center) * 2 / window, so `center` is 0 and -1, +1 are the
    window's outer EDGES (not pixel centres). In an S-pixel crop the pixel
    u is centred at x_n = 2 (u + 0.5) / S - 1, i.e.

      crop pixel  = (x_n + 1) * S / 2 - 0.5,
      image pixel = center + x_n * window / 2.

    The crop grid is symmetric about `center`, so mirroring the crop's
    columns is exactly x_n -> -x_n (the training flip).

Why this convention: training's labels. The parser maps a stored keypoint
to (p - center) * 2 / window, as the original HMR did (src/data_loader.py:
2 * (p - start) / S - 1 on the scaled image, start = center - S / 2), and
samples crop pixel u at x_n = 2 (u + 0.5) / S - 1, so what the network
learns is the mapping above. (The original cut its crop at an integer
start, so its crop pixel u was centred at x_n = 2u / S - 1, half a crop
pixel off ours; its demo mapped back with (x_n + 1) * S / 2, consistent
with its own crops but not with ours. The TensorBoard panels here used
that formula and drew everything half a pixel right of and below the
person.)
"""

from __future__ import annotations  # annotations name tf without importing it

import importlib
from typing import Tuple

import cv2
import numpy as np


class _TensorFlowOnUse:
  """`tensorflow`, imported on the first attribute read.

  The NumPy twins serve the mesh renderer inside the synthetic data's worker
  processes, which must not pay seconds and hundreds of MB for TensorFlow.
  """

  def __getattr__(self, name):
    return getattr(importlib.import_module('tensorflow'), name)


tf = _TensorFlowOnUse()

BASE_CROP_SIZE = 224.0  # The window side at scale 1 (HMR's crop).
PERSON_HEIGHT_PX = 150.0  # A person's height in a BASE_CROP_SIZE window.


# ---------------------------------------------------------------------------
# The window. Plain arithmetic: floats, NumPy arrays and tensors alike.


def window_side(scale, base_crop_size=BASE_CROP_SIZE):
  """The window side in image pixels: base_crop_size / scale.

  Args:
    scale: [...] HMR's scale (a record's `scale`, a demo crop's), > 0.
    base_crop_size: the model's crop rule (ModelConfig.base_crop_size).

  Returns:
    [...] the window side, in the type of the arguments.
  """
  return base_crop_size / scale


def image_center(height, width) -> Tuple:
  """(x, y) of an image's centre in pixel-centre coordinates.

  Args:
    height: [...] image height in pixels.
    width: [...] image width in pixels.

  Returns:
    ((width - 1) / 2, (height - 1) / 2), each [...].
  """
  return (width - 1.0) / 2.0, (height - 1.0) / 2.0


def box_center(x, y, w, h) -> Tuple:
  """(x, y) of a box's centre in pixel-centre coordinates.

  Args:
    x, y: [...] the box's left and top edges (continuous coordinates).
    w, h: [...] its width and height.

  Returns:
    (x + w / 2 - 0.5, y + h / 2 - 0.5), each [...].
  """
  return x + w / 2.0 - 0.5, y + h / 2.0 - 0.5


def _pixel_grid(center, window, size: int):
  """(step, origin): crop pixel u samples the image at origin + u * step.

  origin = crop_to_image(pixels_to_crop(0)) = center + (0.5 - S / 2) * step:
  the image point under crop pixel 0's centre; step = window / S image
  pixels per crop pixel.
  """
  step = window / size
  return step, center + (0.5 - size / 2.0) * step


# ---------------------------------------------------------------------------
# Coordinates, TF. Points [..., K, 2]; center [..., 2]; window [...].


def image_to_crop(points, center, window) -> tf.Tensor:
  """Image pixels -> crop coordinates: (p - center) * 2 / window.

  Args:
    points: [..., K, 2] (x, y) image pixels.
    center: [..., 2] window centre, image pixels.
    window: [...] window side, image pixels.

  Returns:
    [..., K, 2] crop coordinates (the window's edges at +-1).
  """
  points = tf.convert_to_tensor(points)
  center = tf.cast(center, points.dtype)
  window = tf.cast(window, points.dtype)
  return (points - center[..., None, :]) * (2.0 / window[..., None, None])


def crop_to_image(points, center, window) -> tf.Tensor:
  """Crop coordinates -> image pixels: center + x_n * window / 2.

  Args:
    points: [..., K, 2] crop coordinates.
    center: [..., 2] window centre, image pixels.
    window: [...] window side, image pixels.

  Returns:
    [..., K, 2] image pixels.
  """
  points = tf.convert_to_tensor(points)
  center = tf.cast(center, points.dtype)
  window = tf.cast(window, points.dtype)
  return center[..., None, :] + points * window[..., None, None] / 2


def crop_to_pixels(points, size) -> tf.Tensor:
  """Crop coordinates -> pixels of the S-pixel crop: (x_n + 1) S / 2 - 0.5.

  Args:
    points: [..., 2] crop coordinates.
    size: S, a scalar or (width, height).

  Returns:
    [..., 2] crop pixels (pixel-centre coordinates).
  """
  points = tf.convert_to_tensor(points)
  size = tf.cast(size, points.dtype)
  return (points + 1.0) * size / 2.0 - 0.5


def pixels_to_crop(pixels, size) -> tf.Tensor:
  """Crop pixels -> crop coordinates: 2 (u + 0.5) / S - 1.

  Args:
    pixels: [..., 2] pixels of the S-pixel crop.
    size: S, a scalar or (width, height).

  Returns:
    [..., 2] crop coordinates.
  """
  pixels = tf.convert_to_tensor(pixels)
  size = tf.cast(size, pixels.dtype)
  return (pixels + 0.5) * 2.0 / size - 1.0


# ---------------------------------------------------------------------------
# Coordinates, NumPy twins (float64).


def image_to_crop_np(points, center, window) -> np.ndarray:
  """NumPy twin of `image_to_crop`."""
  points = np.asarray(points, np.float64)
  center = np.asarray(center, np.float64)
  window = np.asarray(window, np.float64)
  return (points - center[..., None, :]) * (2.0 / window[..., None, None])


def crop_to_image_np(points, center, window) -> np.ndarray:
  """NumPy twin of `crop_to_image`."""
  points = np.asarray(points, np.float64)
  center = np.asarray(center, np.float64)
  window = np.asarray(window, np.float64)
  return center[..., None, :] + points * window[..., None, None] / 2


def crop_to_pixels_np(points, size) -> np.ndarray:
  """NumPy twin of `crop_to_pixels`."""
  points = np.asarray(points, np.float64)
  return (points + 1.0) * np.asarray(size, np.float64) / 2.0 - 0.5


def pixels_to_crop_np(pixels, size) -> np.ndarray:
  """NumPy twin of `pixels_to_crop`."""
  pixels = np.asarray(pixels, np.float64)
  return (pixels + 0.5) * 2.0 / np.asarray(size, np.float64) - 1.0


# ---------------------------------------------------------------------------
# The warp.


def warp(image, center, window, size: int) -> tf.Tensor:
  """Crops the window and resizes it to S x S with one bilinear warp.

  Crop pixel u samples the image at crop_to_image(pixels_to_crop(u)) (the
  module's convention); outside the image the edge pixels repeat, as the
  original's edge padding did.

  Args:
    image: [H, W, 3] any real type (pixel values are kept, as float32).
    center: float32 [2], window centre (x, y) in image pixels.
    window: float32 [] window side in image pixels, or [2] its (x, y)
      sides (the training augmentation's per-axis factors).
    size: S.

  Returns:
    float32 [S, S, 3].
  """
  image = tf.cast(image, tf.float32)
  center = tf.cast(center, tf.float32)
  window = tf.cast(window, tf.float32)
  step, origin = _pixel_grid(center, window, size)
  step = tf.broadcast_to(step, [2])
  zero = tf.zeros_like(step[0])
  # ImageProjectiveTransformV3: output (u, v) samples (a0 u + a2, b1 v + b2).
  transform = tf.stack([step[0], zero, origin[0], zero, step[1], origin[1],
                        zero, zero])
  crop = tf.raw_ops.ImageProjectiveTransformV3(
      images=image[tf.newaxis],
      transforms=transform[tf.newaxis],
      output_shape=tf.constant([size, size], tf.int32),
      fill_value=tf.constant(0.0, tf.float32),
      interpolation='BILINEAR',
      fill_mode='NEAREST')
  return tf.ensure_shape(crop[0], [size, size, 3])


def warp_np(image: np.ndarray, center, window, size: int) -> np.ndarray:
  """NumPy/OpenCV twin of `warp`: float32 [S, S, C], pixel values kept."""
  step, origin = _pixel_grid(np.asarray(center, np.float64),
                             np.asarray(window, np.float64), size)
  step = np.broadcast_to(step, [2])
  affine = np.array([[step[0], 0.0, origin[0]], [0.0, step[1], origin[1]]])
  return cv2.warpAffine(np.asarray(image, np.float32), affine, (size, size),
                        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                        borderMode=cv2.BORDER_REPLICATE)
