"""The model config saved next to checkpoints (`model_config.json`).

A checkpoint holds the variables but not the options the model was built
with, so the trainer also writes the ModelConfig as JSON
(`MODEL_CONFIG_FILENAME`) in the checkpoint folder; eval, export and the demo
rebuild the model from it (`hmr_tf.training.checkpoints.restore_model`). The
body model is not recorded (the SMPL layer keeps its arrays as constants, so
the licensed data never ends up in checkpoints); the caller passes the one
the model was trained with.

No checkpoint reading here: `checkpoints` builds on this module.
"""

import dataclasses
import json
import os
from typing import Optional

from absl import logging

from hmr_tf import configs
from hmr_tf.files import atomic_io

MODEL_CONFIG_FILENAME = 'model_config.json'


def save_model_config(directory: str, config: configs.ModelConfig) -> str:
  """Writes the ModelConfig as JSON into `directory` (atomically)."""
  path = os.path.join(directory, MODEL_CONFIG_FILENAME)
  atomic_io.write_json_atomic(path, dataclasses.asdict(config))
  return path


def read_model_config(checkpoint: str,
                      fallback: Optional[configs.ModelConfig] = None
                     ) -> configs.ModelConfig:
  """The ModelConfig saved next to a checkpoint.

  Looks for MODEL_CONFIG_FILENAME in the checkpoint's folder and its parent.

  Args:
    checkpoint: a path `checkpoints.resolve_checkpoint` accepts (or its
      result).
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
        known = {f.name for f in dataclasses.fields(configs.ModelConfig)}
        unknown = sorted(set(values) - known)
        if unknown:
          logging.warning('%s: ignoring unknown fields %s', path, unknown)
        return configs.ModelConfig(
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
