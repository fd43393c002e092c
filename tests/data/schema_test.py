"""The TFRecord schema and decoder, incl. records written the original way."""

import cv2
import numpy as np
import pytest
import tensorflow as tf

from hmr_tf.data import decoder
from hmr_tf.data import schema

RNG = np.random.default_rng(3)


def _jpeg(height=12, width=10):
  image = RNG.integers(0, 255, size=(height, width, 3), dtype=np.uint8)
  data = cv2.imencode('.jpg', image)[1].tobytes()
  return data, tf.io.decode_jpeg(data, channels=3).numpy()


# The original converters' wrappers: note int64 / float lists built from
# arrays, image/format 'JPEG' and no added keys.
def _i64(values):
  values = np.atleast_1d(np.asarray(values)).astype(np.int64)
  return tf.train.Feature(int64_list=tf.train.Int64List(value=values))


def _f32(values):
  values = np.atleast_1d(np.asarray(values)).astype(np.float64)
  return tf.train.Feature(float_list=tf.train.FloatList(value=values))


def _b(value):
  return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _original_2d(label, center, data, height, width):
  """As the original convert_to_example: label is [3, 14] or [3, 19]."""
  feature = {
      'image/height': _i64(height),
      'image/width': _i64(width),
      'image/center': _i64(center.astype(int)),
      'image/x': _f32(label[0, :14]),
      'image/y': _f32(label[1, :14]),
      'image/visibility': _i64(label[2, :14].astype(int)),
      'image/format': _b(b'JPEG'),
      'image/filename': _b(b'im0001.jpg'),
      'image/encoded': _b(data),
  }
  if label.shape[1] == 19:
    feature['image/face_pts'] = _f32(label[:, 14:].ravel())
  return feature


def _original_3d(label, center, data, height, width, gt3d, pose, shape):
  """As the original convert_to_example_wmosh (pose None -> -1 placeholders)."""
  feature = _original_2d(label, center, data, height, width)
  has_3d = pose is not None
  if not has_3d:
    pose, shape = -np.ones(72), -np.ones(10)
  feature.update({
      'mosh/pose': _f32(pose),
      'mosh/shape': _f32(shape),
      'mosh/gt3d': _f32(gt3d.ravel()),
      'meta/scale_factors': _f32([0.5, 0.5]),
      'meta/crop_pt': _i64([3, 4]),
      'meta/has_3d': _i64(int(has_3d)),
      'image/cam': _f32([500.0, 5.0, 6.0]),
  })
  return feature


def _serialize(feature):
  return tf.train.Example(features=tf.train.Features(
      feature=feature)).SerializeToString()


def _label(num):
  label = np.zeros((3, num))
  label[0] = RNG.uniform(0, 10, num)
  label[1] = RNG.uniform(0, 12, num)
  label[2] = RNG.integers(0, 2, num)
  return label


def test_original_lsp_record_decodes():
  data, image = _jpeg()
  label = _label(14)
  center = np.array([4.6, 7.2])
  out = decoder.decode_image_example(
      _serialize(_original_2d(label, center, data, 12, 10)))
  np.testing.assert_array_equal(out['image'].numpy(), image)
  assert out['image'].dtype == tf.uint8
  expected = np.zeros((19, 3), np.float32)
  expected[:14] = label.T
  np.testing.assert_allclose(out['keypoints2d'].numpy(), expected, rtol=1e-6)
  np.testing.assert_array_equal(out['center'].numpy(), [4.0, 7.0])
  assert out['filename'].numpy() == b'im0001.jpg'
  assert out['dataset'].numpy() == b''
  assert out['scale'].numpy() == 1.0
  for key, size in (('pose', [72]), ('shape', [10]), ('joints3d', [14, 3])):
    np.testing.assert_array_equal(out[key].numpy(), np.zeros(size))
  assert out['has_smpl'].numpy() == 0.0
  assert out['has_joints3d'].numpy() == 0.0
  assert out['gender'].numpy() == b'' and out['activity'].numpy() == 0


def test_original_coco_record_face_points_and_raw_visibility():
  data, _ = _jpeg()
  label = _label(19)
  label[2] = [2, 0, 1, 2, 2, 0, 2, 1, 2, 2, 0, 2, 0, 0, 2, 1, 0, 2, 2]
  out = decoder.decode_image_example(
      _serialize(_original_2d(label, np.array([5, 6]), data, 12, 10)))
  expected = label.T.copy()
  expected[:, 2] = expected[:, 2] > 0  # COCO's 2 (visible) and 1 (occluded).
  np.testing.assert_allclose(out['keypoints2d'].numpy(), expected, rtol=1e-6)


def test_original_3d_records_decode():
  data, _ = _jpeg()
  label = _label(14)
  gt3d = RNG.normal(size=(14, 3))
  # MPI-INF-3DHP style: gt3d, no MoSh (pose/shape stored as -1).
  out = decoder.decode_image_example(_serialize(
      _original_3d(label, np.array([5, 6]), data, 12, 10, gt3d, None, None)))
  np.testing.assert_allclose(out['joints3d'].numpy(), gt3d, rtol=1e-6)
  assert out['has_joints3d'].numpy() == 1.0
  assert out['has_smpl'].numpy() == 0.0
  np.testing.assert_array_equal(out['pose'].numpy(), np.zeros(72))
  np.testing.assert_array_equal(out['shape'].numpy(), np.zeros(10))
  # Human3.6M style: MoSh pose and shape.
  pose, shape = RNG.normal(size=72), RNG.normal(size=10)
  out = decoder.decode_image_example(_serialize(
      _original_3d(label, np.array([5, 6]), data, 12, 10, gt3d, pose, shape)))
  np.testing.assert_allclose(out['pose'].numpy(), pose, rtol=1e-6)
  np.testing.assert_allclose(out['shape'].numpy(), shape, rtol=1e-6)
  assert out['has_smpl'].numpy() == 1.0
  assert out['has_joints3d'].numpy() == 1.0


def test_original_mocap_record_decodes():
  pose, shape = RNG.normal(size=72), RNG.normal(size=10)
  out = decoder.decode_mocap_example(
      _serialize({'pose': _f32(pose), 'shape': _f32(shape)}))
  np.testing.assert_allclose(out['pose'].numpy(), pose, rtol=1e-6)
  np.testing.assert_allclose(out['shape'].numpy(), shape, rtol=1e-6)


def test_make_image_example_round_trip_eager_and_in_tf_data():
  data, image = _jpeg(9, 7)
  keypoints = np.concatenate(
      [RNG.uniform(0, 9, size=(19, 2)), RNG.integers(0, 2, size=(19, 1))], 1)
  pose, shape = RNG.normal(size=72), RNG.normal(size=10)
  serialized = schema.make_image_example(
      data, 9, 7, 'a/b.jpg', [3.4, 5.6], keypoints, scale=0.5,
      dataset='coco', pose=pose, shape=shape).SerializeToString()
  eager = decoder.decode_image_example(tf.constant(serialized))
  dataset = tf.data.Dataset.from_tensors(serialized).map(
      decoder.decode_image_example)
  graph = next(iter(dataset))
  for out in (eager, graph):
    np.testing.assert_array_equal(out['image'].numpy(), image)
    np.testing.assert_allclose(out['keypoints2d'].numpy(), keypoints,
                               rtol=1e-6)
    # Truncated, as the original's center.astype(np.int): 5.6 -> 5.
    np.testing.assert_array_equal(out['center'].numpy(), [3.0, 5.0])
    assert out['scale'].numpy() == 0.5
    assert out['dataset'].numpy() == b'coco'
    assert out['filename'].numpy() == b'a/b.jpg'
    np.testing.assert_allclose(out['pose'].numpy(), pose, rtol=1e-6)
    np.testing.assert_allclose(out['shape'].numpy(), shape, rtol=1e-6)
    assert out['has_smpl'].numpy() == 1.0
    # MoSh parameters without 3D joints: the added flag says so.
    assert out['has_joints3d'].numpy() == 0.0
    np.testing.assert_array_equal(out['joints3d'].numpy(), np.zeros((14, 3)))
  assert graph['keypoints2d'].shape == (19, 3)
  assert graph['joints3d'].shape == (14, 3)


def test_face_points_written_in_the_original_layout():
  data, _ = _jpeg()
  keypoints = np.zeros((19, 3))
  keypoints[14:] = [[1, 2, 1], [3, 4, 0], [5, 6, 1], [7, 8, 1], [9, 10, 0]]
  example = schema.make_image_example(data, 12, 10, 'f', [1, 1], keypoints)
  stored = example.features.feature['image/face_pts'].float_list.value
  # [3, 5] row-major: the x row, the y row, the visibility row.
  np.testing.assert_array_equal(
      stored, [1, 3, 5, 7, 9, 2, 4, 6, 8, 10, 1, 0, 1, 1, 0])


def test_3d_record_with_joints_only():
  data, _ = _jpeg()
  gt3d = RNG.normal(size=(14, 3))
  out = decoder.decode_image_example(schema.make_image_example(
      data, 12, 10, 'f', [1, 1], np.zeros((14, 3)),
      joints3d=gt3d).SerializeToString())
  np.testing.assert_allclose(out['joints3d'].numpy(), gt3d, rtol=1e-6)
  assert out['has_joints3d'].numpy() == 1.0
  assert out['has_smpl'].numpy() == 0.0


def test_gender_and_activity_round_trip_and_are_optional():
  data, _ = _jpeg()
  pose, shape = RNG.normal(size=72), RNG.normal(size=10)
  example = schema.make_image_example(
      data, 12, 10, 'f', [1, 1], np.zeros((14, 3)), pose=pose, shape=shape,
      gender='female', activity=5)
  out = decoder.decode_image_example(example.SerializeToString())
  assert out['gender'].numpy() == b'female'
  assert out['activity'].numpy() == 5
  plain = schema.make_image_example(data, 12, 10, 'f', [1, 1],
                                      np.zeros((14, 3)), pose=pose,
                                      shape=shape)
  keys = set(plain.features.feature)
  assert schema.META_GENDER not in keys
  assert schema.META_ACTIVITY not in keys


def test_mocap_round_trip():
  pose, shape = RNG.normal(size=72), RNG.normal(size=10)
  out = decoder.decode_mocap_example(
      schema.make_mocap_example(pose, shape).SerializeToString())
  np.testing.assert_allclose(out['pose'].numpy(), pose, rtol=1e-6)
  np.testing.assert_allclose(out['shape'].numpy(), shape, rtol=1e-6)


@pytest.mark.parametrize('kwargs,match', [
    (dict(keypoints=np.zeros((13, 3))), 'keypoints'),
    (dict(keypoints=np.full((14, 3), 0.5)), 'visibility'),
    (dict(center=[1, 2, 3]), 'center'),
    (dict(pose=np.zeros(69), shape=np.zeros(10)), 'pose'),
    (dict(pose=np.zeros(72)), 'shape'),
    (dict(joints3d=np.zeros((17, 3))), 'joints3d'),
    (dict(gender='m'), 'gender'),
    (dict(activity=-1), 'activity'),
])
def test_make_image_example_rejects_bad_input(kwargs, match):
  args = dict(encoded_image=b'x', height=1, width=1, filename='f',
              center=[0, 0], keypoints=np.zeros((14, 3)))
  args.update(kwargs)
  with pytest.raises(ValueError, match=match):
    schema.make_image_example(**args)


def test_wrong_gt3d_length_fails_to_decode():
  data, _ = _jpeg()
  feature = _original_2d(_label(14), np.array([1, 1]), data, 12, 10)
  feature['mosh/gt3d'] = _f32(np.zeros(17 * 3))
  with pytest.raises(tf.errors.InvalidArgumentError, match='mosh/gt3d'):
    decoder.decode_image_example(_serialize(feature))


def test_missing_required_key_fails_to_decode():
  data, _ = _jpeg()
  feature = _original_2d(_label(14), np.array([1, 1]), data, 12, 10)
  del feature['image/x']
  with pytest.raises(tf.errors.InvalidArgumentError):
    decoder.decode_image_example(_serialize(feature))
