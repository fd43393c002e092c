"""datasets.pw3d: Python 2 sequence pickles + frames -> 3D records."""

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

import repo_paths  # tests/support/
import fixtures_datasets as fx
import smpl_reference
from datasets import pw3d
from hmr_tf.data import writer as writer_lib
from hmr_tf.smpl import joints as joints_lib

IMG_FRAME_IDS = fx.PW3D_IMG_FRAME_IDS
F, C = fx.PW3D_FOCAL, fx.PW3D_CENTER
INTRINSICS = fx.PW3D_INTRINSICS
# SMPL index of each LSP joint but the head top (written out by name here).
LSP_FROM_SMPL = [joints_lib.SMPL_JOINT_NAMES.index(n) for n in (
    'right_ankle', 'right_knee', 'right_hip', 'left_hip', 'left_knee',
    'left_ankle', 'right_wrist', 'right_elbow', 'right_shoulder',
    'left_shoulder', 'left_elbow', 'left_wrist', 'neck')]
_write = fx.write_pw3d_scene


def _expected_crop(points):
  # The rule by hand: scale so that 1.2 x the longer box side is 224 px,
  # cv2.resize's pixel-centre mapping, the box centre, a clipped 300 px
  # window.
  side = np.max(points.max(0) - points.min(0))
  scale = 224 / (1.2 * side)
  factor = np.floor(64 * scale) / 64
  scaled = (points + 0.5) * factor - 0.5
  center = (scaled.min(0) + scaled.max(0)) / 2
  start = np.maximum(np.floor(center - 150), 0)
  return scaled - start, center - start


def test_round_trip_pose_shape_gender_crop(tmp_path):
  input_dir, out = str(tmp_path / '3DPW'), str(tmp_path / 'out')
  people, cam_poses = _write(input_dir)
  meta = pw3d.convert(input_dir, out, shard_size=2)
  test = meta['splits']['test']
  assert test['num_examples'] == 4
  assert test['filtered'] == {'camera pose not valid': 2}
  assert meta['examples_per_sequence'] == {'test': {'downtown_walk_00': 4}}
  records, _ = fx.read_split(out, '3dpw', 'test')
  expected_order = [(0, 0), (0, 1), (1, 0), (1, 2)]
  for record, (p, i) in zip(records, expected_order):
    person = people[p]
    # Frame i is image i (img_frame_ids index the 60 Hz arrays: 0, 2, 4),
    # the file by its name and its pixels by the background's tag.
    assert record['filename'].decode() == (
        f'imageFiles/downtown_walk_00/image_{i:05d}.jpg')
    assert fx.image_tag(record['image']) == i
    assert record['gender'] == (b'female' if p == 0 else b'male')
    assert record['has_smpl'] == 1.0 and record['has_joints3d'] == 0.0
    np.testing.assert_allclose(record['shape'], person['betas'], rtol=1e-6)
    # The root rotation in the camera's frame; the rest unchanged.
    root = smpl_reference.rodrigues(record['pose'][:3].astype(np.float64))
    want = cam_poses[i, :3, :3] @ smpl_reference.rodrigues(
        person['poses'][i, :3])
    np.testing.assert_allclose(root, want, atol=1e-5)
    np.testing.assert_allclose(record['pose'][3:], person['poses'][i, 3:],
                               rtol=1e-5, atol=1e-6)
    cam = person['joints'][i] @ cam_poses[i, :3, :3].T + cam_poses[i, :3, 3]
    pixels = cam[:, :2] / cam[:, 2:] * F + C
    keypoints, center = _expected_crop(pixels)
    np.testing.assert_allclose(record['keypoints2d'][:13, :2],
                               keypoints[LSP_FROM_SMPL], atol=1e-3)
    np.testing.assert_array_equal(record['keypoints2d'][:13, 2], 1.0)
    np.testing.assert_array_equal(record['keypoints2d'][13], 0.0)
    np.testing.assert_array_equal(record['center'], np.trunc(center))
    if p == 0:  # The marker is on person 0's right ankle.
      np.testing.assert_allclose(fx.marker_centroid(record['image']),
                                 keypoints[joints_lib.SMPL_JOINT_NAMES.index(
                                     'right_ankle')], atol=1.5)


def test_command_line_and_splits(tmp_path):
  input_dir, out = str(tmp_path / '3DPW'), str(tmp_path / 'out')
  _write(input_dir, 'validation', 'office_00')
  _write(input_dir, 'test', 'park_00', seed=1)
  root = repo_paths.ROOT
  subprocess.run([sys.executable, '-m', 'datasets.pw3d',
                  f'--input_dir={input_dir}', f'--output_dir={out}',
                  '--splits=validation,test'],
                 check=True, cwd=root, capture_output=True)
  meta = writer_lib.read_sidecar(out, '3dpw')
  assert meta['splits']['validation']['num_examples'] == 4
  assert meta['splits']['test']['num_examples'] == 4
  with pytest.raises(FileNotFoundError, match=r'sequenceFiles/train: no '
                                              r'3DPW sequence files'):
    pw3d.convert(input_dir, out, splits=('train',))
  with pytest.raises(ValueError, match='splits: expected names among'):
    pw3d.convert(input_dir, out, splits=('val',))


class _Evil:

  def __reduce__(self):
    return (os.system, ('true',))


def test_malformed_inputs(tmp_path):
  input_dir, out = str(tmp_path / '3DPW'), str(tmp_path / 'out')
  people, cam_poses = _write(input_dir)
  # An image that does not decode.
  fx.write_garbage(os.path.join(input_dir, 'imageFiles', 'downtown_walk_00',
                                'image_00001.jpg'))
  with pytest.raises(writer_lib.BadRecordError,
                     match=r'image_00001\.jpg: record .*downtown_walk_00\.pkl '
                           r'person 0 frame 1'):
    pw3d.convert(input_dir, out)
  assert fx.final_files(out, '3dpw') == []
  meta = pw3d.convert(input_dir, out, skip_bad=True)
  assert meta['splits']['test']['num_examples'] == 3
  assert meta['num_skipped'] == 1
  # A pickle that would run code is refused before it runs; skip_bad skips
  # the whole file and counts it.
  _write(input_dir)
  evil = os.path.join(input_dir, 'sequenceFiles', 'test', 'evil.pkl')
  with open(evil, 'wb') as f:
    pickle.dump(_Evil(), f, protocol=2)
  with pytest.raises(writer_lib.BadRecordError,
                     match=r'evil\.pkl: record sequence file: '
                           r'UnsafePickleError'):
    pw3d.convert(input_dir, out)
  meta = pw3d.convert(input_dir, out, skip_bad=True)
  assert meta['num_skipped'] == 1
  assert meta['splits']['test']['num_examples'] == 4
  os.remove(evil)
  # No numbers for a frame whose camera pose is invalid: fine; for a valid
  # one: the record is named.
  nan_invalid = [dict(people[0]), dict(people[1])]
  nan_invalid[0]['poses'] = people[0]['poses'].copy()
  nan_invalid[0]['poses'][2] = np.nan  # Person 0, frame 2: invalid.
  fx.write_3dpw_sequence(input_dir, 'test', 'downtown_walk_00', nan_invalid,
                         cam_poses, INTRINSICS, IMG_FRAME_IDS)
  assert pw3d.convert(input_dir, out)['splits']['test']['num_examples'] == 4
  nan_invalid[1]['joints'] = people[1]['joints'].copy()
  nan_invalid[1]['joints'][2, 5] = np.nan  # Person 1, frame 2: valid.
  fx.write_3dpw_sequence(input_dir, 'test', 'downtown_walk_00', nan_invalid,
                         cam_poses, INTRINSICS, IMG_FRAME_IDS)
  with pytest.raises(writer_lib.BadRecordError,
                     match=r'downtown_walk_00\.pkl: record person 1 frame 2 '
                           r'.*jointPositions: non-finite'):
    pw3d.convert(input_dir, out)
  # A wrong gender, a missing key, a wrong shape: the file and key named.
  for change, match in (
      (dict(gender='x'), r"genders\[1\]: expected one of \['f', 'm'\]"),
      (dict(poses=np.zeros((3, 69))), r'record person 1: poses: expected '
                                      r'shape \[3, 72\]')):
    bad = [dict(people[0]), {**people[1], **change}]
    fx.write_3dpw_sequence(input_dir, 'test', 'downtown_walk_00', bad,
                           cam_poses, INTRINSICS, IMG_FRAME_IDS)
    with pytest.raises(ValueError, match=r'downtown_walk_00\.pkl.*' + match):
      pw3d.convert(input_dir, out)
  path = fx.write_py2_pickle(
      os.path.join(input_dir, 'sequenceFiles', 'test', 'downtown_walk_00.pkl'),
      {b'sequence': b'downtown_walk_00'})
  with pytest.raises(ValueError, match=r"downtown_walk_00\.pkl: no key\(s\) "
                                       r"\['poses'"):
    pw3d.convert(input_dir, out)
  del path


def test_img_frame_ids_checked_against_the_60hz_arrays(tmp_path):
  input_dir, out = str(tmp_path / '3DPW'), str(tmp_path / 'out')
  people, cam_poses = fx.pw3d_scene()
  # Frame 6 does not exist in 60 Hz arrays of 6 frames.
  fx.write_3dpw_sequence(input_dir, 'test', 'downtown_walk_00', people,
                         cam_poses, INTRINSICS, [0, 2, 6])
  with pytest.raises(ValueError, match=r'downtown_walk_00\.pkl: img_frame_ids'
                                       r': frame 6 is past the end of '
                                       r'poses_60Hz\[0\] \(6 frames'):
    pw3d.convert(input_dir, out)
  fx.write_3dpw_sequence(input_dir, 'test', 'downtown_walk_00', people,
                         cam_poses, INTRINSICS, [0, 2])
  with pytest.raises(ValueError, match=r'img_frame_ids: expected shape \[3\]'):
    pw3d.convert(input_dir, out)
