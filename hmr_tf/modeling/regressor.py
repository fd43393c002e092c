"""Iterative error feedback (IEF) regressor: φ -> Θ_1, ..., Θ_T.

Starting from Θ_0 (a trainable vector initialised to the mean parameters),
each iteration feeds [φ, Θ_{t-1}] (2048 + 85 numbers) through the same
network R and adds the result: Θ_t = Θ_{t-1} + R([φ, Θ_{t-1}]).

R = Dense 1024 ReLU -> Dropout 0.5 -> Dense 1024 ReLU -> Dropout 0.5 ->
Dense 85 linear. The last layer starts small (variance scaling with factor
0.01, fan-average, uniform: Xavier/100) so that early on Θ_t stays near the
mean instead of jumping to wild poses.

Note: TF-Slim's fully_connected, used by the original, applies ReLU by
default, so both hidden layers are ReLU there too.
"""

from typing import List

import keras
import numpy as np
import tensorflow as tf

from hmr_tf.modeling import mean_params


def _theta_dtype() -> str:
  """float32 under a mixed (16-bit) Keras policy, else the policy's dtype."""
  policy = keras.mixed_precision.global_policy()
  if policy.compute_dtype in ('float16', 'bfloat16'):
    return 'float32'
  return policy.compute_dtype


class IterativeRegressor(keras.layers.Layer):
  """The IEF loop with weights shared across iterations.

  Args:
    mean_theta: [85] Θ_0's initial value (see mean_params.load_mean_params).
    num_stage: number of iterations T.
    hidden_units: width of both hidden layers.
    dropout_rate: dropout after each hidden layer (active with training=True).
  """

  def __init__(self, mean_theta, num_stage: int = 3, hidden_units: int = 1024,
               dropout_rate: float = 0.5, **kwargs):
    super().__init__(**kwargs)
    mean_theta = np.asarray(mean_theta, dtype=np.float64).reshape(-1)
    if mean_theta.shape != (mean_params.NUM_THETA,):
      raise ValueError(f'mean_theta must have {mean_params.NUM_THETA} values, '
                       f'got {mean_theta.size}')
    if num_stage < 1:
      raise ValueError(f'num_stage must be >= 1, got {num_stage}')
    self._mean_init = mean_theta.astype(np.float32)
    self.num_stage = num_stage
    self.fc1 = keras.layers.Dense(hidden_units, activation='relu', name='fc1')
    self.drop1 = keras.layers.Dropout(dropout_rate, name='dropout1')
    self.fc2 = keras.layers.Dense(hidden_units, activation='relu', name='fc2')
    self.drop2 = keras.layers.Dropout(dropout_rate, name='dropout2')
    # float32 under mixed precision: ΔΘ is added to Θ many times and Θ feeds
    # SMPL and the losses, so it is kept at full precision (a 1024 x 85
    # layer: no measurable cost).
    self._theta_dtype = _theta_dtype()
    self.fc3 = keras.layers.Dense(
        mean_params.NUM_THETA,
        kernel_initializer=keras.initializers.VarianceScaling(
            scale=0.01, mode='fan_avg', distribution='uniform'),
        dtype=self._theta_dtype, name='fc3')

  def build(self, feature_shape):
    # Θ_0 is one row, tiled over the batch; trainable like the original's.
    self.theta0 = self.add_weight(
        name='mean_theta', shape=(1, mean_params.NUM_THETA),
        initializer=keras.initializers.Constant(self._mean_init[None]),
        trainable=True)
    in_dim = int(feature_shape[-1]) + mean_params.NUM_THETA
    self.fc1.build((None, in_dim))
    self.fc2.build((None, self.fc1.units))
    self.fc3.build((None, self.fc2.units))

  def call(self, features, training=False) -> List[tf.Tensor]:
    """Runs the T iterations.

    Args:
      features: [B, F] image features φ.
      training: enables dropout.

    Returns:
      A list of T tensors [B, 85], Θ_1 ... Θ_T; float32 under a mixed
      policy (the hidden layers compute in float16/bfloat16).
    """
    batch = tf.shape(features)[0]
    theta = tf.tile(tf.cast(self.theta0, self._theta_dtype), [batch, 1])
    thetas = []
    for _ in range(self.num_stage):
      x = tf.concat([features, tf.cast(theta, features.dtype)], axis=1)
      x = self.drop1(self.fc1(x), training=training)
      x = self.drop2(self.fc2(x), training=training)
      theta = theta + tf.cast(self.fc3(x), self._theta_dtype)
      thetas.append(theta)
    return thetas

  def compute_output_spec(self, features, training=False):
    spec = keras.KerasTensor((features.shape[0], mean_params.NUM_THETA),
                             dtype=self._theta_dtype)
    return [spec] * self.num_stage
