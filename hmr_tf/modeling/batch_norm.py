"""Batch normalisation in training with its gradient written out.

Ioffe & Szegedy (2015), over the N = B·H·W rows of a [N, C] matrix x:

  μ = Σ_n x / N,  σ² = Σ_n (x - μ)² / N,  x̂ = (x - μ) / √(σ² + ε),
  y = γ x̂ + β;

  ∂L/∂β = Σ_n g,  ∂L/∂γ = Σ_n g x̂,
  ∂L/∂x = γ / (N √(σ² + ε)) · (N g - ∂L/∂β - x̂ ∂L/∂γ),   g = ∂L/∂y.

These are the numbers automatic differentiation of Keras' batch norm gives,
up to round-off. Why write them out: differentiating Keras' formulation
(tf.nn.moments, then tf.nn.batch_normalization's broadcasts) leaves XLA a
separate column sum for each broadcast in the backward pass, and XLA's CPU
backend runs sums over the rows of a [N, C] matrix slowly: they took 12.7 ms
of the small encoder's ~60 ms of work per training step at 64 px, batch 32.
Written out, the two backward sums read the same tensors and fuse with the
element-wise work: the encoder's XLA train step 0.82-0.88x the time, the
HMR step 0.86x (docs/quickstart_speed.md). Used, with `encoder.MatmulConv2D`,
where the small encoder trains under XLA
(`encoder.build_encoder(xla_layers=True)`).
"""

import keras
import tensorflow as tf


def normalize_in_training(x, gamma, beta, epsilon: float):
  """Batch-normalises x with its batch statistics; the gradient written out.

  Args:
    x: [N, C] float32, one row per position and image.
    gamma: [C] scale γ.
    beta: [C] offset β.
    epsilon: ε added to the variance.

  Returns:
    (y [N, C], mean μ [C], variance σ² [C]); σ² is the biased variance (the
    one tf.nn.moments returns, which Keras' moving variance averages). The
    gradient flows to x, γ and β through y only; μ and σ² are for the
    moving statistics and carry none.
  """

  @tf.custom_gradient
  def normalize(x, gamma, beta):
    n = tf.cast(tf.shape(x)[0], x.dtype)
    mean = tf.reduce_sum(x, axis=0) / n  # [C]
    centred = x - mean  # [N, C]
    variance = tf.reduce_sum(tf.square(centred), axis=0) / n  # [C]
    inv_std = tf.math.rsqrt(variance + epsilon)  # [C]
    x_hat = centred * inv_std  # [N, C]
    y = x_hat * gamma + beta

    def grad(dy, unused_dmean, unused_dvariance):
      dbeta = tf.reduce_sum(dy, axis=0)  # [C]
      dgamma = tf.reduce_sum(dy * x_hat, axis=0)  # [C]
      dx = (gamma * inv_std / n) * (n * dy - dbeta - x_hat * dgamma)
      return dx, dgamma, dbeta

    return (y, mean, variance), grad

  y, mean, variance = normalize(x, gamma, beta)
  return y, tf.stop_gradient(mean), tf.stop_gradient(variance)


class OwnGradientBatchNormalization(keras.layers.BatchNormalization):
  """keras.layers.BatchNormalization, training through `normalize_in_training`.

  The same variables (so checkpoints are interchangeable), the same moving
  statistics' update and, up to round-off, the same outputs and gradients.
  In inference, and for what this formulation does not cover (a mask,
  renormalisation, synchronised statistics, an axis other than the last,
  no scale or no centre), it is Keras' layer.
  """

  def call(self, inputs, training=None, mask=None):
    last_axis = self.axis in (-1, len(inputs.shape) - 1)
    if (not (training and self.trainable) or mask is not None or
        self.renorm or self.synchronized or not last_axis or
        not self.scale or not self.center):
      return super().call(inputs, training=training, mask=mask)
    channels = inputs.shape[-1]
    # Like Keras: statistics in float32 whatever the compute dtype.
    x = tf.reshape(tf.cast(inputs, tf.float32), [-1, channels])
    y, mean, variance = normalize_in_training(
        x, tf.cast(self.gamma, tf.float32), tf.cast(self.beta, tf.float32),
        self.epsilon)
    self.moving_mean.assign(self.moving_mean * self.momentum +
                            mean * (1.0 - self.momentum))
    self.moving_variance.assign(self.moving_variance * self.momentum +
                                variance * (1.0 - self.momentum))
    return tf.cast(tf.reshape(y, tf.shape(inputs)), self.compute_dtype)
