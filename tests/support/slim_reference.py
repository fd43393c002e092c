"""The original HMR's networks, built with TF-Slim in a TF1 graph (tests only).

TF-Slim's `resnet_v2_50` under `resnet_arg_scope` is the encoder the
original ran (`src/models.py: Encoder_resnet`); the regressor and the
discriminator are rebuilt here with slim layers in the same scopes, so the
checkpoints written below carry exactly the original's variable names.
Everything runs through `tf.compat.v1` in its own `tf.Graph`.

`tf_slim` builds its layers on TensorFlow's legacy `tf.layers`, which
TensorFlow 2.21 loads lazily from `tf_keras.legacy_tf_layers`; tf_keras
2.21 ships that package as `tf_keras.src.legacy_tf_layers`.
`_alias_legacy_layers` registers the one under the other's name before slim
is imported.
"""

import importlib
import sys

import numpy as np
import tensorflow as tf

from hmr_tf.modeling import mean_params
import smpl_reference  # tests/support/

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
  """Slim's resnet_v2_50 as the original's Encoder_resnet calls it.

  Returns [B, 2048] features.
  """
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


def smpl_variables(body):
  """The original batch_smpl.py's variables of a BodyModel: {name: array}.

  Layouts as the original stores them: shapedirs / posedirs flattened
  row-major from [N, 3, K] to [3N, K] and transposed; the regressors as
  [N, J] (they multiply [B, N] vertex coordinates).
  """
  n = body.num_vertices
  return {
      'v_template': body.v_template,
      'shapedirs': body.shapedirs.reshape(3 * n, -1).T,
      'posedirs': body.posedirs.reshape(3 * n, -1).T,
      'J_regressor': body.J_regressor.T,
      'lbs_weights': body.weights,
      'cocoplus_regressor': body.cocoplus_regressor.T,
  }


def write_checkpoint(prefix, arrays, v1=False):
  """Writes {name: array} as a checkpoint with exactly those names.

  V2 (a .index/.data pair beside `prefix`) by default; `v1` writes the
  single-file V1 format of TF-Slim's released ImageNet checkpoints such as
  `resnet_v2_50.ckpt`.
  """
  names = sorted(arrays)
  tensors = [tf.constant(arrays[n]) for n in names]
  if v1:
    tf.raw_ops.Save(filename=prefix, tensor_names=names, data=tensors)
  else:
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names,
                      shape_and_slices=[''] * len(names), tensors=tensors)
  return prefix


def build_original_checkpoint(prefix, body, crops, mean_param, seed=0,
                              with_discriminator=True, global_step=667589,
                              d_inputs=None):
  """The original's test graph (RunModel) with random weights, saved.

  Builds slim's resnet_v2_50, three iterations of `3D_module` from
  `mean_param`, the discriminator (optional) and the SMPL variables, gives
  the networks random weights (fc3 small, as the original's initialiser),
  saves everything plus Adam-like slots and `global_step` at `prefix`, and
  returns what the original graph computes.

  Args:
    prefix: checkpoint prefix to write.
    body: the BodyModel whose arrays become the SMPL variables.
    crops: [B, S, S, 3] images in [-1, 1].
    mean_param: [85] Θ_0.
    seed: weight seed.
    with_discriminator: also create (and save) the `D/...` variables.
    global_step: the step saved in `global_step`.
    d_inputs: optional (rotmats [M, 23, 3, 3], betas [M, 10]) to score.

  Returns:
    dict with 'features' [B, 2048], 'thetas' [T, B, 85] (the original's
    graph, float32) and 'd_out' [M, 25] when d_inputs is given.
  """
  rng = np.random.default_rng(seed + 100)
  graph = tf.Graph()
  out = {}
  with graph.as_default():
    images = tf.compat.v1.placeholder(tf.float32, crops.shape)
    features = resnet_v2_50(images)
    mean_var = tf.compat.v1.Variable(np.zeros((1, NUM_THETA), np.float32),
                                     name='mean_param')
    theta = tf.tile(mean_var, [crops.shape[0], 1])
    thetas = []
    for i in range(3):
      theta = theta + regressor_step(tf.concat([features, theta], 1),
                                     reuse=i > 0)
      thetas.append(theta)
    d_out = None
    if with_discriminator:
      if d_inputs is None:
        d_inputs = (np.tile(np.eye(3), (1, 23, 1, 1)), np.zeros((1, 10)))
      rot, betas = d_inputs
      d_out = discriminator(
          tf.constant(np.reshape(rot, [-1, 23, 1, 9]), tf.float32),
          tf.constant(betas, tf.float32))
    smpl = {name: tf.compat.v1.Variable(value.astype(np.float32), name=name,
                                        trainable=False)
            for name, value in smpl_variables(body).items()}
    step = tf.compat.v1.Variable(np.int64(global_step), name='global_step',
                                 trainable=False)
    # An optimizer slot beside a weight, which the importer must ignore.
    slot = tf.compat.v1.Variable(np.ones((7, 7, 3, 64), np.float32),
                                 name='resnet_v2_50/conv1/weights/Adam')
    with tf.compat.v1.Session() as sess:
      sess.run(tf.compat.v1.global_variables_initializer())
      randomize(sess, seed=seed)
      for v in tf.compat.v1.global_variables():
        if v.op.name == '3D_module/fc3/weights':
          v.load(rng.normal(0, 1e-3, v.shape.as_list()).astype(np.float32),
                 sess)
      mean_var.load(np.asarray(mean_param, np.float32)[None], sess)
      for name, var in smpl.items():
        var.load(smpl_variables(body)[name].astype(np.float32), sess)
      step.load(np.int64(global_step), sess)
      slot.load(np.ones((7, 7, 3, 64), np.float32), sess)
      fetch = {'features': features, 'thetas': tf.stack(thetas)}
      if d_out is not None and d_inputs is not None:
        fetch['d_out'] = d_out
      out = sess.run(fetch, {images: crops})
      tf.compat.v1.train.Saver().save(sess, prefix, write_meta_graph=False)
  return out


# ---------------------------------------------------------------------------
# Sample inputs shared by the tests.


def sample_crops(num=2, size=224, seed=5):
  """[num, size, size, 3] crops in [-1, 1]: smooth patterns plus noise."""
  rng = np.random.default_rng(seed)
  yy, xx = np.mgrid[0:size, 0:size] / size
  crops = []
  for i in range(num):
    a, b = rng.uniform(2, 8, 2)
    smooth = np.stack([np.sin(a * xx + i), np.cos(b * yy), xx - yy], -1)
    crops.append(0.7 * smooth + 0.3 * rng.uniform(-1, 1, smooth.shape))
  return np.clip(np.stack(crops), -1, 1).astype(np.float32)


def sample_mean_param():
  """[85] Θ_0: camera 0.9, root π about x, a random small pose and shape."""
  rng = np.random.default_rng(1)
  pose = rng.normal(0, 0.1, mean_params.NUM_POSE)
  shape = rng.normal(0, 0.5, mean_params.NUM_SHAPE)
  return mean_params.mean_theta(pose, shape)


def sample_d_inputs(num=3, seed=2):
  """(rotmats [num, 23, 3, 3], betas [num, 10]) for the discriminator."""
  rng = np.random.default_rng(seed)
  rot = np.stack([[smpl_reference.rodrigues(r)
                   for r in rng.normal(0, 0.5, (23, 3))] for _ in range(num)])
  return rot, rng.normal(0, 1, (num, 10))
