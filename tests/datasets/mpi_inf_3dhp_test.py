"""datasets.mpi_inf_3dhp: annot.mat cells + frames -> 3D records."""

import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.io

import repo_paths  # tests/support/
import fixtures_datasets as fx
from datasets import mpi_inf_3dhp
from hmr_tf.data import writer as writer_lib

CAMERAS = 3
FRAMES = np.array([10, 11, 12, 13, 14])
# Right-ankle x offsets in mm: frame 1 moves 100 (dropped), frame 2 250
# (kept), frame 3 199 from frame 2 (dropped), frame 4 350 (kept).
ANKLE_MOTION = np.array([0.0, 100.0, 250.0, 449.0, 600.0])


def _write(input_dir, subject=1, sequence=1):
  base2d = fx.skeleton(32, 8, 48)[:14]
  base3d = np.concatenate([base2d * 20, np.full((14, 1), 3000.0)], axis=1)
  gt2d = np.zeros((CAMERAS, len(FRAMES), 14, 2))
  gt3d = np.zeros((CAMERAS, len(FRAMES), 14, 3))
  for c in range(CAMERAS):
    for i in range(len(FRAMES)):
      gt2d[c, i] = base2d + [c * 2 + i, 0]
      gt3d[c, i] = base3d + [c * 10, 0, 0]
      gt3d[c, i, 0, 0] += ANKLE_MOTION[i]
  gt2d[2, 4, 7:] += 1000  # Camera 2, frame 4: only 7 joints in the image.
  seq_dir = os.path.join(input_dir, f'S{subject}', f'Seq{sequence}')
  fx.write_3dhp_sequence(seq_dir, gt2d, gt3d, FRAMES)
  return gt2d, gt3d


_expected = fx.expected_3dhp_crop


def test_round_trip_sampling_and_filters(tmp_path):
  input_dir, out = str(tmp_path / '3dhp'), str(tmp_path / 'out')
  gt2d, gt3d = _write(input_dir)
  meta = mpi_inf_3dhp.convert(input_dir, out, shard_size=2, subjects=(1,),
                              sequences=(1,), cameras=(0, 2))
  train = meta['splits']['train']
  assert meta['kind'] == '3d'
  assert train['num_examples'] == 5
  assert train['filtered'] == {'fewer than 8 joints inside the image': 1,
                               'moved less than 200 mm': 4}
  records, _ = fx.read_split(out, 'mpi_inf_3dhp', 'train')
  seen = set()
  for record in records:
    name = record['filename'].decode()
    camera = int(name.split('video_')[1].split('/')[0])
    frame = int(name.split('frame_')[1][:6]) - 1
    i = int(np.flatnonzero(FRAMES == frame)[0])
    seen.add((camera, i))
    keypoints, center = _expected(gt2d[camera, i])
    np.testing.assert_allclose(record['keypoints2d'][:14, :2], keypoints,
                               atol=1e-3)
    np.testing.assert_array_equal(record['keypoints2d'][:14, 2], 1.0)
    np.testing.assert_array_equal(record['center'], np.trunc(center))
    np.testing.assert_allclose(record['joints3d'], gt3d[camera, i] / 1000,
                               rtol=1e-6)
    assert record['has_joints3d'] == 1.0 and record['has_smpl'] == 0.0
    # Annotation row i is frame_{FRAMES[i] + 1}: the background tag says
    # which row's image the pixels are.
    assert fx.image_tag(record['image']) == (camera * 100 + i) % fx.NUM_TAGS
    np.testing.assert_allclose(fx.marker_centroid(record['image']),
                               keypoints[0], atol=1.0)
  assert seen == {(0, 0), (0, 2), (0, 4), (2, 0), (2, 2)}


def test_sample_frames_matches_hand_computed_case():
  joints = np.zeros((5, 2, 3))
  joints[:, 1, 2] = [0, 150, 210, 300, 420]
  np.testing.assert_array_equal(mpi_inf_3dhp.sample_frames(joints), [0, 2, 4])


def test_command_line(tmp_path):
  input_dir, out = str(tmp_path / '3dhp'), str(tmp_path / 'out')
  _write(input_dir)
  root = repo_paths.ROOT
  subprocess.run([sys.executable, '-m', 'datasets.mpi_inf_3dhp',
                  f'--input_dir={input_dir}', f'--output_dir={out}',
                  '--subjects=1', '--sequences=1', '--cameras=0,1'],
                 check=True, cwd=root, capture_output=True)
  meta = writer_lib.read_sidecar(out, 'mpi_inf_3dhp')
  assert meta['splits']['train']['num_examples'] == 6
  assert meta['cameras'] == [0, 1]


def test_malformed_inputs(tmp_path):
  input_dir, out = str(tmp_path / '3dhp'), str(tmp_path / 'out')
  _write(input_dir)
  with pytest.raises(FileNotFoundError, match=r'S2/Seq1/annot\.mat'):
    mpi_inf_3dhp.convert(input_dir, out, subjects=(1, 2), sequences=(1,),
                         cameras=(0,))
  # Camera index out of range (the file has 3 cameras).
  with pytest.raises(writer_lib.BadRecordError,
                     match=r'annot\.mat: record annot2 camera 5: camera index'):
    mpi_inf_3dhp.convert(input_dir, out, subjects=(1,), sequences=(1,),
                         cameras=(0, 5))
  # Wrong array shape for one camera.
  path = os.path.join(input_dir, 'S1', 'Seq1', 'annot.mat')
  mat = scipy.io.loadmat(path)
  mat['annot2'][1, 0] = mat['annot2'][1, 0][:, :50]
  scipy.io.savemat(path, {k: mat[k] for k in ('annot2', 'annot3', 'frames')})
  with pytest.raises(writer_lib.BadRecordError,
                     match=r'annot2 camera 1: expected \[N, 2 x \(28 or 17\)'):
    mpi_inf_3dhp.convert(input_dir, out, subjects=(1,), sequences=(1,),
                         cameras=(0, 1))
  meta = mpi_inf_3dhp.convert(input_dir, out, subjects=(1,), sequences=(1,),
                              cameras=(0, 1), skip_bad=True)
  assert meta['splits']['train']['num_examples'] == 3
  assert meta['num_skipped'] == 1
  # An unreadable frame: the previous conversion stays as it was.
  before = fx.snapshot(out, 'mpi_inf_3dhp')
  fx.write_garbage(os.path.join(input_dir, 'S1', 'Seq1', 'imageFrames',
                                'video_0', 'frame_000013.jpg'))
  with pytest.raises(writer_lib.BadRecordError,
                     match=r'frame_000013\.jpg: record .*camera 0 frame 2'):
    mpi_inf_3dhp.convert(input_dir, out, subjects=(1,), sequences=(1,),
                         cameras=(0,), shard_size=5)
  assert fx.snapshot(out, 'mpi_inf_3dhp') == before
  meta = mpi_inf_3dhp.convert(input_dir, out, subjects=(1,), sequences=(1,),
                              cameras=(0,), skip_bad=True)
  assert meta['splits']['train']['num_examples'] == 2
  assert meta['num_skipped'] == 1


def test_bad_input_leaves_a_previous_conversion_byte_identical(tmp_path):
  input_dir, out = str(tmp_path / '3dhp'), str(tmp_path / 'out')
  _write(input_dir)
  _write(input_dir, sequence=2)
  options = dict(subjects=(1,), sequences=(1, 2), cameras=(0, 1))
  mpi_inf_3dhp.convert(input_dir, out, shard_size=2, **options)
  before = fx.snapshot(out, 'mpi_inf_3dhp')
  assert 'mpi_inf_3dhp_meta.json' in before and len(before) > 2
  seq2 = os.path.join(input_dir, 'S1', 'Seq2')
  # Sequence 2's annot.mat is missing, then not a .mat file, then has no
  # annot3; then its frame folder is missing. Each is found before writing.
  os.rename(os.path.join(seq2, 'annot.mat'), os.path.join(seq2, 'keep.mat'))
  with pytest.raises(FileNotFoundError, match=r'S1/Seq2/annot\.mat'):
    mpi_inf_3dhp.convert(input_dir, out, **options)
  assert fx.snapshot(out, 'mpi_inf_3dhp') == before
  fx.write_garbage(os.path.join(seq2, 'annot.mat'))
  with pytest.raises(ValueError, match=r'Seq2/annot\.mat: cannot read'):
    mpi_inf_3dhp.convert(input_dir, out, **options)
  assert fx.snapshot(out, 'mpi_inf_3dhp') == before
  mat = scipy.io.loadmat(os.path.join(seq2, 'keep.mat'))
  scipy.io.savemat(os.path.join(seq2, 'annot.mat'), {'annot2': mat['annot2']})
  with pytest.raises(ValueError, match="no variable named 'annot3'"):
    mpi_inf_3dhp.convert(input_dir, out, **options)
  assert fx.snapshot(out, 'mpi_inf_3dhp') == before
  os.replace(os.path.join(seq2, 'keep.mat'), os.path.join(seq2, 'annot.mat'))
  os.rename(os.path.join(seq2, 'imageFrames'), os.path.join(seq2, 'frames'))
  with pytest.raises(FileNotFoundError, match='frame folder not found'):
    mpi_inf_3dhp.convert(input_dir, out, **options)
  assert fx.snapshot(out, 'mpi_inf_3dhp') == before


def test_command_line_bad_input_one_line(tmp_path):
  input_dir, out = str(tmp_path / '3dhp'), str(tmp_path / 'out')
  _write(input_dir)
  mpi_inf_3dhp.convert(input_dir, out, subjects=(1,), sequences=(1,),
                       cameras=(0,))
  before = fx.snapshot(out, 'mpi_inf_3dhp')
  result = fx.run_converter(
      'datasets.mpi_inf_3dhp', f'--input_dir={input_dir}',
      f'--output_dir={out}', '--subjects=1,2', '--sequences=1',
      '--cameras=0')
  fx.assert_one_line_error(result, 'datasets.mpi_inf_3dhp',
                           os.path.join('S2', 'Seq1', 'annot.mat'),
                           'not found')
  assert fx.snapshot(out, 'mpi_inf_3dhp') == before
