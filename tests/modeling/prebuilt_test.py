"""The one private Keras hook the project overrides (hmr_tf.modeling.prebuilt).

A Keras upgrade that renames, drops or stops calling it fails here.
"""

import inspect
from unittest import mock

import keras
from keras.src.backend.tensorflow import trainer as tf_trainer
import numpy as np
import tensorflow as tf

from hmr_tf.modeling import prebuilt


def test_keras_still_calls_the_hook_from_fit():
  hook = getattr(tf_trainer.TensorFlowTrainer, prebuilt.KERAS_HOOK, None)
  assert hook is not None, (
      f'Keras no longer has {prebuilt.KERAS_HOOK}: see '
      'hmr_tf/modeling/prebuilt.py')
  assert list(inspect.signature(hook).parameters) == [
      'self', 'iterator', 'data_batch']
  assert prebuilt.KERAS_HOOK in inspect.getsource(
      tf_trainer.TensorFlowTrainer.fit)


class _Summing(prebuilt.PrebuiltModel):
  """Built in __init__; its train_step adds up every batch it sees."""

  def __init__(self):
    super().__init__(name='summing')
    self.dense = keras.layers.Dense(1)
    self.dense.build((None, 1))
    self.seen = self.add_weight(shape=(), initializer='zeros',
                                trainable=False, name='seen')
    self.built = True

  def call(self, x):
    return self.dense(x)

  def train_step(self, data):
    self.seen.assign_add(tf.reduce_sum(data))
    return {'seen': self.seen}


def test_fit_under_a_strategy_skips_the_symbolic_build():
  strategy = tf.distribute.MirroredStrategy(['/cpu:0'])
  with strategy.scope():
    model = _Summing()
    model.compile()
  batches = np.arange(1, 9, dtype=np.float32).reshape(4, 2, 1)
  dataset = tf.data.Dataset.from_tensor_slices(batches)
  keras_hook = getattr(tf_trainer.TensorFlowTrainer, prebuilt.KERAS_HOOK)
  with mock.patch.object(tf_trainer.TensorFlowTrainer, prebuilt.KERAS_HOOK,
                         autospec=True, side_effect=keras_hook) as spy:
    model.fit(dataset, epochs=1, verbose=0)
  spy.assert_not_called()  # the override returned before Keras' version
  assert float(model.seen.numpy()) == float(batches.sum())  # every batch


def test_an_unbuilt_model_still_gets_keras_build():
  strategy = tf.distribute.MirroredStrategy(['/cpu:0'])

  class _Lazy(prebuilt.PrebuiltModel):

    def __init__(self):
      super().__init__(name='lazy')
      self.dense = keras.layers.Dense(1)

    def call(self, x):
      return self.dense(x)

  with strategy.scope():
    model = _Lazy()
    model.compile(optimizer='sgd', loss='mse')
  x = np.ones((4, 3), np.float32)
  model.fit(x, x[:, :1], epochs=1, batch_size=2, verbose=0)
  assert model.dense.built and model.dense.kernel.shape == (3, 1)
