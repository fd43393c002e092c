"""hmr_tf.evaluation.evaluate: metrics on constructed data, the JSON and TensorBoard outputs."""

import glob
import json
import os
import types

import cv2
import numpy as np
import pytest
import tensorflow as tf

import smpl_reference
import summary_events
from hmr_tf import configs
from hmr_tf.data import schema
from hmr_tf.data import writer as writer_lib
from hmr_tf.evaluation import evaluate
from hmr_tf.evaluation import metrics as metrics_lib
from hmr_tf.modeling import mean_params
from hmr_tf.smpl.layer import SMPL

IMG = 64  # stored image side; crop window = base_crop_size = 64 as well.


def _skeleton(seed=0):
  # Multiples of 1/64 m: exact in float32, so zero errors stay exactly zero.
  rng = np.random.default_rng(seed)
  return np.round(rng.normal(size=(14, 3)) * 0.3 * 64) / 64


class FakeModel:
  """Predicts the same 19 keypoints for every image."""

  def __init__(self, keypoints3d, keypoints2d):
    self.kp3d = tf.constant(keypoints3d, tf.float32)
    self.kp2d = tf.constant(keypoints2d, tf.float32)

  def __call__(self, images, training=False):
    b = tf.shape(images)[0]
    return {'keypoints3d': tf.tile(self.kp3d[None], [b, 1, 1]),
            'keypoints2d': tf.tile(self.kp2d[None], [b, 1, 1])}


def _write_records(data_dir, dataset, items):
  """items: list of (filename, keypoints [14, 3] px, joints3d [14, 3])."""
  image = np.full((IMG, IMG, 3), 128, np.uint8)
  encoded = cv2.imencode('.jpg', image)[1].tobytes()
  with writer_lib.ShardedWriter(data_dir, dataset, schema.KIND_3D,
                                shard_size=2) as w:
    for name, kp, j3d in items:
      w.write('test', schema.make_image_example(
          encoded, IMG, IMG, name, (IMG // 2, IMG // 2), kp,
          joints3d=j3d, dataset=dataset))


def _data_config(data_dir):
  return configs.DataConfig(data_dir=data_dir, batch_size=2,
                                   img_size=32, base_crop_size=IMG,
                                   num_parallel_calls=1)


def test_metrics_3d_hand_computed():
  s = _skeleton()
  pred = np.stack([s, s])
  gt = np.stack([s + [0.125, -0.25, 0.5], s.copy()])
  gt[1, 13, 0] += 0.140  # head top 140 mm off: MPJPE 10 mm
  m = evaluate.metrics_3d(pred, gt)
  assert m['mpjpe'] == pytest.approx(5.0)
  assert m['mpjpe_median'] == pytest.approx(5.0)
  assert m['pck150'] == 1.0
  # 31 thresholds 0..150; for t < 140 one joint of 28 misses, else none.
  assert m['auc'] == pytest.approx(30 / 31)
  # A translated copy is aligned away by PA as well.
  assert evaluate.metrics_3d(pred[:1], gt[:1])['pa_mpjpe'] == pytest.approx(
      0, abs=1e-9)
  # PA minimises the squared error, not MPJPE: check the squared sum.
  aligned = metrics_lib.procrustes_align(
      metrics_lib.align_by_pelvis(pred[1]), metrics_lib.align_by_pelvis(gt[1]))
  sq_pa = np.sum((aligned - metrics_lib.align_by_pelvis(gt[1]))**2)
  assert sq_pa <= 0.140**2
  assert m['num_examples'] == 2


def test_metrics_2d_hand_computed():
  # Crop units: one unit = crop_size / 2 = 32 px. Torso (R_shoulder 8 ->
  # L_hip 3) = 1.0 unit, so the PCK threshold is 0.2 units.
  gt = np.zeros((1, 19, 3))
  gt[0, :14, 2] = 1.0
  gt[0, :14, 0] = 0.1  # 0.1 from the prediction (0, 0): hit, 3.2 px
  gt[0, 8, :2] = (0.0, -0.5)  # 0.5: miss, 16 px
  gt[0, 3, :2] = (0.0, 0.5)  # 0.5: miss, 16 px
  gt[0, 5, 0] = 0.3  # miss, 9.6 px
  gt[0, 13] = 0.0  # invisible: does not count
  pred = np.zeros((1, 19, 2))
  m = evaluate.metrics_2d(pred, gt, np.array([64.0]))
  assert m['pck2d_torso0.2'] == pytest.approx(10 / 13)
  assert m['kp2d_error_px'] == pytest.approx((10 * 3.2 + 32 + 9.6) / 13)


def test_evaluate_writes_json_and_tensorboard(tmp_path):
  s = _skeleton()
  kp = np.zeros((14, 3))
  kp[:, :2] = IMG // 2 + 4  # 4 px from the centre along x and y
  kp[:, 2] = 1
  gt_b = s.copy()
  gt_b[13, 0] += 0.140
  items = [('a.jpg', kp, s + [0.125, 0, 0]), ('b.jpg', kp, gt_b),
           ('c.jpg', kp, s)]
  data_dir = str(tmp_path / 'data')
  _write_records(data_dir, 'synth', items)
  kp3d = np.concatenate([s, np.zeros((5, 3))])
  model = FakeModel(kp3d, np.zeros((19, 2)))
  out_dir = str(tmp_path / 'eval')
  config = configs.EvalConfig(dataset='synth', split='test',
                               checkpoint='/ckpt/model-7', output_dir=out_dir,
                               summary_dir=out_dir, step=7)
  doc = evaluate.evaluate(model, _data_config(data_dir), config)
  # MPJPE: 0, 10, 0 mm.
  assert doc['results']['3d']['mpjpe'] == pytest.approx(10 / 3, abs=1e-4)
  assert doc['results']['3d']['mpjpe_median'] == pytest.approx(0, abs=1e-4)
  # 2D error: every joint sqrt(32) px away.
  assert doc['results']['2d']['kp2d_error_px'] == pytest.approx(
      np.sqrt(32), rel=1e-5)
  path = os.path.join(out_dir, 'eval_synth_test.json')
  with open(path) as f:
    saved = json.load(f)
  assert saved['checkpoint'] == '/ckpt/model-7'
  assert saved['num_examples'] == 3
  assert [os.path.basename(p) for p in saved['data_files']] == [
      'test_00000.tfrecord', 'test_00001.tfrecord']
  assert saved['scalars']['mpjpe'] == pytest.approx(10 / 3, abs=1e-4)
  assert not glob.glob(os.path.join(out_dir, '.tmp_*'))
  # TensorBoard scalars at step 7.
  values, _ = summary_events.read_events(out_dir)
  found = {tag: (step, float(value)) for tag, steps in values.items()
           for step, value in steps.items()}
  assert found['eval/synth_test/mpjpe'][0] == 7
  assert found['eval/synth_test/mpjpe'][1] == pytest.approx(10 / 3, abs=1e-4)
  assert 'eval/synth_test/pa_auc' in found


class FakeMeshModel(FakeModel):
  """FakeModel with a body: a mesh that moves with the image's mean."""

  def __init__(self, body_model, *args):
    super().__init__(*args)
    self.smpl = types.SimpleNamespace(body_model=body_model)
    self.v_template = tf.constant(body_model.v_template, tf.float32)

  def __call__(self, images, training=False):
    out = super().__call__(images, training)
    shift = tf.reduce_mean(images, [1, 2, 3])[:, None, None] + tf.range(
        tf.shape(images)[0], dtype=tf.float32)[:, None, None]
    out['vertices'] = self.v_template[None] + shift * [0.1, 0.2, 0.3]
    out['cam'] = tf.tile([[0.9, 0.0, 0.0]], [tf.shape(images)[0], 1])
    return out


def test_evaluate_writes_example_images_and_meshes(tmp_path):
  s = _skeleton()
  kp = np.zeros((14, 3))
  kp[:, :2] = IMG // 2
  kp[:, 2] = 1
  data_dir = str(tmp_path / 'data')
  _write_records(data_dir, 'synth', [('a.jpg', kp, s), ('b.jpg', kp, s),
                                     ('c.jpg', kp, s)])
  body = smpl_reference.random_body_model(num_vertices=60, seed=1)
  model = FakeMeshModel(body, np.concatenate([s, np.zeros((5, 3))]),
                        np.zeros((19, 2)))
  out_dir = str(tmp_path / 'eval')
  config = configs.EvalConfig(dataset='synth', split='test',
                              summary_dir=out_dir, step=5,
                              num_summary_images=2, num_summary_meshes=1)
  data_config = _data_config(data_dir)
  evaluate.evaluate(model, data_config, config)
  values, plugins = summary_events.read_events(out_dir)
  assert plugins['eval/synth_test/examples'] == 'images'
  assert len(values['eval/synth_test/examples'][5]) == 2 + 2  # 2 panels
  for part in ('VERTEX', 'FACE', 'COLOR'):
    assert plugins[f'eval/synth_test/meshes_{part}'] == 'mesh'
  # The first example's mesh, the model's vertices turned y-up.
  from hmr_tf.data import input_pipeline  # pylint: disable=g-import-not-at-top
  first = next(iter(input_pipeline.eval_dataset(data_config, 'synth',
                                                'test')))['image'][:1]
  expected = model(first)['vertices'].numpy() * [1.0, -1.0, -1.0]
  np.testing.assert_allclose(values['eval/synth_test/meshes_VERTEX'][5],
                             expected, atol=1e-6)
  np.testing.assert_array_equal(values['eval/synth_test/meshes_FACE'][5],
                                body.faces[None])


def test_evaluate_h36m_protocol_from_records(tmp_path):
  s = _skeleton(1)
  kp = np.zeros((14, 3))
  cams = ('54138969', '60457274')
  gt_off = s.copy()
  gt_off[13, 1] += 0.070  # 5 mm MPJPE
  items = [
      (f'S11_Directions.{cams[0]}_000001.jpg', kp, s + 1.0),  # corrupt
      (f'S11_Directions_1.{cams[1]}_000001.jpg', kp, gt_off),  # P2
      (f'S9_Posing_1.{cams[0]}_000001.jpg', kp, s),
  ]
  data_dir = str(tmp_path / 'data')
  _write_records(data_dir, 'h36m', items)
  kp3d = np.concatenate([s, np.zeros((5, 3))])
  model = FakeModel(kp3d, np.zeros((19, 2)))
  out_dir = str(tmp_path / 'eval')
  for protocol, frames, mpjpe in (('p1', 2, 2.5), ('p2_original', 1, 5.0)):
    config = configs.EvalConfig(dataset='h36m', h36m_protocol=protocol,
                                 output_dir=out_dir)
    doc = evaluate.evaluate(model, _data_config(data_dir), config)
    h36m = doc['results']['h36m']
    assert h36m['num_frames'] == frames
    assert h36m['overall']['mpjpe'] == pytest.approx(mpjpe, abs=1e-4)
    assert doc['h36m_protocol'] == protocol
    with open(os.path.join(out_dir, f'eval_h36m_test_{protocol}.json')) as f:
      assert json.load(f)['results']['h36m']['protocol'] == protocol
  assert 'WalkingDog' not in h36m['per_action']
  assert h36m['per_action']['Directions']['mpjpe'] == pytest.approx(
      5.0, abs=1e-4)


def test_batched_tf_metrics_equal_per_example_numpy():
  rng = np.random.default_rng(3)
  pred = rng.normal(size=(5, 14, 3)) * 0.3
  gt = rng.normal(size=(5, 14, 3)) * 0.3
  m = evaluate.metrics_3d(pred, gt)
  per = [metrics_lib.pa_mpjpe(pred[i:i + 1], gt[i:i + 1])[0] for i in range(5)]
  assert m['pa_mpjpe'] == pytest.approx(np.mean(per))
  np.testing.assert_allclose(metrics_lib.tf_pa_mpjpe(pred, gt).numpy(), per,
                             rtol=1e-9)


def test_mean_baseline_matches_numpy_smpl():
  body_model = smpl_reference.random_body_model(num_vertices=60, seed=0)
  theta0 = mean_params.mean_theta(np.zeros(72), np.zeros(10))
  fake = types.SimpleNamespace(
      regressor=types.SimpleNamespace(theta0=tf.constant(theta0, tf.float32)),
      smpl=SMPL(body_model))
  out = evaluate.mean_baseline_predictions(fake, 3)
  verts, _ = smpl_reference.smpl_forward(body_model, theta0[3:75],
                                         theta0[75:])
  kp = body_model.cocoplus_regressor @ verts
  np.testing.assert_allclose(out['pred_joints3d'][2], kp[:14], atol=1e-5)
  s, tx, ty = theta0[:3]
  np.testing.assert_allclose(out['pred_keypoints2d'][0],
                             s * (kp[:, :2] + [tx, ty]), atol=1e-5)
  assert out['pred_joints3d'].shape == (3, 14, 3)
  np.testing.assert_allclose(out['pred_pose'],
                             np.tile(theta0[3:75], (3, 1)), atol=1e-6)
  np.testing.assert_allclose(out['pred_shape'],
                             np.tile(theta0[75:], (3, 1)), atol=1e-6)
  # Another Θ (the data's mean parameters) in place of the model's Θ_0.
  rng = np.random.default_rng(1)
  other = theta0 + np.concatenate([[0.1, 0.05, -0.05],
                                   rng.normal(0, 0.2, 72),
                                   rng.normal(0, 0.5, 10)])
  given = evaluate.mean_baseline_predictions(fake, 2, other)
  verts, _ = smpl_reference.smpl_forward(body_model, other[3:75], other[75:])
  kp = body_model.cocoplus_regressor @ verts
  np.testing.assert_allclose(given['pred_joints3d'][1], kp[:14], atol=1e-5)
  s, tx, ty = other[:3]
  np.testing.assert_allclose(given['pred_keypoints2d'][1],
                             s * (kp[:, :2] + [tx, ty]), atol=1e-5)
