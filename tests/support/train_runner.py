"""Runs loop.train on the tiny fixtures; a helper of train_resume_test.

Usage (from the repository root, with it on PYTHONPATH):
  python tests/support/train_runner.py CONFIG.json

CONFIG.json keys: data_dir, model_dir, body_model (an .npz), and optional
train overrides (epochs, steps_per_epoch, checkpoint_every_steps, ...),
sleep_per_step (seconds, to leave time for signals), result (path of a JSON
copy of train's result) and predictions (path of an .npz with the trained
model's outputs on train_fixtures.fixed_images()).
"""

import json
import os
import time

import keras
import numpy as np
from absl import app
from absl import logging

import train_fixtures as tfx
from hmr_tf.training import loop

_TRAIN_KEYS = ('epochs', 'steps_per_epoch', 'checkpoint_every_steps',
               'max_to_keep', 'summary_every_steps',
               'image_summary_every_steps', 'on_nonfinite')


class _Sleep(keras.callbacks.Callback):
  """Slows each step down so the test can signal mid-training."""

  def __init__(self, seconds):
    super().__init__()
    self._seconds = seconds

  def on_train_batch_end(self, batch, logs=None):
    time.sleep(self._seconds)


def _write_json(path, content):
  tmp = path + '.tmp'
  with open(tmp, 'w', encoding='utf-8') as f:
    json.dump(content, f)
  os.replace(tmp, path)


def main(argv):
  with open(argv[1], encoding='utf-8') as f:
    config = json.load(f)
  overrides = {k: config[k] for k in _TRAIN_KEYS if k in config}
  callbacks = []
  if config.get('sleep_per_step'):
    callbacks.append(_Sleep(float(config['sleep_per_step'])))
  result = loop.train(
      tfx.model_config(), tfx.data_config(config['data_dir']),
      tfx.train_config(config['model_dir'], **overrides),
      tfx.load_body_model(config['body_model']), tfx.mean_theta(),
      callbacks=callbacks)
  model = result.pop('model')
  if config.get('predictions'):
    outputs = model(tfx.fixed_images(), training=False)
    np.savez(config['predictions'],
             **{k: np.asarray(v) for k, v in outputs.items()})
  if config.get('result'):
    _write_json(config['result'], result)
  logging.info('Runner done at step %d.', result['global_step'])


if __name__ == '__main__':
  app.run(main)
