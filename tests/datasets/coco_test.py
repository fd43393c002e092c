"""datasets.coco: person_keypoints json + images -> filtered person crops."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import repo_paths  # tests/support/
import fixtures_datasets as fx
from datasets import coco
from hmr_tf.data import writer as writer_lib

V_ALL = [2] * 17
V_NO_LEGS = [2] * 13 + [0] * 4  # Knees and ankles unlabelled.


def _ann(ann_id, image_id, points, v, box_side=70, **kwargs):
  ann = {'id': ann_id, 'image_id': image_id, 'category_id': 1, 'iscrowd': 0,
         'keypoints': fx.coco_keypoints(points, v),
         'num_keypoints': int(np.sum(np.array(v) > 0)),
         'bbox': [0.0, 0.0, box_side * 0.5, float(box_side)]}
  ann.update(kwargs)
  return ann


def _write(input_dir, split='train2014'):
  full = fx.skeleton(48, 10, 70)
  upper = fx.skeleton(48, 20, 100)
  small = fx.skeleton(150, 120, 60)
  occluded_v = list(V_ALL)
  occluded_v[3] = 1  # An occluded (still labelled) ear.
  few = [2] * 5 + [0] * 12
  face_shoulders = [2] * 7 + [0] * 10
  anns = [
      _ann(1, 10, full, occluded_v),
      _ann(2, 10, upper, V_NO_LEGS),
      _ann(3, 10, full, few),  # < 6 visible: dropped.
      _ann(4, 10, full, V_ALL, box_side=59),  # Box too small: dropped.
      _ann(5, 10, full, face_shoulders),  # Face and shoulders: dropped.
      _ann(6, 10, full, V_ALL, iscrowd=1),  # Crowd: ignored.
      _ann(7, 20, small, V_ALL, box_side=60),
  ]
  data = {'images': [{'id': 10, 'file_name': 'p10.jpg', 'height': 96,
                      'width': 96},
                     {'id': 20, 'file_name': 'p20.jpg', 'height': 200,
                      'width': 200}],
          'annotations': anns,
          'categories': [{'id': 1, 'name': 'person'}]}
  fx.write_image(os.path.join(input_dir, 'images', split, 'p10.jpg'),
                 fx.draw_marker(fx.background(96, 96, 1), full[0]))
  fx.write_image(os.path.join(input_dir, 'images', split, 'p20.jpg'),
                 fx.draw_marker(fx.background(200, 200, 2), small[0]))
  path = os.path.join(input_dir, 'annotations',
                      f'person_keypoints_{split}.json')
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'w') as f:
    json.dump(data, f)
  return data, path, [(anns[0], 96), (anns[1], 96), (anns[6], 200)]


def _expected(flat, size):
  """Reference: COCO -> cocoplus, scale rule, resize, 400 px window."""
  kp = fx.cocoplus_from_coco(flat)
  vis = kp[:, 2] > 0
  pts = kp[:, :2]
  if vis[0] or vis[5]:
    scale = 150 / np.linalg.norm(pts[vis].max(0) - pts[vis].min(0))
  else:
    scale = 75 / np.mean([np.linalg.norm(pts[9] - pts[3]),
                          np.linalg.norm(pts[8] - pts[2])])
  factor = np.floor(size * scale) / size
  scaled = (pts + 0.5) * factor - 0.5
  center = (scaled[vis].min(0) + scaled[vis].max(0)) / 2
  start = np.maximum(np.floor(center - 200), 0)
  out = np.zeros((19, 3))
  out[vis, :2] = scaled[vis] - start
  out[vis, 2] = 1
  return out, center - start, start


def test_round_trip_and_filters(tmp_path):
  input_dir, out = str(tmp_path / 'coco'), str(tmp_path / 'out')
  _, _, kept = _write(input_dir)
  meta = coco.convert(input_dir, out, shard_size=2)
  train = meta['splits']['train']
  assert train['num_examples'] == 3
  assert train['filtered'] == {'box side under 60 px': 1,
                               'fewer than 6 visible keypoints': 1,
                               'only face and shoulders labelled': 1}
  records, _ = fx.read_split(out, 'coco', 'train')
  for i, (record, (ann, size)) in enumerate(zip(records, kept)):
    keypoints, center, start = _expected(ann['keypoints'], size)
    np.testing.assert_allclose(record['keypoints2d'], keypoints, atol=1e-3)
    np.testing.assert_array_equal(record['center'], np.trunc(center))
    assert np.all(start > 0) == (i == 2)  # The small person is cropped.
    # Image ids 10 and 20 are p10.jpg (tag 1) and p20.jpg (tag 2).
    assert fx.image_tag(record['image']) == (2 if i == 2 else 1)
    if i != 1:
      np.testing.assert_allclose(fx.marker_centroid(record['image']),
                                 record['keypoints2d'][0, :2], atol=1.0)
  # Neck and head top do not exist in COCO; the occluded ear is visible.
  np.testing.assert_array_equal(records[0]['keypoints2d'][12:14], 0.0)
  assert records[0]['keypoints2d'][17, 2] == 1.0
  assert max(records[2]['image'].shape[:2]) <= 400


def test_val_split_and_command_line(tmp_path):
  input_dir, out = str(tmp_path / 'coco'), str(tmp_path / 'out')
  _write(input_dir)
  _write(input_dir, 'val2014')
  root = repo_paths.ROOT
  subprocess.run([sys.executable, '-m', 'datasets.coco',
                  f'--input_dir={input_dir}', f'--output_dir={out}',
                  '--splits=train,val'], check=True, cwd=root,
                 capture_output=True)
  meta = writer_lib.read_sidecar(out, 'coco')
  assert meta['splits']['train']['num_examples'] == 3
  assert meta['splits']['val']['num_examples'] == 3


def test_malformed_inputs(tmp_path):
  input_dir, out = str(tmp_path / 'coco'), str(tmp_path / 'out')
  with pytest.raises(FileNotFoundError, match='person_keypoints_train2014'):
    coco.convert(input_dir, out)
  data, path, _ = _write(input_dir)
  # Wrong array shape: 16 keypoints.
  data['annotations'][1]['keypoints'] = data['annotations'][1]['keypoints'][3:]
  with open(path, 'w') as f:
    json.dump(data, f)
  with pytest.raises(writer_lib.BadRecordError,
                     match=r'annotations\[1\] \(id 2, p10\.jpg\): keypoints: '
                     r'expected shape \[51\], got \(48,\)'):
    coco.convert(input_dir, out)
  meta = coco.convert(input_dir, out, skip_bad=True)
  assert meta['splits']['train']['num_examples'] == 2
  assert meta['num_skipped'] == 1
  # An image_id out of range.
  data, path, _ = _write(input_dir)
  data['annotations'][0]['image_id'] = 99
  with open(path, 'w') as f:
    json.dump(data, f)
  with pytest.raises(writer_lib.BadRecordError, match='image_id 99'):
    coco.convert(input_dir, out)
  # An unreadable image: a failure leaves no partial shard, and the
  # previous conversion as it was.
  before = fx.snapshot(out, 'coco')
  data, path, _ = _write(input_dir)
  fx.write_garbage(os.path.join(input_dir, 'images', 'train2014', 'p20.jpg'))
  with pytest.raises(writer_lib.BadRecordError,
                     match=r'p20\.jpg: record annotations\[6\]'):
    coco.convert(input_dir, out, shard_size=3)
  assert fx.snapshot(out, 'coco') == before
  meta = coco.convert(input_dir, out, skip_bad=True)
  assert meta['splits']['train']['num_examples'] == 2
  assert meta['splits']['train']['num_skipped'] == 1


def test_bad_input_leaves_a_previous_conversion_byte_identical(tmp_path):
  input_dir, out = str(tmp_path / 'coco'), str(tmp_path / 'out')
  _, path, _ = _write(input_dir)
  coco.convert(input_dir, out, shard_size=2)
  before = fx.snapshot(out, 'coco')
  assert 'coco_meta.json' in before and len(before) == 3
  # The val annotation file is missing (train alone would convert).
  with pytest.raises(FileNotFoundError, match='person_keypoints_val2014'):
    coco.convert(input_dir, out, splits=('train', 'val'))
  assert fx.snapshot(out, 'coco') == before
  # Not JSON; JSON but not COCO's layout.
  for text, message in [('{"images": [', 'cannot read the JSON'),
                        ('[1, 2]', 'expected a JSON object'),
                        ('{"images": [{"id": 1}], "annotations": []}',
                         r'images\[0\]: expected an object with id')]:
    with open(path, 'w') as f:
      f.write(text)
    with pytest.raises(ValueError, match=message):
      coco.convert(input_dir, out)
    assert fx.snapshot(out, 'coco') == before
  # The image folder is missing.
  _write(input_dir)
  os.rename(os.path.join(input_dir, 'images'), os.path.join(input_dir, 'x'))
  with pytest.raises(FileNotFoundError, match='train image folder not found'):
    coco.convert(input_dir, out)
  assert fx.snapshot(out, 'coco') == before


def test_command_line_bad_input_one_line(tmp_path):
  input_dir, out = str(tmp_path / 'coco'), str(tmp_path / 'out')
  _, path, _ = _write(input_dir)
  coco.convert(input_dir, out)
  before = fx.snapshot(out, 'coco')
  with open(path, 'w') as f:
    f.write('not json')
  result = fx.run_converter('datasets.coco', f'--input_dir={input_dir}',
                            f'--output_dir={out}')
  fx.assert_one_line_error(result, 'datasets.coco', path,
                           'cannot read the JSON file')
  assert fx.snapshot(out, 'coco') == before
