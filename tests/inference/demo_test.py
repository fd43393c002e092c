"""Demo: crops, camera conversion, outputs on a real photo, bad inputs."""

import dataclasses
import glob
import json
import os
import shutil
import subprocess
import sys

import cv2
import numpy as np
import pytest
import tensorflow as tf

from hmr_tf import configs
from hmr_tf.inference import crops
from hmr_tf.inference import demo_lib
from hmr_tf.inference import sources
from hmr_tf.inference import writers
from hmr_tf.modeling import hmr_model
from hmr_tf.modeling import mean_params
from hmr_tf.render import renderer
from hmr_tf.smpl import model_io
from hmr_tf.smpl import standin
from hmr_tf.training import checkpoints
from hmr_tf.training import model_files
import detector_models  # tests/support/
import gltf_reader  # tests/support/
import gltf_validator  # tests/support/
import repo_paths  # tests/support/
import train_fixtures  # tests/support/

IMG = 64
ROOT = repo_paths.ROOT


def _photo():
  """A public-domain photograph: NASA's astronaut (scikit-image)."""
  try:
    from skimage import data  # pylint: disable=g-import-not-at-top
    return data.astronaut()
  except ImportError:
    import matplotlib.cbook  # pylint: disable=g-import-not-at-top
    path = matplotlib.cbook.get_sample_data('grace_hopper.jpg',
                                            asfileobj=False)
    return cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)


# ---------------------------------------------------------------------------
# Crops and cameras (no model).


def test_crop_from_bbox():
  crop = crops.crop_from_bbox((10, 20, 100, 300), (400, 200, 3))
  assert crop.center == (59.5, 169.5)
  assert crop.scale == pytest.approx(0.5)  # 300 px tall -> 150 px
  assert crop.window == pytest.approx(448)
  with pytest.raises(crops.DemoInputError, match='outside'):
    crops.crop_from_bbox((250, 20, 100, 300), (400, 200, 3))
  with pytest.raises(crops.DemoInputError, match='positive'):
    crops.crop_from_bbox((0, 0, 0, 10), (400, 200, 3))


def test_crop_whole_image():
  crop = crops.crop_whole_image((100, 300, 3))
  assert crop.center == (149.5, 49.5)
  assert crop.window == pytest.approx(300)


def _openpose(tmp_path, people, key='pose_keypoints_2d'):
  path = tmp_path / 'op.json'
  path.write_text(json.dumps(
      {'version': 1.3, 'people': [{key: list(np.ravel(p))} for p in people]}))
  return str(path)


def test_crop_from_openpose_picks_most_confident(tmp_path):
  weak = [[10, 10, 0.3], [20, 40, 0.3]]
  # Confident points span (100, 50)..(130, 90): diagonal 50 px; the 0.1 one
  # is below the threshold and ignored.
  strong = [[100, 50, 0.9], [130, 90, 0.8], [500, 500, 0.1]]
  for key in ('pose_keypoints_2d', 'pose_keypoints'):
    path = _openpose(tmp_path, [weak, strong], key)
    crop = crops.crop_from_openpose(path, (200, 200, 3))
    assert crop.center == (115.0, 70.0)
    assert crop.scale == pytest.approx(150 / 50)
  crop = crops.crop_from_openpose(path, (200, 200, 3), person_index=0)
  assert crop.center == (15.0, 25.0)
  with pytest.raises(crops.DemoInputError, match='person_index 5'):
    crops.crop_from_openpose(path, (200, 200, 3), person_index=5)
  nobody = _openpose(tmp_path, [[[1, 2, 0.1], [3, 4, 0.2]]])
  with pytest.raises(crops.DemoInputError, match='above 0.2'):
    crops.crop_from_openpose(nobody, (200, 200, 3))


def test_crop_image_geometry():
  # A bright pixel at (x, y) = (70, 30) in a 100x100 image; window 50 around
  # (60, 40) into a 25-px crop: crop coordinate (70 - 60) / 25 = 0.4,
  # (30 - 40) / 25 = -0.4 -> crop pixel (0.4 + 1) * 12.5 - 0.5 = 17, 7.
  image = np.zeros((100, 100, 3), np.uint8)
  image[30, 70] = 255
  crop = crops.Crop(center=(60.0, 40.0), scale=224 / 50, source='bbox')
  out = crops.crop_image(image, crop, 25)
  assert out.shape == (25, 25, 3)
  row, col = np.unravel_index(np.argmax(out[..., 0]), (25, 25))
  assert (row, col) == (7, 17)
  assert out.min() == pytest.approx(-1.0)


def test_image_coordinates_and_perspective_camera():
  crop = crops.Crop(center=(100.0, 50.0), scale=0.5, source='bbox')
  rng = np.random.default_rng(0)
  points = np.concatenate([rng.normal(size=(19, 2)) * 0.3,
                           np.zeros((19, 1))], 1)  # depth 0
  cam = np.array([0.9, 0.1, -0.2])
  pred = {'cam': cam, 'keypoints2d': cam[0] * (points[:, :2] + cam[1:]),
          'vertices': points}
  out = demo_lib.to_image_coordinates(pred, crop, (300, 400, 3))
  # Image pixel = centre + crop coordinate * window / 2, window 448.
  np.testing.assert_allclose(out['keypoints2d_image'],
                             [100, 50] + pred['keypoints2d'] * 224)
  persp = out['perspective']
  # The whole image's camera: focal = the diagonal, principal point = the
  # image centre, the body moved by cam_t_full.
  assert persp['focal_px'] == pytest.approx(500.0)  # hypot(300, 400)
  assert persp['principal_point'] == [199.5, 149.5]
  np.testing.assert_allclose(persp['translation'], out['cam_t_full'])
  # The TF graph's version (the SavedModel's) gives the same translation.
  from hmr_tf.geometry import camera  # pylint: disable=g-import-not-at-top
  np.testing.assert_allclose(
      camera.full_image_translation([cam], [[100.0, 50.0]], [448.0],
                                    [[300, 400]], [500.0]).numpy()[0],
      out['cam_t_full'], rtol=1e-5)
  # A given focal length: TZ grows with it, TX and TY stay.
  other = demo_lib.to_image_coordinates(pred, crop, (300, 400, 3), 1000.0)
  np.testing.assert_allclose(other['cam_t_full'],
                             out['cam_t_full'] * [1, 1, 2])
  # Points at the body's depth project identically with both cameras.
  projected = renderer.perspective_project(
      writers.camera_frame_vertices(out), persp['focal_px'],
      persp['principal_point'])
  np.testing.assert_allclose(projected[:, :2], out['keypoints2d_image'],
                             atol=1e-9)


# ---------------------------------------------------------------------------
# The demo on a photograph, with a briefly trained checkpoint.


@pytest.fixture(scope='module')
def trained(tmp_path_factory):
  tmp = tmp_path_factory.mktemp('demo')
  body_model = standin.build(num_vertices=300)
  config = configs.ModelConfig(img_size=IMG)
  tf.keras.utils.set_random_seed(0)
  model = hmr_model.HMRModel(
      body_model, mean_params.mean_theta(np.zeros(72), np.zeros(10)), config)
  model.compile()
  batch, mocap = train_fixtures.random_train_batch(IMG)
  theta0 = model.regressor.theta0.numpy().copy()
  step = tf.function(model.train_step)
  for _ in range(2):
    step((batch, mocap))
  assert not np.allclose(theta0, model.regressor.theta0.numpy())
  ckpt_dir = str(tmp / 'ckpt')
  tf.train.Checkpoint(model=model).save(os.path.join(ckpt_dir, 'ckpt'))
  model_files.save_model_config(ckpt_dir, config)
  body_path = str(tmp / 'body_model.npz')
  model_io.save_model(body_model, body_path)
  photo_path = str(tmp / 'astronaut.png')
  cv2.imwrite(photo_path, cv2.cvtColor(_photo(), cv2.COLOR_RGB2BGR))
  return dict(tmp=tmp, model=model, body_model=body_model, ckpt=ckpt_dir,
              body_path=body_path, photo=photo_path)


def test_restore_gives_the_trained_model(trained):
  restored = checkpoints.restore_model(trained['ckpt'],
                                         trained['body_model'])
  assert restored.config.img_size == IMG
  x = np.random.default_rng(1).uniform(-1, 1, (1, IMG, IMG, 3)).astype(
      np.float32)
  np.testing.assert_allclose(restored(x)['pose'].numpy(),
                             trained['model'](x)['pose'].numpy(), atol=1e-5)


def _run_demo(*args, timeout=300):
  env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL='2')
  return subprocess.run([sys.executable, '-m', 'hmr_tf.demo', *args],
                        capture_output=True, text=True, cwd=ROOT, env=env,
                        timeout=timeout, check=False)


def test_demo_on_a_photograph(trained):
  out_dir = str(trained['tmp'] / 'out')
  proc = _run_demo(f'--checkpoint={trained["ckpt"]}',
                   f'--smpl_model_path={trained["body_path"]}',
                   f'--image={trained["photo"]}', '--bbox=140,20,240,490',
                   f'--output_dir={out_dir}')
  assert proc.returncode == 0, proc.stderr[-3000:]
  paths = writers.output_paths(out_dir, 'astronaut')
  assert sorted(os.listdir(out_dir)) == sorted(
      os.path.basename(p) for p in paths.values())
  photo = cv2.imread(trained['photo'])
  for key in ('overlay', 'side', 'keypoints'):
    picture = cv2.imread(paths[key])
    assert picture.shape == photo.shape, key
  overlay = cv2.imread(paths['overlay'])
  assert np.any(overlay != photo)  # the mesh is drawn on it
  verts, faces = renderer.read_obj(paths['mesh'])
  body = trained['body_model']
  assert verts.shape == (body.num_vertices, 3)
  assert faces.shape == body.faces.shape
  np.testing.assert_array_equal(faces, body.faces)
  with open(paths['params']) as f:
    params = json.load(f)
  assert len(params['pose']) == 72 and len(params['shape']) == 10
  assert np.asarray(params['keypoints2d_image']).shape == (19, 2)
  assert np.asarray(params['joints3d']).shape == (24, 3)
  assert params['crop']['source'] == 'bbox'
  assert params['crop']['scale'] == pytest.approx(150 / 490)
  assert params['image_size'] == {'height': 512, 'width': 512}


def test_library_path_with_openpose(trained, tmp_path):
  image = sources.load_image(trained['photo'])
  path = _openpose(tmp_path, [[[250, 60, 0.9], [260, 500, 0.9]]])
  crop = crops.crop_from_openpose(path, image.shape)
  result = demo_lib.run_on_image(trained['model'], image, crop)
  x = crops.crop_image(image, crop, IMG)[None]
  np.testing.assert_allclose(result['cam'],
                             trained['model'](x)['cam'].numpy()[0], atol=1e-5)
  paths = writers.write_outputs(str(tmp_path / 'o'), 'a', image, result,
                                 trained['body_model'].faces)
  assert all(os.path.isfile(p) for p in paths.values())


@pytest.mark.parametrize('case', ['missing', 'empty', 'not_image', 'nobody',
                                  'bbox_outside', 'bad_body_model',
                                  'truncated_checkpoint', 'detector_missing',
                                  'detector_neither', 'video_unopenable'])
def test_bad_input_one_line_error_no_files(trained, tmp_path, case):
  photo = trained['photo']
  args = [f'--checkpoint={trained["ckpt"]}']
  if case == 'missing':
    args.append(f'--image={tmp_path / "nope.jpg"}')
  elif case == 'empty':
    (tmp_path / 'empty.jpg').write_bytes(b'')
    args.append(f'--image={tmp_path / "empty.jpg"}')
  elif case == 'not_image':
    (tmp_path / 'text.jpg').write_text('hello, not a picture\n')
    args.append(f'--image={tmp_path / "text.jpg"}')
  elif case == 'nobody':
    args += [f'--image={photo}',
             f'--openpose_json={_openpose(tmp_path, [[[5, 5, 0.1]]])}']
  elif case == 'bad_body_model':
    (tmp_path / 'body.npz').write_text('not a body model')
    args += [f'--image={photo}', f'--smpl_model_path={tmp_path / "body.npz"}']
  elif case == 'truncated_checkpoint':
    ckpt = tmp_path / 'ckpt'
    shutil.copytree(trained['ckpt'], ckpt)
    (data,) = glob.glob(str(ckpt / '*.data-*'))
    with open(data, 'r+b') as f:
      f.truncate(os.path.getsize(data) // 2)
    args = [f'--checkpoint={ckpt}', f'--image={photo}',
            f'--smpl_model_path={trained["body_path"]}']
  elif case == 'detector_missing':
    args += [f'--image={photo}', f'--detector={tmp_path / "nowhere"}']
  elif case == 'detector_neither':
    other = detector_models.save_other(str(tmp_path / 'classifier'))
    args += [f'--image={photo}', f'--detector={other}']
  elif case == 'video_unopenable':
    (tmp_path / 'clip.mp4').write_bytes(b'\x00\x00\x00\x18ftypmp42 broken')
    args.append(f'--video={tmp_path / "clip.mp4"}')
  else:
    args += [f'--image={photo}', '--bbox=600,10,50,50']
  out_dir = tmp_path / 'out'
  proc = _run_demo(*args, f'--output_dir={out_dir}', timeout=120)
  assert proc.returncode == (2 if case == 'detector_missing' else 1)
  last = proc.stderr.strip().splitlines()[-1]
  assert last.startswith('hmr_tf.demo: error: '), proc.stderr[-2000:]
  expected = {'missing': 'no such file', 'empty': 'empty',
              'not_image': 'not a readable image', 'nobody': 'no person',
              'bbox_outside': 'outside',
              'bad_body_model': str(tmp_path / 'body.npz'),
              'truncated_checkpoint': 'unreadable',
              'detector_missing': 'nowhere: expected "hog" or a SavedModel',
              'detector_neither': 'neither the TF2 Object Detection API',
              'video_unopenable': 'clip.mp4: no readable frames'}[case]
  assert expected in last
  assert 'Traceback' not in proc.stderr
  assert not out_dir.exists() or not os.listdir(out_dir)


# ---------------------------------------------------------------------------
# Streaming (issue 19 §6): bounded memory over many frames, file modes.


class _FakeModel:
  """Stands in for HMRModel: the outputs demo_lib reads, no TensorFlow."""

  class config:  # pylint: disable=invalid-name
    img_size = 16
    base_crop_size = 224.0

  def __call__(self, crops, training=False):
    del training
    n = len(crops)
    return {'cam': np.tile([[0.9, 0.0, 0.0]], (n, 1)),
            'keypoints2d': np.zeros((n, 19, 2)),
            'pose': np.zeros((n, 72))}


def _write_video(path, num_frames, height=360, width=640):
  writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*'MJPG'), 25,
                           (width, height))
  assert writer.isOpened()
  rng = np.random.default_rng(0)
  frame = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
  for i in range(num_frames):
    frame[:8] = i % 256
    writer.write(frame)
  writer.release()
  return path


def _peak_bytes(video, batch_size=4):
  """Peak traced memory (NumPy buffers included) while streaming a video."""
  import tracemalloc  # pylint: disable=g-import-not-at-top
  seen = []
  frames = sources.VideoFrames(video)
  items = ((stem, image, crops.crop_whole_image(image.shape))
           for stem, image in frames)
  tracemalloc.start()
  try:
    done = demo_lib.run_streaming(
        _FakeModel(), items, lambda key, image, result: seen.append(key),
        batch_size=batch_size)
    _, peak = tracemalloc.get_traced_memory()
  finally:
    tracemalloc.stop()
  assert done == len(seen)
  return done, peak, seen


def test_video_streams_with_flat_memory(tmp_path):
  short = _write_video(str(tmp_path / 'short.avi'), 16)
  long = _write_video(str(tmp_path / 'long.avi'), 160)
  done_short, peak_short, _ = _peak_bytes(short)
  done_long, peak_long, seen = _peak_bytes(long)
  assert (done_short, done_long) == (16, 160)
  assert seen[:2] == ['frame_000000', 'frame_000001']
  assert seen[-1] == 'frame_000159'
  frame_bytes = 360 * 640 * 3
  # Holding every frame would add 144 frames (~100 MB); streaming holds a
  # batch of 4 at any length.
  assert peak_long < peak_short + 2 * frame_bytes, (peak_short, peak_long)
  assert peak_long < 12 * frame_bytes


def test_image_dir_is_decoded_lazily(tmp_path):
  for i in range(3):
    cv2.imwrite(str(tmp_path / f'{i}.png'), np.full((8, 8, 3), i, np.uint8))
  (tmp_path / '3.png').write_text('not a picture')
  stream = sources.iter_images(sources.image_dir_files(str(tmp_path)))
  assert [next(stream)[0] for _ in range(3)] == ['0', '1', '2']
  with pytest.raises(crops.DemoInputError, match='3.png: not a readable'):
    next(stream)


def test_a_video_without_frames_is_one_error(tmp_path):
  path = tmp_path / 'empty.avi'
  path.write_bytes(b'RIFF')
  with pytest.raises(crops.DemoInputError, match='no readable frames'):
    sources.VideoFrames(str(path))
  with pytest.raises(crops.DemoInputError, match='no such file'):
    sources.VideoFrames(str(tmp_path / 'none.avi'))


def test_outputs_respect_the_umask(tmp_path):
  """Issue 19 §6: the .obj (and JSON) were -rw------- (mkstemp's mode)."""
  result = demo_lib.to_image_coordinates(
      {'cam': np.array([0.9, 0.0, 0.0]), 'keypoints2d': np.zeros((19, 2)),
       'pose': np.zeros(72), 'shape': np.zeros(10),
       'vertices': np.array([[0, 0, 0], [0.1, 0, 0], [0, 0.1, 0]]),
       'joints3d': np.zeros((24, 3)), 'keypoints3d': np.zeros((19, 3))},
      crops.crop_whole_image((32, 32, 3)), (32, 32, 3))
  previous = os.umask(0o002)
  try:
    paths = writers.write_outputs(str(tmp_path / 'out'), 'x',
                                   np.zeros((32, 32, 3), np.uint8), result,
                                   np.array([[0, 1, 2]]))
  finally:
    os.umask(previous)
  for key, path in paths.items():
    assert os.stat(path).st_mode & 0o777 == 0o664, (key, oct(
        os.stat(path).st_mode))


def test_demo_streams_a_video(trained, tmp_path):
  video = _write_video(str(tmp_path / 'clip.avi'), 5, height=96, width=128)
  out_dir = tmp_path / 'out'
  proc = _run_demo(f'--checkpoint={trained["ckpt"]}',
                   f'--smpl_model_path={trained["body_path"]}',
                   f'--video={video}', '--batch_size=2',
                   f'--output_dir={out_dir}')
  assert proc.returncode == 0, proc.stderr[-3000:]
  names = sorted(os.listdir(out_dir))
  # Six files a frame, and the one track's animation (the whole frame is
  # the person: one track).
  assert len(names) == 5 * 6 + 1
  assert 'frame_000004_overlay.png' in names and 'track000.glb' in names
  with open(out_dir / 'frame_000004_params.json') as f:
    params = json.load(f)
  assert params['track_id'] == 0 and params['smoothed'] is True
  assert cv2.imread(str(out_dir / 'frame_000004_overlay.png')).shape == (
      96, 128, 3)


def test_a_bad_image_later_in_a_folder_is_one_line(trained, tmp_path):
  folder = tmp_path / 'images'
  folder.mkdir()
  shutil.copy(trained['photo'], folder / 'a.png')
  (folder / 'b.png').write_text('not a picture')
  out_dir = tmp_path / 'out'
  proc = _run_demo(f'--checkpoint={trained["ckpt"]}',
                   f'--smpl_model_path={trained["body_path"]}',
                   f'--image_dir={folder}', '--batch_size=1',
                   f'--output_dir={out_dir}')
  assert proc.returncode == 1, proc.stderr[-3000:]
  last = proc.stderr.strip().splitlines()[-1]
  assert last.startswith('hmr_tf.demo: error: ') and 'b.png' in last
  assert 'Traceback' not in proc.stderr
  # The first image's outputs are complete; no temporary is left.
  assert sorted(os.listdir(out_dir)) == sorted(
      os.path.basename(p) for p in writers.output_paths(str(out_dir),
                                                         'a').values())


# ---------------------------------------------------------------------------
# Every person in the picture.


def test_read_bboxes_names_the_line(tmp_path):
  good = tmp_path / 'boxes.txt'
  good.write_text('# x, y, w, h\n10,20,30,40\n\n 5 6 7 8 \n')
  assert crops.read_bboxes(str(good)) == [(10, 20, 30, 40), (5, 6, 7, 8)]
  bad = tmp_path / 'bad.txt'
  bad.write_text('10,20,30,40\n1,2,3\n')
  with pytest.raises(crops.DemoInputError,
                     match=r'bad\.txt: line 2: expected four numbers'):
    crops.read_bboxes(str(bad))
  empty = tmp_path / 'empty.txt'
  empty.write_text('# nothing\n')
  with pytest.raises(crops.DemoInputError, match='no boxes'):
    crops.read_bboxes(str(empty))


def test_crops_from_openpose_keeps_every_confident_person(tmp_path):
  path = _openpose(tmp_path, [[[10, 10, 0.9], [10, 90, 0.9]],
                              [[5, 5, 0.1], [6, 6, 0.1]],  # not confident
                              [[120, 30, 0.8], [150, 100, 0.7]]])
  found = crops.crops_from_openpose(path, (200, 200, 3))
  assert [c.source for c in found] == ['openpose person 0',
                                       'openpose person 2']
  assert found[0].center == (10.0, 50.0)
  assert found[0].scale == pytest.approx(150 / 80)


def _quad_result(z, x_center=50.0):
  """A camera-facing square 0.4 m wide at depth z, as a demo result."""
  verts = np.array([[-0.2, -0.2, 0], [0.2, -0.2, 0], [0.2, 0.2, 0],
                    [-0.2, 0.2, 0]], np.float64)
  return {'vertices': verts, 'cam_t_full': np.array([0.0, 0.0, z]),
          'keypoints2d_image': np.full((19, 2), x_center),
          'perspective': {'focal_px': 100.0, 'principal_point': [49.5, 49.5],
                          'translation': [0.0, 0.0, z]}}


def test_people_render_with_one_z_buffer():
  faces = np.array([[0, 1, 2], [0, 2, 3]])
  image = np.zeros((100, 100, 3), np.uint8)
  near, far = _quad_result(2.0), _quad_result(4.0)
  for k, order in ((0, (near, far)), (1, (far, near))):
    pictures = writers.render_people(image, list(order), faces)
    centre = pictures['overlay'][50, 50].astype(float) / 255
    # The nearer square hides the farther one whatever the order: the pixel
    # has the nearer person's (person k's) colour (camera-facing: full
    # light).
    expected = [(0.9, 0.7, 0.55), (0.55, 0.75, 0.95)][k]
    np.testing.assert_allclose(centre, expected, atol=2 / 255)


def test_demo_runs_every_box_in_one_overlay(trained, tmp_path):
  boxes = [(140, 20, 240, 490), (20, 100, 150, 300)]
  box_file = tmp_path / 'boxes.txt'
  box_file.write_text('\n'.join(','.join(map(str, b)) for b in boxes))
  out_dir = str(tmp_path / 'out')
  proc = _run_demo(f'--checkpoint={trained["ckpt"]}',
                   f'--smpl_model_path={trained["body_path"]}',
                   f'--image={trained["photo"]}', f'--bboxes={box_file}',
                   '--focal_length=800', f'--output_dir={out_dir}')
  assert proc.returncode == 0, proc.stderr[-3000:]
  paths = writers.people_output_paths(out_dir, 'astronaut', 2)
  assert sorted(os.listdir(out_dir)) == sorted(
      os.path.basename(p) for p in paths.values())
  with open(paths['params']) as f:
    params = json.load(f)
  assert params['num_people'] == 2
  people = params['people']
  assert sorted(p['depth_rank'] for p in people) == [0, 1]
  nearest = min(people, key=lambda p: p['cam_t_full'][2])
  assert nearest['depth_rank'] == 0
  # Each person is what the single-person path gives for that box.
  image = sources.load_image(trained['photo'])
  for box, person in zip(boxes, people):
    crop = crops.crop_from_bbox(box, image.shape)
    single = demo_lib.run_on_images(trained['model'], [image], [crop],
                                    focal_length=800.0)[0]
    np.testing.assert_allclose(person['keypoints2d_image'],
                               single['keypoints2d_image'], atol=1e-3)
    np.testing.assert_allclose(person['cam_t_full'], single['cam_t_full'],
                               rtol=1e-4)
    assert person['perspective_camera']['focal_px'] == 800.0
  verts, _ = renderer.read_obj(paths['mesh_1'])
  np.testing.assert_allclose(verts.mean(0),
                             (np.asarray(people[1]['cam_t_full']) +
                              np.zeros(3)), atol=0.5)


# ---------------------------------------------------------------------------
# People found by a detector (issue 24): a photograph, a video, bad input.
# The detector is a tiny SavedModel with the TF2 Object Detection API's
# signature (tests/support/detector_models.py): person 0 is the picture's
# bright rectangle, person 1 a constant box.

_SECOND = (0.1, 0.6, 0.9, 0.85)  # ymin, xmin, ymax, xmax (normalised)


def _two_people(height=96, width=128, shift=0):
  """A dark picture with a bright rectangle at x 16..47 (+shift), y 8..87."""
  image = np.full((height, width, 3), 30, np.uint8)
  image[8:88, 16 + shift:48 + shift] = 220
  return image


@pytest.fixture(scope='module')
def detector_dir(trained):
  return detector_models.save_object_detection(
      str(trained['tmp'] / 'detector'), [_SECOND], [1], [0.9])


def _glb_vertices(path):
  """The .glb's mesh as a viewer shows it at time 0, in the camera frame."""
  g = gltf_reader.Gltf(path)
  node = next(i for i, n in enumerate(g.doc['nodes']) if 'mesh' in n)
  return gltf_reader.posed_mesh(g, node) @ np.diag([1.0, -1.0, -1.0])


def test_demo_finds_two_people_with_a_detector(trained, detector_dir,
                                               tmp_path):
  photo = str(tmp_path / 'two_people.png')
  cv2.imwrite(photo, _two_people())
  out_dir = tmp_path / 'out'
  proc = _run_demo(f'--checkpoint={trained["ckpt"]}',
                   f'--smpl_model_path={trained["body_path"]}',
                   f'--image={photo}', f'--detector={detector_dir}',
                   f'--output_dir={out_dir}')
  assert proc.returncode == 0, proc.stderr[-3000:]
  paths = writers.people_output_paths(str(out_dir), 'two_people', 2)
  assert sorted(os.listdir(out_dir)) == sorted(
      os.path.basename(p) for p in paths.values())
  with open(paths['params']) as f:
    params = json.load(f)
  assert params['num_people'] == 2
  first, second = params['people']
  # The boxes the detector gave, in pixels (edges): hand-computed.
  np.testing.assert_allclose(first['box'], [16, 8, 32, 80], atol=1e-4)
  np.testing.assert_allclose(second['box'], [76.8, 9.6, 32, 76.8],
                             atol=1e-4)
  assert first['detector_score'] == pytest.approx(0.95)
  assert first['crop']['source'] == 'detector box'
  assert first['crop']['center'] == pytest.approx([31.5, 47.5])
  assert first['crop']['scale'] == pytest.approx(150 / 80)
  # Each person's .glb holds the .obj's mesh (camera frame, metres).
  for k in range(2):
    verts, _ = renderer.read_obj(paths[f'mesh_{k}'])
    np.testing.assert_allclose(_glb_vertices(paths[f'glb_{k}']), verts,
                               atol=1e-4)


@pytest.fixture(scope='module')
def tracked_video(trained, detector_dir):
  """The demo on a 6-frame video: person 0 walks right 4 px a frame."""
  tmp = trained['tmp'] / 'video'
  tmp.mkdir()
  video = str(tmp / 'clip.avi')
  writer = cv2.VideoWriter(video, cv2.VideoWriter_fourcc(*'MJPG'), 25,
                           (128, 96))
  for i in range(6):
    writer.write(_two_people(shift=4 * i))
  writer.release()
  out_dir = tmp / 'out'
  proc = _run_demo(f'--checkpoint={trained["ckpt"]}',
                   f'--smpl_model_path={trained["body_path"]}',
                   f'--video={video}', f'--detector={detector_dir}',
                   '--batch_size=4', f'--output_dir={out_dir}')
  assert proc.returncode == 0, proc.stderr[-3000:]
  return out_dir


def test_video_tracks_have_stable_ids(tracked_video):
  names = sorted(os.listdir(tracked_video))
  # 8 files a frame (3 pictures, the JSON, 2 x (.obj, .glb)), 2 tracks.
  assert len(names) == 6 * 8 + 2
  assert 'track000.glb' in names and 'track001.glb' in names
  for i in range(6):
    with open(tracked_video / f'frame_{i:06d}_params.json') as f:
      people = json.load(f)['people']
    assert [p['track_id'] for p in people] == [0, 1]
    assert people[0]['box'][0] == pytest.approx(16 + 4 * i, abs=1)
    assert all(p['smoothed'] for p in people)
    # One shape per track (the smoothing's).
    if i:
      np.testing.assert_allclose(people[0]['shape'], shape0)
    shape0 = people[0]['shape']


def test_video_track_glb_replays_the_frames(trained, tracked_video):
  """The NumPy skinning check: the file's frame t is the JSON's body."""
  from hmr_tf.smpl import layer  # pylint: disable=g-import-not-at-top
  body = trained['body_model']
  flat = dataclasses.replace(body, posedirs=np.zeros_like(body.posedirs))
  smpl = layer.SMPL(flat, dtype='float64')
  g = gltf_reader.Gltf(str(tracked_video / 'track000.glb'))
  node = next(i for i, n in enumerate(g.doc['nodes']) if 'mesh' in n)
  times = gltf_reader.keyframe_times(g)
  np.testing.assert_allclose(times, np.arange(6) / 25.0, atol=1e-6)
  for i in range(6):
    with open(tracked_video / f'frame_{i:06d}_params.json') as f:
      person = json.load(f)['people'][0]
    expected = smpl(np.array([person['pose']]),
                    np.array([person['shape']])).vertices.numpy()[0]
    expected = expected + person['cam_t_full']
    posed = gltf_reader.posed_mesh(g, node, 0, float(times[i]))
    np.testing.assert_allclose(posed @ np.diag([1.0, -1.0, -1.0]),
                               expected, atol=1e-4)


def test_video_track_glb_passes_the_validator(tracked_video):
  reports = gltf_validator.validate([str(tracked_video / 'track000.glb'),
                                     str(tracked_video /
                                         'frame_000000_person0_mesh.glb')])
  for report in reports:
    assert report['numErrors'] == 0, report['messages'][:5]
