"""The MPI-INF-3DHP test-set protocol: hand-computed metrics, and the
converter -> records -> evaluation round trip with per-sequence and
per-activity tables."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

import fixtures_datasets as fx
from datasets import mpi_inf_3dhp_testset
from hmr_tf import configs
from hmr_tf.evaluation import evaluate
from hmr_tf.evaluation import mpi_inf_3dhp_protocol as protocol

HEAD_TOP = 13


def _skeleton_mm():
  rng = np.random.default_rng(0)
  return np.round(rng.normal(size=(14, 3)) * 300)


def _thresholds_hit(error_mm):
  """How many of the 31 AUC thresholds 0, 5, .., 150 mm an error meets."""
  return sum(1 for t in range(0, 151, 5) if error_mm <= t)


def test_metrics_hand_computed_per_sequence_and_activity():
  gt = np.stack([_skeleton_mm()] * 4) / 1000
  pred = gt.copy()
  pred[1, HEAD_TOP, 0] += 0.100  # TS1 frame: head top 100 mm off.
  pred[2, HEAD_TOP, 2] -= 0.200  # TS2 frame: 200 mm off.
  names = ['TS1/imageSequence/img_000001.jpg',
           'TS1/imageSequence/img_000002.jpg',
           'TS2/imageSequence/img_000001.jpg',
           'TS2/imageSequence/img_000005.jpg']
  out = evaluate.mpi_inf_3dhp_metrics(pred, gt, names, [1, 3, 3, 6])
  ts1, ts2 = out['per_sequence']['TS1'], out['per_sequence']['TS2']
  assert list(out['per_sequence']) == ['TS1', 'TS2']
  assert ts1['mpjpe'] == pytest.approx(100 / 14 / 2)
  assert ts1['pck150'] == 1.0
  assert ts1['auc'] == pytest.approx((27 * 31 + _thresholds_hit(100)) /
                                     (28 * 31))
  assert ts2['mpjpe'] == pytest.approx(200 / 14 / 2)
  assert ts2['pck150'] == pytest.approx(27 / 28)
  assert ts2['auc'] == pytest.approx(27 / 28)
  sitting = out['per_activity']['Sitting']
  assert sitting['num_examples'] == 2
  assert sitting['mpjpe'] == pytest.approx(300 / 14 / 2)
  assert sitting['pck150'] == pytest.approx(27 / 28)
  assert set(out['per_activity']) == {'Standing/Walking', 'Sitting',
                                      'Sports'}
  assert out['per_activity']['Sports']['mpjpe'] == 0.0
  assert out['overall']['mpjpe'] == pytest.approx(300 / 14 / 4)
  assert out['overall']['pck150'] == pytest.approx(55 / 56)


def test_rigid_alignment_removes_rotation_and_scale():
  gt = _skeleton_mm()[None] / 1000
  angle = np.deg2rad(30)
  rot = np.array([[np.cos(angle), -np.sin(angle), 0],
                  [np.sin(angle), np.cos(angle), 0], [0, 0, 1]])
  pred = 1.5 * gt @ rot.T + [0.3, 0.1, 2.0]
  out = evaluate.mpi_inf_3dhp_metrics(
      pred, gt, ['TS4/imageSequence/img_000001.jpg'], [2])['overall']
  assert out['pa_mpjpe'] == pytest.approx(0, abs=1e-9)
  assert out['pa_pck150'] == 1.0
  # The 0 mm threshold counts only exact zeros, which the float round-off of
  # the alignment (~1e-13 mm) may miss: every other threshold is met.
  assert out['pa_auc'] >= 30 / 31
  # Without alignment: hand-computed from the pelvis-centred skeletons.
  centre = lambda j: j - j[[2, 3]].mean(0)
  errors = 1000 * np.linalg.norm(centre(pred[0]) - centre(gt[0]), axis=-1)
  assert out['mpjpe'] == pytest.approx(errors.mean())
  assert out['pck150'] == pytest.approx(np.mean(errors <= 150))


def test_sequence_names():
  assert protocol.sequence_of(b'TS6/imageSequence/img_000001.jpg') == 'TS6'
  with pytest.raises(ValueError, match='not an MPI-INF-3DHP test frame'):
    protocol.sequence_of('S1/Seq1/imageFrames/video_0/frame_000001.jpg')
  assert protocol.activity_name(9) == 'unknown activity 9'


class FakeModel:
  """Predicts the same 14 joints (metres) for every image."""

  def __init__(self, joints):
    self.kp3d = tf.constant(np.concatenate([joints, np.zeros((5, 3))]),
                            tf.float32)

  def __call__(self, images, training=False):
    b = tf.shape(images)[0]
    return {'keypoints3d': tf.tile(self.kp3d[None], [b, 1, 1]),
            'keypoints2d': tf.zeros([b, 19, 2])}


def test_converted_test_set_evaluates_per_sequence_and_activity(tmp_path):
  input_dir = str(tmp_path / 'mpi_inf_3dhp_test_set')
  data_dir, out_dir = str(tmp_path / 'data'), str(tmp_path / 'eval')
  truth = _skeleton_mm()
  gt2d = np.stack([fx.skeleton(32, 8, 48)[:14]] * 3)
  valid = np.array([1, 0, 1])
  for seq, moved, activity in (('TS1', 0.0, [1, 1, 1]),
                               ('TS2', 200.0, [1, 3, 3])):
    univ = np.stack([truth] * 3)
    univ[:, HEAD_TOP, 1] += moved
    fx.write_3dhp_test_sequence(os.path.join(input_dir, seq), gt2d,
                                univ * 1.1, univ, valid, activity)
  mpi_inf_3dhp_testset.convert(input_dir, data_dir)
  config = configs.EvalConfig(dataset=protocol.TEST_DATASET, split='test',
                               output_dir=out_dir)
  data = configs.DataConfig(data_dir=data_dir, batch_size=3,
                                   img_size=32, base_crop_size=64,
                                   num_parallel_calls=1)
  doc = evaluate.evaluate(FakeModel(truth / 1000), data, config)
  hp = doc['results']['mpi_inf_3dhp']
  assert doc['mpi_inf_3dhp']['annot3'] == 'univ_annot3'
  assert hp['per_sequence']['TS1']['mpjpe'] == pytest.approx(0, abs=1e-3)
  assert hp['per_sequence']['TS1']['num_examples'] == 2
  assert hp['per_sequence']['TS2']['mpjpe'] == pytest.approx(200 / 14,
                                                             abs=1e-3)
  assert hp['per_sequence']['TS2']['pck150'] == pytest.approx(13 / 14)
  assert hp['per_activity']['Standing/Walking']['num_examples'] == 3
  assert hp['per_activity']['Sitting']['mpjpe'] == pytest.approx(200 / 14,
                                                                 abs=1e-3)
  assert doc['scalars']['pck150'] == pytest.approx(54 / 56)
  with open(os.path.join(out_dir, 'eval_mpi_inf_3dhp_test_test.json')) as f:
    saved = json.load(f)
  assert saved['results']['mpi_inf_3dhp']['per_sequence']['TS2'][
      'num_examples'] == 2
  table = evaluate.format_table(doc['results'], 'x')
  assert 'Sitting' in table and 'TS2' in table
