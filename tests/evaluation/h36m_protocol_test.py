"""Human3.6M protocols: file names, frame selection, per-action means."""

import numpy as np
import pytest

from hmr_tf.evaluation import evaluate
from hmr_tf.evaluation import h36m_protocol as h36m

CAMS = h36m.CAMERA_IDS


def _name(subject, video, camera, frame=1):
  return f'S{subject}_{video}.{CAMS[camera]}_{frame:06d}.jpg'


def test_parse_filename():
  f = h36m.parse_filename(b'/data/S9_Directions_1.54138969_000123.jpg')
  assert f == h36m.Frame(subject=9, action='Directions', video_number=1,
                         camera=0, frame=123)
  f = h36m.parse_filename('S11_WalkDog.60457274_000005.jpg')
  assert f == h36m.Frame(subject=11, action='WalkingDog', video_number=None,
                         camera=3, frame=5)
  assert h36m.parse_filename('S9_Photo_1.58860488_000001.jpg').action == (
      'TakingPhoto')


@pytest.mark.parametrize('name', [
    'S9_Directions_1_cam0.jpg',  # no camera id / frame
    'S9_Dancing_1.54138969_000001.jpg',  # unknown action
    'S9_Directions_1.12345678_000001.jpg',  # unknown camera
    'lsp_im0001.jpg',
])
def test_parse_filename_rejects(name):
  with pytest.raises(ValueError, match='image/filename'):
    h36m.parse_filename(name)


def test_trials():
  # Numbered and unnumbered video: the numbered one is trial 0.
  # Two numbers: the smaller one is trial 0.
  names = [_name(11, 'Directions', 0), _name(11, 'Directions_1', 0),
           _name(9, 'Discussion_2', 1), _name(9, 'Discussion_1', 1)]
  keys = h36m.sequence_keys(names)
  assert keys == [(11, 'Directions', 1, 0), (11, 'Directions', 0, 0),
                  (9, 'Discussion', 1, 1), (9, 'Discussion', 0, 1)]


def test_protocol_selection_and_corrupt_sequence():
  names = [
      _name(11, 'Directions', 0),    # (11, Directions, 1, 0): corrupt
      _name(11, 'Directions_1', 0),  # trial 0, camera 0
      _name(11, 'Directions', 3),    # trial 1, camera 3
      _name(11, 'Directions_1', 3),  # trial 0, camera 3: in P2
      _name(9, 'Eating_1', 2),       # trial 0, camera 2
      _name(1, 'Eating_1', 3),       # S1 is a training subject
  ]
  mask_p1, _ = h36m.select(names, 'p1')
  mask_p2, _ = h36m.select(names, 'p2_original')
  mask_p2_all, _ = h36m.select(names, 'p2_all_cameras_pa')
  np.testing.assert_array_equal(mask_p1, [0, 1, 1, 1, 1, 0])
  np.testing.assert_array_equal(mask_p2, [0, 0, 0, 1, 0, 0])
  np.testing.assert_array_equal(mask_p2_all, mask_p1)
  with pytest.raises(ValueError, match='h36m_protocol'):
    h36m.select(names, 'p3')


def test_action_table_is_mean_of_sequence_means():
  # Directions: sequence A has frames with errors 10, 20 (mean 15), sequence
  # B one frame with 40: action mean (15 + 40) / 2 = 27.5, not the frame
  # mean 23.33. Eating: one sequence, 5 and 7 -> 6. Mean over actions 16.75.
  keys = [(9, 'Directions', 0, 0), (9, 'Directions', 0, 0),
          (9, 'Directions', 0, 1), (11, 'Eating', 0, 0),
          (11, 'Eating', 0, 0)]
  errors = {'mpjpe': np.array([10.0, 20.0, 40.0, 5.0, 7.0])}
  table = h36m.action_table(keys, errors)
  assert list(table) == ['Directions', 'Eating', 'mean_over_actions']
  assert table['Directions']['mpjpe'] == pytest.approx(27.5)
  assert table['Directions']['num_frames'] == 3
  assert table['Directions']['num_sequences'] == 2
  assert table['Eating']['mpjpe'] == pytest.approx(6.0)
  assert table['mean_over_actions']['mpjpe'] == pytest.approx(16.75)


def _skeleton():
  rng = np.random.default_rng(0)
  return rng.normal(size=(14, 3)) * 0.3


def test_h36m_metrics_selects_frames_and_averages_per_action():
  gt = np.stack([_skeleton()] * 4)
  pred = gt.copy()
  # Frame 1 (in P2): the head top (joint 13) 70 mm off: MPJPE 5 mm.
  pred[1, 13, 0] += 0.070
  # Frame 0 is the corrupt sequence: a huge error must not count.
  pred[0] += np.random.default_rng(1).normal(size=(14, 3))
  names = [_name(11, 'Directions', 0), _name(11, 'Directions_1', 3),
           _name(9, 'Greeting_1', 3), _name(9, 'Greeting_1', 0)]
  res = evaluate.h36m_metrics(pred, gt, names, 'p1')
  assert res['num_frames'] == 3 and res['num_skipped'] == 1
  assert res['overall']['mpjpe'] == pytest.approx(5.0 / 3)
  assert res['per_action']['Directions']['mpjpe'] == pytest.approx(5.0)
  assert res['per_action']['Greeting']['mpjpe'] == pytest.approx(0.0)
  assert res['per_action']['mean_over_actions']['mpjpe'] == pytest.approx(2.5)
  assert 'P' in res['protocol_description'] or 'Protocol' in (
      res['protocol_description'])
  res2 = evaluate.h36m_metrics(pred, gt, names, 'p2_original')
  assert res2['num_frames'] == 2
  assert res2['overall']['mpjpe'] == pytest.approx(2.5)
  assert res2['protocol'] == 'p2_original'
  assert 'camera 3' in res2['protocol_description']
  with pytest.raises(ValueError, match='none of the'):
    evaluate.h36m_metrics(pred[:1], gt[:1], names[:1], 'p2_original')
