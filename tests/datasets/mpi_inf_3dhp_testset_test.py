"""datasets.mpi_inf_3dhp_testset: TS<n>/annot_data.mat (v7.3) + images."""

import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
import scipy.io

import repo_paths  # tests/support/
import fixtures_datasets as fx
from datasets import mpi_inf_3dhp_testset as testset
from hmr_tf.data import writer as writer_lib

DATASET = 'mpi_inf_3dhp_test'
VALID = np.array([1, 0, 1, 1])
ACTIVITY = np.array([1, 1, 3, 7])


def _write(input_dir, sequence='TS1', seed=0):
  """Four frames, frame 1 invalid; returns (gt2d, annot3, univ) LSP order."""
  num = len(VALID)
  gt2d = np.stack([fx.skeleton(32 + i, 8, 48)[:14] for i in range(num)])
  annot3 = np.concatenate([gt2d * 20, np.full((num, 14, 1), 3000.0)], -1)
  univ = annot3 * 0.9 + 7.0
  fx.write_3dhp_test_sequence(os.path.join(input_dir, sequence), gt2d,
                              annot3, univ, VALID, ACTIVITY, seed=seed)
  return gt2d, annot3, univ


_expected = fx.expected_3dhp_crop


def test_round_trip_valid_frames_mapping_and_missing_sequence(tmp_path):
  input_dir, out = str(tmp_path / 'test_set'), str(tmp_path / 'out')
  gt2d, _, univ = _write(input_dir, 'TS1', seed=1)
  gt2d_3, _, univ_3 = _write(input_dir, 'TS3', seed=3)
  # An invalid frame may hold no numbers at all.
  with h5py.File(os.path.join(input_dir, 'TS1', 'annot_data.mat'), 'r+') as f:
    f['annot2'][1] = np.nan
    f['univ_annot3'][1] = np.nan
    f['activity_annotation'][1] = np.nan
  meta = testset.convert(input_dir, out, shard_size=2,
                         sequences=('TS1', '2', 'TS3'))
  test = meta['splits']['test']
  assert test['num_examples'] == 6
  assert test['filtered'] == {'invalid frame (valid_frame = 0)': 2}
  assert meta['annot3'] == 'univ_annot3'
  assert meta['sequences'] == ['TS1', 'TS3']
  assert meta['missing_sequences'] == ['TS2']
  assert meta['examples_per_sequence'] == {'TS1': 3, 'TS3': 3}
  records, _ = fx.read_split(out, DATASET, 'test')
  names = [r['filename'].decode() for r in records]
  assert names == [f'{s}/imageSequence/img_{i + 1:06d}.jpg'
                   for s in ('TS1', 'TS3') for i in (0, 2, 3)]
  for record, name in zip(records, names):
    i = int(name[-10:-4]) - 1
    points, truth = (gt2d, univ) if name.startswith('TS1') else (gt2d_3,
                                                                 univ_3)
    keypoints, center = _expected(points[i])
    np.testing.assert_allclose(record['keypoints2d'][:14, :2], keypoints,
                               atol=1e-3)
    np.testing.assert_array_equal(record['keypoints2d'][:14, 2], 1.0)
    np.testing.assert_array_equal(record['center'], np.trunc(center))
    np.testing.assert_allclose(record['joints3d'], truth[i] / 1000,
                               rtol=1e-6)
    assert record['activity'] == ACTIVITY[i]
    assert record['has_joints3d'] == 1.0 and record['has_smpl'] == 0.0
    seed = 1 if name.startswith('TS1') else 3
    assert fx.image_tag(record['image']) == (seed * 100 + i) % fx.NUM_TAGS
    np.testing.assert_allclose(fx.marker_centroid(record['image']),
                               keypoints[0], atol=1.0)


def test_same_crop_and_joints_as_the_training_converter():
  from datasets import mpi_inf_3dhp  # pylint: disable=g-import-not-at-top
  assert testset.MARGIN == mpi_inf_3dhp.MARGIN
  assert list(mpi_inf_3dhp.JOINTS17_TO_LSP) == testset._TO_LSP  # pylint: disable=protected-access


def test_annot3_choice(tmp_path):
  input_dir, out = str(tmp_path / 'test_set'), str(tmp_path / 'out')
  _, annot3, _ = _write(input_dir)
  meta = testset.convert(input_dir, out, sequences=('TS1',), annot3='annot3')
  assert meta['annot3'] == 'annot3'
  records, _ = fx.read_split(out, DATASET, 'test')
  np.testing.assert_allclose(records[1]['joints3d'], annot3[2] / 1000,
                             rtol=1e-6)
  with pytest.raises(ValueError, match='annot3: expected one of'):
    testset.convert(input_dir, out, sequences=('TS1',), annot3='annot4')


def test_command_line(tmp_path):
  input_dir, out = str(tmp_path / 'test_set'), str(tmp_path / 'out')
  _write(input_dir, 'TS2')
  root = repo_paths.ROOT
  subprocess.run([sys.executable, '-m', 'datasets.mpi_inf_3dhp',
                  '--split=test', f'--input_dir={input_dir}',
                  f'--output_dir={out}', '--annot3=annot3'],
                 check=True, cwd=root, capture_output=True)
  meta = writer_lib.read_sidecar(out, DATASET)
  assert meta['splits']['test']['num_examples'] == 3
  assert meta['missing_sequences'] == ['TS1', 'TS3', 'TS4', 'TS5', 'TS6']
  assert meta['annot3'] == 'annot3'


def test_malformed_inputs(tmp_path):
  input_dir, out = str(tmp_path / 'test_set'), str(tmp_path / 'out')
  with pytest.raises(FileNotFoundError, match='none of the test sequences'):
    testset.convert(input_dir, out)
  with pytest.raises(ValueError, match='sequences: expected'):
    testset.convert(input_dir, out, sequences=('TS7',))
  _write(input_dir)
  path = os.path.join(input_dir, 'TS1', 'annot_data.mat')
  # A corrupt frame: the image does not decode.
  fx.write_garbage(os.path.join(input_dir, 'TS1', 'imageSequence',
                                'img_000003.jpg'))
  with pytest.raises(writer_lib.BadRecordError,
                     match=r'img_000003\.jpg: record .*annot_data\.mat '
                           r'frame 2'):
    testset.convert(input_dir, out, sequences=('TS1',))
  assert fx.final_files(out, DATASET) == []
  meta = testset.convert(input_dir, out, sequences=('TS1',), skip_bad=True)
  assert meta['splits']['test']['num_examples'] == 2
  assert meta['num_skipped'] == 1
  # Every failed run below leaves this conversion as it is (issue 19 §3).
  previous = fx.snapshot(out, DATASET)
  # Non-finite joints in one frame.
  _write(input_dir)
  with h5py.File(path, 'r+') as f:
    f['univ_annot3'][3, 0, 10, 1] = np.nan  # R ankle of frame 3.
  with pytest.raises(writer_lib.BadRecordError,
                     match=r'annot_data\.mat: record frame 3 .*univ_annot3: '
                           r'non-finite'):
    testset.convert(input_dir, out, sequences=('TS1',))
  # No activity for a valid frame.
  _write(input_dir)
  with h5py.File(path, 'r+') as f:
    f['activity_annotation'][2] = np.nan
  with pytest.raises(writer_lib.BadRecordError,
                     match=r'record frame 2 .*activity_annotation: expected a '
                           r'code >= 0, got nan'):
    testset.convert(input_dir, out, sequences=('TS1',))
  _write(input_dir)
  with h5py.File(path, 'r+') as f:
    f['univ_annot3'][3, 0, 10, 1] = np.nan  # R ankle of frame 3.
  # A variable missing; a wrong shape; an older (v5) .mat file.
  with h5py.File(path, 'r+') as f:
    del f['valid_frame']
  with pytest.raises(ValueError, match=r"annot_data\.mat: no variable "
                                       r"named 'valid_frame'"):
    testset.convert(input_dir, out, sequences=('TS1',))
  _write(input_dir)
  with h5py.File(path, 'r+') as f:
    data = f['annot2'][:, :, :16]
    del f['annot2']
    f['annot2'] = data
  with pytest.raises(ValueError, match=r'annot2: expected shape \[N, 1, 17, '
                                       r'2\].*got \[4, 1, 16, 2\]'):
    testset.convert(input_dir, out, sequences=('TS1',))
  scipy.io.savemat(path, {'annot2': np.zeros((4, 34))})
  with pytest.raises(ValueError, match=r'cannot read as a MATLAB v7\.3'):
    testset.convert(input_dir, out, sequences=('TS1',))
  assert fx.snapshot(out, DATASET) == previous
