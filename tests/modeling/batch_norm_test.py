"""Batch norm with its gradient written out, against float64 and Keras."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from hmr_tf.modeling import batch_norm

_EPS = 1e-3


def _numpy_batch_norm(x, gamma, beta):
  """float64 forward, from the definition (Ioffe & Szegedy 2015)."""
  mean = x.mean(axis=0)
  variance = ((x - mean)**2).mean(axis=0)
  return (x - mean) / np.sqrt(variance + _EPS) * gamma + beta


def test_normalize_in_training_matches_float64_and_finite_differences():
  rng = np.random.default_rng(0)
  x = rng.normal(2.0, 3.0, size=(7, 3))
  gamma = rng.normal(1.0, 0.3, size=3)
  beta = rng.normal(size=3)
  weights = rng.normal(size=(7, 3))  # L = Σ weights · y

  def loss(x_, gamma_, beta_):
    return float((weights * _numpy_batch_norm(x_, gamma_, beta_)).sum())

  def central_differences(values, index):
    grad = np.zeros_like(values[index])
    for cell in np.ndindex(grad.shape):
      plus = [v.copy() for v in values]
      minus = [v.copy() for v in values]
      plus[index][cell] += 1e-6
      minus[index][cell] -= 1e-6
      grad[cell] = (loss(*plus) - loss(*minus)) / 2e-6
    return grad

  tensors = [tf.constant(v, tf.float32) for v in (x, gamma, beta)]
  with tf.GradientTape() as tape:
    tape.watch(tensors)
    y, mean, variance = batch_norm.normalize_in_training(*tensors, _EPS)
    objective = tf.reduce_sum(tf.constant(weights, tf.float32) * y)
  grads = tape.gradient(objective, tensors)
  np.testing.assert_allclose(y.numpy(), _numpy_batch_norm(x, gamma, beta),
                             atol=1e-5)
  np.testing.assert_allclose(mean.numpy(), x.mean(axis=0), rtol=1e-6)
  np.testing.assert_allclose(variance.numpy(), x.var(axis=0), rtol=1e-5)
  for index, got in enumerate(grads):
    np.testing.assert_allclose(got.numpy(), central_differences(
        [x, gamma, beta], index), atol=2e-4, err_msg=f'input {index}')


@pytest.mark.parametrize('jit_compile', [False, True])
def test_layer_matches_keras_batch_norm_in_training_and_inference(
    jit_compile):
  rng = np.random.default_rng(1)
  x = tf.constant(rng.normal(0.5, 2.0, size=(3, 5, 5, 4)), tf.float32)
  upstream = tf.constant(rng.normal(size=(3, 5, 5, 4)), tf.float32)
  ours = batch_norm.OwnGradientBatchNormalization(epsilon=_EPS,
                                                  momentum=0.9)
  keras_bn = keras.layers.BatchNormalization(epsilon=_EPS, momentum=0.9)
  for layer in (ours, keras_bn):
    layer.build(x.shape)
  keras_bn.set_weights([rng.normal(1.0, 0.3, size=4), rng.normal(size=4),
                        rng.normal(size=4), rng.uniform(0.5, 2.0, size=4)])
  ours.set_weights(keras_bn.get_weights())
  initial_moving = [w.numpy().copy() for w in keras_bn.non_trainable_weights]

  def run(layer, training):
    with tf.GradientTape() as tape:
      tape.watch(x)
      y = layer(x, training=training)
      objective = tf.reduce_sum(upstream * y)
    return [y] + tape.gradient(objective, [x, layer.gamma, layer.beta])

  fn = tf.function(run, jit_compile=True) if jit_compile else run
  for training in (True, False):
    got, want = fn(ours, training), fn(keras_bn, training)
    for name, g, w in zip(('y', 'dx', 'dgamma', 'dbeta'), got, want):
      np.testing.assert_allclose(g.numpy(), w.numpy(), atol=2e-5,
                                 err_msg=f'{name}, training={training}')
    for g, w in zip(ours.non_trainable_weights,
                    keras_bn.non_trainable_weights):
      np.testing.assert_allclose(g.numpy(), w.numpy(), rtol=1e-6,
                                 err_msg=f'{g.path}, training={training}')
  # The training call moved the moving statistics (compared alike above).
  for initial, now in zip(initial_moving, ours.non_trainable_weights):
    assert np.abs(now.numpy() - initial).max() > 1e-2


def test_layer_takes_any_batch_size_in_one_graph():
  layer = batch_norm.OwnGradientBatchNormalization()
  layer.build((None, 3, 3, 2))
  fn = tf.function(lambda v: layer(v, training=True), input_signature=[
      tf.TensorSpec([None, 3, 3, 2], tf.float32)], jit_compile=True)
  for batch in (1, 4):
    v = tf.random.stateless_normal((batch, 3, 3, 2), (batch, 0))
    y = fn(v).numpy().reshape(-1, 2)
    np.testing.assert_allclose(y.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=0), 1.0, atol=1e-2)
