"""Tests for HMRModel: outputs, the two update steps, losses, overfitting."""

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

import repo_paths  # tests/support/
import smpl_reference
from hmr_tf import configs
from hmr_tf.modeling import hmr_model
from hmr_tf.modeling import mean_params

IMG = 32
CONFIG = configs.ModelConfig(img_size=IMG)


def _body_model():
  return smpl_reference.random_body_model(num_vertices=80, seed=0)


def _mean_theta():
  return mean_params.mean_theta(np.zeros(72), np.zeros(10))


def _model(config=CONFIG, body_model=None):
  tf.keras.utils.set_random_seed(0)
  model = hmr_model.HMRModel(body_model or _body_model(), _mean_theta(),
                             config)
  model.compile()
  return model


def _batch(b=2, seed=0, has_3d=(1.0, 0.0), has_smpl=(0.0, 1.0)):
  rng = np.random.default_rng(seed)
  kp = np.concatenate([rng.uniform(-1, 1, (b, 19, 2)),
                       rng.integers(0, 2, (b, 19, 1))], -1)
  kp[..., :2] *= kp[..., 2:]  # invisible points are all zeros
  return dict(
      image=rng.uniform(-1, 1, (b, IMG, IMG, 3)).astype(np.float32),
      keypoints2d=kp.astype(np.float32),
      joints3d=rng.normal(size=(b, 14, 3)).astype(np.float32) * 0.3,
      has_joints3d=np.asarray(has_3d, np.float32),
      pose=(rng.normal(size=(b, 72)) * 0.3).astype(np.float32),
      shape=rng.normal(size=(b, 10)).astype(np.float32),
      has_smpl=np.asarray(has_smpl, np.float32))


def _mocap(n, seed=1):
  rng = np.random.default_rng(seed)
  return dict(pose=(rng.normal(size=(n, 72)) * 0.3).astype(np.float32),
              shape=rng.normal(size=(n, 10)).astype(np.float32))


def _snapshot(variables):
  return [v.numpy().copy() for v in variables]


def _changed(before, variables):
  return [not np.array_equal(b, v.numpy()) for b, v in zip(before, variables)]


def _bn_moving(model):
  return [v for v in model.encoder.non_trainable_variables
          if 'moving' in v.path]


def test_call_outputs():
  model = _model()
  out = model(_batch()['image'])
  n = model.smpl.num_vertices
  expected = dict(cam=(2, 3), pose=(2, 72), shape=(2, 10),
                  vertices=(2, n, 3), joints3d=(2, 24, 3),
                  keypoints3d=(2, 19, 3), keypoints2d=(2, 19, 2),
                  theta_stages=(2, 3, 85))
  assert {k: tuple(v.shape) for k, v in out.items()} == expected
  # keypoints2d is the weak-perspective projection of keypoints3d.
  cam = out['cam'].numpy()
  kp3d = out['keypoints3d'].numpy()
  np.testing.assert_allclose(
      out['keypoints2d'].numpy(),
      cam[:, None, :1] * (kp3d[..., :2] + cam[:, None, 1:]), rtol=1e-5,
      atol=1e-6)
  np.testing.assert_array_equal(out['theta_stages'].numpy()[:, -1, :3], cam)


def test_generator_step_updates_only_encoder_and_regressor():
  model = _model()
  gen = model.generator_variables
  disc = model.discriminator_variables
  moving = _bn_moving(model)
  g0, d0, m0 = _snapshot(gen), _snapshot(disc), _snapshot(moving)
  terms, (fake_r, fake_b) = model._generator_step(_batch())
  for name, value in terms.items():
    assert np.isfinite(value.numpy()), name
  assert fake_r.shape == (6, 24, 3, 3) and fake_b.shape == (6, 10)
  changed = _changed(g0, gen)
  assert np.mean(changed) > 0.95, np.mean(changed)
  assert all(_changed(g0, model.regressor.trainable_variables))  # Θ_0 too
  assert not any(_changed(d0, disc))
  assert all(_changed(m0, moving))  # batch norm statistics update here


def test_discriminator_step_updates_only_discriminator():
  model = _model()
  gen = model.generator_variables
  disc = model.discriminator_variables
  moving = _bn_moving(model)
  g0, d0, m0 = _snapshot(gen), _snapshot(disc), _snapshot(moving)
  rng = np.random.default_rng(3)
  fakes = smpl_reference_rotmats(rng.normal(size=(6, 24, 3)) * 0.3)
  terms = model._discriminator_step(fakes, rng.normal(size=(6, 10)),
                                    _mocap(6))
  for name, value in terms.items():
    assert np.isfinite(value.numpy()), name
  assert all(_changed(d0, disc))
  assert not any(_changed(g0, gen))
  assert not any(_changed(m0, moving))


def smpl_reference_rotmats(axis_angle):
  """[M, 24, 3] -> [M, 24, 3, 3] float32 with the NumPy Rodrigues."""
  return np.stack([np.stack([smpl_reference.rodrigues(r) for r in body])
                   for body in axis_angle]).astype(np.float32)


def _kernel_decay(model, variables_of):
  total = sum(np.sum(v.numpy().astype(np.float64)**2)
              for v in variables_of(model))
  return 1e-4 * 0.5 * total


def _generator_kernels(model):
  # Every Conv2D / Dense kernel of the encoder, and the regressor's three.
  import keras  # pylint: disable=g-import-not-at-top
  out = [l.kernel for l in model.encoder.layers
         if isinstance(l, (keras.layers.Conv2D, keras.layers.Dense))]
  r = model.regressor
  return out + [r.fc1.kernel, r.fc2.kernel, r.fc3.kernel]


def test_generator_losses_match_numpy_reference():
  config = dataclasses.replace(CONFIG, dropout_rate=0.0)
  model = _model(config)
  batch = _batch(b=3, has_3d=(1.0, 0.0, 1.0), has_smpl=(0.0, 1.0, 1.0))
  # Training-mode forward (batch statistics, no dropout) is deterministic, so
  # it shows exactly what the step sees before its update.
  pred = {k: (v.numpy().astype(np.float64) if not isinstance(v, list) else v)
          for k, v in model._predict(batch['image'], training=True).items()}
  d_fake = model.discriminator(pred['rotmats_all'][:, 1:],
                               pred['betas_all']).numpy().astype(np.float64)
  wd = _kernel_decay(model, _generator_kernels)
  terms, _ = model._generator_step(batch)

  kp = batch['keypoints2d'].astype(np.float64)
  vis = kp[..., 2:]
  ref_kp = 60 * np.sum(vis * np.abs(kp[..., :2] - pred['keypoints2d'])) / (
      2 * vis.sum())

  def centre(j):
    return j - 0.5 * (j[:, 2:3] + j[:, 3:4])

  has_j = batch['has_joints3d'][:, None]
  diff = (centre(batch['joints3d'].astype(np.float64)) -
          centre(pred['keypoints3d'][:, :14])).reshape(3, -1)
  ref_joints = 60 * 0.5 * np.sum(has_j * diff**2) / (42 * has_j.sum())
  gt_rot = np.stack([[smpl_reference.rodrigues(r) for r in p.reshape(24, 3)]
                     for p in batch['pose'].astype(np.float64)])
  has_s = batch['has_smpl'][:, None]
  diff = np.concatenate([(gt_rot - pred['rotmats']).reshape(3, -1),
                         batch['shape'] - pred['shape']], 1)
  ref_smpl = 60 * 0.5 * np.sum(has_s * diff**2) / (226 * has_s.sum())
  ref_adv = np.sum((d_fake - 1)**2) / d_fake.shape[0]

  got = {k: float(v.numpy()) for k, v in terms.items()}
  assert got['loss_kp'] == pytest.approx(ref_kp, rel=1e-4)
  assert got['loss_3d_joints'] == pytest.approx(ref_joints, rel=1e-4)
  assert got['loss_3d_smpl'] == pytest.approx(ref_smpl, rel=1e-4)
  assert got['loss_adv'] == pytest.approx(ref_adv, rel=1e-4)
  assert got['loss_g_wd'] == pytest.approx(wd, rel=1e-4)
  assert got['g_loss'] == pytest.approx(
      ref_kp + ref_joints + ref_smpl + ref_adv + wd, rel=1e-4)
  # The fakes are all T stages' predictions, stage-major.
  stages = pred['theta_stages']
  np.testing.assert_allclose(
      pred['betas_all'], np.concatenate([stages[:, t, 75:] for t in range(3)]),
      rtol=1e-6)


def _reference_terms(body, batch, theta, weight_2d=60.0, weight_3d=60.0):
  """float64 (2D, 3D joint, SMPL parameter) losses of one Θ [B, 85]."""
  cams, poses, betas = theta[:, :3], theta[:, 3:75], theta[:, 75:]
  kp3d = np.stack([np.asarray(body.cocoplus_regressor) @
                   smpl_reference.smpl_forward(body, p, b)[0]
                   for p, b in zip(poses, betas)])
  kp2d = cams[:, None, :1] * (kp3d[..., :2] + cams[:, None, 1:])
  kp = batch['keypoints2d'].astype(np.float64)
  vis = kp[..., 2:]
  loss_kp = weight_2d * np.sum(vis * np.abs(kp[..., :2] - kp2d)) / (
      2 * vis.sum())
  b = len(theta)

  def centre(j):
    return j - 0.5 * (j[:, 2:3] + j[:, 3:4])

  has_j = batch['has_joints3d'][:, None]
  diff = (centre(batch['joints3d'].astype(np.float64)) -
          centre(kp3d[:, :14])).reshape(b, -1)
  loss_joints = weight_3d * 0.5 * np.sum(has_j * diff**2) / (
      42 * has_j.sum())
  rot = lambda p: np.stack([smpl_reference.rodrigues(r)
                            for r in p.reshape(24, 3)])
  has_s = batch['has_smpl'][:, None]
  diff = np.concatenate(
      [np.stack([rot(g) - rot(q) for g, q in zip(
          batch['pose'].astype(np.float64), poses)]).reshape(b, -1),
       batch['shape'] - betas], 1)
  loss_smpl = weight_3d * 0.5 * np.sum(has_s * diff**2) / (226 * has_s.sum())
  return np.array([loss_kp, loss_joints, loss_smpl])


def test_all_stage_supervision_is_the_mean_over_the_iterations():
  body = _body_model()
  batch = _batch(b=3, has_3d=(1.0, 0.0, 1.0), has_smpl=(0.0, 1.0, 1.0))
  terms = ('loss_kp', 'loss_3d_joints', 'loss_3d_smpl')
  got = {}
  for supervision in configs.IEF_SUPERVISION:
    model = _model(dataclasses.replace(CONFIG, dropout_rate=0.0,
                                       ief_supervision=supervision), body)
    # Training mode without dropout is deterministic: the Θ the step sees.
    stages = model._predict(batch['image'], training=True,
                            with_mesh=False)['theta_stages'].numpy()
    step, _ = model._generator_step(batch)
    got[supervision] = np.array([float(step[k]) for k in terms])
  stages = stages.astype(np.float64)  # Both models start from seed 0.
  per_stage = np.stack([_reference_terms(body, batch, stages[:, t])
                        for t in range(stages.shape[1])])
  np.testing.assert_allclose(got['last'], per_stage[-1], rtol=1e-4)
  np.testing.assert_allclose(got['all'], per_stage.mean(0), rtol=1e-4)
  # The iterations differ, so the two options differ.
  assert np.all(np.abs(per_stage[0] - per_stage[-1]) > 1e-4 * per_stage[-1])


def test_unknown_ief_supervision_is_refused():
  with pytest.raises(ValueError, match='ief_supervision'):
    _model(dataclasses.replace(CONFIG, ief_supervision='first'))


def test_discriminator_losses_match_numpy_reference():
  model = _model()
  rng = np.random.default_rng(5)
  fake_r = smpl_reference_rotmats(rng.normal(size=(6, 24, 3)) * 0.5)
  fake_b = rng.normal(size=(6, 10)).astype(np.float32)
  mocap = _mocap(6, seed=6)
  real_r = smpl_reference_rotmats(mocap['pose'].reshape(6, 24, 3))
  d_real = model.discriminator(real_r[:, 1:], mocap['shape']).numpy()
  d_fake = model.discriminator(fake_r[:, 1:], fake_b).numpy()
  d_real, d_fake = d_real.astype(np.float64), d_fake.astype(np.float64)
  wd = _kernel_decay(model, lambda m: [
      v for v in m.discriminator.trainable_variables if v.name == 'kernel'])
  terms = model._discriminator_step(fake_r, fake_b, mocap)
  got = {k: float(v.numpy()) for k, v in terms.items()}
  ref_real = np.sum((d_real - 1)**2) / 6
  ref_fake = np.sum(d_fake**2) / 6
  assert got['d_loss_real'] == pytest.approx(ref_real, rel=1e-4)
  assert got['d_loss_fake'] == pytest.approx(ref_fake, rel=1e-4)
  assert got['loss_d_wd'] == pytest.approx(wd, rel=1e-4)
  assert got['d_loss'] == pytest.approx(ref_real + ref_fake + wd, rel=1e-4)
  assert got['d_out_real'] == pytest.approx(d_real.mean(), rel=1e-4,
                                            abs=1e-6)
  assert got['d_out_fake'] == pytest.approx(d_fake.mean(), rel=1e-4,
                                            abs=1e-6)


def test_flag_choices_are_the_lr_schedules():
  from absl import flags as absl_flags  # pylint: disable=g-import-not-at-top
  from hmr_tf import flags as _  # pylint: disable=g-import-not-at-top,unused-import
  assert tuple(absl_flags.FLAGS['lr_schedule'].parser.enum_values) == (
      hmr_model.LR_SCHEDULES)


def test_smpl_weight_scales_only_the_smpl_parameter_loss():
  config = dataclasses.replace(CONFIG, dropout_rate=0.0)
  batch = _batch(b=2, has_3d=(1.0, 1.0), has_smpl=(1.0, 1.0))
  same, _ = _model(config)._generator_step(batch)  # e_smpl_weight None: 60
  split, _ = _model(dataclasses.replace(config, e_smpl_weight=7.0)
                    )._generator_step(batch)
  assert split['loss_3d_joints'].numpy() == pytest.approx(
      same['loss_3d_joints'].numpy(), rel=1e-6)
  assert split['loss_3d_smpl'].numpy() == pytest.approx(
      same['loss_3d_smpl'].numpy() * 7.0 / 60.0, rel=1e-5)
  assert same['loss_3d_smpl'].numpy() > 0


def test_cosine_schedule_halves_at_the_middle_and_ends_at_zero():
  config = dataclasses.replace(CONFIG, e_lr=1e-3, d_lr=4e-4,
                               lr_schedule='cosine', lr_decay_steps=100)
  g_opt, d_opt = hmr_model.build_optimizers(config)
  for step, factor in ((0, 1.0), (25, 0.5 * (1 + np.cos(np.pi / 4))),
                       (50, 0.5), (100, 0.0), (150, 0.0)):
    # The optimizers read the schedule at their own step counters.
    for opt, rate in ((g_opt, 1e-3), (d_opt, 4e-4)):
      opt.iterations.assign(step)
      assert float(opt.learning_rate) == pytest.approx(rate * factor,
                                                       abs=1e-9)
  constant, _ = hmr_model.build_optimizers(CONFIG)
  constant.iterations.assign(1000)
  assert float(constant.learning_rate) == pytest.approx(CONFIG.e_lr)
  with pytest.raises(ValueError, match='lr_decay_steps'):
    hmr_model.build_optimizers(dataclasses.replace(config, lr_decay_steps=0))
  with pytest.raises(ValueError, match='lr_schedule'):
    hmr_model.build_optimizers(dataclasses.replace(config,
                                                   lr_schedule='step'))


def test_batch_without_3d_gives_exactly_zero_3d_loss():
  model = _model()
  batch = _batch(has_3d=(0.0, 0.0), has_smpl=(0.0, 0.0))
  terms, _ = model._generator_step(batch)
  assert terms['loss_3d_joints'].numpy() == 0.0
  assert terms['loss_3d_smpl'].numpy() == 0.0
  assert np.isfinite(terms['g_loss'].numpy())
  assert all(np.all(np.isfinite(v.numpy())) for v in model.generator_variables)


def test_weight_decay_flag_off_matches_original_code():
  model = _model(dataclasses.replace(CONFIG, weight_decay=0.0))
  terms, _ = model._generator_step(_batch())
  assert terms['loss_g_wd'].numpy() == 0.0


def _overfit_data(body_model, n=8, seed=0):
  """n fixed images with keypoints of random bodies seen by the mean camera."""
  rng = np.random.default_rng(seed)
  pose = rng.normal(size=(n, 72)) * 0.2
  pose[:, :3] = (np.pi, 0.0, 0.0)
  kp = []
  for p in pose:
    verts, _ = smpl_reference.smpl_forward(body_model, p, np.zeros(10))
    k3 = body_model.cocoplus_regressor @ verts
    kp.append(0.9 * k3[:, :2])
  kp = np.concatenate([np.stack(kp), np.ones((n, 19, 1))], -1)
  batch = _batch(b=n, seed=seed, has_3d=np.zeros(n), has_smpl=np.zeros(n))
  batch['keypoints2d'] = kp.astype(np.float32)
  return batch


def _overfit_model(body_model):
  config = dataclasses.replace(CONFIG, dropout_rate=0.0, weight_decay=0.0,
                               e_lr=1e-3, d_lr=1e-4)
  return _model(config, body_model)


def _kp_loss(model, batch):
  # Training mode (batch statistics), as the steps see it.
  pred = model._predict(batch['image'], training=True)
  return float(model._keypoint_loss(batch, pred).numpy())


def test_fit_overfits_quickly_and_evaluates():
  """Graph mode (fit / evaluate) end to end, with a weak overfitting bound."""
  body_model = _body_model()
  model = _overfit_model(body_model)
  batch = _overfit_data(body_model)
  before = _kp_loss(model, batch)
  data = tf.data.Dataset.from_tensors((batch, _mocap(24))).repeat(25)
  history = model.fit(data, epochs=1, verbose=0)
  logs = {k: v[-1] for k, v in history.history.items()}
  assert set(hmr_model.GENERATOR_TERMS + hmr_model.DISCRIMINATOR_TERMS) <= set(
      logs)
  assert all(np.isfinite(v) for v in logs.values()), logs
  assert int(model.g_optimizer.iterations.numpy()) == 25
  assert int(model.d_optimizer.iterations.numpy()) == 25
  after = _kp_loss(model, batch)
  assert after < before / 1.5, (before, after)

  eval_batch = _batch()
  result = model.evaluate(tf.data.Dataset.from_tensors(eval_batch), verbose=0,
                          return_dict=True)
  assert set(result) == set(hmr_model.EVAL_TERMS)
  # Reference MPJPE on the one example with 3D joints (has_joints3d = 1, 0).
  pred = model(eval_batch['image'])['keypoints3d'].numpy()[:, :14]

  def centre(j):
    return j - 0.5 * (j[:, 2:3] + j[:, 3:4])

  err = np.linalg.norm(centre(pred) - centre(eval_batch['joints3d']), axis=-1)
  assert result['mpjpe_mm'] == pytest.approx(1000 * err[0].mean(), rel=1e-3)
  assert 0 < result['pa_mpjpe_mm'] <= result['mpjpe_mm']


@pytest.mark.slow
def test_overfit_eight_examples_200_steps():
  from hmr_tf.smpl import standin  # pylint: disable=g-import-not-at-top
  body_model = standin.build(100)
  model = _overfit_model(body_model)
  batch = _overfit_data(body_model)
  before = _kp_loss(model, batch)
  step = tf.function(model.train_step)
  mocap = _mocap(24)
  for _ in range(200):
    step((batch, mocap))
  after = _kp_loss(model, batch)
  assert after < before / 5, (before, after)


# Runs in a fresh process: the two logical CPU devices must be configured
# before TensorFlow initialises.
_DISTRIBUTED_SCRIPT = r"""
import sys
import tensorflow as tf
cpu = tf.config.list_physical_devices('CPU')[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
import numpy as np
import smpl_reference
from hmr_tf import configs
from hmr_tf.modeling import hmr_model, mean_params


def build(strategy):
  with strategy.scope():
    keras.utils.set_random_seed(0)
    model = hmr_model.HMRModel(
        smpl_reference.random_body_model(60, seed=0),
        mean_params.mean_theta(np.zeros(72), np.zeros(10)),
        configs.ModelConfig(img_size=32))
    # SGD: an update proportional to the gradient (Adam's first step is not).
    model.compile(d_optimizer=keras.optimizers.SGD(0.1))
  return model


rng = np.random.default_rng(0)
rot = np.stack([[smpl_reference.rodrigues(r) for r in body]
                for body in rng.normal(size=(8, 24, 3)) * 0.4])
fake_r = tf.constant(rot, tf.float32)
fake_b = tf.constant(rng.normal(size=(8, 10)), tf.float32)
mocap = dict(pose=tf.constant(rng.normal(size=(8, 72)) * 0.3, tf.float32),
             shape=tf.constant(rng.normal(size=(8, 10)), tf.float32))
single = build(tf.distribute.get_strategy())
terms = single._discriminator_step(fake_r, fake_b, mocap)
mirrored = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])
multi = build(mirrored)
ds = tf.data.Dataset.from_tensors((fake_r, fake_b, mocap)).unbatch().batch(8)
shards = next(iter(mirrored.experimental_distribute_dataset(ds)))
shares = mirrored.run(multi._discriminator_step, args=shards)
for k in ('d_loss_real', 'd_loss_fake', 'loss_d_wd', 'd_loss'):
  total = float(mirrored.reduce('SUM', shares[k], axis=None))
  np.testing.assert_allclose(total, float(terms[k]), rtol=1e-5, err_msg=k)
for a, b in zip(single.discriminator_variables,
                multi.discriminator_variables):
  np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6,
                             err_msg=a.path)
if 'fit' in sys.argv:
  b = 4
  data = dict(
      image=rng.uniform(-1, 1, (b, 32, 32, 3)).astype(np.float32),
      keypoints2d=np.concatenate([rng.uniform(-1, 1, (b, 19, 2)),
                                  np.ones((b, 19, 1))], -1).astype(np.float32),
      joints3d=rng.normal(size=(b, 14, 3)).astype(np.float32),
      has_joints3d=np.array([1, 0, 0, 1], np.float32),
      pose=rng.normal(size=(b, 72)).astype(np.float32) * 0.2,
      shape=rng.normal(size=(b, 10)).astype(np.float32),
      has_smpl=np.array([0, 1, 0, 0], np.float32))
  mo = dict(pose=rng.normal(size=(3 * b, 72)).astype(np.float32) * 0.2,
            shape=rng.normal(size=(3 * b, 10)).astype(np.float32))
  ds = tf.data.Dataset.zip(tf.data.Dataset.from_tensor_slices(data).batch(b),
                           tf.data.Dataset.from_tensor_slices(mo).batch(3 * b))
  logs = multi.fit(ds, epochs=1, verbose=0).history
  assert all(np.isfinite(v[-1]) for v in logs.values()), logs
print('DISTRIBUTED_OK')
"""


def _run_distributed(*args):
  root = repo_paths.ROOT
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(
      [root, repo_paths.SUPPORT, os.environ.get('PYTHONPATH', '')]))
  proc = subprocess.run([sys.executable, '-c', _DISTRIBUTED_SCRIPT, *args],
                        env=env, capture_output=True, text=True, timeout=900)
  assert proc.returncode == 0 and 'DISTRIBUTED_OK' in proc.stdout, (
      proc.stdout[-3000:] + proc.stderr[-3000:])


def test_discriminator_step_two_replicas_equals_one():
  """Replica shares add up to the global losses and the same update."""
  _run_distributed()


@pytest.mark.slow
def test_fit_under_mirrored_strategy():
  _run_distributed('fit')


def test_weight_decay_gradient_equals_differentiating_the_l2_term():
  import keras  # pylint: disable=g-import-not-at-top
  model = _model(dataclasses.replace(CONFIG, weight_decay=0.05))
  model.compile(d_optimizer=keras.optimizers.SGD(1.0))
  rng = np.random.default_rng(8)
  fake_r = tf.constant(smpl_reference_rotmats(rng.normal(size=(4, 24, 3))))
  fake_b = tf.constant(rng.normal(size=(4, 10)), tf.float32)
  mocap = _mocap(4, seed=9)
  real_r = tf.constant(smpl_reference_rotmats(mocap['pose'].reshape(4, 24, 3)))
  variables = model.discriminator_variables
  before = _snapshot(variables)
  with tf.GradientTape() as tape:
    d_real = model.discriminator(real_r[:, 1:], mocap['shape'])
    d_fake = model.discriminator(fake_r[:, 1:], fake_b)
    total = (tf.reduce_sum((d_real - 1)**2) / 4 +
             tf.reduce_sum(d_fake**2) / 4 +
             0.05 * 0.5 * tf.add_n([tf.reduce_sum(v**2) for v in variables
                                    if v.name == 'kernel']))
  grads = tape.gradient(total, variables)
  model._discriminator_step(fake_r, fake_b, mocap)
  for b, g, v in zip(before, grads, variables):
    np.testing.assert_allclose(v.numpy(), b - g.numpy(), rtol=1e-4,
                               atol=1e-6, err_msg=v.path)


def test_small_encoder_trains_and_restores_from_its_config(tmp_path):
  """The quickstart's small networks; the saved config rebuilds them.

  --encoder=resnet_v2_small: φ has 512 numbers; --regressor_units and
  --d_pose_units narrow the regressor's and the discriminator's hidden
  layers.
  """
  from hmr_tf.training import checkpoints  # pylint: disable=g-import-not-at-top
  from hmr_tf.training import model_files  # pylint: disable=g-import-not-at-top
  paper = _model(CONFIG)
  assert paper.regressor.fc2.kernel.shape == (1024, 1024)
  assert paper.discriminator.pose_fc2.kernel.shape == (1024, 1024)
  config = dataclasses.replace(CONFIG, encoder='resnet_v2_small',
                               regressor_units=48, d_pose_units=40)
  model = _model(config)
  assert model.encoder.output.shape[-1] == 512
  assert model.regressor.fc1.kernel.shape == (512 + 85, 48)
  assert model.regressor.fc2.kernel.shape == (48, 48)
  assert model.regressor.fc3.kernel.shape == (48, 85)
  assert model.discriminator.pose_fc1.kernel.shape == (23 * 32, 40)
  assert model.discriminator.pose_fc2.kernel.shape == (40, 40)
  assert model.discriminator.pose_out.kernel.shape == (40, 1)
  before = _snapshot(model.generator_variables)
  logs = model.train_step((_batch(), _mocap(6)))
  assert all(np.isfinite(float(v)) for v in logs.values())
  assert np.mean(_changed(before, model.generator_variables)) > 0.95
  model_files.save_model_config(str(tmp_path), config)
  prefix = tf.train.Checkpoint(model=model).save(str(tmp_path / 'ckpt'))
  restored = checkpoints.restore_model(prefix, _body_model())
  assert restored.config.encoder == 'resnet_v2_small'
  assert restored.regressor.fc2.kernel.shape == (48, 48)
  images = tf.random.stateless_uniform((2, IMG, IMG, 3), (1, 2), -1.0, 1.0)
  np.testing.assert_allclose(restored(images)['theta_stages'].numpy(),
                             model(images)['theta_stages'].numpy(), atol=1e-5)
