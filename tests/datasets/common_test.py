"""datasets.common: the person-scale rule and the crop, hand-computed."""

import numpy as np
import pytest

from datasets import common


def _kp(points):
  out = np.zeros((14, 3))
  for index, (x, y) in points.items():
    out[index] = [x, y, 1]
  return out


def test_person_scale_rules():
  # Ankle visible: 150 / diagonal of the visible box (30 x 40 -> 50).
  assert common.person_scale(_kp({0: (10, 50), 13: (40, 10)})) == 3.0
  # No ankle: 75 / mean shoulder-hip length (L: 30, R: 20).
  torso = _kp({9: (0, 0), 3: (0, 30), 8: (10, 0), 2: (10, 20)})
  assert common.person_scale(torso) == pytest.approx(3.0)
  # No ankle, no torso side: 50 / box diagonal (a wrist and the head top).
  partial = _kp({6: (0, 0), 13: (6, 8)})
  assert common.person_scale(partial) == pytest.approx(5.0)
  # Face only (head top, neck): not used.
  assert common.person_scale(_kp({12: (0, 0), 13: (0, 10)})) is None
  assert common.person_scale(np.zeros((14, 3))) is None


def test_crop_person_hand_computed():
  image = np.arange(40 * 20 * 3, dtype=np.uint8).reshape(40, 20, 3)
  keypoints = _kp({0: (3.5, 9.5), 13: (11.5, 29.5)})
  crop = common.crop_person(image, keypoints, scale=2.0, margin=10)
  # Resized to 40 x 80; pixel centres: x' = (x + 0.5) * 2 - 0.5.
  np.testing.assert_allclose(crop.scale_factors, [2, 2])
  scaled = np.array([[7.5, 19.5], [23.5, 59.5]])
  center = scaled.mean(0)  # (15.5, 39.5)
  np.testing.assert_array_equal(crop.offset, [5, 29])  # floor(c - 10)
  np.testing.assert_allclose(crop.center, center - [5, 29])
  np.testing.assert_allclose(crop.keypoints[[0, 13], :2], scaled - [5, 29])
  np.testing.assert_array_equal(crop.keypoints[1:13], 0.0)
  assert crop.image.shape == (20, 20, 3)  # rows 29..49, cols 5..25


def test_check_array_names_file_and_record():
  with pytest.raises(common.BadRecordError,
                     match=r'f\.mat: record 4: x: expected shape \[\*, 3\]'):
    common.check_array(np.zeros((2, 2)), [None, 3], 'f.mat', 4, 'x')
  with pytest.raises(common.BadRecordError, match='non-finite'):
    common.check_array([np.nan], [1], 'f.mat', 4, 'x')


def test_load_mat_turns_any_damage_into_one_value_error(tmp_path):
  # A joints.mat cut anywhere (as a failed download leaves it) is one
  # ValueError naming the file, whatever scipy raised inside.
  import scipy.io  # pylint: disable=g-import-not-at-top
  path = str(tmp_path / 'joints.mat')
  scipy.io.savemat(path, {'joints': np.arange(3 * 14 * 10.0).reshape(3, 14,
                                                                    10)})
  data = open(path, 'rb').read()
  np.testing.assert_array_equal(common.load_mat(path)['joints'].shape,
                                (3, 14, 10))
  for cut in range(0, len(data), max(1, len(data) // 40)):
    with open(path, 'wb') as f:
      f.write(data[:cut])
    with pytest.raises(ValueError, match='joints.mat: cannot read the .mat'):
      common.load_mat(path)
