"""Reads TensorBoard event files back in tests.

TF2's tf.summary.scalar/image store a tensor in each value (not the TF1
`simple_value`), so every value is read with tf.make_ndarray.
"""

import glob
import os
from typing import Dict, Tuple

import numpy as np
import tensorflow as tf


def read_events(log_dir: str) -> Tuple[Dict[str, Dict[int, np.ndarray]],
                                       Dict[str, str]]:
  """Every summary value under `log_dir` (its event files, not sub-folders).

  Args:
    log_dir: the folder the summary writer wrote into.

  Returns:
    ({tag: {step: value as ndarray}}, {tag: TensorBoard plugin name}).
  """
  values, plugins = {}, {}
  paths = glob.glob(os.path.join(log_dir, 'events.out.tfevents.*'))
  for path in sorted(paths):
    for event in tf.compat.v1.train.summary_iterator(path):
      for value in event.summary.value:
        values.setdefault(value.tag, {})[event.step] = tf.make_ndarray(
            value.tensor)
        if value.metadata.plugin_data.plugin_name:
          plugins[value.tag] = value.metadata.plugin_data.plugin_name
  return values, plugins


def scalars(log_dir: str, tag: str) -> Dict[int, float]:
  """{step: value} of one scalar summary under `log_dir`."""
  values, _ = read_events(log_dir)
  return {step: float(v) for step, v in values.get(tag, {}).items()}
