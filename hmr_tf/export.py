"""Export of a trained HMRModel as a SavedModel for TensorFlow Serving.

Layout: `EXPORT_DIR/<version>/` (saved_model.pb + variables/), the versioned
layout TF Serving watches; it is written to a temporary folder beside it and
renamed when complete.

Signatures (batch size is dynamic in both):
  * `serving_default`: `image_bytes` string [B], encoded JPEG or PNG images
    of any size. Inside the graph each image is decoded, the whole image is
    centred in a square window of side max(H, W) and resized to S x S (the
    demo's no-box rule, the data parser's warp), and the crop is normalised
    to [-1, 1].
  * `predict_crops`: `images` float32 [B, S, S, 3] in [-1, 1], crops made
    by the caller.
Outputs: cam [B, 3] (s, tx, ty), pose [B, 72], shape [B, 10], theta
[B, 85] (the three together, the original's Θ), joints3d [B, 24, 3] (SMPL
joints, metres), keypoints3d [B, 19, 3] (the cocoplus keypoints, metres),
keypoints2d [B, 19, 2] (crop coordinates in [-1, 1]: s * (X + t), the
original's projection), vertices [B, N, 3] (unless
`include_vertices=False`); `serving_default` adds keypoints2d_image
[B, 19, 2] (pixels of each input image) and image_size [B, 2] (height,
width).

Bad input: a string that is not a JPEG or PNG fails an assertion naming the
signature and the expected formats, with the string's length and first
bytes in hex (InvalidArgumentError for the caller, an error response from
TF Serving); an empty batch fails an assertion saying so; a wrong rank or
size fails a run-time shape check naming the input and the expected shape
(InvalidArgumentError).

Permissions: the export folder gets the mode `os.makedirs` would give
(0777 & ~umask), so TF Serving under another account can read it.
"""

import os
import shutil
import tempfile

from absl import logging
import tensorflow as tf

from hmr_tf import atomic_io
from hmr_tf.data import parser

SIGNATURE_BYTES = 'serving_default'
SIGNATURE_CROPS = 'predict_crops'
INPUT_BYTES = 'image_bytes'
INPUT_CROPS = 'images'

_JPEG_MAGIC = b'\xff\xd8\xff'
_PNG_MAGIC = b'\x89PNG'


def _is_jpeg_or_png(data: tf.Tensor) -> tf.Tensor:
  return tf.logical_or(
      tf.equal(tf.strings.substr(data, 0, 3), _JPEG_MAGIC),
      tf.equal(tf.strings.substr(data, 0, 4), _PNG_MAGIC))


# '00' .. 'ff': error messages show bytes in hex, since a message with raw
# binary in it cannot be decoded as text by the client (UnicodeDecodeError).
_HEX = tuple(f'{i:02x}' for i in range(256))
_SHOWN_BYTES = 8


def _hex_head(data: tf.Tensor) -> tf.Tensor:
  """The first bytes of a string as hex text, e.g. '47 49 46 38'."""
  head = tf.io.decode_raw(tf.strings.substr(data, 0, _SHOWN_BYTES), tf.uint8)
  return tf.strings.reduce_join(
      tf.gather(tf.constant(_HEX), tf.cast(head, tf.int32)), separator=' ')


def _check_not_empty(batch: tf.Tensor, signature: str, name: str):
  """An assertion that the batch holds at least one example."""
  return tf.debugging.assert_positive(
      tf.shape(batch)[0],
      message=f'{signature}: {name} is an empty batch; expected at least one '
      'example')


def decode_and_crop(data: tf.Tensor, img_size: int):
  """One encoded image -> (crop [S, S, 3] in [-1, 1], center [2], window []).

  The window is the square of side max(H, W) centred on the image, so the
  whole image is seen (padded with its edge pixels on the short side).

  Args:
    data: tf.string [], a JPEG or PNG file's bytes.
    img_size: S.

  Returns:
    (float32 [S, S, 3] crop, float32 [2] window centre (x, y) in pixels,
    float32 [] window side in pixels, int32 [2] image (height, width)).
  """
  message = tf.strings.join([
      f'{SIGNATURE_BYTES}: {INPUT_BYTES} must hold JPEG or PNG file bytes; '
      'got a string that is neither (',
      tf.strings.as_string(tf.strings.length(data)),
      ' bytes; the first in hex: ', _hex_head(data), ')'])
  check = tf.debugging.Assert(_is_jpeg_or_png(data), [message])
  with tf.control_dependencies([check]):
    image = tf.io.decode_image(data, channels=3, expand_animations=False)
  shape = tf.shape(image)[:2]
  height = tf.cast(shape[0], tf.float32)
  width = tf.cast(shape[1], tf.float32)
  center = tf.stack([(width - 1.0) / 2.0, (height - 1.0) / 2.0])
  window = tf.maximum(height, width)
  crop = parser.warp_crop(tf.cast(image, tf.float32), center, window,
                          img_size)
  return crop / 127.5 - 1.0, center, window, shape


class _Exportable(tf.Module):
  """The model's inference graph with the two serving signatures."""

  def __init__(self, model, include_vertices: bool):
    super().__init__(name='hmr_export')
    # Only what inference uses is tracked (the discriminator stays out).
    self.encoder = model.encoder
    self.regressor = model.regressor
    self._model = model
    self._include_vertices = include_vertices
    size = model.config.img_size
    self.img_size = size
    self.predict_crops = tf.function(
        self._predict_crops,
        input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32,
                                       name=INPUT_CROPS)])
    self.serving_default = tf.function(
        self._serving_default,
        input_signature=[tf.TensorSpec([None], tf.string, name=INPUT_BYTES)])

  def _outputs(self, crops):
    out = self._model(crops, training=False)
    keys = ['cam', 'pose', 'shape', 'joints3d', 'keypoints3d', 'keypoints2d']
    if self._include_vertices:
      keys.append('vertices')
    outputs = {k: tf.identity(out[k], name=k) for k in keys}
    # Θ = [cam | pose | shape] of the last iteration, as the original's
    # RunModel returns it.
    outputs['theta'] = tf.identity(out['theta_stages'][:, -1], name='theta')
    return outputs

  # A loaded signature does not check its inputs' shapes: a wrong rank would
  # reach the convolutions and abort the process (oneDNN checks with a
  # CHECK). EnsureShape checks at run time and raises InvalidArgumentError
  # naming the input and the expected shape.

  def _predict_crops(self, images):
    size = self.img_size
    images = tf.ensure_shape(images, [None, size, size, 3], name=INPUT_CROPS)
    with tf.control_dependencies(
        [_check_not_empty(images, SIGNATURE_CROPS, INPUT_CROPS)]):
      images = tf.identity(images)
    return self._outputs(images)

  def _serving_default(self, image_bytes):
    size = self.img_size
    image_bytes = tf.ensure_shape(image_bytes, [None], name=INPUT_BYTES)
    with tf.control_dependencies(
        [_check_not_empty(image_bytes, SIGNATURE_BYTES, INPUT_BYTES)]):
      image_bytes = tf.identity(image_bytes)
    crops, centers, windows, shapes = tf.map_fn(
        lambda d: decode_and_crop(d, size), image_bytes,
        fn_output_signature=(tf.TensorSpec([size, size, 3], tf.float32),
                             tf.TensorSpec([2], tf.float32),
                             tf.TensorSpec([], tf.float32),
                             tf.TensorSpec([2], tf.int32)))
    out = self._outputs(crops)
    out['keypoints2d_image'] = tf.identity(
        centers[:, None, :] + out['keypoints2d'] * windows[:, None, None] / 2,
        name='keypoints2d_image')
    out['image_size'] = tf.identity(shapes, name='image_size')
    return out


def export_saved_model(model, export_dir: str, version: int = 1,
                       include_vertices: bool = True,
                       overwrite: bool = False) -> str:
  """Writes the SavedModel to `export_dir/<version>/`.

  Args:
    model: a (restored) HMRModel.
    export_dir: the model's base folder (TF Serving's `base_path`).
    version: the version number (a positive integer).
    include_vertices: include the [B, N, 3] mesh in the outputs.
    overwrite: replace an existing version folder.

  Returns:
    The version folder.

  Raises:
    ValueError: a bad version; FileExistsError: the version exists and
      overwrite is False.
  """
  if int(version) != version or version < 1:
    raise ValueError(f'version: expected a positive integer, got {version!r}')
  final = os.path.join(export_dir, str(int(version)))
  if os.path.exists(final) and not overwrite:
    raise FileExistsError(f'{final}: this export version exists already '
                          '(choose another version or overwrite)')
  os.makedirs(export_dir, exist_ok=True)
  module = _Exportable(model, include_vertices)
  tmp = tempfile.mkdtemp(dir=export_dir, prefix=f'.tmp_{int(version)}_')
  # mkdtemp makes a private (0700) folder: TF Serving under another account
  # could not read the export.
  atomic_io.make_public_dir(tmp)
  try:
    tf.saved_model.save(
        module, tmp,
        signatures={SIGNATURE_BYTES: module.serving_default,
                    SIGNATURE_CROPS: module.predict_crops})
    if os.path.exists(final):
      shutil.rmtree(final)
    os.replace(tmp, final)
  finally:
    shutil.rmtree(tmp, ignore_errors=True)
  logging.info('Exported the SavedModel to %s (signatures %s, %s; img_size '
               '%d; vertices %s).', final, SIGNATURE_BYTES, SIGNATURE_CROPS,
               model.config.img_size, 'included' if include_vertices else
               'left out')
  return final
