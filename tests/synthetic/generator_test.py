"""Tests of the synthetic dataset (hmr_tf.synthetic.generator, synthetic_scene)."""

import glob
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from hmr_tf.data import decoder
from hmr_tf.data import writer as writer_lib
from hmr_tf.smpl import joints as joints_lib
from hmr_tf.smpl import layer as layer_lib
from hmr_tf.smpl import standin
from hmr_tf.synthetic import generator
from hmr_tf.synthetic import pose_prior
from hmr_tf.synthetic import scene as scene_lib

import repo_paths  # tests/support/
import smpl_reference  # tests/support/

SIZE = 64
COUNTS = dict(num_train=6, num_test=4, num_mocap=20)
_J = {n: i for i, n in enumerate(joints_lib.SMPL_JOINT_NAMES)}
_KP = {n: i for i, n in enumerate(joints_lib.COCOPLUS_JOINT_NAMES)}


@pytest.fixture(scope='module')
def body():
  return standin.build(num_vertices=500)


def _generate(out, body, **kwargs):
  args = dict(COUNTS, img_size=SIZE, seed=0, shard_size=4)
  args.update(kwargs)
  return generator.generate(str(out), body_model=body, **args)


@pytest.fixture(scope='module')
def dataset(body, tmp_path_factory):
  out = tmp_path_factory.mktemp('synthetic')
  meta = _generate(out, body)
  return str(out), meta


def _records(out, dataset, split):
  sidecar = writer_lib.read_sidecar(out, dataset)
  files = [os.path.join(out, dataset, f)
           for f in sidecar['splits'][split]['files']]
  return [r.numpy() for r in tf.data.TFRecordDataset(files)]


def _all_bytes(out):
  paths = sorted(glob.glob(os.path.join(out, '*', '*.tfrecord')))
  paths.append(os.path.join(out, generator.MEAN_PARAMS_FILE))
  return {os.path.relpath(p, out): open(p, 'rb').read() for p in paths}


def test_sidecar_counts_match_records(dataset):
  out, meta = dataset
  expected = {
      generator.DATASET_2D: (6, 4), generator.DATASET_3D: (6, 4),
      generator.DATASET_MOCAP: (20, 4)}
  for name, (train, test) in expected.items():
    sidecar = writer_lib.read_sidecar(out, name)
    for split, n in (('train', train), ('test', test)):
      assert sidecar['splits'][split]['num_examples'] == n
      assert len(_records(out, name, split)) == n
      assert meta['datasets'][name][split] == n
    assert sidecar['standin'] is True
  assert writer_lib.read_sidecar(out, generator.DATASET_2D)['kind'] == '2d'
  assert writer_lib.read_sidecar(out, generator.DATASET_3D)['kind'] == '3d'


def test_meta_says_it_is_a_standin(dataset):
  out, _ = dataset
  with open(os.path.join(out, generator.META_FILE)) as f:
    meta = json.load(f)
  assert meta['standin'] is True
  assert meta['body_model'] == standin.NAME
  assert 'STAND-IN' in meta['note'] and 'not real data' in meta['note']


def test_same_seed_gives_identical_bytes_other_seed_differs(dataset, body,
                                                            tmp_path):
  out, _ = dataset
  again = tmp_path / 'again'
  _generate(again, body)
  assert _all_bytes(out) == _all_bytes(str(again))
  other = tmp_path / 'other'
  _generate(other, body, seed=1, kinds=('3d',))
  first = _records(out, generator.DATASET_3D, 'train')[0]
  assert _records(str(other), generator.DATASET_3D, 'train')[0] != first


def test_records_do_not_depend_on_batching_or_workers(dataset, body,
                                                      tmp_path):
  out, _ = dataset
  small = tmp_path / 'small'
  _generate(small, body, batch_size=3, kinds=('3d',))
  a = [decoder.decode_image_example(r)
       for r in _records(out, generator.DATASET_3D, 'train')]
  b = [decoder.decode_image_example(r)
       for r in _records(str(small), generator.DATASET_3D, 'train')]
  for x, y in zip(a, b):
    np.testing.assert_array_equal(x['pose'].numpy(), y['pose'].numpy())
    np.testing.assert_array_equal(x['shape'].numpy(), y['shape'].numpy())
    np.testing.assert_allclose(x['keypoints2d'].numpy(),
                               y['keypoints2d'].numpy(), atol=1e-3)
  # Rendered by a worker process: the same bytes. Batches of 3 take the
  # meshes through both slots of the shared block several times over.
  workers, single = tmp_path / 'workers', tmp_path / 'single'
  _generate(workers, body, num_workers=1, kinds=('2d',), batch_size=3)
  _generate(single, body, num_workers=0, kinds=('2d',), batch_size=3)
  for split in ('train', 'test'):
    assert (_records(str(workers), generator.DATASET_2D, split) ==
            _records(str(single), generator.DATASET_2D, split))


def test_keypoints_are_the_weak_perspective_projection_of_smpl(dataset, body):
  out, _ = dataset
  for record in _records(out, generator.DATASET_3D, 'train'):
    ex = {k: v.numpy() for k, v in decoder.decode_image_example(record).items()}
    assert ex['has_smpl'] == 1 and ex['has_joints3d'] == 1
    assert np.all(np.abs(ex['shape']) <= 2.0)
    # Independent float64 SMPL + the cocoplus regressor.
    verts, _ = smpl_reference.smpl_forward(body, ex['pose'], ex['shape'])
    kp3d = body.cocoplus_regressor @ verts  # [19, 3]
    np.testing.assert_allclose(ex['joints3d'], kp3d[:14], atol=2e-4)
    # Weak perspective: pixel = f * (X, Y) + offset. Fit f and the offset
    # by least squares; the residual must be round-off only.
    xy = ex['keypoints2d'][:, :2]
    rows = np.zeros([38, 3])
    rows[0::2, 0], rows[0::2, 1] = kp3d[:, 0], 1.0
    rows[1::2, 0], rows[1::2, 2] = kp3d[:, 1], 1.0
    params, *_ = np.linalg.lstsq(rows, xy.reshape(-1), rcond=None)
    np.testing.assert_allclose(rows @ params, xy.reshape(-1), atol=2e-3)
    # HMR's normalisation: the LSP box diagonal is ~150 px per 224.
    box = kp3d[:14, :2].max(0) - kp3d[:14, :2].min(0)
    diag_px = params[0] * np.linalg.norm(box)
    assert 150 * SIZE / 224 * 0.84 < diag_px < 150 * SIZE / 224 * 1.41
    # The stored crop is the image: centre S/2, scale 224/S.
    np.testing.assert_array_equal(ex['center'], [SIZE // 2, SIZE // 2])
    np.testing.assert_allclose(ex['scale'], 224 / SIZE)
    assert ex['image'].shape == (SIZE, SIZE, 3)


def test_2d_records_have_no_3d(dataset):
  out, _ = dataset
  for record in _records(out, generator.DATASET_2D, 'test'):
    ex = decoder.decode_image_example(record)
    assert ex['has_smpl'].numpy() == 0 and ex['has_joints3d'].numpy() == 0


def test_mean_params_file(dataset):
  out, _ = dataset
  with np.load(os.path.join(out, generator.MEAN_PARAMS_FILE)) as z:
    pose, shape = z['pose'], z['shape']
  assert pose.shape == (72,) and shape.shape == (10,)
  mocap = [decoder.decode_mocap_example(r)
           for r in _records(out, generator.DATASET_MOCAP, 'train')]
  poses = np.stack([m['pose'].numpy() for m in mocap]).astype(np.float64)
  shapes = np.stack([m['shape'].numpy() for m in mocap]).astype(np.float64)
  np.testing.assert_allclose(shape, shapes.mean(0), atol=1e-6)
  np.testing.assert_allclose(pose[3:], poses[:, 3:].mean(0), atol=1e-6)
  # The mean global rotation is upright: body up maps to image up (-y).
  up = smpl_reference.rodrigues(pose[:3]) @ np.array([0.0, 1.0, 0.0])
  assert -up[1] > 0.95


def _scene(body, **config):
  return scene_lib.SceneRenderer(
      body.faces, body.weights, body.v_template, body.cocoplus_regressor,
      SIZE, scene_lib.SceneConfig(**config))


def _posed(body, pose):
  out = layer_lib.SMPL(body, dtype='float64')(pose[None], np.zeros([1, 10]))
  return out.vertices.numpy()[0], out.keypoints.numpy()[0]


def test_visibility_rule_on_a_constructed_depth_map():
  depth = np.full([10, 10], np.inf, np.float32)
  depth[:, :5] = 5.0  # A surface at depth 5 on the left half.
  keypoints = np.array([[2.0, 2.0], [7.0, 2.0], [2.0, 2.0], [-1.0, 3.0]])
  support = np.array([
      [[2, 2, 9.0], [3, 3, 8.0]],  # Both behind the surface: occluded.
      [[7, 2, 9.0], [8, 2, 9.0]],  # Empty pixels: seen.
      [[2, 2, 9.0], [3, 3, 5.01]],  # One within tolerance: seen.
      [[0, 3, 1.0], [1, 3, 1.0]],  # Seen, but the keypoint is outside.
  ])
  vis = scene_lib.keypoint_visibility(keypoints, support, depth, 0.05)
  np.testing.assert_array_equal(vis, [False, True, True, False])


def test_profile_view_hides_the_far_arm(body):
  # Turned 90 degrees (left side away from the camera), arms down.
  angles = np.zeros([1, 24, 3])
  angles[0, _J['left_shoulder'], 0] = np.radians(-80)
  angles[0, _J['right_shoulder'], 0] = np.radians(80)
  rots = pose_prior.euler_to_matrix(angles, pose_prior.ORDERS)
  turn = pose_prior.axis_rotations('y', np.array(np.pi / 2))
  rots[0, 0] = pose_prior.UPRIGHT @ turn
  pose = pose_prior.matrix_to_axis_angle(rots).reshape(72)
  verts, kps = _posed(body, pose)
  scene = _scene(body, truncation_fraction=0.0)
  result, debug = scene.render(verts, kps, np.random.SeedSequence(3),
                               return_debug=True)
  vis = result.keypoints[:, 2]
  for name in ('L_elbow', 'L_wrist'):
    assert vis[_KP[name]] == 0, name
  for name in ('R_elbow', 'R_wrist', 'R_knee', 'head_top'):
    assert vis[_KP[name]] == 1, name
  # Cross-check with the z-buffer: the far wrist's pixel shows a surface
  # nearer the camera than the wrist itself.
  col, row = np.round(result.keypoints[_KP['L_wrist'], :2]).astype(int)
  wrist_depth = debug['f_px'] * kps[_KP['L_wrist'], 2]
  assert debug['render'].depth[row, col] < wrist_depth - 0.05 * debug['f_px']


def test_keypoints_outside_the_image_are_invisible(body):
  scene = _scene(body, truncation_fraction=1.0)
  rng = np.random.default_rng(0)
  poses = pose_prior.sample_poses(rng, 6)
  outside_seen = 0
  for i, pose in enumerate(poses):
    verts, kps = _posed(body, pose)
    result = scene.render(verts, kps, np.random.SeedSequence(i))
    assert result.truncated
    xy, vis = result.keypoints[:, :2], result.keypoints[:, 2]
    outside = np.any((xy < 0) | (xy > SIZE - 1), axis=1)
    assert np.all(vis[outside] == 0)
    outside_seen += outside.sum()
  assert outside_seen > 0  # Truncation really pushed keypoints out.


def test_images_show_the_person(body):
  scene = _scene(body, truncation_fraction=0.0)
  poses = pose_prior.sample_poses(np.random.default_rng(1), 3)
  for i, pose in enumerate(poses):
    verts, kps = _posed(body, pose)
    result, debug = scene.render(verts, kps, np.random.SeedSequence(i),
                                 return_debug=True)
    rendered, background = debug['render'], debug['background']
    image = tf.io.decode_jpeg(result.jpeg).numpy()
    inner = rendered.mask >= 1.0
    assert inner.sum() > 0.03 * SIZE * SIZE
    diff = np.abs(image.astype(float) - background.astype(float)).mean(-1)
    assert diff[inner].mean() > 20.0  # The body is drawn over the background.
    assert diff[rendered.mask == 0].mean() < 10.0  # Elsewhere: background.


def test_command_line(tmp_path):
  out = tmp_path / 'cli'
  cmd = [sys.executable, '-m', 'datasets.synthetic', f'--output_dir={out}',
         '--num_train=2', '--num_test=1', '--num_mocap=3', '--img_size=32',
         '--body_model=standin', '--standin_num_vertices=300',
         '--num_workers=0']
  root = repo_paths.ROOT
  subprocess.run(cmd, check=True, cwd=root, capture_output=True, timeout=300)
  meta = generator.read_meta(str(out))
  assert meta['datasets'][generator.DATASET_3D] == {'train': 2, 'test': 1}
  assert meta['datasets'][generator.DATASET_MOCAP] == {'train': 3, 'test': 1}


def test_scene_options_keep_body_camera_and_labels(body):
  # Fixed colours and a plain background change nothing but the pixels.
  pose = pose_prior.sample_poses(np.random.default_rng(4), 1)[0]
  verts, kps = _posed(body, pose)
  seed = np.random.SeedSequence(11)
  default, d0 = _scene(body).render(verts, kps, seed, return_debug=True)
  easy, d1 = _scene(body, part_colors='fixed', background='plain').render(
      verts, kps, seed, return_debug=True)
  np.testing.assert_array_equal(default.keypoints, easy.keypoints)
  assert (d0['f_px'], d0['offset'].tolist()) == (d1['f_px'],
                                                 d1['offset'].tolist())
  np.testing.assert_array_equal(d0['render'].face_index,
                                d1['render'].face_index)
  assert not np.array_equal(d0['render'].image, d1['render'].image)


def test_without_antialiasing_edges_are_body_or_background(body):
  # The same example with and without anti-aliasing: the same faces at the
  # pixel centres; without it the coverage is 0 or 1 and every pixel the
  # mesh covers has the anti-aliased interior's colour or the background's.
  pose = pose_prior.sample_poses(np.random.default_rng(6), 1)[0]
  verts, kps = _posed(body, pose)
  seed = np.random.SeedSequence(12)
  smooth, d0 = _scene(body, noise_max=0.0).render(verts, kps, seed,
                                                  return_debug=True)
  hard, d1 = _scene(body, noise_max=0.0, antialias=False).render(
      verts, kps, seed, return_debug=True)
  np.testing.assert_array_equal(smooth.keypoints, hard.keypoints)
  m0, m1 = d0['render'].mask, d1['render'].mask
  np.testing.assert_array_equal(d0['render'].face_index,
                                d1['render'].face_index)
  assert np.any((m0 > 0) & (m0 < 1))  # the anti-aliased edge exists
  assert set(np.unique(m1).tolist()) <= {0.0, 1.0}
  np.testing.assert_array_equal(m1, (d1['render'].face_index >= 0))
  inside, outside = m1 == 1, m1 == 0
  full = inside & (m0 == 1)
  np.testing.assert_array_equal(d1['render'].image[full],
                                d0['render'].image[full])
  np.testing.assert_array_equal(d1['render'].image[outside],
                                d1['background'][outside])
  assert not np.array_equal(d0['render'].image, d1['render'].image)


def test_fixed_part_colours_are_the_palette_shaded(body):
  scene = _scene(body, part_colors='fixed', truncation_fraction=0.0)
  palette = scene_lib.fixed_part_palette(24)
  np.testing.assert_array_equal(scene.fixed_palette, palette)
  parts_seen = set()
  for i, pose in enumerate(pose_prior.sample_poses(np.random.default_rng(5),
                                                   2)):
    verts, kps = _posed(body, pose)
    _, debug = scene.render(verts, kps, np.random.SeedSequence(i),
                            return_debug=True)
    rendered = debug['render']
    inner = (rendered.mask >= 1.0) & (rendered.face_index >= 0)
    part = scene.parts[rendered.face_index[inner]]
    rgb = rendered.image[inner].astype(np.float64)
    # Lambert shading scales the base colour: pixel = 255 * intensity *
    # palette[part], so pixel / palette is the same on the three channels.
    ratio = rgb / (255.0 * palette[part])
    bright = rgb.max(axis=1) > 60  # Rounding dominates on dark pixels.
    spread = ratio[bright].max(axis=1) - ratio[bright].min(axis=1)
    assert np.percentile(spread, 95) < 0.05
    parts_seen.update(part.tolist())
  assert len(parts_seen) >= 10


def test_fixed_palette_tells_left_from_right():
  palette = scene_lib.fixed_part_palette(24)
  for name in joints_lib.SMPL_JOINT_NAMES:
    if name.startswith('left_'):
      twin = 'right_' + name[len('left_'):]
      gap = np.abs(palette[_J[name]] - palette[_J[twin]]).max()
      assert gap > 0.2, (name, twin)
  assert np.all((palette >= 0) & (palette <= 1))


def test_plain_background_is_the_clutter_one_without_shapes():
  plain = scene_lib.random_background(np.random.default_rng(3), SIZE,
                                            shapes=False)
  clutter = scene_lib.random_background(np.random.default_rng(3), SIZE)
  # Same gradient and blotches: equal wherever no shape was drawn.
  assert np.mean(np.all(plain == clutter, axis=-1)) > 0.3
  assert not np.array_equal(plain, clutter)
  # Smooth: an 8 x 8 grid upsampled, no sharp shape edges.
  step = np.abs(np.diff(plain.astype(np.int32), axis=0)).max()
  assert step < 40
  # The generator ends in the same state either way.
  r1, r2 = np.random.default_rng(3), np.random.default_rng(3)
  scene_lib.random_background(r1, SIZE, shapes=False)
  scene_lib.random_background(r2, SIZE)
  assert r1.random() == r2.random()


def test_scene_config_rejects_unknown_options():
  with pytest.raises(ValueError, match='part_colors'):
    scene_lib.SceneConfig(part_colors='pastel')
  with pytest.raises(ValueError, match='background'):
    scene_lib.SceneConfig(background='none')


def test_generate_records_scene_options_and_3d_count(body, tmp_path):
  meta = _generate(
      tmp_path, body, num_train=2, num_test=1, num_mocap=3, num_train_3d=5,
      kinds=('2d', '3d'),
      scene=scene_lib.SceneConfig(part_colors='fixed',
                                        background='plain'),
      prior=pose_prior.PosePriorConfig(yaw_max_deg=0.0))
  assert meta['datasets'][generator.DATASET_2D] == {'train': 2, 'test': 1}
  assert meta['datasets'][generator.DATASET_3D] == {'train': 5, 'test': 1}
  assert meta['scene'] == {'part_colors': 'fixed', 'background': 'plain',
                           'yaw_max_deg': 0.0, 'antialias': True}
  assert generator.read_meta(str(tmp_path)) == meta
  assert len(_records(str(tmp_path), generator.DATASET_3D, 'train')) == 5
  # Yaw 0: every body faces the camera up to the 10-degree tilt, i.e. its
  # forward axis (SMPL +z) stays within ~15 degrees of the camera's -z.
  for record in _records(str(tmp_path), generator.DATASET_3D, 'train'):
    ex = tf.train.Example.FromString(record)
    pose = np.array(ex.features.feature['mosh/pose'].float_list.value)
    forward = smpl_reference.rodrigues(pose[:3]) @ np.array([0.0, 0.0, 1.0])
    assert -forward[2] > np.cos(np.radians(15))


@pytest.mark.parametrize('jit', [False, True])
def test_posing_joints_and_padded_mesh_match_the_smpl_layer(body, jit):
  # The crossing test runs on the joints alone and the accepted poses get
  # their mesh from fixed-size batches padded with rest poses (under XLA for
  # large datasets): both must be what the SMPL layer gives for the same
  # poses (5 and 11 rows through a mesh batch of 4: full, padded and
  # several chunks).
  poser = generator._Poser(body, mesh_batch=4, jit=jit)
  for count, seed in ((5, 8), (11, 10)):
    pose = pose_prior.sample_poses(np.random.default_rng(seed), count)
    betas = np.random.default_rng(seed + 1).normal(size=(count, 10))
    out = poser.smpl(tf.constant(pose, tf.float32),
                     tf.constant(betas, tf.float32))
    only, extra = poser.joints_only(pose, betas)
    assert extra == ()
    np.testing.assert_allclose(only, out.joints.numpy(), atol=1e-5)
    vertices, keypoints = poser.mesh(pose, betas)
    assert vertices.shape == (count, body.num_vertices, 3)
    np.testing.assert_allclose(vertices, out.vertices.numpy(), atol=1e-5)
    np.testing.assert_allclose(keypoints, out.keypoints.numpy(), atol=1e-5)
  # Mocap examples skip the mesh; their poses are the image examples'.
  full = generator._pose_batch(poser, generator.DATASET_MOCAP, 'train',
                               range(40), 3, pose_prior.PosePriorConfig())
  fast = generator._pose_batch(poser, generator.DATASET_MOCAP, 'train',
                               range(40), 3, pose_prior.PosePriorConfig(),
                               mesh=False)
  np.testing.assert_array_equal(fast[0], full[0])
  np.testing.assert_array_equal(fast[1], full[1])
  assert full[2].shape[0] == 40 and full[3].shape == (40, 19, 3)
  assert fast[2] is None and fast[3] is None


def test_worker_environment_sets_then_restores_and_keeps_user_values(
    monkeypatch):
  # Spawned renderers start single-threaded with glibc told to keep freed
  # memory; the parent's environment is restored afterwards, and a value
  # the user set is neither overridden nor removed.
  monkeypatch.setenv('OMP_NUM_THREADS', '3')
  monkeypatch.delenv('MALLOC_TRIM_THRESHOLD_', raising=False)
  monkeypatch.delenv('MKL_NUM_THREADS', raising=False)
  with generator._worker_environment():
    assert os.environ['OMP_NUM_THREADS'] == '3'
    assert os.environ['MKL_NUM_THREADS'] == '1'
    assert int(os.environ['MALLOC_TRIM_THRESHOLD_']) >= 64 << 20
  assert os.environ['OMP_NUM_THREADS'] == '3'
  assert 'MKL_NUM_THREADS' not in os.environ
  assert 'MALLOC_TRIM_THRESHOLD_' not in os.environ
