"""Rebuilding a trained HMRModel for inference (eval, demo, export).

A checkpoint holds the variables but not the options the model was built
with, so the trainer also writes the ModelConfig as JSON
(`MODEL_CONFIG_FILENAME`) in the checkpoint folder. The body model is not in
the checkpoint either (the SMPL layer keeps its arrays as constants, so the
licensed data never ends up in checkpoints); the caller passes the one the
model was trained with.

Only the encoder and the regressor (with Θ_0) are restored: inference needs
nothing else, and a checkpoint written with or without optimizer slots,
discriminator or metric state restores the same way.
"""

import dataclasses
import json
import os
from typing import Optional

from absl import logging
import numpy as np
import tensorflow as tf
from tensorflow.core.protobuf import trackable_object_graph_pb2

from hmr_tf.files import atomic_io
from hmr_tf.training import checkpoint_files
from hmr_tf import errors
from hmr_tf.modeling import hmr_model
from hmr_tf.modeling import mean_params
from hmr_tf.smpl.model_io import BodyModel

MODEL_CONFIG_FILENAME = 'model_config.json'


# ModelConfig fields that decide the variables or the input of a trained
# model: a folder's checkpoints only restore into a model with these values.
STRUCTURAL_FIELDS = ('img_size', 'num_stage', 'encoder')


def save_model_config(directory: str, config: hmr_model.ModelConfig) -> str:
  """Writes the ModelConfig as JSON into `directory` (atomically)."""
  path = os.path.join(directory, MODEL_CONFIG_FILENAME)
  atomic_io.write_json_atomic(path, dataclasses.asdict(config))
  return path


def check_model_config(directory: str,
                       config: hmr_model.ModelConfig) -> None:
  """Refuses a config whose model cannot continue the folder's checkpoints.

  A folder with checkpoints keeps its model_config.json unless the new
  config changes only training options (rates, loss weights, dropout...);
  img_size, num_stage or encoder changed would make the checkpoints
  unrestorable (and eval, export and the demo would build the wrong model).

  Args:
    directory: the model folder.
    config: the config a training run is about to use.

  Raises:
    errors.UsageError: checkpoints are there and a structural field differs
      (one line naming the file and the fields).
  """
  path = os.path.join(directory, MODEL_CONFIG_FILENAME)
  if not checkpoint_files.list_checkpoints(directory) or not os.path.isfile(
      path):
    return
  saved = read_model_config(directory)
  changed = [f'{name} {getattr(saved, name)!r} -> {getattr(config, name)!r}'
             for name in STRUCTURAL_FIELDS
             if getattr(saved, name) != getattr(config, name)]
  if changed:
    raise errors.UsageError(
        f'{path}: the checkpoints in {directory} were trained with another '
        f'model ({"; ".join(changed)}); use another --model_dir/--output_dir '
        'or the same settings')


def resolve_checkpoint(path: str, flag: str = '--checkpoint',
                       allow_h5: bool = True) -> str:
  """The checkpoint to load: a folder's latest checkpoint, a prefix, or .h5.

  Args:
    path: a checkpoint folder (with a `checkpoint` index file), a checkpoint
      prefix such as `ckpt-1000` (with `ckpt-1000.index` beside it), or (with
      `allow_h5`) a Keras `.weights.h5` file.
    flag: the flag named in error messages.
    allow_h5: accept Keras weights files.

  Returns:
    The checkpoint prefix or weights file.

  Raises:
    FileNotFoundError: naming the flag, `path` and what was expected.
  """
  if os.path.isdir(path):
    latest = tf.train.latest_checkpoint(path)
    if latest is None:
      # No state file, a garbage one, or one naming deleted files: the
      # newest checkpoint whose files are there.
      present = checkpoint_files.list_checkpoints(path)
      if not present:
        raise FileNotFoundError(f'{flag} {path}: a folder without a '
                                'TensorFlow checkpoint in it')
      latest = present[-1]
      logging.warning('%s: its checkpoint state file names no checkpoint '
                      'that is there; using the newest one present, %s.',
                      path, latest)
    return latest
  if allow_h5 and path.endswith('.h5') and os.path.isfile(path):
    return path
  if os.path.isfile(path + '.index'):
    return path
  expected = ('a folder, a prefix with a .index file, or a .weights.h5 file'
              if allow_h5 else 'a folder or a prefix with a .index file')
  raise FileNotFoundError(
      f'{flag} {path}: no such checkpoint (expected {expected})')


def read_model_config(checkpoint: str,
                      fallback: Optional[hmr_model.ModelConfig] = None
                     ) -> hmr_model.ModelConfig:
  """The ModelConfig saved next to a checkpoint.

  Looks for MODEL_CONFIG_FILENAME in the checkpoint's folder and its parent.

  Args:
    checkpoint: a path `resolve_checkpoint` accepts (or its result).
    fallback: returned when no JSON is found; None raises instead.

  Raises:
    FileNotFoundError: no JSON and no fallback.
    ValueError: a malformed JSON (named).
  """
  folder = checkpoint if os.path.isdir(checkpoint) else os.path.dirname(
      os.path.abspath(checkpoint))
  for directory in (folder, os.path.dirname(folder)):
    path = os.path.join(directory, MODEL_CONFIG_FILENAME)
    if os.path.isfile(path):
      try:
        with open(path) as f:
          values = json.load(f)
        known = {f.name for f in dataclasses.fields(hmr_model.ModelConfig)}
        unknown = sorted(set(values) - known)
        if unknown:
          logging.warning('%s: ignoring unknown fields %s', path, unknown)
        return hmr_model.ModelConfig(
            **{k: v for k, v in values.items() if k in known})
      except (json.JSONDecodeError, TypeError, AttributeError) as e:
        raise ValueError(f'{path}: not a valid model config JSON ({e})') from e
  if fallback is None:
    raise FileNotFoundError(
        f'no {MODEL_CONFIG_FILENAME} next to checkpoint {checkpoint}; pass '
        'the model config explicitly')
  logging.warning('No %s next to %s; using the given model config.',
                  MODEL_CONFIG_FILENAME, checkpoint)
  return fallback


def _checkpoint_root(prefix: str) -> str:
  """The name under which a tf.train.Checkpoint stored the HMRModel.

  Read from the checkpoint's object graph, not from variable names: a
  variable is listed under one path only (often an optimizer's), so the
  model's own path may not appear in any name.
  """
  graph = trackable_object_graph_pb2.TrackableObjectGraph()
  graph.ParseFromString(
      tf.train.load_checkpoint(prefix).get_tensor('_CHECKPOINTABLE_OBJECT_GRAPH'))
  roots = [child.local_name for child in graph.nodes[0].children
           if {'encoder', 'regressor'} <= {
               c.local_name for c in graph.nodes[child.node_id].children}]
  if len(roots) != 1:
    raise ValueError(f'checkpoint {prefix}: expected one HMRModel (an object '
                     f'with an encoder and a regressor), found {roots}')
  return roots[0]


def restore_model(checkpoint: str, body_model: BodyModel,
                  config: Optional[hmr_model.ModelConfig] = None
                 ) -> hmr_model.HMRModel:
  """Builds an HMRModel and restores its encoder and regressor.

  Args:
    checkpoint: checkpoint folder, prefix or `.weights.h5` file.
    body_model: the body model the model was trained with.
    config: the ModelConfig; default: the JSON next to the checkpoint.

  Returns:
    The model, ready for `model(images, training=False)`.

  Raises:
    FileNotFoundError: no such checkpoint.
    errors.CheckpointError: an unreadable checkpoint (every tensor is read
      before the restore; the message names it and the newest readable one
      beside it) or one that does not match the model.
    ValueError: a malformed model config JSON.
  """
  path = resolve_checkpoint(checkpoint)
  if config is None:
    config = read_model_config(path)
  # Θ_0's value comes from the checkpoint; the initial value is a placeholder.
  theta0 = mean_params.mean_theta(np.zeros(mean_params.NUM_POSE),
                                  np.zeros(mean_params.NUM_SHAPE))
  # No ImageNet download for a model whose weights are restored anyway.
  config = dataclasses.replace(config, encoder_weights='none')
  model = hmr_model.HMRModel(body_model, theta0, config)
  if path.endswith('.h5'):
    try:
      model.load_weights(path)
    except (OSError, ValueError) as e:
      raise errors.CheckpointError(
          f'{path}: cannot load these weights into the model built from '
          f'its config ({str(e).splitlines()[0][:200]})') from e
  else:
    try:
      checkpoint_files.verify(path)
    except errors.CheckpointError as e:
      raise errors.CheckpointError(
          f'{e}{checkpoint_files.readable_alternative(path)}') from e
    inner = tf.train.Checkpoint(encoder=model.encoder,
                                regressor=model.regressor)
    status = tf.train.Checkpoint(**{_checkpoint_root(path): inner}).restore(
        path)
    try:
      status.expect_partial().assert_existing_objects_matched()
    except AssertionError as e:
      raise errors.CheckpointError(
          f'checkpoint {path}: does not match the model built from its '
          f'config ({str(e).splitlines()[0]})') from e
  logging.info('Restored %s (img_size %d).', path, config.img_size)
  return model
