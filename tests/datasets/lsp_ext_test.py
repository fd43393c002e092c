"""datasets.lsp_ext: joints.mat [14, 3, N] (1 = visible) -> train records."""

import os
import subprocess
import sys

import numpy as np
import pytest
import scipy.io

import repo_paths  # tests/support/
import fixtures_datasets as fx
from datasets import lsp_ext
from hmr_tf.data import writer as writer_lib

NUM = 5


def test_round_trip_all_train_and_flag_not_inverted(tmp_path):
  input_dir = str(tmp_path / 'lspet')
  keypoints = fx.write_lsp(input_dir, NUM, extended=True)
  out = str(tmp_path / 'out')
  meta = lsp_ext.convert(input_dir, out, shard_size=2)
  assert list(meta['splits']) == ['train']
  assert meta['splits']['train']['num_examples'] == NUM
  assert len(meta['splits']['train']['files']) == 3
  records, _ = fx.read_split(out, 'lsp_ext', 'train')
  for i, record in enumerate(records):
    visible = keypoints[i, :, 2] > 0
    np.testing.assert_array_equal(record['keypoints2d'][:14, 2], visible)
    # Occluded joints keep their coordinates, as in the original.
    np.testing.assert_allclose(record['keypoints2d'][:14, :2],
                               keypoints[i, :, :2], atol=1e-4)
    box = keypoints[i, visible, :2]
    np.testing.assert_array_equal(
        record['center'], np.trunc((box.min(0) + box.max(0)) / 2))
    assert record['filename'] == f'images/im{i + 1:05d}.jpg'.encode()
    assert fx.image_tag(record['image']) == i % fx.NUM_TAGS
    np.testing.assert_allclose(fx.marker_centroid(record['image']),
                               record['keypoints2d'][0, :2], atol=0.5)


def test_command_line(tmp_path):
  input_dir = str(tmp_path / 'lspet')
  fx.write_lsp(input_dir, 3, extended=True)
  out = str(tmp_path / 'out')
  root = repo_paths.ROOT
  subprocess.run([sys.executable, '-m', 'datasets.lsp_ext',
                  f'--input_dir={input_dir}', f'--output_dir={out}'],
                 check=True, cwd=root, capture_output=True)
  assert writer_lib.read_sidecar(out, 'lsp_ext')['splits']['train'][
      'num_examples'] == 3


def test_malformed_inputs(tmp_path):
  input_dir = str(tmp_path / 'lspet')
  with pytest.raises(FileNotFoundError, match='joints.mat'):
    lsp_ext.convert(input_dir, str(tmp_path / 'out'))
  fx.write_lsp(input_dir, NUM, extended=True)
  path = os.path.join(input_dir, 'joints.mat')
  good = scipy.io.loadmat(path)['joints']
  scipy.io.savemat(path, {'joints': np.zeros((3, 14, NUM))})  # LSP layout.
  with pytest.raises(ValueError, match='expected shape'):
    lsp_ext.convert(input_dir, str(tmp_path / 'out'))
  scipy.io.savemat(path, {'joints': good})
  fx.write_garbage(os.path.join(input_dir, 'images', 'im00002.jpg'))
  with pytest.raises(writer_lib.BadRecordError,
                     match=r'im00002\.jpg: record 1: cannot decode'):
    lsp_ext.convert(input_dir, str(tmp_path / 'out'), shard_size=3)
  assert fx.final_files(str(tmp_path / 'out'), 'lsp_ext') == []
  meta = lsp_ext.convert(input_dir, str(tmp_path / 'out'), skip_bad=True)
  assert meta['splits']['train']['num_examples'] == NUM - 1
  assert meta['num_skipped'] == 1
