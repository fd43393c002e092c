"""The 3DPW protocol on hand-built cases, against the float64 NumPy SMPL."""

import dataclasses
import types

import numpy as np
import pytest

import smpl_reference
from hmr_tf import configs
from hmr_tf.evaluation import pw3d_protocol
from hmr_tf.smpl import joints as joints_lib

NUM_VERTICES = 200


def _models():
  return pw3d_protocol.BodyModels(
      neutral=smpl_reference.random_body_model(NUM_VERTICES, seed=1),
      male=smpl_reference.random_body_model(NUM_VERTICES, seed=2),
      female=smpl_reference.random_body_model(NUM_VERTICES, seed=3))


def _params(n, seed=0):
  rng = np.random.default_rng(seed)
  return rng.normal(size=(n, 72)) * 0.3, rng.normal(size=(n, 10))


def _reference_errors(model_pred, model_gt, pose_p, betas_p, pose_g, betas_g,
                      regressor, pelvis, joints):
  """(MPJPE, PVE) in mm of one example, from the NumPy reference SMPL."""
  vp, _ = smpl_reference.smpl_forward(model_pred, pose_p, betas_p)
  vg, _ = smpl_reference.smpl_forward(model_gt, pose_g, betas_g)
  jp, jg = regressor @ vp, regressor @ vg
  cp, cg = jp[list(pelvis)].mean(0), jg[list(pelvis)].mean(0)
  mpjpe = np.linalg.norm((jp - cp)[joints] - (jg - cg)[joints], axis=-1)
  pve = np.linalg.norm((vp - cp) - (vg - cg), axis=-1)
  return 1000 * mpjpe.mean(), 1000 * pve.mean()


def test_perfect_prediction_gives_zero():
  models = pw3d_protocol.BodyModels(*([smpl_reference.random_body_model(
      NUM_VERTICES, seed=1)] * 3))
  pose, betas = _params(3)
  joints = pw3d_protocol.cocoplus_joint_set(models.neutral)
  errors = pw3d_protocol.example_errors(pose, betas, pose, betas,
                                        ['male', b'female', 'male'], models,
                                        joints)
  for key in ('mpjpe', 'pa_mpjpe', 'pve'):
    np.testing.assert_allclose(errors[key], 0, atol=1e-9)


def test_gender_selects_the_ground_truth_model():
  models = _models()
  pose, betas = _params(4, seed=1)
  pred_pose, pred_betas = _params(4, seed=2)
  genders = ['male', 'female', 'female', 'male']
  joints = pw3d_protocol.cocoplus_joint_set(models.neutral)
  errors = pw3d_protocol.example_errors(pred_pose, pred_betas, pose, betas,
                                        genders, models, joints)
  for i, gender in enumerate(genders):
    gt_model = models.male if gender == 'male' else models.female
    mpjpe, pve = _reference_errors(
        models.neutral, gt_model, pred_pose[i], pred_betas[i], pose[i],
        betas[i], models.neutral.cocoplus_regressor,
        joints_lib.LSP_PELVIS_JOINTS, list(range(14)))
    assert errors['mpjpe'][i] == pytest.approx(mpjpe, rel=1e-6)
    assert errors['pve'][i] == pytest.approx(pve, rel=1e-6)
  # The neutral model predicting the female body exactly: zero only where
  # the ground truth is female.
  same = pw3d_protocol.BodyModels(models.female, models.male, models.female)
  errors = pw3d_protocol.example_errors(pose, betas, pose, betas, genders,
                                        same, joints)
  np.testing.assert_allclose(errors['pve'][[1, 2]], 0, atol=1e-9)
  assert np.all(errors['pve'][[0, 3]] > 1.0)


def test_known_rotation_and_scale():
  model = smpl_reference.random_body_model(NUM_VERTICES, seed=4)
  models = pw3d_protocol.BodyModels(model, model, model)
  joints = pw3d_protocol.cocoplus_joint_set(model)
  pose, betas = _params(1, seed=3)
  pose[0, :3] = 0.0
  turned = pose.copy()
  turned[0, :3] = [0.0, np.pi / 2, 0.0]  # 90 degrees about y.
  errors = pw3d_protocol.example_errors(turned, betas, pose, betas, ['male'],
                                        models, joints)
  # The whole body turns rigidly: Procrustes removes it. Unaligned, a point
  # at (x, y, z) from the pelvis moves by sqrt(2) * sqrt(x^2 + z^2).
  assert errors['pa_mpjpe'][0] == pytest.approx(0, abs=1e-6)
  verts, _ = smpl_reference.smpl_forward(model, pose[0], betas[0])
  kp = model.cocoplus_regressor[:14] @ verts
  centred = kp - kp[[2, 3]].mean(0)
  expected = 1000 * np.sqrt(2) * np.hypot(centred[:, 0], centred[:, 2])
  assert errors['mpjpe'][0] == pytest.approx(expected.mean(), rel=1e-6)
  # A predicted body twice as large (vertices scaled about the origin):
  # PA-MPJPE is 0, MPJPE is the mean centred joint distance.
  big = pw3d_protocol.BodyModels(
      neutral=smpl_reference.BodyModel(
          **{**model.__dict__, 'v_template': 2 * model.v_template,
             'shapedirs': 2 * model.shapedirs,
             'posedirs': 2 * model.posedirs}),
      male=model, female=model)
  errors = pw3d_protocol.example_errors(pose, betas * 0, pose, betas * 0,
                                        ['male'], big, joints)
  verts, _ = smpl_reference.smpl_forward(model, pose[0], betas[0] * 0)
  kp = model.cocoplus_regressor[:14] @ verts
  centred = kp - kp[[2, 3]].mean(0)
  assert errors['pa_mpjpe'][0] == pytest.approx(0, abs=1e-6)
  assert errors['mpjpe'][0] == pytest.approx(
      1000 * np.linalg.norm(centred, axis=-1).mean(), rel=1e-6)


def test_h36m_regressor_file(tmp_path):
  models = _models()
  rng = np.random.default_rng(5)
  regressor = rng.dirichlet(np.ones(NUM_VERTICES), 17)
  path = str(tmp_path / 'J_regressor_h36m.npy')
  np.save(path, regressor)
  joints = pw3d_protocol.joint_set(path, models.neutral)
  assert joints.eval_joints == pw3d_protocol.H36M_TO_J14
  assert joints.pelvis_joints == (0,)
  pose, betas = _params(2, seed=6)
  pred_pose, pred_betas = _params(2, seed=7)
  errors = pw3d_protocol.example_errors(pred_pose, pred_betas, pose, betas,
                                        ['female', 'male'], models, joints)
  mpjpe, pve = _reference_errors(models.neutral, models.female, pred_pose[0],
                                 pred_betas[0], pose[0], betas[0], regressor,
                                 (0,), list(pw3d_protocol.H36M_TO_J14))
  assert errors['mpjpe'][0] == pytest.approx(mpjpe, rel=1e-6)
  assert errors['pve'][0] == pytest.approx(pve, rel=1e-6)
  np.save(path, regressor[:, :50])
  with pytest.raises(ValueError, match=r'J_regressor_h36m\.npy: expected a '
                                       r'Human3\.6M-order regressor of shape '
                                       r'\[17, 200\]'):
    pw3d_protocol.joint_set(path, models.neutral)


def test_bad_inputs():
  models = _models()
  joints = pw3d_protocol.cocoplus_joint_set(models.neutral)
  pose, betas = _params(2)
  with pytest.raises(ValueError, match=r"3DPW example 'b\.jpg': gender ''"):
    pw3d_protocol.example_errors(pose, betas, pose, betas, ['male', ''],
                                 models, joints, filenames=['a.jpg', 'b.jpg'])
  with pytest.raises(ValueError, match='the female model has 100 vertices'):
    pw3d_protocol.BodyModels(models.neutral, models.male,
                             smpl_reference.random_body_model(100))
  with pytest.raises(ValueError, match='needs --smpl_male_path'):
    pw3d_protocol.load_body_models(models.neutral, '', 'f.pkl')


def test_sequence_table():
  names = ['imageFiles/downtown_a_00/image_00001.jpg',
           'imageFiles/downtown_a_00/image_00002.jpg',
           'imageFiles/office_b_01/image_00001.jpg']
  table = pw3d_protocol.sequence_table(
      names, {'mpjpe': np.array([10.0, 20.0, 40.0])})
  assert table['downtown_a_00'] == {'mpjpe': 15.0, 'num_examples': 2}
  assert table['office_b_01']['mpjpe'] == 40.0
  assert table['mean_over_sequences'] == {'mpjpe': 27.5}


class _FakeModel:
  """Predicts one SMPL body for every image; has the neutral model."""

  def __init__(self, neutral, pose, betas):
    import tensorflow as tf  # pylint: disable=g-import-not-at-top
    self._tf = tf
    self.smpl = types.SimpleNamespace(body_model=neutral)
    self.pose = tf.constant(pose[None], tf.float32)
    self.betas = tf.constant(betas[None], tf.float32)

  def __call__(self, images, training=False):
    tf = self._tf
    b = tf.shape(images)[0]
    return {'keypoints3d': tf.zeros([b, 19, 3]),
            'keypoints2d': tf.zeros([b, 19, 2]),
            'pose': tf.tile(self.pose, [b, 1]),
            'shape': tf.tile(self.betas, [b, 1])}


def test_converted_3dpw_evaluates_from_records(tmp_path):
  # pylint: disable=g-import-not-at-top
  import cv2
  import fixtures_datasets as fx
  from datasets import pw3d
  from hmr_tf.evaluation import evaluate
  from hmr_tf.smpl import model_io
  input_dir, data_dir = str(tmp_path / '3DPW'), str(tmp_path / 'data')
  people, cam_poses = fx.write_pw3d_scene(input_dir)
  pw3d.convert(input_dir, data_dir)
  models = _models()
  female = models.female  # Person 0 is female; the network's model too.
  male_path = str(tmp_path / 'male.npz')
  female_path = str(tmp_path / 'female.npz')
  model_io.save_model(models.male, male_path)
  model_io.save_model(female, female_path)
  # The camera-frame root of person 0, frame 0, with OpenCV's Rodrigues.
  root = cam_poses[0, :3, :3] @ cv2.Rodrigues(people[0]['poses'][0, :3])[0]
  pose = people[0]['poses'][0].copy()
  pose[:3] = cv2.Rodrigues(root)[0].ravel()
  betas = people[0]['betas']
  model = _FakeModel(female, pose, betas)
  out_dir = str(tmp_path / 'eval')
  config = configs.EvalConfig(dataset='3dpw', split='test',
                               output_dir=out_dir, smpl_male_path=male_path,
                               smpl_female_path=female_path)
  data = configs.DataConfig(data_dir=data_dir, batch_size=3,
                                   img_size=32, num_parallel_calls=1)
  doc = evaluate.evaluate(model, data, config)
  pw = doc['results']['3dpw']
  assert pw['overall']['num_examples'] == 4
  # Person 0's frame 0 is predicted exactly: its errors are 0, so the
  # median over 4 examples is half the second smallest, and the mean a
  # quarter of the other three examples' errors (pose and betas as stored).
  gt_pose = np.stack([people[p]['poses'][i].copy() for p, i in
                      ((0, 0), (0, 1), (1, 0), (1, 2))])
  for k, (p, i) in enumerate(((0, 0), (0, 1), (1, 0), (1, 2))):
    gt_pose[k, :3] = cv2.Rodrigues(
        cam_poses[i, :3, :3] @ cv2.Rodrigues(people[p]['poses'][i, :3])[0]
    )[0].ravel()
  gt_betas = np.stack([people[p]['betas'] for p in (0, 0, 1, 1)])
  ref = {}
  for k in range(4):
    gt_model = female if k < 2 else models.male
    ref[k] = _reference_errors(female, gt_model, pose, betas, gt_pose[k],
                               gt_betas[k], female.cocoplus_regressor,
                               joints_lib.LSP_PELVIS_JOINTS, list(range(14)))
  assert ref[0][0] == pytest.approx(0, abs=1e-9)
  # float32 records and predictions: agree to ~0.1 mm.
  assert pw['overall']['mpjpe'] == pytest.approx(
      np.mean([r[0] for r in ref.values()]), abs=0.1)
  assert pw['overall']['pve'] == pytest.approx(
      np.mean([r[1] for r in ref.values()]), abs=0.1)
  assert list(pw['per_sequence']) == ['downtown_walk_00',
                                      'mean_over_sequences']
  assert doc['pw3d']['smpl_male_path'] == male_path
  assert doc['pw3d']['joint_regressor'] == 'cocoplus'
  assert 'pve' in doc['scalars']
  assert '2d' not in doc['results']
  assert 'downtown_walk_00' in evaluate.format_table(doc['results'], 'x')
  with pytest.raises(ValueError, match='needs --smpl_female_path'):
    evaluate.evaluate(model, data, dataclasses.replace(
        config, smpl_female_path=''))


def test_real_model_and_mean_baseline_on_3dpw_records(tmp_path):
  # The plumbing with an HMRModel (its neutral body, predicted pose and
  # betas) and the mean-parameter baseline.
  # pylint: disable=g-import-not-at-top
  import fixtures_datasets as fx
  from datasets import pw3d
  from hmr_tf.evaluation import evaluate
  from hmr_tf.data import input_pipeline
  from hmr_tf.modeling import hmr_model
  from hmr_tf.modeling import mean_params
  from hmr_tf.smpl import model_io
  input_dir, data_dir = str(tmp_path / '3DPW'), str(tmp_path / 'data')
  fx.write_pw3d_scene(input_dir)
  pw3d.convert(input_dir, data_dir)
  models = _models()
  paths = {}
  for name in ('male', 'female'):
    paths[name] = str(tmp_path / f'{name}.npz')
    model_io.save_model(getattr(models, name), paths[name])
  theta0 = mean_params.mean_theta(np.zeros(72), np.zeros(10))
  model = hmr_model.HMRModel(
      models.neutral, theta0,
      configs.ModelConfig(img_size=32, encoder='resnet_v2_small'))
  config = configs.EvalConfig(dataset='3dpw', split='test',
                               smpl_male_path=paths['male'],
                               smpl_female_path=paths['female'],
                               include_mean_baseline=True)
  data = configs.DataConfig(data_dir=data_dir, batch_size=4,
                                   img_size=32, num_parallel_calls=1)
  doc = evaluate.evaluate(model, data, config)
  for results in (doc['results'], doc['results']['mean_baseline']):
    overall = results['3dpw']['overall']
    assert overall['num_examples'] == 4
    assert all(np.isfinite(overall[k]) for k in ('mpjpe', 'pa_mpjpe', 'pve'))
  # The baseline predicts Θ_0's body for every person.
  arrays = {}
  for batch in input_pipeline.eval_dataset(data, '3dpw', 'test'):
    for key in ('pose', 'shape', 'gender'):
      arrays.setdefault(key, []).append(batch[key].numpy())
  arrays = {k: np.concatenate(v) for k, v in arrays.items()}
  errors = pw3d_protocol.example_errors(
      np.tile(theta0[3:75], (4, 1)), np.tile(theta0[75:], (4, 1)),
      arrays['pose'], arrays['shape'], arrays['gender'], models,
      pw3d_protocol.cocoplus_joint_set(models.neutral))
  baseline = doc['results']['mean_baseline']['3dpw']['overall']
  assert baseline['mpjpe'] == pytest.approx(errors['mpjpe'].mean(), rel=1e-4)
  assert baseline['pve'] == pytest.approx(errors['pve'].mean(), rel=1e-4)
