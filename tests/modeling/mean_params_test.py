"""Tests for reading the mean parameters Θ_0."""

import h5py
import numpy as np
import pytest

from hmr_tf.modeling import mean_params


def _pose_shape(seed=0):
  rng = np.random.default_rng(seed)
  return rng.normal(size=72), rng.normal(size=10)


def test_npz_sets_camera_and_upright_global_rotation(tmp_path):
  pose, shape = _pose_shape()
  path = tmp_path / 'mean.npz'
  np.savez(path, pose=pose, shape=shape)
  theta = mean_params.load_mean_params(str(path))
  assert theta.shape == (85,)
  np.testing.assert_array_equal(theta[:3], [0.9, 0.0, 0.0])
  np.testing.assert_array_equal(theta[3:6], [np.pi, 0.0, 0.0])
  np.testing.assert_array_equal(theta[6:75], pose[3:])
  np.testing.assert_array_equal(theta[75:], shape)
  kept = mean_params.load_mean_params(str(path), upright=False)
  np.testing.assert_array_equal(kept[3:75], pose)


def test_original_h5_layout(tmp_path):
  # deepdish wrote each array as a root dataset named by its key.
  pose, shape = _pose_shape(1)
  path = tmp_path / 'neutral_smpl_mean_params.h5'
  with h5py.File(path, 'w') as f:
    f['pose'] = pose
    f['shape'] = shape
  theta = mean_params.load_mean_params(str(path))
  np.testing.assert_array_equal(theta[3:6], [np.pi, 0.0, 0.0])
  np.testing.assert_array_equal(theta[6:75], pose[3:])
  np.testing.assert_array_equal(theta[75:], shape)


def test_split_theta_round_trip():
  pose, shape = _pose_shape(2)
  theta = mean_params.mean_theta(pose, shape, upright=False)
  cam, p, s = mean_params.split_theta(theta)
  np.testing.assert_array_equal(cam, mean_params.MEAN_CAMERA)
  np.testing.assert_array_equal(p, pose)
  np.testing.assert_array_equal(s, shape)


@pytest.mark.parametrize('content, match', [
    (dict(shape=np.zeros(10)), "missing key 'pose'"),
    (dict(pose=np.zeros(72), shape=np.zeros(9)), "'shape' has 9 values"),
    (dict(pose=np.full(72, np.nan), shape=np.zeros(10)), 'non-finite'),
])
def test_bad_npz(tmp_path, content, match):
  path = tmp_path / 'bad.npz'
  np.savez(path, **content)
  with pytest.raises(ValueError, match=match):
    mean_params.load_mean_params(str(path))


def test_missing_and_garbage_files(tmp_path):
  with pytest.raises(ValueError, match='no such mean-parameter file'):
    mean_params.load_mean_params(str(tmp_path / 'nope.npz'))
  garbage = tmp_path / 'garbage.h5'
  garbage.write_bytes(b'not a mean parameter file')
  with pytest.raises(ValueError, match='garbage.h5'):
    mean_params.load_mean_params(str(garbage))
