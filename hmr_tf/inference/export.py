"""Export of a trained HMRModel as a SavedModel for TensorFlow Serving.

Layout: `EXPORT_DIR/<version>/` (saved_model.pb + variables/), the versioned
layout TF Serving watches; it is written to a temporary folder beside it and
renamed when complete.

Signatures (batch size is dynamic in all):
  * `serving_default`: `image_bytes` string [B], encoded JPEG or PNG images
    of any size. Inside the graph each image is decoded, the whole image is
    centred in a square window of side max(H, W) * base_crop_size / 224
    and resized to S x S (the demo's no-box rule with the model's crop
    rule, the data parser's warp), and the crop is normalised to [-1, 1].
  * `predict_boxes`: `image_bytes` string [B] and `boxes` float32 [B, 4],
    one person box [x, y, w, h] (left and top edges, width, height, in the
    image's pixels) per image (repeat an image for several people): the
    demo's box rule, cropped in the graph.
  * `predict_crops`: `images` float32 [B, S, S, 3] in [-1, 1], crops made
    by the caller.
The crop rule (img_size S, base_crop_size) is the model's own
(ModelConfig, model_config.json), so served people are cropped at the size
the model was trained on.
Outputs: cam [B, 3] (s, tx, ty), pose [B, 72], shape [B, 10], theta
[B, 85] (the three together, the original's Θ), joints3d [B, 24, 3] (SMPL
joints, metres), keypoints3d [B, 19, 3] (the cocoplus keypoints, metres),
keypoints2d [B, 19, 2] (crop coordinates in [-1, 1]: s * (X + t), the
original's projection), vertices [B, N, 3] (unless
`include_vertices=False`); `serving_default` and `predict_boxes` add
keypoints2d_image [B, 19, 2] (pixels of each input image), image_size
[B, 2] (height, width), focal_length [B] (the image diagonal, pixels) and
cam_t_full [B, 3]: the body's translation in a pinhole camera of the whole
image with that focal length and the principal point at the image centre
(hmr_tf.geometry.camera.full_image_translation; for another focal length f',
scale its Z by f' / focal_length).

The SavedModel's variables are the encoder's, the regressor's and Θ_0,
nothing else. The SMPL arrays are graph constants: an export made with the
licensed SMPL file contains them.

Precision (`precision`, see PRECISIONS): 'float32' (the default), or
'bfloat16' / 'float16' (GPUs): the encoder computes in the reduced type (its
layers traced under Keras' mixed_bfloat16 / mixed_float16 policy, as
training's mixed precision builds them, reading the same float32
variables); its features are cast to float32, and the regressor, Θ, SMPL,
the projection and every output stay float32 (a float32 regressor lets XLA
compile the head as in a float32 export: XLA's bfloat16 dense layers ran that
export at 0.68x). `jit_compile` (see JIT_COMPILE) compiles with XLA 'head':
everything after the encoder (IEF, SMPL, the projection: many small ops), or
'all': the whole model (never the image decoding), or 'auto' (the default):
the whole model in float32 for batches of up to AUTO_XLA_MAX_BATCH crops and
the compiled head after oneDNN's encoder (in the export's precision) for
larger ones. So a reduced-precision export with 'auto' computes small
batches in float32: on the CPUs measured the bare encoder gained nothing
from bfloat16 at batch 1 (0.97-1.06x, within the noise) while XLA's float32
graph ran 1.14-1.28x (issue 26); choose 'head' to have every batch in the
reduced type. The batch stays dynamic and XLA compiles once for each batch
size it meets (the first call of a new size is slow). The choices are
recorded in `assets.extra/export_info.json` and in a third signature,
`export_info` (no inputs; outputs precision, jit_compile and img_size as
strings, and compute_dtype, a zero of the precision's type, whose dtype
`saved_model_cli show` prints).

Bad input: a string that is not a JPEG or PNG fails an assertion naming the
signature and the expected formats, with the string's length and first
bytes in hex (InvalidArgumentError for the caller, an error response from
TF Serving); an empty batch fails an assertion saying so; a wrong rank or
size fails a run-time shape check naming the input and the expected shape
(InvalidArgumentError).

Permissions: the export folder gets the mode `os.makedirs` would give
(0777 & ~umask), so TF Serving under another account can read it.
"""

import contextlib
import json
import os

from absl import logging
import keras
import tensorflow as tf

from hmr_tf import configs
from hmr_tf.files import atomic_io
from hmr_tf.geometry import camera
from hmr_tf.geometry import crop as crop_lib
from hmr_tf.inference import cpu_features
from hmr_tf.modeling import hmr_model

SIGNATURE_BYTES = 'serving_default'
SIGNATURE_CROPS = 'predict_crops'
SIGNATURE_BOXES = 'predict_boxes'
SIGNATURE_INFO = 'export_info'
INFO_FILENAME = 'export_info.json'
INPUT_BYTES = 'image_bytes'
INPUT_CROPS = 'images'
INPUT_BOXES = 'boxes'

_JPEG_MAGIC = b'\xff\xd8\xff'
_PNG_MAGIC = b'\x89PNG'

# Export precision -> the Keras policy the model is built under.
PRECISIONS = configs.EXPORT_PRECISIONS
# What XLA compiles: the whole model for small batches and the head for
# large ones, nothing, everything after the encoder, the whole model.
JIT_COMPILE = configs.EXPORT_JIT_COMPILE
AUTO_XLA_MAX_BATCH = configs.EXPORT_AUTO_XLA_MAX_BATCH
# The default settings (configs.ExportConfig, i.e. the --export_* flags').
DEFAULT_PRECISION = configs.ExportConfig.precision
DEFAULT_JIT_COMPILE = configs.ExportConfig.jit_compile
_POLICIES = {'float32': 'float32', 'bfloat16': 'mixed_bfloat16',
             'float16': 'mixed_float16'}


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


def _decode(data: tf.Tensor, signature: str) -> tf.Tensor:
  """A JPEG or PNG file's bytes -> uint8 [H, W, 3]; an assertion otherwise."""
  message = tf.strings.join([
      f'{signature}: {INPUT_BYTES} must hold JPEG or PNG file bytes; '
      'got a string that is neither (',
      tf.strings.as_string(tf.strings.length(data)),
      ' bytes; the first in hex: ', _hex_head(data), ')'])
  check = tf.debugging.Assert(_is_jpeg_or_png(data), [message])
  with tf.control_dependencies([check]):
    return tf.io.decode_image(data, channels=3, expand_animations=False)


def decode_and_crop(data: tf.Tensor, img_size: int,
                    base_crop_size: float = crop_lib.BASE_CROP_SIZE):
  """One encoded image -> (crop [S, S, 3] in [-1, 1], center [2], window []).

  The original demo's no-box rule: the image's longer side is taken as 224
  px at HMR's normalisation, so the window is the square of side
  max(H, W) * base_crop_size / 224 centred on the image (the whole image
  for the paper's crop rule; padded with its edge pixels where it sticks
  out).

  Args:
    data: tf.string [], a JPEG or PNG file's bytes.
    img_size: S.
    base_crop_size: the model's crop rule (ModelConfig.base_crop_size).

  Returns:
    (float32 [S, S, 3] crop, float32 [2] window centre (x, y) in pixels,
    float32 [] window side in pixels, int32 [2] image (height, width)).
  """
  image = _decode(data, SIGNATURE_BYTES)
  shape = tf.shape(image)[:2]
  height = tf.cast(shape[0], tf.float32)
  width = tf.cast(shape[1], tf.float32)
  center = tf.stack(crop_lib.image_center(height, width))
  scale = crop_lib.BASE_CROP_SIZE / tf.maximum(height, width)
  window = crop_lib.window_side(scale, base_crop_size)
  crop = crop_lib.warp(image, center, window, img_size) / 127.5 - 1.0
  return crop, center, window, shape


def decode_and_crop_box(data: tf.Tensor, box: tf.Tensor, img_size: int,
                        base_crop_size: float = crop_lib.BASE_CROP_SIZE):
  """One encoded image and a person box -> as `decode_and_crop`.

  The demo's box rule (hmr_tf.inference.crops.crop_from_bbox): the box
  [x, y, w, h] (left and top edges, width, height in pixels) is scaled so
  that its longer side is 150 px at HMR's normalisation; the window,
  centred on the box, is base_crop_size / (150 / max(w, h)) pixels
  (hmr_tf.geometry.crop).

  Raises (at run time, InvalidArgumentError naming `boxes`): a box with a
  non-positive side or one that lies outside the image.
  """
  image = _decode(data, SIGNATURE_BOXES)
  shape = tf.shape(image)[:2]
  size = tf.cast(shape, tf.float32)
  x, y, w, h = tf.unstack(tf.cast(box, tf.float32))
  positive = tf.logical_and(w > 0, h > 0)
  inside = tf.reduce_all(tf.stack([x < size[1], y < size[0], x + w > 0,
                                   y + h > 0]))
  checks = [
      tf.debugging.Assert(positive, [
          f'{SIGNATURE_BOXES}: {INPUT_BOXES} [x, y, w, h] must have w > 0 '
          'and h > 0; got', box]),
      tf.debugging.Assert(inside, [
          f'{SIGNATURE_BOXES}: {INPUT_BOXES} [x, y, w, h] lies outside its '
          'image (height, width):', box, shape])]
  with tf.control_dependencies(checks):
    # Edges -> pixel-centre coordinates, as the demo.
    center = tf.stack(crop_lib.box_center(x, y, w, h))
    scale = crop_lib.PERSON_HEIGHT_PX / tf.maximum(w, h)
    window = crop_lib.window_side(scale, base_crop_size)
  crop = crop_lib.warp(image, center, window, img_size) / 127.5 - 1.0
  return crop, center, window, shape


@contextlib.contextmanager
def _global_policy(name: str):
  """Sets Keras' global dtype policy for the block, then restores it."""
  previous = keras.mixed_precision.global_policy()
  keras.mixed_precision.set_global_policy(name)
  try:
    yield
  finally:
    keras.mixed_precision.set_global_policy(previous)


def model_in_precision(model, precision: str):
  """The model computing in `precision` ('float32', 'bfloat16', 'float16').

  Returns `model` itself when its encoder already computes in that type;
  otherwise an HMRModel rebuilt under the matching Keras policy (float32,
  mixed_bfloat16, mixed_float16) with the same body model and config and
  the encoder's and regressor's weights (Θ_0 included) copied in. The
  variables are float32 under every policy, so the copy is exact; the
  discriminator is not copied (inference does not use it).

  Args:
    model: an HMRModel.
    precision: one of PRECISIONS.

  Returns:
    `model` or its copy in `precision`; Keras' global policy is left as it
    was.

  Raises:
    ValueError: an unknown precision, or weights that do not line up.
  """
  configs.check_choice('precision', precision, PRECISIONS)
  if model.encoder.dtype_policy.compute_dtype == precision:
    return model
  with _global_policy(_POLICIES[precision]):
    copy = hmr_model.HMRModel(model.smpl.body_model,
                              model.regressor.theta0.numpy()[0],
                              model.config)
  for part in ('encoder', 'regressor'):
    source = getattr(model, part).weights
    target = getattr(copy, part).weights
    if len(source) != len(target):
      raise ValueError(f'{part}: {len(source)} weights in the model but '
                       f'{len(target)} in its {precision} copy')
    for src, dst in zip(source, target):
      if src.path != dst.path or src.shape != dst.shape:
        raise ValueError(f'{part}: weight {src.path} {src.shape} does not '
                         f'match {dst.path} {dst.shape} of the copy')
      dst.assign(src)
  return copy


@contextlib.contextmanager
def _computing_in(layer, policy: str):
  """Traces `layer` (and what it holds) under Keras policy `policy`.

  Keras reads a layer's compute type when it is called, so a float32 layer
  called in this block computes as one built under a mixed policy would,
  casting the same float32 variables to the compute type as it reads them.
  Used at trace time: the graph keeps the reduced type; the layers get
  their own policies back on leaving the block.
  """
  # Keras' own walk (as modeling.prebuilt uses it): the layer, and every
  # layer nested in it, held in `layers` or as an attribute.
  layers = list(layer._flatten_layers())  # pylint: disable=protected-access
  previous = [sub.dtype_policy for sub in layers]
  try:
    for sub in layers:
      sub.dtype_policy = policy
    yield
  finally:
    for sub, old in zip(layers, previous):
      sub.dtype_policy = old


class _Exportable(tf.Module):
  """The model's inference graph with the two serving signatures."""

  def __init__(self, model, include_vertices: bool,
               precision: str = 'float32', jit_compile: str = 'none'):
    super().__init__(name='hmr_export')
    configs.check_choice('precision', precision, PRECISIONS)
    # One float32 model; a reduced precision is a way of tracing its encoder
    # (_encode), so the SavedModel holds one copy of the weights whatever
    # graphs it holds.
    model = model_in_precision(model, 'float32')
    # Only what inference runs is tracked, so the SavedModel holds the
    # encoder, the regressor and Θ_0 and nothing else (the discriminator,
    # the metrics and any optimizer state stay out); the model itself is
    # held untracked.
    self.encoder = model.encoder
    self.regressor = model.regressor
    self._held = _Untracked(model)
    self._include_vertices = include_vertices
    size = model.config.img_size
    self.img_size = size
    self.base_crop_size = float(model.config.base_crop_size)
    configs.check_choice('jit_compile', jit_compile, JIT_COMPILE)
    self.info = {'precision': precision, 'jit_compile': jit_compile,
                 'img_size': size}
    self._policy = _POLICIES[precision]
    # The model part, compiled with XLA when asked (decoding cannot be):
    # 'all' the whole model, 'head' everything after the encoder (IEF, SMPL:
    # many small ops), leaving the encoder's convolutions to oneDNN; 'auto'
    # holds both and picks by batch size at run time (_outputs).
    self._jit_compile = jit_compile
    self._head_fn = tf.function(self._head,
                                jit_compile=jit_compile != 'none')
    self._model_fn = tf.function(self._model_outputs,
                                 jit_compile=jit_compile == 'all')
    if jit_compile == 'auto':
      self._whole_fn = tf.function(self._float32_outputs, jit_compile=True)
    self.export_info = tf.function(self._export_info, input_signature=[])
    self.predict_crops = tf.function(
        self._predict_crops,
        input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32,
                                       name=INPUT_CROPS)])
    self.serving_default = tf.function(
        self._serving_default,
        input_signature=[tf.TensorSpec([None], tf.string, name=INPUT_BYTES)])
    self.predict_boxes = tf.function(
        self._predict_boxes,
        input_signature=[tf.TensorSpec([None], tf.string, name=INPUT_BYTES),
                         tf.TensorSpec([None, 4], tf.float32,
                                       name=INPUT_BOXES)])

  def _export_info(self):
    info = {k: tf.constant(str(v), name=k) for k, v in self.info.items()}
    # A zero of the compute type: `saved_model_cli show` prints output
    # dtypes (not values), so this is where it shows the precision.
    info['compute_dtype'] = tf.zeros([], self.info['precision'],
                                     name='compute_dtype')
    return info

  def _head(self, features):
    out = self._held.value.head(features, training=False,
                           with_mesh=self._include_vertices)
    keys = ['cam', 'pose', 'shape', 'joints3d', 'keypoints3d', 'keypoints2d',
            'theta_stages'] + (['vertices'] if self._include_vertices else [])
    return {k: out[k] for k in keys}

  def _encode(self, crops):
    """φ [B, F] float32, the encoder computing in the export's precision."""
    encoder = self._held.value.encoder
    if self._policy == 'float32':
      return encoder(crops, training=False)
    with _computing_in(encoder, self._policy):
      features = encoder(crops, training=False)
    return tf.cast(features, tf.float32)

  def _model_outputs(self, crops):
    return self._head_fn(self._encode(crops))

  def _float32_outputs(self, crops):
    return self._head_fn(self._held.value.encoder(crops, training=False))

  def _outputs(self, crops):
    if self._jit_compile == 'auto':
      # Small batches: XLA's whole-model graph (float32) beat oneDNN's
      # encoder on every CPU measured, and bfloat16 gained nothing there;
      # from about 16 crops on, oneDNN's convolutions win or tie
      # (configs.EXPORT_AUTO_XLA_MAX_BATCH).
      out = tf.cond(tf.shape(crops)[0] <= AUTO_XLA_MAX_BATCH,
                    lambda: self._whole_fn(crops),
                    lambda: self._model_fn(crops))
    else:
      out = self._model_fn(crops)
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

  def _image_outputs(self, crops, centers, windows, shapes):
    """The outputs plus the image-space ones of crops cut from images."""
    out = self._outputs(crops)
    out['keypoints2d_image'] = tf.identity(
        crop_lib.crop_to_image(out['keypoints2d'], centers, windows),
        name='keypoints2d_image')
    out['image_size'] = tf.identity(shapes, name='image_size')
    focal = camera.default_focal_length(shapes)
    out['focal_length'] = tf.identity(focal, name='focal_length')
    out['cam_t_full'] = tf.identity(
        camera.full_image_translation(out['cam'], centers, windows, shapes,
                                      focal), name='cam_t_full')
    return out

  def _crop_specs(self):
    size = self.img_size
    return (tf.TensorSpec([size, size, 3], tf.float32),
            tf.TensorSpec([2], tf.float32), tf.TensorSpec([], tf.float32),
            tf.TensorSpec([2], tf.int32))

  def _serving_default(self, image_bytes):
    size = self.img_size
    image_bytes = tf.ensure_shape(image_bytes, [None], name=INPUT_BYTES)
    with tf.control_dependencies(
        [_check_not_empty(image_bytes, SIGNATURE_BYTES, INPUT_BYTES)]):
      image_bytes = tf.identity(image_bytes)
    crops, centers, windows, shapes = tf.map_fn(
        lambda d: decode_and_crop(d, size, self.base_crop_size), image_bytes,
        fn_output_signature=self._crop_specs())
    return self._image_outputs(crops, centers, windows, shapes)

  def _predict_boxes(self, image_bytes, boxes):
    size = self.img_size
    image_bytes = tf.ensure_shape(image_bytes, [None], name=INPUT_BYTES)
    boxes = tf.ensure_shape(boxes, [None, 4], name=INPUT_BOXES)
    same = tf.debugging.assert_equal(
        tf.shape(image_bytes)[0], tf.shape(boxes)[0],
        message=f'{SIGNATURE_BOXES}: {INPUT_BYTES} and {INPUT_BOXES} must '
        'have one entry per person (the same batch size)')
    with tf.control_dependencies(
        [same, _check_not_empty(image_bytes, SIGNATURE_BOXES, INPUT_BYTES)]):
      image_bytes = tf.identity(image_bytes)
    crops, centers, windows, shapes = tf.map_fn(
        lambda args: decode_and_crop_box(args[0], args[1], size,
                                         self.base_crop_size),
        (image_bytes, boxes), fn_output_signature=self._crop_specs())
    return self._image_outputs(crops, centers, windows, shapes)


def crop_function(model, include_vertices: bool = True):
  """The `predict_crops` computation, without its input checks.

  What the SavedModel's `predict_crops` signature runs on [B, S, S, 3] crops
  in [-1, 1] (float32, no XLA), for converters that take a function
  (hmr_tf.inference.tflite_export): the same graph, minus the EnsureShape
  and Assert ops, which LiteRT has no kernels for.

  Args:
    model: an HMRModel.
    include_vertices: include `vertices` [B, N, 3] in the outputs.

  Returns:
    A tf.function with the input signature images: float32 [None, S, S, 3],
    returning the signature's outputs (cam, pose, shape, theta, joints3d,
    keypoints3d, keypoints2d and, if asked, vertices).
  """
  module = _Exportable(model, include_vertices)
  size = module.img_size
  return tf.function(
      module._outputs,  # pylint: disable=protected-access
      input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32,
                                     name=INPUT_CROPS)])


class _Untracked:
  """Holds an object outside tf.Module's dependency tracking."""

  def __init__(self, value):
    self.value = value


def export_saved_model(model, export_dir: str, version: int = 1,
                       include_vertices: bool = True,
                       overwrite: bool = False,
                       precision: str = DEFAULT_PRECISION,
                       jit_compile: str = DEFAULT_JIT_COMPILE) -> str:
  """Writes the SavedModel to `export_dir/<version>/`.

  Args:
    model: a (restored) HMRModel.
    export_dir: the model's base folder (TF Serving's `base_path`).
    version: the version number (a positive integer).
    include_vertices: include the [B, N, 3] mesh in the outputs.
    overwrite: replace an existing version folder.
    precision: 'float32', 'bfloat16' or 'float16' (GPUs): what the encoder
      computes in (see the module docstring); the regressor, SMPL and the
      outputs are float32 in every case.
    jit_compile: what XLA compiles (JIT_COMPILE): 'auto' (the whole model
      for batches of up to AUTO_XLA_MAX_BATCH crops, the head above),
      'none', 'head' (IEF, SMPL and the projection, the encoder left to
      oneDNN) or 'all' (the whole model).

  Returns:
    The version folder.

  Raises:
    ValueError: a bad version or precision; FileExistsError: the version exists and
      overwrite is False.
  """
  if int(version) != version or version < 1:
    raise ValueError(f'version: expected a positive integer, got {version!r}')
  final = os.path.join(export_dir, str(int(version)))
  if os.path.exists(final) and not overwrite:
    raise FileExistsError(f'{final}: this export version exists already '
                          '(choose another version or overwrite)')
  os.makedirs(export_dir, exist_ok=True)
  configs.check_choice('precision', precision, PRECISIONS)
  configs.check_choice('jit_compile', jit_compile, JIT_COMPILE)
  if precision == 'bfloat16':
    warning = cpu_features.bf16_export_warning(cpu_features.cpu_flags())
    if warning:
      logging.warning('%s', warning)
  module = _Exportable(model, include_vertices, precision, jit_compile)
  # Written beside the version folder and renamed in when complete, with the
  # umask's modes (TF Serving may run under another account).
  with atomic_io.atomic_dir(final, existing='replace' if overwrite else
                            'error') as tmp:
    tf.saved_model.save(
        module, tmp,
        signatures={SIGNATURE_BYTES: module.serving_default,
                    SIGNATURE_BOXES: module.predict_boxes,
                    SIGNATURE_CROPS: module.predict_crops,
                    SIGNATURE_INFO: module.export_info})
    extra = os.path.join(tmp, 'assets.extra')
    os.makedirs(extra, exist_ok=True)
    with open(os.path.join(extra, INFO_FILENAME), 'w') as f:
      json.dump(dict(module.info, include_vertices=bool(include_vertices)), f,
                indent=2, sort_keys=True)
  logging.info('Exported the SavedModel to %s (signatures %s, %s; img_size '
               '%d; vertices %s; precision %s; XLA: %s).', final,
               SIGNATURE_BYTES, SIGNATURE_CROPS, model.config.img_size,
               'included' if include_vertices else 'left out', precision,
               jit_compile)
  return final
