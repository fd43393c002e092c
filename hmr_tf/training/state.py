"""The training state: the model and everything checkpointed with it.

`build_state` builds HMRModel and both optimizers under a tf.distribute
strategy scope, then restores the latest readable checkpoint of `model_dir`
(the chief first repairs a wrong state file; see
`hmr_tf.training.checkpoints`) or, for a new run, the network weights of
`init_checkpoint`.

`init_checkpoint` (a checkpoint file prefix or a directory) starts a new run
from the encoder, regressor and discriminator weights of another run,
without its optimizer state or step. It is ignored when `model_dir` already
has a checkpoint (resuming wins). The learning rates of the current
configuration replace the checkpointed ones.
"""

import dataclasses
from typing import List, Optional

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from hmr_tf import configs
from hmr_tf.modeling import hmr_model
from hmr_tf.smpl.model_io import BodyModel
from hmr_tf.training import checkpoints
from hmr_tf.training import distribute


@dataclasses.dataclass
class TrainState:
  """The model and everything checkpointed with it.

  Attributes:
    model: the compiled HMRModel.
    checkpoint: tf.train.Checkpoint(model, g_optimizer, d_optimizer,
      global_step, skipped_steps).
    saver: checkpoints.CheckpointSaver for model_dir.
    global_step: int64 variable, training steps done.
    skipped_steps: int64 variable, steps rolled back ('skip' mode).
    strategy: the distribution strategy.
    resumed_from: the checkpoint restored from model_dir, or None.
    initialized_from: the init_checkpoint whose weights were loaded, or None.
  """
  model: hmr_model.HMRModel
  checkpoint: tf.train.Checkpoint
  saver: checkpoints.CheckpointSaver
  global_step: tf.Variable
  skipped_steps: tf.Variable
  strategy: tf.distribute.Strategy
  resumed_from: Optional[str] = None
  initialized_from: Optional[str] = None


def _counter(name: str) -> tf.Variable:
  # ONLY_FIRST_REPLICA: assignable from any context under a strategy.
  return tf.Variable(0, dtype=tf.int64, trainable=False, name=name,
                     aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA)


def _set_learning_rate(optimizer, value: float, name: str):
  current = optimizer.learning_rate
  if not isinstance(current, keras.Variable):
    return  # A schedule: nothing to override.
  if not np.isclose(float(np.asarray(current)), value, rtol=1e-6):
    logging.info('%s learning rate: %g from the configuration replaces %g '
                 'from the checkpoint.', name, value,
                 float(np.asarray(current)))
  optimizer.learning_rate = value


def build_state(model_config: configs.ModelConfig,
                train_config: configs.TrainConfig,
                body_model: BodyModel,
                mean_theta,
                strategy: Optional[tf.distribute.Strategy] = None
                ) -> TrainState:
  """Builds the model and optimizers and restores model_dir or init weights.

  Args:
    model_config: the model config.
    train_config: the training config.
    body_model: the SMPL-format body model.
    mean_theta: [85] Θ_0.
    strategy: the tf.distribute strategy (default: the current one).

  Returns:
    A TrainState.
  """
  strategy = strategy or tf.distribute.get_strategy()
  keras.utils.set_random_seed(train_config.seed)
  jit_compile = train_config.jit_compile
  if jit_compile and strategy.num_replicas_in_sync > 1:
    # Keras' TensorFlow trainer compiles the whole `strategy.run` into one
    # XLA function, which cannot reach variables on several devices.
    logging.warning('jit_compile ignored: XLA compilation of the train step '
                    'needs a single replica (this strategy has %d); training '
                    'runs without it.', strategy.num_replicas_in_sync)
    jit_compile = False
  with strategy.scope():
    # Under XLA the small encoder trains faster with its convolutions as
    # matrix products and its batch norms' gradient written out (the same
    # variables; evaluation and export build Keras' layers).
    model = hmr_model.HMRModel(body_model, mean_theta, model_config,
                               xla_layers=jit_compile)
    g_optimizer, d_optimizer = hmr_model.build_optimizers(model_config)
    model.compile(g_optimizer=g_optimizer, d_optimizer=d_optimizer,
                  jit_compile=jit_compile)
    global_step = _counter('global_step')
    skipped_steps = _counter('skipped_steps')
  checkpoint = tf.train.Checkpoint(
      model=model, g_optimizer=g_optimizer, d_optimizer=d_optimizer,
      global_step=global_step, skipped_steps=skipped_steps)
  is_chief, task_type, task_id = distribute.worker_role(strategy)
  # Chosen and verified before the manager reads the state file: the chief
  # repairs a state that names missing or unreadable files, so the manager
  # never deletes checkpoints of a lineage this run did not restore.
  latest = checkpoints.resume_checkpoint(train_config.model_dir,
                                         repair=is_chief)
  saver = checkpoints.CheckpointSaver(checkpoint, train_config.model_dir,
                                      train_config.max_to_keep, is_chief,
                                      f'{task_type}_{task_id}')
  state = TrainState(model, checkpoint, saver, global_step, skipped_steps,
                     strategy)
  if latest:
    checkpoints.restore_training_state(checkpoint, latest)
    state.resumed_from = latest
    logging.info('Resuming from %s (global step %d).', latest,
                 int(global_step.numpy()))
    if train_config.init_checkpoint:
      logging.info('init_checkpoint %s ignored: resuming %s.',
                   train_config.init_checkpoint, latest)
  elif train_config.init_checkpoint:
    state.initialized_from = checkpoints.restore_weights(
        model, train_config.init_checkpoint)
    logging.info('Initialised the network weights from %s (optimizer state '
                 'not loaded).', state.initialized_from)
  _set_learning_rate(g_optimizer, model_config.e_lr, 'Generator')
  _set_learning_rate(d_optimizer, model_config.d_lr, 'Discriminator')
  return state


def rollback_variables(model: hmr_model.HMRModel) -> List[tf.Variable]:
  """What a skipped step restores: all model state but the loss trackers."""
  tracker_vars = {id(v) for m in model.metrics for v in m.variables}
  variables = [v for v in model.variables if id(v) not in tracker_vars]
  return (variables + list(model.g_optimizer.variables) +
          list(model.d_optimizer.variables))
