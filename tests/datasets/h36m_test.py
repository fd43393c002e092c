"""datasets.h36m: preprocessed annotation .npz + images -> 3D records."""

import os
import subprocess
import sys

import numpy as np
import pytest

import repo_paths  # tests/support/
import fixtures_datasets as fx
from datasets import h36m
from hmr_tf.data import writer as writer_lib

NUM = 4


def _write(input_dir, name='h36m_train.npz', with_smpl=True):
  rng = np.random.default_rng(5)
  imgname, part, s3d = [], np.zeros((NUM, 24, 3)), np.zeros((NUM, 24, 4))
  for i in range(NUM):
    points = fx.skeleton(30 + i, 8, 46)[:14]
    part[i, :14, :2] = points
    part[i, :14, 2] = 1
    part[i, 14:] = rng.uniform(0, 60, size=(10, 3))  # Extra joints.
    s3d[i, :, :3] = rng.normal(size=(24, 3))
    s3d[i, :, 3] = 1
    rel = os.path.join('images', f'S1_Walking.5{i}', f'frame_{i:06d}.jpg')
    imgname.append(rel)
    fx.write_image(os.path.join(input_dir, rel),
                   fx.draw_marker(fx.background(64, 64, i), points[0]))
  part[1, 0, 2] = part[1, 5, 2] = 0  # No ankles: the torso rule.
  s3d[3, 5, 3] = 0  # A missing 3D joint: no 3D joints for this record.
  arrays = dict(imgname=np.array(imgname), center=part[:, :14, :2].mean(1),
                scale=np.full(NUM, 0.3), part=part, S=s3d)
  if with_smpl:
    arrays.update(pose=rng.normal(size=(NUM, 72)),
                  shape=rng.normal(size=(NUM, 10)))
  os.makedirs(input_dir, exist_ok=True)
  np.savez(os.path.join(input_dir, name), **arrays)
  return arrays


def _expected(part):
  vis = part[:, 2] > 0
  pts = part[:, :2]
  if vis[0] or vis[5]:
    scale = 150 / np.linalg.norm(pts[vis].max(0) - pts[vis].min(0))
  else:
    scale = 75 / np.mean([np.linalg.norm(pts[9] - pts[3]),
                          np.linalg.norm(pts[8] - pts[2])])
  factor = np.floor(64 * scale) / 64
  scaled = (pts + 0.5) * factor - 0.5
  center = (scaled[vis].min(0) + scaled[vis].max(0)) / 2
  start = np.maximum(np.floor(center - 150), 0)
  out = np.zeros((14, 3))
  out[vis, :2] = scaled[vis] - start
  out[vis, 2] = 1
  return out, center - start


def test_round_trip(tmp_path):
  input_dir, out = str(tmp_path / 'h36m'), str(tmp_path / 'out')
  train = _write(input_dir)
  test = _write(input_dir, 'valid.npz', with_smpl=False)
  meta = h36m.convert(input_dir, out, shard_size=3,
                      splits={'train': 'h36m_train.npz', 'test': 'valid.npz'})
  assert meta['kind'] == '3d'
  for split, arrays in (('train', train), ('test', test)):
    assert meta['splits'][split]['num_examples'] == NUM
    records, _ = fx.read_split(out, 'h36m', split)
    for i, record in enumerate(records):
      keypoints, center = _expected(arrays['part'][i, :14])
      np.testing.assert_allclose(record['keypoints2d'][:14], keypoints,
                                 atol=1e-3)
      np.testing.assert_array_equal(record['center'], np.trunc(center))
      assert record['filename'] == arrays['imgname'][i].encode()
      assert fx.image_tag(record['image']) == i % fx.NUM_TAGS
      if i != 1:  # Record 1's marked ankle is not labelled.
        np.testing.assert_allclose(fx.marker_centroid(record['image']),
                                   keypoints[0, :2], atol=1.0)
      has_3d = i != 3
      assert record['has_joints3d'] == float(has_3d)
      np.testing.assert_allclose(
          record['joints3d'], arrays['S'][i, :14, :3] * has_3d, rtol=1e-6,
          atol=1e-7)
      if 'pose' in arrays:
        assert record['has_smpl'] == 1.0
        np.testing.assert_allclose(record['pose'], arrays['pose'][i],
                                   rtol=1e-5)
        np.testing.assert_allclose(record['shape'], arrays['shape'][i],
                                   rtol=1e-5)
      else:
        assert record['has_smpl'] == 0.0


def test_command_line(tmp_path):
  input_dir, out = str(tmp_path / 'h36m'), str(tmp_path / 'out')
  _write(input_dir, 'a.npz')
  root = repo_paths.ROOT
  subprocess.run([sys.executable, '-m', 'datasets.h36m',
                  f'--input_dir={input_dir}', f'--output_dir={out}',
                  '--splits=test:a.npz'], check=True, cwd=root,
                 capture_output=True)
  meta = writer_lib.read_sidecar(out, 'h36m')
  assert list(meta['splits']) == ['test']
  assert meta['splits']['test']['num_examples'] == NUM


def test_malformed_inputs(tmp_path):
  input_dir, out = str(tmp_path / 'h36m'), str(tmp_path / 'out')
  with pytest.raises(FileNotFoundError, match='h36m_train.npz'):
    h36m.convert(input_dir, out)
  arrays = _write(input_dir)
  bad = dict(arrays, part=arrays['part'][:, :17])
  np.savez(os.path.join(input_dir, 'h36m_train.npz'), **bad)
  with pytest.raises(ValueError, match=r'h36m_train\.npz: part: expected '
                     r'shape \[4, 24, 3\], got \[4, 17, 3\]'):
    h36m.convert(input_dir, out)
  bad = dict(arrays)
  del bad['S']
  np.savez(os.path.join(input_dir, 'h36m_train.npz'), **bad)
  with pytest.raises(ValueError, match="no array named 'S'"):
    h36m.convert(input_dir, out)
  _write(input_dir)
  fx.write_garbage(os.path.join(input_dir, arrays['imgname'][2]))
  with pytest.raises(writer_lib.BadRecordError,
                     match=r'frame_000002\.jpg: record .*h36m_train\.npz '
                     r'record 2: cannot decode'):
    h36m.convert(input_dir, out, shard_size=2)
  assert fx.final_files(out, 'h36m') == []  # Staged shards removed.
  meta = h36m.convert(input_dir, out, skip_bad=True)
  assert meta['splits']['train']['num_examples'] == NUM - 1
  assert meta['num_skipped'] == 1
  with pytest.raises(ValueError, match='SPLIT:FILE'):
    h36m.parse_splits(['train'])


def test_bad_input_leaves_a_previous_conversion_byte_identical(tmp_path):
  input_dir, out = str(tmp_path / 'h36m'), str(tmp_path / 'out')
  arrays = _write(input_dir)
  h36m.convert(input_dir, out, shard_size=2)
  before = fx.snapshot(out, 'h36m')
  assert 'h36m_meta.json' in before and len(before) == 3
  path = os.path.join(input_dir, 'h36m_train.npz')
  # A missing annotation file (of the second split), a file that is not an
  # .npz, a missing image folder, and a bad image half-way through.
  with pytest.raises(FileNotFoundError, match=r'missing\.npz'):
    h36m.convert(input_dir, out, splits={'train': 'h36m_train.npz',
                                         'test': 'missing.npz'})
  assert fx.snapshot(out, 'h36m') == before
  with pytest.raises(FileNotFoundError, match='image folder not found'):
    h36m.convert(input_dir, out, image_dir=str(tmp_path / 'no_images'))
  assert fx.snapshot(out, 'h36m') == before
  fx.write_garbage(os.path.join(input_dir, arrays['imgname'][3]))
  with pytest.raises(writer_lib.BadRecordError, match='record 3'):
    h36m.convert(input_dir, out, shard_size=1)
  assert fx.snapshot(out, 'h36m') == before
  with open(path, 'wb') as f:
    f.write(b'not an npz')
  with pytest.raises(ValueError, match=r'h36m_train\.npz: cannot read'):
    h36m.convert(input_dir, out)
  assert fx.snapshot(out, 'h36m') == before


def test_command_line_bad_input_one_line(tmp_path):
  input_dir, out = str(tmp_path / 'h36m'), str(tmp_path / 'out')
  _write(input_dir)
  h36m.convert(input_dir, out)
  before = fx.snapshot(out, 'h36m')
  result = fx.run_converter('datasets.h36m', f'--input_dir={input_dir}',
                            f'--output_dir={out}', '--splits=test:none.npz')
  fx.assert_one_line_error(result, 'datasets.h36m',
                           os.path.join(input_dir, 'none.npz'), 'not found')
  assert fx.snapshot(out, 'h36m') == before
