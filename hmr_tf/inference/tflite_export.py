"""Export of a trained HMRModel as LiteRT (TensorFlow Lite) models.

Layout: `EXPORT_DIR/tflite/`, written to a temporary folder beside it and
renamed when complete (as the SavedModel's version folder):
  * `hmr_float32.tflite`: the crop signature in float32;
  * `hmr_<quantization>.tflite`: the same, quantised (QUANTIZATIONS):
    'float16' stores the weights and SMPL's arrays as float16 (half the
    size; the CPU kernels compute in float32), 'dynamic_range' stores the
    weights of the convolutions and matrix products (the encoder, the
    regressor, SMPL's pose blend shapes) as int8 and quantises their inputs
    on the fly (about a quarter of the size);
  * `export_info.json`: the crop rule (img_size, base_crop_size), the
    files, inputs and outputs, the body model's name and vertex count;
  * `faces.npy`: the body model's triangles [F, 3] int32, so that the demo
    can draw the mesh without the body model file
    (hmr_tf.inference.tflite_runner).

Each model has one signature, `serving_default` (the converter's name for a
single function): input `images` float32 [B, S, S, 3] in [-1, 1] (crops made
by the caller, e.g. with hmr_tf.inference.crops.crop_image; the batch is
dynamic: resize the input), outputs those of the SavedModel's
`predict_crops`: cam [B, 3], pose [B, 72], shape [B, 10], theta [B, 85],
joints3d [B, 24, 3], keypoints3d [B, 19, 3], keypoints2d [B, 19, 2] (crop
coordinates in [-1, 1]) and vertices [B, N, 3] (unless left out). Only
TFLite builtin ops: the plain LiteRT interpreter runs it (no Flex
delegate), XNNPACK included.

Like the SavedModel, a model exported with the licensed SMPL file holds its
arrays (as constants) and falls under its licence.
"""

import os
from typing import Dict, Sequence

from absl import logging
import numpy as np
import tensorflow as tf
# The converter does not freeze Keras 3 variables (TF 2.21): a function that
# reads them converts into a model whose weights are uninitialised (NaN or
# garbage outputs). They are turned into constants first, with the same
# function the converter uses for tf.Variables.
from tensorflow.python.framework import convert_to_constants  # pylint: disable=g-direct-tensorflow-import

from hmr_tf import configs
from hmr_tf.files import atomic_io
from hmr_tf.inference import export

TFLITE_DIRNAME = 'tflite'
INFO_FILENAME = 'export_info.json'
FACES_FILENAME = 'faces.npy'
SIGNATURE = 'serving_default'
INPUT_CROPS = export.INPUT_CROPS
FLOAT32 = 'float32'
QUANTIZATIONS = configs.TFLITE_QUANTIZATIONS


def model_filename(variant: str) -> str:
  """'hmr_<variant>.tflite' for 'float32' or a quantization."""
  return f'hmr_{variant}.tflite'


def _frozen_crop_function(model, include_vertices: bool):
  """The crop signature with every variable turned into a constant."""
  fn = export.crop_function(model, include_vertices)
  concrete = fn.get_concrete_function()
  frozen = convert_to_constants.convert_variables_to_constants_v2(concrete)
  size = model.config.img_size

  # The frozen function returns a flat list; this puts the output names back.
  def named(images):
    return tf.nest.pack_sequence_as(concrete.structured_outputs,
                                    frozen(images))

  return tf.function(named, input_signature=[
      tf.TensorSpec([None, size, size, 3], tf.float32, name=INPUT_CROPS)
  ]).get_concrete_function()


def convert(model, include_vertices: bool = True,
            variants: Sequence[str] = (FLOAT32, 'float16')) -> Dict[str, bytes]:
  """The model's crop signature as .tflite flatbuffers.

  Args:
    model: an HMRModel (float32).
    include_vertices: include the [B, N, 3] mesh in the outputs.
    variants: 'float32' and/or QUANTIZATIONS entries.

  Returns:
    {variant: the .tflite file's bytes}.

  Raises:
    ValueError: an unknown variant.
  """
  for variant in variants:
    configs.check_choice('variant', variant, (FLOAT32,) + QUANTIZATIONS)
  function = _frozen_crop_function(model, include_vertices)
  out = {}
  for variant in variants:
    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [function], tf.Module())
    # Builtins only: the Flex delegate (SELECT_TF_OPS) is not in the plain
    # LiteRT runtime; the conversion fails if an op would need it.
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if variant != FLOAT32:
      converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if variant == 'float16':
      converter.target_spec.supported_types = [tf.float16]
    out[variant] = converter.convert()
  return out


def export_tflite(model, export_dir: str, include_vertices: bool = True,
                  quantization: str = QUANTIZATIONS[0],
                  overwrite: bool = False) -> str:
  """Writes `export_dir/tflite/` (module docstring).

  Args:
    model: a (restored) HMRModel.
    export_dir: the export base folder (the SavedModel's EXPORT_DIR).
    include_vertices: include the [B, N, 3] mesh in the outputs.
    quantization: the quantised variant written next to float32
      (QUANTIZATIONS).
    overwrite: replace an existing `tflite` folder.

  Returns:
    The folder written.

  Raises:
    ValueError: an unknown quantization; FileExistsError: the folder exists
      and overwrite is False.
  """
  configs.check_choice('tflite_quantization', quantization, QUANTIZATIONS)
  final = os.path.join(export_dir, TFLITE_DIRNAME)
  if os.path.exists(final) and not overwrite:
    raise FileExistsError(f'{final}: a LiteRT export exists already (remove '
                          'it or overwrite)')
  models = convert(model, include_vertices, (FLOAT32, quantization))
  body = model.smpl.body_model
  outputs = ['cam', 'pose', 'shape', 'theta', 'joints3d', 'keypoints3d',
             'keypoints2d'] + (['vertices'] if include_vertices else [])
  size = model.config.img_size
  info = {
      'format': 'tflite',
      'img_size': size,
      'base_crop_size': float(model.config.base_crop_size),
      'encoder': model.config.encoder,
      'include_vertices': bool(include_vertices),
      'signature': SIGNATURE,
      'inputs': {INPUT_CROPS: [None, size, size, 3]},
      'outputs': outputs,
      'models': {variant: model_filename(variant) for variant in models},
      'faces': FACES_FILENAME,
      'num_vertices': int(body.num_vertices),
      'body_model': body.metadata.get('name', 'unnamed'),
  }
  # Written beside and renamed in when complete (atomic_io's one folder swap).
  with atomic_io.atomic_dir(final, existing='replace' if overwrite else
                            'error') as tmp:
    for variant, data in models.items():
      atomic_io.write_bytes_atomic(os.path.join(tmp, model_filename(variant)),
                                   data)
    with atomic_io.atomic_path(os.path.join(tmp, FACES_FILENAME)) as path:
      np.save(path, np.asarray(body.faces, np.int32))
    atomic_io.write_json_atomic(os.path.join(tmp, INFO_FILENAME), info)
  logging.info('Exported LiteRT models to %s (%s; img_size %d; vertices %s).',
               final, ', '.join(model_filename(v) for v in models), size,
               'included' if include_vertices else 'left out')
  return final
