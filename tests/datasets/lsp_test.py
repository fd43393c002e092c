"""datasets.lsp: joints.mat [3, 14, N] (inverted flag) + images -> records."""

import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.io
import tensorflow as tf

import repo_paths  # tests/support/
import fixtures_datasets as fx
from datasets import lsp
from hmr_tf.data import writer as writer_lib

NUM = 6


@pytest.fixture(name='lsp_dir')
def _lsp_dir(tmp_path):
  keypoints = fx.write_lsp(str(tmp_path / 'lsp'), NUM, extended=False)
  return str(tmp_path / 'lsp'), keypoints


def test_round_trip(lsp_dir, tmp_path):
  input_dir, keypoints = lsp_dir
  out = str(tmp_path / 'out')
  meta = lsp.convert(input_dir, out, shard_size=2)
  assert meta['kind'] == '2d'
  assert meta['splits']['train']['num_examples'] == NUM // 2
  assert meta['splits']['test']['num_examples'] == NUM // 2
  for split, indices in (('train', range(0, 3)), ('test', range(3, 6))):
    records, _ = fx.read_split(out, 'lsp', split)
    assert len(records) == 3
    for record, i in zip(records, indices):
      visible = keypoints[i, :, 2] > 0
      # Occluded joints keep their coordinates (visibility 0), as the
      # original converter stored them.
      expected = np.concatenate([keypoints[i, :, :2], visible[:, None]], 1)
      np.testing.assert_allclose(record['keypoints2d'][:14], expected,
                                 atol=1e-4)
      np.testing.assert_array_equal(record['keypoints2d'][14:], 0.0)
      box = keypoints[i, visible, :2]
      np.testing.assert_array_equal(
          record['center'], np.trunc((box.min(0) + box.max(0)) / 2))
      assert record['filename'] == os.path.join(
          'images', f'im{i + 1:04d}.jpg').encode()
      assert record['dataset'] == b'lsp'
      # The JPEG is stored byte for byte: TF decodes the same pixels.
      with open(os.path.join(input_dir, record['filename'].decode()),
                'rb') as f:
        source = tf.io.decode_jpeg(f.read(), channels=3).numpy()
      np.testing.assert_array_equal(record['image'], source)
      # The pixels are image i's (its background's tag), not another's.
      assert fx.image_tag(record['image']) == i % fx.NUM_TAGS
      np.testing.assert_allclose(fx.marker_centroid(record['image']),
                                 record['keypoints2d'][0, :2], atol=0.5)
      assert record['has_joints3d'] == 0 and record['has_smpl'] == 0


def test_command_line(lsp_dir, tmp_path):
  input_dir, _ = lsp_dir
  out = str(tmp_path / 'out')
  root = repo_paths.ROOT
  subprocess.run([sys.executable, '-m', 'datasets.lsp',
                  f'--input_dir={input_dir}', f'--output_dir={out}',
                  '--shard_size=2'], check=True, cwd=root,
                 capture_output=True)
  meta = writer_lib.read_sidecar(out, 'lsp')
  assert meta['splits']['train']['files'] == ['train_00000.tfrecord',
                                              'train_00001.tfrecord']


def test_missing_annotation_file(tmp_path):
  with pytest.raises(FileNotFoundError, match='joints.mat'):
    lsp.convert(str(tmp_path), str(tmp_path / 'out'))


def test_wrong_array_shape(lsp_dir, tmp_path):
  input_dir, _ = lsp_dir
  path = os.path.join(input_dir, 'joints.mat')
  scipy.io.savemat(path, {'joints': np.zeros((14, 3, NUM))})  # LSP-ext layout
  with pytest.raises(ValueError, match=r'joints\.mat: joints: expected shape'):
    lsp.convert(input_dir, str(tmp_path / 'out'))


def test_bad_visibility_flag_names_file_and_record(lsp_dir, tmp_path):
  input_dir, _ = lsp_dir
  path = os.path.join(input_dir, 'joints.mat')
  joints = scipy.io.loadmat(path)['joints']
  joints[2, 5, 1] = 3
  scipy.io.savemat(path, {'joints': joints})
  with pytest.raises(writer_lib.BadRecordError,
                     match=r'joints\.mat: record 1: visibility'):
    lsp.convert(input_dir, str(tmp_path / 'out'))


def test_unreadable_and_missing_images(lsp_dir, tmp_path):
  input_dir, _ = lsp_dir
  out = str(tmp_path / 'out')
  fx.write_garbage(os.path.join(input_dir, 'images', 'im0003.jpg'))
  os.remove(os.path.join(input_dir, 'images', 'im0005.jpg'))
  with pytest.raises(writer_lib.BadRecordError,
                     match=r'im0003\.jpg: record 2: cannot decode'):
    lsp.convert(input_dir, out, shard_size=1)
  # Records 0 and 1 made complete shards, staged only: a failed conversion
  # leaves nothing (and no sidecar).
  assert fx.final_files(out, 'lsp') == []
  meta = lsp.convert(input_dir, out, shard_size=2, skip_bad=True)
  assert meta['splits']['train']['num_examples'] == 2
  assert meta['splits']['train']['num_skipped'] == 1
  assert meta['splits']['test']['num_examples'] == 2
  assert meta['splits']['test']['num_skipped'] == 1
  assert 'im0005.jpg: record 4: image file not found' in str(
      meta['skipped_examples'])
  records, _ = fx.read_split(out, 'lsp', 'test')
  assert [r['filename'] for r in records] == [b'images/im0004.jpg',
                                              b'images/im0006.jpg']
