"""Mixed precision (mixed_float16 / mixed_bfloat16) and XLA for HMRModel.

Each model is built under a Keras global policy and copies the weights of a
float32 model built from the same seed, so the differences measured are the
precision's alone. Tolerances follow the formats: bfloat16 keeps 8
significant bits (relative rounding 2^-9 ~ 0.2% per operation), float16 11
bits (2^-12 ~ 0.02%); through ResNet-50 these add up to ~0.6% (bfloat16)
and ~0.07% (float16) relative error in the pooled features φ, so the bounds
below are about 3x those measured, and far below the errors the checks are
there to catch (a loss scale left in the gradients: x256; a missing float32
output: Θ quantised to 2^-8 of π).

The images are 64 px: at 32 px ResNet-50's last stage has 1x1 feature maps,
where batch norm over 4 values is so ill-conditioned that the float16
backward pass overflows at any loss scale.
"""

import numpy as np
import pytest
import tensorflow as tf

import hmr_model_test as hm
import smpl_reference
from hmr_tf import configs
from hmr_tf.modeling import hmr_model
from hmr_tf.modeling import mean_params
from hmr_tf.training import distribute

IMG = 64
POLICIES = ('mixed_bfloat16', 'mixed_float16')
# Max relative error of φ, max abs error of Θ (values up to π), max relative
# error of a one-step SGD update of well-conditioned variables.
FEATURE_TOL = {'mixed_bfloat16': 2e-2, 'mixed_float16': 3e-3}
THETA_TOL = {'mixed_bfloat16': 6e-3, 'mixed_float16': 4e-3}
UPDATE_TOL = {'mixed_bfloat16': 0.1, 'mixed_float16': 0.03}
# Θ_0 and the discriminator's whole-pose output kernel.
UPDATE_CHECKED = ('regressor/mean_theta', 'discriminator/pose_out/kernel')


@pytest.fixture(autouse=True)
def _restore_policy():
  yield
  distribute.set_precision_policy('none')


def _build(policy='none', weights=None, optimizers=None, img=IMG,
           weight_decay=0.01):
  import keras  # pylint: disable=g-import-not-at-top
  distribute.set_precision_policy(policy)
  keras.utils.set_random_seed(0)
  model = hmr_model.HMRModel(
      smpl_reference.random_body_model(80, seed=0),
      mean_params.mean_theta(np.zeros(72), np.zeros(10)),
      configs.ModelConfig(img_size=img, dropout_rate=0.0,
                            weight_decay=weight_decay))
  g, d = optimizers or (keras.optimizers.SGD(1e-4), keras.optimizers.SGD(1e-3))
  model.compile(g_optimizer=g, d_optimizer=d)
  if weights is not None:
    model.set_weights(weights)
  distribute.set_precision_policy('none')
  return model


def _data(img=IMG):
  batch = hm._batch(4, seed=3, has_3d=(1, 0, 1, 0), has_smpl=(0, 1, 1, 0))
  batch['image'] = np.random.default_rng(0).uniform(
      -1, 1, (4, img, img, 3)).astype(np.float32)
  return batch, hm._mocap(12)


def _step(model, data):
  before = {v.path: np.asarray(v).copy() for v in model.weights}
  logs = tf.function(model.train_step)(data)
  updates = {v.path: np.asarray(v) - before[v.path] for v in model.weights}
  return {k: float(v) for k, v in logs.items()}, updates


@pytest.fixture(scope='module')
def reference():
  """The float32 model's weights, outputs, features and one-step update."""
  model = _build()
  weights = model.get_weights()
  batch, mocap = _data()
  out = {k: v.numpy() for k, v in model(batch['image']).items()}
  features = model.encoder(batch['image']).numpy()
  logs, updates = _step(model, (batch, mocap))
  return dict(weights=weights, out=out, features=features, logs=logs,
              updates=updates)


@pytest.mark.parametrize('policy', [
    'mixed_bfloat16',
    # float16 convolutions are slow on CPU (~50 s here); fast on a GPU.
    pytest.param('mixed_float16', marks=pytest.mark.slow)])
def test_policy_keeps_float32_where_it_matters(policy, reference):
  import keras  # pylint: disable=g-import-not-at-top
  optimizers = None
  if policy == 'mixed_float16':
    # A loss scale that does not overflow on the first step (the default
    # 2^15 does; see test_overflowing_step_is_skipped_and_scale_lowered).
    optimizers = tuple(keras.optimizers.LossScaleOptimizer(
        keras.optimizers.SGD(lr), initial_scale=256.0) for lr in (1e-4, 1e-3))
  model = _build(policy, reference['weights'], optimizers)
  batch, mocap = _data()
  compute = policy.split('_')[1]
  features = model.encoder(batch['image'])
  assert features.dtype.name == compute  # the policy is in force
  out = model(batch['image'])
  for key in ('cam', 'pose', 'shape', 'theta_stages', 'vertices',
              'keypoints2d'):
    assert out[key].dtype == tf.float32, key
  scores = model.discriminator(tf.eye(3, batch_shape=[2, 23]),
                               tf.zeros([2, 10]))
  assert scores.dtype == tf.float32
  error = (np.linalg.norm(np.float32(features) - reference['features']) /
           np.linalg.norm(reference['features']))
  assert error < FEATURE_TOL[policy], error
  np.testing.assert_allclose(out['theta_stages'].numpy(),
                             reference['out']['theta_stages'], rtol=0,
                             atol=THETA_TOL[policy])

  logs, updates = _step(model, (batch, mocap))
  assert all(np.isfinite(v) for v in logs.values()), logs
  for name in ('loss_kp', 'g_loss', 'd_loss'):
    np.testing.assert_allclose(logs[name], reference['logs'][name], rtol=2e-2,
                               err_msg=name)
  for path in UPDATE_CHECKED:
    ref = reference['updates'][path]
    rel = np.linalg.norm(updates[path] - ref) / np.linalg.norm(ref)
    assert rel < UPDATE_TOL[policy], (path, rel)


def test_float16_wraps_both_optimizers_in_loss_scaling():
  import keras  # pylint: disable=g-import-not-at-top
  model = _build('mixed_float16', img=32)
  for optimizer in (model.g_optimizer, model.d_optimizer):
    assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer)
  for optimizer in (_build('mixed_bfloat16', img=32).g_optimizer,
                    _build('none', img=32).g_optimizer):
    assert not isinstance(optimizer, keras.optimizers.LossScaleOptimizer)


def test_overflowing_step_is_skipped_and_scale_lowered():
  # At 32 px the float16 backward pass overflows (see the module docstring):
  # the generator update is skipped, its loss scale halves, the logged losses
  # stay finite. (The discriminator's scaled gradients may overflow too.)
  model = _build('mixed_float16', img=32)
  batch, mocap = _data(img=32)
  logs, updates = _step(model, (batch, mocap))
  assert all(np.isfinite(v) for v in logs.values()), logs
  assert all(not np.any(updates[v.path]) for v in model.generator_variables)
  assert float(model.g_optimizer.dynamic_scale) == 2.0**14
  assert float(model.d_optimizer.dynamic_scale) <= 2.0**15


def test_weight_decay_is_scaled_with_the_loss():
  # Discriminator step with a large weight decay: the update must be the
  # float32 one, decay included (an unscaled decay term would shrink to
  # decay / 256 after the optimizer removes the loss scale).
  import keras  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(4)
  fake_r = tf.constant(hm.smpl_reference_rotmats(rng.normal(size=(6, 24, 3))))
  fake_b = tf.constant(rng.normal(size=(6, 10)), tf.float32)
  mocap = hm._mocap(6, seed=5)
  results = []
  for policy in ('none', 'mixed_float16'):
    optimizers = (keras.optimizers.SGD(0.0), keras.optimizers.SGD(0.1))
    if policy == 'mixed_float16':
      optimizers = tuple(keras.optimizers.LossScaleOptimizer(
          o, initial_scale=256.0) for o in optimizers)
    model = _build(policy, optimizers=optimizers, img=32, weight_decay=1.0)
    variables = model.discriminator_variables
    before = [v.numpy().copy() for v in variables]
    model._discriminator_step(fake_r, fake_b, mocap)  # pylint: disable=protected-access
    results.append([v.numpy() - b for v, b in zip(variables, before)])
  for ref, got in zip(*results):
    # Norm-wise: float16 flips a few ReLUs near zero (a handful of entries).
    assert np.linalg.norm(got - ref) < 2e-2 * np.linalg.norm(ref)


@pytest.mark.slow  # XLA compiles ResNet-50's train step: ~1 min on 2 cores
def test_jit_compiled_training_and_inference():
  import keras  # pylint: disable=g-import-not-at-top
  plain = _build(img=32)
  batch, mocap = _data(img=32)
  compiled = _build(img=32, weights=plain.get_weights())
  compiled.compile(g_optimizer=keras.optimizers.SGD(1e-4),
                   d_optimizer=keras.optimizers.SGD(1e-3), jit_compile=True)
  assert compiled.jit_compile
  images = batch['image']
  np.testing.assert_allclose(
      compiled.predict(images, verbose=0)['theta_stages'],
      plain(images)['theta_stages'].numpy(), rtol=1e-4, atol=1e-4)
  # The first step's losses (same weights and data); later steps drift
  # apart at 32 px (ill-conditioned batch norm, see the module docstring).
  ds = tf.data.Dataset.from_tensors((batch, mocap))
  logs = compiled.fit(ds, epochs=1, verbose=0).history
  reference = plain.fit(ds, epochs=1, verbose=0).history
  for name in ('loss_kp', 'g_loss', 'd_loss'):
    np.testing.assert_allclose(logs[name][-1], reference[name][-1],
                               rtol=1e-3, err_msg=name)
  logs = compiled.fit(ds.repeat(2), epochs=1, verbose=0).history
  for name, values in logs.items():
    assert np.isfinite(values[-1]), name
