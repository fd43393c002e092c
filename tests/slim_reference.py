"""The original HMR's networks, built with TF-Slim in a TF1 graph (tests only).

TF-Slim's `resnet_v2_50` under `resnet_arg_scope` is the encoder the
original ran (`src/models.py: Encoder_resnet`); the regressor and the
discriminator are rebuilt here with slim layers in the same scopes, so the
checkpoints written below carry exactly the original's variable names.
Everything runs through `tf.compat.v1` in its own `tf.Graph`.

`tf_slim` builds its layers on TensorFlow's legacy `tf.layers`, which
TensorFlow 2.21 loads lazily from `tf_keras.legacy_tf_layers`; tf_keras
2.21 ships that package as `tf_keras.src.legacy_tf_layers`. `_alias_legacy_layers`
registers the one under the other's name before slim is imported.
"""

import importlib
import sys

import numpy as np
import tensorflow as tf

NUM_THETA = 85


def _alias_legacy_layers():
  if 'tf_keras.legacy_tf_layers' in sys.modules:
    return
  legacy = importlib.import_module('tf_keras.src.legacy_tf_layers')
  sys.modules['tf_keras.legacy_tf_layers'] = legacy
  for name in ('base', 'convolutional', 'core', 'normalization', 'pooling',
               'variable_scope_shim'):
    sys.modules[f'tf_keras.legacy_tf_layers.{name}'] = importlib.import_module(
        f'tf_keras.src.legacy_tf_layers.{name}')


def slim():
  """(tf_slim, resnet_v2) modules, importable after the alias."""
  _alias_legacy_layers()
  import tf_slim  # pylint: disable=g-import-not-at-top
  from tf_slim.nets import resnet_v2  # pylint: disable=g-import-not-at-top
  return tf_slim, resnet_v2


def resnet_v2_50(images):
  """Slim's resnet_v2_50 as the original's Encoder_resnet calls it: [B, 2048]."""
  tf_slim, resnet_v2 = slim()
  with tf_slim.arg_scope(resnet_v2.resnet_arg_scope(weight_decay=0.001)):
    net, _ = resnet_v2.resnet_v2_50(images, num_classes=None,
                                    is_training=False, reuse=False,
                                    scope='resnet_v2_50')
  return tf.squeeze(net, axis=[1, 2])


def regressor_step(state, reuse):
  """One pass of the original's `3D_module` (fc1 -> fc2 -> fc3, no dropout)."""
  tf_slim, _ = slim()
  with tf.compat.v1.variable_scope('3D_module', reuse=reuse):
    net = tf_slim.fully_connected(state, 1024, scope='fc1')
    net = tf_slim.fully_connected(net, 1024, scope='fc2')
    return tf_slim.fully_connected(net, NUM_THETA, activation_fn=None,
                                   scope='fc3')


def discriminator(poses, shapes):
  """The original's factorized discriminator: poses [B, 23, 1, 9] -> [B, 25]."""
  tf_slim, _ = slim()
  with tf.compat.v1.variable_scope('D'):
    poses = tf_slim.conv2d(poses, 32, [1, 1], scope='D_conv1')
    poses = tf_slim.conv2d(poses, 32, [1, 1], scope='D_conv2')
    joint_out = [tf_slim.fully_connected(poses[:, j, :, :], 1,
                                         activation_fn=None,
                                         scope=f'pose_out_j{j}')
                 for j in range(23)]
    joint_out = tf.reshape(tf.stack(joint_out, axis=1), [-1, 23])
    shape = tf_slim.stack(shapes, tf_slim.fully_connected, [10, 5],
                          scope='shape_fc1')
    shape_out = tf_slim.fully_connected(shape, 1, activation_fn=None,
                                        scope='shape_final')
    flat = tf_slim.flatten(poses, scope='vectorize')
    flat = tf_slim.fully_connected(flat, 1024, scope='D_alljoints_fc1')
    flat = tf_slim.fully_connected(flat, 1024, scope='D_alljoints_fc2')
    pose_out = tf_slim.fully_connected(flat, 1, activation_fn=None,
                                       scope='D_alljoints_out')
    return tf.concat([joint_out, pose_out, shape_out], axis=1)


def randomize(session, seed=0, scale=0.05):
  """Gives every variable non-trivial values (batch-norm statistics too).

  Kernels ~ N(0, scale); biases, gammas and betas vary around their usual
  values; moving means ~ N(0, 0.1), moving variances ~ U(0.5, 1.5).
  """
  rng = np.random.default_rng(seed)
  for v in tf.compat.v1.global_variables():
    shape = v.shape.as_list()
    name = v.op.name
    if name.endswith('moving_variance'):
      value = rng.uniform(0.5, 1.5, shape)
    elif name.endswith('moving_mean'):
      value = rng.normal(0, 0.1, shape)
    elif name.endswith('gamma'):
      value = rng.uniform(0.5, 1.5, shape)
    elif name.endswith(('beta', 'biases')):
      value = rng.normal(0, 0.1, shape)
    else:
      fan_in = np.prod(shape[:-1]) if len(shape) > 1 else 1
      value = rng.normal(0, min(scale, np.sqrt(2.0 / fan_in)), shape)
    v.load(value.astype(v.dtype.as_numpy_dtype), session)
