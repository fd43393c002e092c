"""Tests of hmr_tf.data.parser: crop geometry, augmentation, flip consistency."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from hmr_tf import configs
from hmr_tf.data import augmentation
from hmr_tf.data import decoder
from hmr_tf.data import parser
from hmr_tf.data import schema
from hmr_tf.smpl import joints as joints_lib
from hmr_tf.smpl import layer as layer_lib
from hmr_tf.smpl import mirror
from hmr_tf.smpl import model_io

MIRROR = np.diag([-1.0, 1.0, 1.0])


def _config(**changes):
  base = configs.DataConfig(img_size=32, base_crop_size=64.0, seed=7)
  return dataclasses.replace(base, **changes)


def _decoded(image, center, keypoints, scale=1.0, **kwargs):
  """A decoded record, built through the real schema and decoder."""
  encoded = tf.io.encode_png(np.asarray(image, np.uint8)).numpy()
  example = schema.make_image_example(
      encoded, image.shape[0], image.shape[1], 'img.png', center, keypoints,
      scale=scale, image_format=b'png', **kwargs)
  return decoder.decode_image_example(example.SerializeToString())


def _keypoints(points, visible=None):
  kp = np.zeros([19, 3])
  for i, (x, y) in enumerate(points):
    kp[i] = (x, y, 1.0 if visible is None else visible[i])
  return kp


def test_eval_crop_coordinates_hand_computed():
  image = np.zeros([100, 120, 3], np.uint8)
  c = np.array([50.0, 40.0])
  # Window 64 px: centre -> 0, centre + 32 -> 1, a point 33 px away is out.
  points = [c, c + (32, 32), c + (-16, 8), c + (33, 0), c + (0, -32),
            c + (5, 5)]
  kp = _keypoints(points, visible=[1, 1, 1, 1, 1, 0])
  out = parser.parse_fn(_config(), is_training=False)(_decoded(image, c, kp))
  expected = np.zeros([19, 3])
  expected[0] = (0, 0, 1)
  expected[1] = (1, 1, 1)
  expected[2] = (-0.5, 0.25, 1)
  expected[4] = (0, -1, 1)
  # [3] falls outside the crop and keeps its label (the original's rule, the
  # default); [5] was invisible: all zeros.
  expected[3] = (33 / 32, 0, 1)
  np.testing.assert_allclose(out['keypoints2d'].numpy(), expected, atol=1e-6)
  dropped = parser.parse_fn(_config(keypoints_outside_crop='drop'),
                            is_training=False)(_decoded(image, c, kp))
  expected[3] = 0.0
  np.testing.assert_allclose(dropped['keypoints2d'].numpy(), expected,
                             atol=1e-6)
  assert out['image'].shape == (32, 32, 3)
  assert float(out['crop_size']) == 64.0
  np.testing.assert_allclose(out['center'].numpy(), c)
  assert out['filename'].numpy() == b'img.png'
  # A record stored at scale 2 needs a window of half the side.
  out2 = parser.parse_fn(_config(), is_training=False)(
      _decoded(image, c, _keypoints([c + (16, -16)]), scale=2.0))
  assert float(out2['crop_size']) == 32.0
  np.testing.assert_allclose(out2['keypoints2d'][0].numpy(), [1, -1, 1])


def _blob_image(height, width, x, y, sigma=2.0):
  yy, xx = np.mgrid[:height, :width]
  blob = np.exp(-((xx - x)**2 + (yy - y)**2) / (2 * sigma**2))
  return np.repeat((255 * blob).round()[..., None], 3, axis=2).astype(np.uint8)


def _centroid_crop_coords(image):
  """The bright blob's centroid in [-1, 1] crop coordinates."""
  w = (np.asarray(image)[..., 0] + 1.0) / 2.0  # back to [0, 1]
  size = w.shape[0]
  vv, uu = np.mgrid[:size, :size]
  u = (w * uu).sum() / w.sum()
  v = (w * vv).sum() / w.sum()
  # Output pixel u covers crop coordinates around 2 (u + 0.5) / S - 1.
  return np.array([2 * (u + 0.5) / size - 1, 2 * (v + 0.5) / size - 1])


@pytest.mark.parametrize('flip_prob', [0.0, 1.0])
def test_image_content_agrees_with_keypoints(flip_prob):
  # A blob at stored pixel (70, 45); the keypoint R_ankle sits on it. After any
  # crop / scale / jitter / flip, the blob in the crop must be where the
  # keypoint says. Window 24 / f px into 32 px (magnified) so sampling is fine;
  # 0.01 is a sixth of an output pixel, so a half-pixel grid shift fails.
  image = _blob_image(90, 110, 70, 45)
  kp = _keypoints([(70, 45)])
  decoded = _decoded(image, (69, 46), kp)
  config = _config(base_crop_size=24.0, trans_max=3.0, flip_prob=flip_prob)
  parse = parser.parse_fn(config, is_training=True)
  for i in range(5):
    out = parse(decoded, seed=tf.constant([3, i], tf.int64))
    # Flipping moves R_ankle (index 0) to L_ankle (index 5).
    index = 5 if flip_prob else 0
    point = out['keypoints2d'][index].numpy()
    assert point[2] == 1
    np.testing.assert_allclose(_centroid_crop_coords(out['image']), point[:2],
                               atol=0.01)


def test_eval_is_deterministic_and_centred():
  image = _blob_image(80, 80, 40, 40)
  decoded = _decoded(image, (40, 40), _keypoints([(40, 40)]))
  parse = parser.parse_fn(_config(base_crop_size=24.0), is_training=False)
  a, b = parse(decoded), parse(decoded)
  np.testing.assert_array_equal(a['image'].numpy(), b['image'].numpy())
  np.testing.assert_allclose(_centroid_crop_coords(a['image']), [0, 0],
                             atol=1e-3)
  assert set(a) == set(parser.TRAIN_KEYS) | set(parser.EVAL_KEYS)


def test_images_in_minus_one_to_one():
  image = np.zeros([40, 40, 3], np.uint8)
  image[:, 20:] = 255
  out = parser.parse_fn(_config(base_crop_size=40.0), is_training=False)(
      _decoded(image, (20, 20), _keypoints([])))
  img = out['image'].numpy()
  assert img.min() == -1.0 and img.max() == 1.0
  # Outside the image the edge pixels repeat (no black border).
  wide = parser.parse_fn(_config(base_crop_size=80.0), is_training=False)(
      _decoded(image, (20, 20), _keypoints([])))
  np.testing.assert_array_equal(wide['image'].numpy()[:, 0], -1.0)
  np.testing.assert_array_equal(wide['image'].numpy()[:, -1], 1.0)


def test_augmentation_ranges_follow_config():
  # The parser's draws for 300 seeds: the original's distributions (the
  # mapping from uniforms is tested exactly in augmentation_test.py).
  config = _config(base_crop_size=200.0)
  draws = [augmentation.draw(tf.constant([1, i], tf.int64), config)
           for i in range(300)]
  factors = np.array([float(d['scale']) for d in draws])
  jitters = np.array([d['translation'].numpy() for d in draws])
  flips = np.array([bool(d['flip']) for d in draws])
  assert factors.min() >= 0.8 and factors.max() < 1.23
  assert factors.min() < 0.83 and factors.max() > 1.2
  # Whole pixels in [-20, 19], as tf.random_uniform's int32 draws.
  np.testing.assert_array_equal(jitters, np.round(jitters))
  assert jitters.min() == -20 and jitters.max() == 19
  assert 0.4 < np.mean(flips) < 0.6


def _random_example(rng, size=8):
  kp = rng.uniform(-1, 1, [19, 3])
  kp[:, 2] = rng.uniform(size=19) > 0.3
  kp *= kp[:, 2:]
  return {
      'image': tf.constant(rng.uniform(-1, 1, [size, size, 3]), tf.float32),
      'keypoints2d': tf.constant(kp, tf.float32),
      'joints3d': tf.constant(rng.normal(size=[14, 3]), tf.float32),
      'has_joints3d': tf.constant(1.0),
      'pose': tf.constant(rng.normal(size=[72]), tf.float32),
      'shape': tf.constant(rng.normal(size=[10]), tf.float32),
      'has_smpl': tf.constant(1.0),
  }


def test_flip_twice_is_identity():
  example = _random_example(np.random.default_rng(0))
  once = parser.flip_example(example)
  twice = parser.flip_example(once)
  for key in example:
    np.testing.assert_array_equal(twice[key].numpy(), example[key].numpy(),
                                  err_msg=key)
  # And the single flip is not the identity.
  assert not np.allclose(once['image'].numpy(), example['image'].numpy())
  assert not np.allclose(once['pose'].numpy(), example['pose'].numpy())


def test_flip_fires_on_same_draws_and_reverses_image():
  image = np.random.default_rng(1).integers(0, 256, [60, 70, 3])
  kp = _keypoints([(30, 30), (40, 20)])
  decoded = _decoded(image, (35, 30), kp, pose=np.linspace(-1, 1, 72),
                     shape=np.ones(10), joints3d=np.arange(42.).reshape(14, 3))
  seed = tf.constant([5, 9], tf.int64)
  plain = parser.parse_fn(_config(flip_prob=0.0), True)(decoded, seed=seed)
  flipped = parser.parse_fn(_config(flip_prob=1.0), True)(decoded, seed=seed)
  np.testing.assert_array_equal(flipped['image'].numpy(),
                                plain['image'].numpy()[:, ::-1])
  kp_plain = plain['keypoints2d'].numpy()
  kp_flip = flipped['keypoints2d'].numpy()
  perm = list(joints_lib.COCOPLUS_FLIP_PERM)
  np.testing.assert_allclose(kp_flip[:, 0], -kp_plain[perm, 0], atol=1e-6)
  np.testing.assert_allclose(kp_flip[:, 1:], kp_plain[perm, 1:], atol=1e-6)
  j3d = np.arange(42.).reshape(14, 3)[list(joints_lib.LSP_FLIP_PERM)] * (
      -1, 1, 1)
  np.testing.assert_allclose(flipped['joints3d'].numpy(), j3d)
  np.testing.assert_allclose(
      flipped['pose'].numpy(),
      mirror.mirror_pose(tf.constant(plain['pose'])).numpy())
  assert float(flipped['has_smpl']) == 1.0


def test_eager_and_tf_data_agree():
  rng = np.random.default_rng(2)
  image = rng.integers(0, 256, [50, 60, 3])
  kp = _keypoints([(20, 30), (35, 25), (0, 0)])
  record = schema.make_image_example(
      tf.io.encode_jpeg(image.astype(np.uint8)).numpy(), 50, 60, 'a.jpg',
      (30, 25), kp, pose=rng.normal(size=72), shape=rng.normal(size=10),
      joints3d=rng.normal(size=[14, 3])).SerializeToString()
  parse = parser.parse_fn(_config(), is_training=True)
  seeds = [tf.constant([11, i], tf.int64) for i in range(4)]
  eager = [parse(decoder.decode_image_example(record), seed=s) for s in seeds]
  ds = tf.data.Dataset.from_tensor_slices(tf.stack(seeds)).map(
      lambda s: parse(decoder.decode_image_example(record), seed=s),
      num_parallel_calls=2)
  graph = list(ds)
  assert len({float(tf.reduce_sum(e['image'])) for e in eager}) > 1
  for e, g in zip(eager, graph):
    for key in e:
      np.testing.assert_allclose(e[key].numpy(), g[key].numpy(), atol=1e-5,
                                 err_msg=key)


# ---------------------------------------------------------------------------
# The flip against the SMPL layer on a mirror-symmetric body.


def _symmetric_body(seed=0, per_joint=3):
  """A small SMPL-shaped model that is exactly mirror-symmetric in x."""
  rng = np.random.default_rng(seed)
  perm = joints_lib.SMPL_FLIP_PERM
  parents = np.array(joints_lib.SMPL_PARENTS)
  centres = np.zeros([24, 3])
  for j in range(24):
    if perm[j] >= j:
      p = rng.normal(size=3) * 0.3
      if perm[j] == j:
        p[0] = 0.0
      centres[j] = p
      centres[perm[j]] = MIRROR @ p
  verts, owner = [], []
  for j in range(24):
    if perm[j] < j:
      continue
    offsets = rng.normal(size=[per_joint, 3]) * 0.05
    for d in offsets:
      # A self-symmetric joint gets mirror pairs; a left/right pair gets the
      # mirrored offset on the twin.
      verts += [centres[j] + d, MIRROR @ (centres[j] + d)]
      owner += [j, perm[j]]
  verts, owner = np.array(verts), np.array(owner)
  n = len(verts)
  mirror = np.arange(n) ^ 1  # Vertices come in mirror pairs (2k, 2k+1).
  weights = np.zeros([n, 24])
  for v, j in enumerate(owner):
    if parents[j] < 0:
      weights[v, j] = 1.0
    else:
      weights[v, j], weights[v, parents[j]] = 0.7, 0.3
  regressor = np.zeros([24, n])
  for j in range(24):
    regressor[j, owner == j] = 1.0 / np.sum(owner == j)
  smpl_names = joints_lib.SMPL_JOINT_NAMES
  sources = list(joints_lib.SMPL_TO_LSP_LIMBS) + [
      smpl_names.index('neck'), smpl_names.index('head')]
  cocoplus = np.zeros([19, n])
  for k, j in enumerate(sources):
    cocoplus[k] = regressor[j]
  head = np.flatnonzero(owner == smpl_names.index('head'))
  left = [v for v in head if verts[v, 0] > 0]
  cocoplus[14] = regressor[smpl_names.index('head')]  # nose: central
  cocoplus[15, left[0]] = 1.0  # L_eye, and R_eye its mirror
  cocoplus[16, mirror[left[0]]] = 1.0
  cocoplus[17, left[1]] = 1.0  # L_ear, and R_ear its mirror
  cocoplus[18, mirror[left[1]]] = 1.0
  return model_io.BodyModel(
      v_template=verts, faces=np.zeros([1, 3], np.int32), weights=weights,
      parents=parents.astype(np.int32), J_regressor=regressor,
      shapedirs=np.zeros([n, 3, 10]), posedirs=np.zeros([n, 3, 207]),
      cocoplus_regressor=cocoplus, vertex_mirror=mirror.astype(np.int32))


def test_flipped_pose_matches_flipped_keypoints_through_smpl():
  body = _symmetric_body()
  smpl = layer_lib.SMPL(body, dtype='float64')
  rng = np.random.default_rng(3)
  theta = rng.normal(size=[1, 72]) * 0.4
  out = smpl(theta, np.zeros([1, 10]))
  mirrored = smpl(mirror.mirror_pose(tf.constant(theta)), np.zeros([1, 10]))
  # Precondition: the body really is symmetric (mirrored pose = mirrored mesh).
  np.testing.assert_allclose(
      mirrored.vertices[0].numpy(),
      out.vertices[0].numpy()[body.vertex_mirror] @ MIRROR, atol=1e-9)

  # Project the keypoints into a stored image (x right, y down, 50 px/m).
  centre, px_per_m = np.array([100.0, 90.0]), 50.0
  kp3d = out.keypoints[0].numpy()
  kp2d = np.concatenate([centre + px_per_m * kp3d[:, :2] * (1, -1),
                         np.ones([19, 1])], axis=1)
  decoded = _decoded(np.zeros([180, 200, 3], np.uint8), centre, kp2d,
                     pose=theta[0], shape=np.zeros(10), joints3d=kp3d[:14])
  config = _config(base_crop_size=224.0, scale_min=1.0, scale_max=1.0,
                   trans_max=0.0, flip_prob=1.0)
  flipped = parser.parse_fn(config, is_training=True)(
      decoded, seed=tf.constant([0, 0], tf.int64))

  # Independent reference: pose the flipped pose, project the same way.
  again = smpl(flipped['pose'].numpy()[None].astype(np.float64),
               np.zeros([1, 10]))
  kp3d_flip = again.keypoints[0].numpy()
  expected_2d = px_per_m * kp3d_flip[:, :2] * (1, -1) * 2 / 224.0
  np.testing.assert_allclose(flipped['keypoints2d'].numpy()[:, :2],
                             expected_2d, atol=1e-5)
  np.testing.assert_array_equal(flipped['keypoints2d'].numpy()[:, 2], 1.0)
  np.testing.assert_allclose(flipped['joints3d'].numpy(), kp3d_flip[:14],
                             atol=1e-5)


def test_seedless_training_parser_draws_from_config_seed():
  image = np.random.default_rng(4).integers(0, 256, [40, 40, 3])
  decoded = _decoded(image, (20, 20), _keypoints([(20, 20)]))

  def run():
    parse = parser.parse_fn(_config(), is_training=True)
    return [parse(decoded)['image'].numpy() for _ in range(3)]

  first, second = run(), run()
  # Successive calls differ; a new parser with the same config repeats them.
  assert not np.array_equal(first[0], first[1])
  for a, b in zip(first, second):
    np.testing.assert_array_equal(a, b)
