"""Importing the original HMR's released model (`--mode=import_original`).

The authors released `model.ckpt-667589` (a TF1 checkpoint written by the
original trainer), `neutral_smpl_with_cocoplus_reg.pkl` and
`neutral_smpl_mean_params.h5`. This module reads the checkpoint by variable
name (`hmr_tf.modeling.slim_names`) into an HMRModel and writes it as an
hmr_tf checkpoint with its `model_config.json`, which eval, export, demo and
`--init_checkpoint` then use as any run hmr_tf trained itself:

  encoder       resnet_v2_50/... (270 variables);
  regressor     3D_module/fc1..fc3, and Θ_0 = `mean_param` [1, 85] (it holds
                the camera prior and the π root rotation already);
  discriminator D/... when present (so fine-tuning keeps the adversarial
                prior), else it starts fresh and the log says so.

The original also stored the SMPL arrays as non-trainable variables, in the
layouts of its `batch_smpl.py`:
  v_template [N, 3], shapedirs [K, 3N], posedirs [207, 3N],
  J_regressor [N, 24], lbs_weights [N, 24], cocoplus_regressor [N, 19].
With `--smpl_model_path` they must equal the file's arrays (a different file
is an error naming the first array that differs); without it the body model
is built from them (the kinematic tree is SMPL's; the faces are not in the
checkpoint, so rendering needs the file). The licensed arrays are never
written into hmr_tf's outputs: `ORIGINAL_IMPORT_FILENAME` records where they
come from, and later stages load them from there.

Everything is read and checked before anything is written; the model folder
appears complete (written beside, then renamed) or not at all.
"""

import json
import os
import re
from typing import Any, Dict, Optional

from absl import logging
import numpy as np
import tensorflow as tf

from hmr_tf import configs
from hmr_tf import errors
from hmr_tf.files import atomic_io
from hmr_tf.modeling import encoder as encoder_lib
from hmr_tf.modeling import hmr_model
from hmr_tf.modeling import mean_params
from hmr_tf.modeling import slim_names
from hmr_tf.smpl import joints as joints_lib
from hmr_tf.smpl import model_io
from hmr_tf.training import checkpoints
from hmr_tf.training import model_files

ORIGINAL_IMPORT_FILENAME = 'original_import.json'
# What the released model was trained with (the original's config.py).
ORIGINAL_IMG_SIZE = 224
ORIGINAL_NUM_STAGE = 3

_NUM_JOINTS = joints_lib.NUM_SMPL_JOINTS
_NUM_KEYPOINTS = joints_lib.NUM_COCOPLUS_JOINTS
_POSE_BASIS = model_io.NUM_POSE_BASIS
SMPL_VARIABLES = ('v_template', 'shapedirs', 'posedirs', 'J_regressor',
                  'lbs_weights', 'cocoplus_regressor')


class OriginalImportError(errors.UsageError):
  """A bad original checkpoint or SMPL file; one line naming it (exit 2)."""


# ---------------------------------------------------------------------------
# The SMPL arrays in the checkpoint.


def _smpl_shapes(shapes, where) -> Dict[str, tuple]:
  """Checks the SMPL variables' shapes against each other; returns them."""
  missing = [n for n in SMPL_VARIABLES if n not in shapes]
  if missing:
    raise OriginalImportError(
        f'{where}: missing variable {missing[0]} (the SMPL arrays the '
        'original stores; pass --smpl_model_path to take the body model from '
        'the file instead)')
  got = {n: tuple(shapes[n]) for n in SMPL_VARIABLES}
  if len(got['v_template']) != 2 or got['v_template'][1] != 3:
    raise OriginalImportError(f'{where}: variable v_template has shape '
                              f'{list(got["v_template"])}, expected [N, 3]')
  n = got['v_template'][0]
  num_betas = got['shapedirs'][0] if len(got['shapedirs']) == 2 else -1
  expected = {
      'shapedirs': (num_betas, 3 * n),
      'posedirs': (_POSE_BASIS, 3 * n),
      'J_regressor': (n, _NUM_JOINTS),
      'lbs_weights': (n, _NUM_JOINTS),
      'cocoplus_regressor': (n, _NUM_KEYPOINTS),
  }
  for name, shape in expected.items():
    if got[name] != shape or num_betas < mean_params.NUM_SHAPE:
      want = [('K>=10' if s == num_betas else s) for s in shape]
      raise OriginalImportError(f'{where}: variable {name} has shape '
                                f'{list(got[name])}, expected {want} (N = {n} '
                                'vertices, from v_template)')
  return got


def _read(reader, name, where) -> np.ndarray:
  try:
    return np.asarray(reader.get_tensor(name), np.float64)
  except (tf.errors.OpError, ValueError, IndexError) as e:
    raise OriginalImportError(f'{where}: cannot read variable {name} '
                              f'({str(e).splitlines()[0]})') from e


def smpl_arrays(reader, where) -> Dict[str, np.ndarray]:
  """The checkpoint's SMPL arrays in BodyModel layouts (float64).

  Returns:
    dict with v_template [N, 3], shapedirs [N, 3, K], posedirs [N, 3, 207],
    J_regressor [24, N], weights [N, 24], cocoplus_regressor [19, N].
  """
  shapes = _smpl_shapes(reader.get_variable_to_shape_map(), where)
  n = shapes['v_template'][0]
  raw = {name: _read(reader, name, where) for name in SMPL_VARIABLES}
  # batch_smpl.py flattened [N, 3, K] row-major to [3N, K], then transposed.
  return {
      'v_template': raw['v_template'],
      'shapedirs': raw['shapedirs'].T.reshape(n, 3, -1),
      'posedirs': raw['posedirs'].T.reshape(n, 3, _POSE_BASIS),
      'J_regressor': raw['J_regressor'].T,
      'weights': raw['lbs_weights'],
      'cocoplus_regressor': raw['cocoplus_regressor'].T,
  }


def check_body_model(body: model_io.BodyModel, arrays: Dict[str, np.ndarray],
                     where: str, smpl_path: str) -> None:
  """Checks that the file's body model is the one the checkpoint was built on.

  The checkpoint holds float32 copies of the file's arrays.

  Raises:
    OriginalImportError: naming the first array that differs.
  """
  ours = {
      'v_template': body.v_template,
      'shapedirs': body.shapedirs,
      'posedirs': body.posedirs,
      'J_regressor': body.J_regressor,
      'weights': body.weights,
      'cocoplus_regressor': body.cocoplus_regressor,
  }
  names = {'weights': 'lbs_weights'}
  for key, theirs in arrays.items():
    mine = ours[key]
    ckpt_name = names.get(key, key)
    if mine is None or mine.shape != theirs.shape:
      raise OriginalImportError(
          f'--smpl_model_path={smpl_path}: not the body model of {where}: '
          f'{ckpt_name} has shape {None if mine is None else list(mine.shape)} '
          f'in the file, {list(theirs.shape)} in the checkpoint')
    scale = max(float(np.abs(theirs).max()), 1e-12)
    if not np.allclose(mine, theirs, rtol=1e-5, atol=1e-6 * scale):
      worst = float(np.abs(mine - theirs).max())
      raise OriginalImportError(
          f'--smpl_model_path={smpl_path}: not the body model of {where}: '
          f'{ckpt_name} differs (largest difference {worst:.3g})')


def body_model_from_arrays(arrays: Dict[str, np.ndarray],
                           where: str) -> model_io.BodyModel:
  """A BodyModel from the checkpoint's SMPL arrays (no faces: not stored)."""
  return model_io.BodyModel(
      v_template=arrays['v_template'],
      faces=np.zeros((0, 3), np.int32),
      weights=arrays['weights'],
      parents=np.asarray(joints_lib.SMPL_PARENTS, np.int32),
      J_regressor=arrays['J_regressor'],
      shapedirs=arrays['shapedirs'],
      posedirs=arrays['posedirs'],
      cocoplus_regressor=arrays['cocoplus_regressor'],
      metadata={'name': f'SMPL arrays of {where}', 'source': where,
                'faces': 'not in the checkpoint; rendering needs '
                         '--smpl_model_path'})


# ---------------------------------------------------------------------------
# The import.


def _global_step(reader, path: str) -> int:
  shapes = reader.get_variable_to_shape_map()
  if 'global_step' in shapes and not shapes['global_step']:
    return int(reader.get_tensor('global_step'))
  match = re.search(r'-(\d+)$', path)
  return int(match.group(1)) if match else 0


def _resolve_original(path: str) -> str:
  """A checkpoint prefix from a prefix or a folder (its latest checkpoint)."""
  try:
    return checkpoints.resolve_checkpoint(path, flag='--original_checkpoint',
                                          allow_h5=False)
  except FileNotFoundError as e:
    raise OriginalImportError(
        f'{e}; e.g. models/model.ckpt-667589 beside '
        'model.ckpt-667589.index') from e


def load_original(original_checkpoint: str, smpl_model_path: str = ''):
  """Reads the original checkpoint into a new HMRModel (nothing written).

  Args:
    original_checkpoint: prefix of the original's checkpoint (or its folder).
    smpl_model_path: optional SMPL file the checkpoint was built with
      (checked against the checkpoint's arrays).

  Returns:
    (model, record): the HMRModel and a JSON-ready dict of what was read.

  Raises:
    OriginalImportError: one line naming the file, the variable and what was
      expected.
  """
  path = _resolve_original(original_checkpoint)
  where = f'--original_checkpoint={path}'
  try:
    reader = slim_names.open_checkpoint(path, '--original_checkpoint')
  except ValueError as e:
    raise OriginalImportError(str(e)) from e
  shapes = reader.get_variable_to_shape_map()
  if slim_names.MEAN_PARAM not in shapes:
    raise OriginalImportError(
        f'{where}: missing variable {slim_names.MEAN_PARAM} (expected shape '
        f'[1, {mean_params.NUM_THETA}]): not an HMR checkpoint')
  if smpl_model_path:
    try:
      body = model_io.load_model(smpl_model_path)
    except ValueError as e:
      raise OriginalImportError(f'--smpl_model_path: {e}') from e
    if all(n in shapes for n in SMPL_VARIABLES):
      check_body_model(body, smpl_arrays(reader, where), where,
                       smpl_model_path)
    else:
      logging.warning('%s holds no SMPL arrays to check %s against.', where,
                      smpl_model_path)
  else:
    body = body_model_from_arrays(smpl_arrays(reader, where), path)
  if body.cocoplus_regressor is None:
    raise OriginalImportError(f'--smpl_model_path={smpl_model_path}: no '
                              'cocoplus_regressor (HMR\'s keypoints need it)')

  config = configs.ModelConfig(
      img_size=ORIGINAL_IMG_SIZE, num_stage=ORIGINAL_NUM_STAGE,
      encoder=encoder_lib.RESNET50_V2, encoder_weights='none')
  placeholder = mean_params.mean_theta(np.zeros(mean_params.NUM_POSE),
                                       np.zeros(mean_params.NUM_SHAPE))
  model = hmr_model.HMRModel(body, placeholder, config)
  mappings = (slim_names.encoder_mappings(model.encoder) +
              slim_names.regressor_mappings(model.regressor))
  d_mappings = slim_names.discriminator_mappings(model.discriminator)
  has_d = any(n.startswith(slim_names.DISCRIMINATOR_SCOPE + '/')
              for n in shapes)
  if has_d:
    mappings += d_mappings
  try:
    slim_names.check_mappings(mappings, shapes, where)
    values = slim_names.read_mappings(mappings, reader, where)
  except ValueError as e:
    raise OriginalImportError(str(e)) from e
  slim_names.assign(mappings, values)
  if not has_d:
    logging.warning('%s has no discriminator (D/...): it starts fresh, so '
                    'fine-tuning begins without the adversarial prior.', where)
  record = {
      'original_checkpoint': os.path.abspath(path),
      'global_step': _global_step(reader, path),
      'smpl_model_path': (os.path.abspath(smpl_model_path)
                          if smpl_model_path else ''),
      'body_model': ('file' if smpl_model_path else
                     'checkpoint arrays (no faces)'),
      'discriminator_imported': has_d,
      'variables_read': sum(len(m.sources) for m in mappings),
  }
  return model, record


def import_original(original_checkpoint: str, model_dir: str,
                    smpl_model_path: str = '') -> Dict[str, Any]:
  """Writes the original checkpoint as an hmr_tf checkpoint into `model_dir`.

  Args:
    original_checkpoint: prefix of the original's checkpoint (or its folder).
    model_dir: the folder to create (OUTPUT_DIR/model): the checkpoint
      `ckpt-<original step>`, `model_config.json` and
      `ORIGINAL_IMPORT_FILENAME`.
    smpl_model_path: optional SMPL file (see `load_original`).

  Returns:
    The import record plus 'checkpoint' (the written prefix).

  Raises:
    OriginalImportError: bad inputs, or a `model_dir` that already holds files
      (nothing is written then).
  """
  if os.path.exists(model_dir) and (not os.path.isdir(model_dir) or
                                    os.listdir(model_dir)):
    raise OriginalImportError(f'{model_dir}: already exists and is not empty; '
                              'choose another --output_dir or remove it')
  model, record = load_original(original_checkpoint, smpl_model_path)
  with atomic_io.atomic_dir(model_dir) as tmp:
    # The object graph of a training checkpoint's model (encoder, regressor,
    # discriminator), so restore_model and --init_checkpoint read it.
    networks = tf.train.Checkpoint(encoder=model.encoder,
                                   regressor=model.regressor,
                                   discriminator=model.discriminator)
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(model=networks),
                                         tmp, max_to_keep=1)
    prefix = manager.save(checkpoint_number=record['global_step'])
    model_files.save_model_config(tmp, model.config)
    with open(os.path.join(tmp, ORIGINAL_IMPORT_FILENAME), 'w') as f:
      json.dump(record, f, indent=2, sort_keys=True)
  record = dict(record, checkpoint=os.path.join(model_dir,
                                                os.path.basename(prefix)))
  logging.info('Imported %s (%d variables) into %s.',
               record['original_checkpoint'], record['variables_read'],
               record['checkpoint'])
  return record


def read_record(model_dir: str) -> Optional[Dict[str, Any]]:
  """The import record in `model_dir`, or None for a model hmr_tf trained."""
  path = os.path.join(model_dir, ORIGINAL_IMPORT_FILENAME)
  if not os.path.isfile(path):
    return None
  try:
    with open(path) as f:
      return json.load(f)
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise OriginalImportError(f'{path}: not a valid import record ({e})') from e


def recorded_body_model(model_dir: str) -> Optional[model_io.BodyModel]:
  """The body model of an imported model, loaded from where it came from.

  Returns:
    None for a folder without an import record; else the SMPL file named
    in the record, or (imported without one) the original checkpoint's
    arrays.

  Raises:
    OriginalImportError: the recorded file or checkpoint is gone.
  """
  record = read_record(model_dir)
  if record is None:
    return None
  if record.get('smpl_model_path'):
    path = record['smpl_model_path']
    if not os.path.isfile(path):
      raise OriginalImportError(
          f'{os.path.join(model_dir, ORIGINAL_IMPORT_FILENAME)}: the SMPL '
          f'file {path} it was imported with is gone; pass --smpl_model_path')
    return model_io.load_model(path)
  path = record['original_checkpoint']
  try:
    reader = slim_names.open_checkpoint(path, '--original_checkpoint')
  except ValueError as e:
    raise OriginalImportError(
        f'{os.path.join(model_dir, ORIGINAL_IMPORT_FILENAME)}: the body '
        f'model comes from {path}, which cannot be read now ({e}); pass '
        '--smpl_model_path') from e
  return body_model_from_arrays(smpl_arrays(reader, path), path)
