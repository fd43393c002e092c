"""datasets.mpii: RELEASE struct .mat + images -> normalised person crops."""

import os
import subprocess
import sys

import numpy as np
import pytest

import repo_paths  # tests/support/
import fixtures_datasets as fx
from datasets import mpii
from hmr_tf.data import writer as writer_lib

ALL = np.ones(14, bool)
UPPER = np.array([0, 0, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1], bool)


def _expected(points, annotated, image_size, margin=300):
  """Reference: scale rule, cv2 pixel-centre resize, crop offset."""
  visible = points[annotated]
  if annotated[0] or annotated[5]:
    scale = 150.0 / np.linalg.norm(visible.max(0) - visible.min(0))
  else:
    torso = [np.linalg.norm(points[9] - points[3]),
             np.linalg.norm(points[8] - points[2])]
    scale = 75.0 / np.mean(torso)
  factor = np.floor(image_size * scale) / image_size
  scaled = (points + 0.5) * factor - 0.5
  center = (scaled[annotated].min(0) + scaled[annotated].max(0)) / 2
  start = np.maximum(np.floor(center - margin), 0)
  keypoints = np.zeros((14, 3))
  keypoints[annotated, :2] = scaled[annotated] - start
  keypoints[annotated, 2] = 1
  return keypoints, center - start, np.floor(image_size * scale) - start, start


def _write(input_dir):
  big = fx.skeleton(32, 8, 44)[:14]
  upper = fx.skeleton(20, 30, 60)[:14]
  small = fx.skeleton(120, 100, 24)[:14]
  fx.write_image(os.path.join(input_dir, 'images', 'a.jpg'),
                 fx.draw_marker(fx.background(64, 64, 1), big[0]))
  fx.write_image(os.path.join(input_dir, 'images', 'b.jpg'),
                 fx.draw_marker(fx.background(160, 160, 2), small[0], 1))
  fx.write_image(os.path.join(input_dir, 'images', 'c.jpg'),
                 fx.background(64, 64, 3))
  images = [
      dict(name='a.jpg', rects=[fx.mpii_person(big, ALL),
                                fx.mpii_person(upper, UPPER)],
           single=[1, 2], train=True),
      dict(name='b.jpg', rects=[fx.mpii_person(small, ALL)], single=[1],
           train=True),
      dict(name='c.jpg', rects=[fx.mpii_person(big, ALL)], single=[1],
           train=False),  # A test image: not converted.
      dict(name='c.jpg', rects=[fx.mpii_person(big, ALL)], single=[],
           train=True),  # No single person.
  ]
  path = os.path.join(input_dir, 'annotations', mpii.ANNOTATION_NAME)
  fx.write_mpii(path, images)
  return images, path, [(big, ALL, 64), (upper, UPPER, 64), (small, ALL, 160)]


def test_round_trip(tmp_path):
  input_dir, out = str(tmp_path / 'mpii'), str(tmp_path / 'out')
  _, _, people = _write(input_dir)
  meta = mpii.convert(input_dir, out, shard_size=2)
  assert meta['splits']['train']['num_examples'] == 3
  records, _ = fx.read_split(out, 'mpii', 'train')
  for i, (record, (points, annotated, size)) in enumerate(zip(records,
                                                              people)):
    keypoints, center, end, start = _expected(points, annotated, size)
    np.testing.assert_allclose(record['keypoints2d'][:14], keypoints,
                               atol=1e-3)
    np.testing.assert_array_equal(record['keypoints2d'][14:], 0.0)
    np.testing.assert_array_equal(record['center'], np.trunc(center))
    expected_hw = np.minimum(end, 600)[::-1]
    np.testing.assert_array_equal(record['image'].shape[:2], expected_hw)
    # Persons 0 and 1 are in a.jpg (tag 1), person 2 in b.jpg (tag 2).
    assert fx.image_tag(record['image']) == (2 if i == 2 else 1)
    if i != 1:  # The marker sits on the right ankle of persons 0 and 2.
      np.testing.assert_allclose(fx.marker_centroid(record['image']),
                                 record['keypoints2d'][0, :2], atol=1.0)
    # The small person was scaled up and cropped (not just clipped).
    assert np.all(start > 0) == (i == 2)
  assert [r['filename'] for r in records] == [b'a.jpg', b'a.jpg', b'b.jpg']


def test_command_line(tmp_path):
  input_dir, out = str(tmp_path / 'mpii'), str(tmp_path / 'out')
  _write(input_dir)
  root = repo_paths.ROOT
  subprocess.run([sys.executable, '-m', 'datasets.mpii',
                  f'--input_dir={input_dir}', f'--output_dir={out}',
                  '--shard_size=1'], check=True, cwd=root,
                 capture_output=True)
  assert len(writer_lib.read_sidecar(out, 'mpii')['splits']['train'][
      'files']) == 3


def test_missing_file_and_wrong_shape(tmp_path):
  input_dir = str(tmp_path / 'mpii')
  with pytest.raises(FileNotFoundError, match=mpii.ANNOTATION_NAME):
    mpii.convert(input_dir, str(tmp_path / 'out'))
  images, path, _ = _write(input_dir)
  import scipy.io  # pylint: disable=import-outside-toplevel
  mat = scipy.io.loadmat(path)
  mat['RELEASE']['img_train'][0, 0] = np.ones((1, 3))  # 4 images, 3 flags.
  scipy.io.savemat(path, {'RELEASE': mat['RELEASE']})
  with pytest.raises(ValueError, match=r'img_train: expected 4 entries'):
    mpii.convert(input_dir, str(tmp_path / 'out'))
  del images


def test_joint_id_out_of_range_and_bad_images(tmp_path):
  input_dir, out = str(tmp_path / 'mpii'), str(tmp_path / 'out')
  images, path, _ = _write(input_dir)
  big = fx.skeleton(32, 8, 44)[:14]
  images[1]['rects'] = [fx.mpii_person(big, ALL, extra_ids=(6, 16))]
  fx.write_mpii(path, images)
  with pytest.raises(writer_lib.BadRecordError,
                     match=r'annolist\[1\] \(b\.jpg\) person 1: joint id 16'):
    mpii.convert(input_dir, out, shard_size=1)
  assert fx.final_files(out, 'mpii') == []  # Staged shards removed.
  meta = mpii.convert(input_dir, out, skip_bad=True)
  assert meta['splits']['train']['num_examples'] == 2
  assert meta['num_skipped'] == 1
  # Unreadable image.
  images, path, _ = _write(input_dir)
  fx.write_garbage(os.path.join(input_dir, 'images', 'a.jpg'))
  with pytest.raises(writer_lib.BadRecordError,
                     match=r'a\.jpg: record annolist\[0\].*cannot decode'):
    mpii.convert(input_dir, out)
  meta = mpii.convert(input_dir, out, skip_bad=True)
  assert meta['splits']['train']['num_examples'] == 1
  assert meta['num_skipped'] == 1
