"""Benchmark: video smoothing's acceleration error and PA-MPJPE, with ground truth.

  python src/bench/smoothing_bench.py [--flagfile=src/flags/quickstart.flags]
      [--output_dir=runs/quickstart | --model_dir=DIR | --checkpoint=PATH]
      [--bench_sequences=3] [--bench_seconds=8] [--bench_key_seconds=1]
      [--bench_fps=30] [--bench_image_size=192] [--bench_sweep]
      [--smoothing_min_cutoff=... --smoothing_beta=... and the other
       hmr_tf.configs.SmoothingConfig flags]

What it does:
  1. Synthetic videos with known ground truth: each sequence draws one body
     shape and a key pose every `--bench_key_seconds` from the synthetic
     pose prior (hmr_tf.synthetic.pose_prior, crossing poses rejected, the
     run's yaw range) and moves smoothly through them: every joint rotation
     follows a C2 cubic rotation spline through its key rotations (SciPy's
     RotationSpline), at `--bench_fps` frames per second. The body also
     sways across the image and towards the camera (a smooth 2D path and a
     ±8% change of size). Each frame is rendered with the synthetic scene's
     pieces (hmr_tf.synthetic.scene, hmr_tf.render.renderer) and the run's
     scene options (read from the flagfile as the quickstart's data: fixed
     part colours, a plain background, no anti-aliasing), but with one
     fixed camera, background and light for the whole video and fresh
     sensor noise in every frame, then JPEG-encoded (quality 95) as the
     training images were. The person's size matches the training images'
     (the 14 LSP keypoints' box diagonal about 150 * 128 / 224 px).
  2. Each frame is cropped as the demo crops a person given by OpenPose
     keypoints (hmr_tf.inference.crops.crop_from_openpose: the keypoints'
     box, its diagonal scaled to 150 px), fed with the ground-truth 14 LSP
     keypoints: a perfect tracker. This is the training crop's rule, and
     the model's own crop size (model_config.json) is used.
  3. The trained model runs on every frame through the demo's library
     (hmr_tf.training.checkpoints.restore_model, demo_lib.run_on_images):
     per-frame θ, β and the full-image camera cam_t_full.
  4. Each sequence is one track: hmr_tf.inference.smoothing.smooth_track
     with the SmoothingConfig from the flags (defaults: the library's), and
     the smoothed θ with the track's one β are posed again with the body
     model (the model's own SMPL layer).

Measures, on the 14 LSP joints of the cocoplus regressor, in mm:
  * acceleration error (VIBE's `compute_error_accel`, mm/frame²): both
    skeletons centred at the pelvis (the mean of the two hips, as VIBE's
    evaluation and hmr_tf.evaluation.metrics do), then for every frame t
    with neighbours, the mean over the 14 joints of
    ‖(p[t-1] - 2 p[t] + p[t+1]) - (g[t-1] - 2 g[t] + g[t+1])‖, averaged over
    the frames (VIBE averages over all frames of all sequences);
  * PA-MPJPE and MPJPE (hmr_tf.evaluation.metrics, pelvis-aligned);
  * the camera's acceleration error: the same second-difference error on
    cam_t_full against the ground-truth translation of the scene's camera
    in the demo's full-image camera (focal length = the image diagonal).

Prints each unsmoothed vs smoothed, the ratios and the issue's targets
(acceleration error at most 1/3 of the unsmoothed one, PA-MPJPE at most
1.02x). `--bench_sweep` adds a table over min_cutoff x beta (both passes
and the causal filter) that the defaults were chosen from.
"""

import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '..', '..'))

from absl import app  # pylint: disable=g-import-not-at-top
from absl import flags

from hmr_tf import configs
from hmr_tf import flags as hmr_flags

hmr_flags.define_flags_of(configs.SmoothingConfig)
_SEQUENCES = flags.DEFINE_integer('bench_sequences', 3,
                                  'Synthetic video sequences (tracks).',
                                  lower_bound=1)
_SECONDS = flags.DEFINE_float('bench_seconds', 8.0,
                              'Length of each sequence in seconds.',
                              lower_bound=0.5)
_KEY_SECONDS = flags.DEFINE_float(
    'bench_key_seconds', 1.0,
    'Seconds between key poses (shorter: faster motion).', lower_bound=0.1)
_FPS = flags.DEFINE_float('bench_fps', 30.0, 'Frames per second.',
                          lower_bound=1.0)
_IMAGE_SIZE = flags.DEFINE_integer('bench_image_size', 192,
                                   'Side of the video frames in pixels.',
                                   lower_bound=64)
_SEED = flags.DEFINE_integer('bench_seed', 0, 'Seed of the sequences.',
                             lower_bound=0)
_SWEEP = flags.DEFINE_boolean(
    'bench_sweep', False, 'Also print the table over min_cutoff x beta.')
_JSON = flags.DEFINE_string('bench_json', '',
                            'Also write the numbers to this JSON file.')
_SHEET = flags.DEFINE_string(
    'bench_frames_png', '',
    'Also write every 15th frame of the first sequence side by side, with '
    'its crop, to this PNG file (to look at the video).')
_DEFAULT_FLAGFILE = os.path.join(os.path.dirname(__file__), '..', 'flags',
                                 'quickstart.flags')
_NOISE_STD = 3.0  # Sensor noise, 0..255 levels (the scene draws 0 to 6).
_LIGHT = (0.3, -0.5, -1.2)  # From the surface to the light, camera frame.
_AMBIENT = 0.45
_SIZE_SWAY = 0.08  # Relative change of the person's size.
_SHIFT_SWAY = 0.12  # Sideways / vertical sway, fraction of the image.
_M_TO_MM = 1000.0


def _body_and_model(cfg):
  """The run's body model and trained model (as the demo restores them)."""
  # pylint: disable=g-import-not-at-top
  from hmr_tf.smpl import body_models
  from hmr_tf.smpl import model_io
  from hmr_tf.training import checkpoints
  from hmr_tf.training import model_files
  # pylint: enable=g-import-not-at-top
  b = cfg.body
  if not b.smpl_model_path and os.path.isfile(cfg.paths.body_model_file):
    body = model_io.load_model(cfg.paths.body_model_file)
  else:
    body = body_models.resolve_body_model(b.smpl_model_path, b.body_model,
                                          b.standin_num_vertices, b.seed)
  path = checkpoints.resolve_checkpoint(cfg.checkpoint)
  model = checkpoints.restore_model(path, body,
                                    model_files.read_model_config(path))
  return body, model, path


def _pose_fn(smpl, mesh=True):
  """(pose [P, 72], betas [P, K]) -> (joints [P, 24, 3], (verts, kps)).

  Without `mesh`: (joints, (None, keypoints)), posing only the vertices the
  keypoints need (SMPL.keypoints_only: the same keypoints, faster).
  """
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  def fn(pose, betas):
    args = (tf.constant(pose, tf.float32),
            tf.constant(betas[:, :smpl.num_betas], tf.float32))
    if not mesh:
      out = smpl.keypoints_only(*args)
      return out.joints.numpy(), (None, out.keypoints.numpy())
    out = smpl(*args)
    return out.joints.numpy(), (out.vertices.numpy(), out.keypoints.numpy())
  return fn


def _sequence(rng, pose_fn, num_betas, scale, prior, times):
  """One smooth motion: (poses [T, 72], betas [K]) through prior key poses."""
  # pylint: disable=g-import-not-at-top
  import numpy as np
  from scipy.spatial import transform
  from hmr_tf.synthetic import generator
  from hmr_tf.synthetic import pose_prior
  # pylint: enable=g-import-not-at-top
  betas = np.zeros(generator.NUM_SHAPE)
  betas[:num_betas] = generator.sample_betas(rng, num_betas)
  num_keys = int(np.ceil(times[-1] / _KEY_SECONDS.value)) + 1
  key_times = np.arange(num_keys) * _KEY_SECONDS.value
  key_rngs = [np.random.default_rng(rng.integers(2**63)) for _ in
              range(num_keys)]
  keys, _, _ = pose_prior.sample_valid(key_rngs, pose_fn,
                                       np.repeat(betas[None], num_keys, 0),
                                       scale, prior)
  keys = keys.reshape(num_keys, pose_prior.NUM_JOINTS, 3)
  poses = np.stack([
      transform.RotationSpline(
          key_times, transform.Rotation.from_rotvec(keys[:, j]))(
              times).as_rotvec()
      for j in range(pose_prior.NUM_JOINTS)], axis=1)
  return poses.reshape(len(times), -1), betas


def _render_video(rng, scene_renderer, vertices, keypoints, times):
  """Frames [T] uint8 RGB, GT 2D LSP keypoints [T, 14, 2] and GT cam_t_full.

  One weak-perspective camera for the video, pixel = f(t) (X, Y) + o(t),
  f and o moving smoothly (see the module docstring).
  """
  # pylint: disable=g-import-not-at-top
  import cv2
  import numpy as np
  from hmr_tf import configs as configs_lib
  from hmr_tf.geometry import camera
  from hmr_tf.geometry import crop as crop_lib
  from hmr_tf.render import renderer
  from hmr_tf.synthetic import scene
  # pylint: enable=g-import-not-at-top
  size = scene_renderer.img_size
  lsp = keypoints[:, :scene.NUM_LSP, :2]
  diag = np.linalg.norm(lsp.max(1) - lsp.min(1), axis=-1).mean()
  # The training images' person size: a 150-px diagonal in a 224 crop of
  # a 128-px image.
  f0 = crop_lib.PERSON_HEIGHT_PX * 128 / crop_lib.BASE_CROP_SIZE / diag
  phase = rng.random(3) * 2 * np.pi
  period = times[-1] + 1.0 / _FPS.value
  w = 2 * np.pi / period
  f_px = f0 * (1 + _SIZE_SWAY * np.sin(w * times + phase[0]))
  centre = lsp.reshape(-1, 2).mean(0)
  sway = _SHIFT_SWAY * size * np.stack(
      [np.sin(w * times + phase[1]), 0.5 * np.sin(2 * w * times + phase[2])],
      axis=-1)
  offset = (size - 1) / 2.0 + sway - f_px[:, None] * centre
  background = scene.random_background(
      rng, size, shapes=scene_renderer.config.background == 'clutter')
  palette = scene_renderer.fixed_palette
  if scene_renderer.config.part_colors == 'random':
    palette = 0.15 + 0.8 * rng.random((scene_renderer.num_parts, 3))
  colors = palette[scene_renderer.parts]
  frames = []
  for t in range(len(times)):
    projected = np.concatenate([f_px[t] * vertices[t, :, :2] + offset[t],
                                f_px[t] * vertices[t, :, 2:]], axis=-1)
    image = renderer.render_mesh(
        projected, scene_renderer.faces, size, size, background=background,
        face_colors=colors, light_dir=_LIGHT, ambient=_AMBIENT,
        antialias=scene_renderer.config.antialias).image
    noise = rng.normal(0.0, _NOISE_STD, image.shape)
    image = np.clip(image + noise, 0, 255).astype(np.uint8)
    ok, jpeg = cv2.imencode('.jpg', image[..., ::-1],
                            [cv2.IMWRITE_JPEG_QUALITY, configs_lib.JPEG_QUALITY])
    if not ok:
      raise RuntimeError('cv2.imencode failed')
    frames.append(cv2.imdecode(jpeg, cv2.IMREAD_COLOR)[..., ::-1])
  keypoints2d = f_px[:, None, None] * lsp + offset[:, None]
  # The demo's full-image camera: focal F = the image diagonal, principal
  # point c; F / TZ = f and c + F T_xy / TZ = o give the translation.
  focal = camera.default_focal_length_np((size, size))
  principal = np.array(crop_lib.image_center(size, size))
  cam_t = np.concatenate([(offset - principal) / f_px[:, None],
                          (focal / f_px)[:, None]], axis=-1)
  return frames, keypoints2d, cam_t


def _gt_crops(frames, keypoints2d, folder, stem):
  """The demo's OpenPose crop of each frame, from the GT LSP keypoints."""
  # pylint: disable=g-import-not-at-top
  import numpy as np
  from hmr_tf.inference import crops as crops_lib
  # pylint: enable=g-import-not-at-top
  crops = []
  for t, (image, points) in enumerate(zip(frames, keypoints2d)):
    path = os.path.join(folder, f'{stem}_{t:05d}_keypoints.json')
    people = [{'pose_keypoints_2d': np.concatenate(
        [points, np.ones([len(points), 1])], 1).ravel().tolist()}]
    with open(path, 'w') as f:
      json.dump({'people': people}, f)
    crops.append(crops_lib.crop_from_openpose(path, image.shape))
  return crops


def _write_sheet(path, frames, crops, model_config):
  """Every 15th frame over its network crop (upscaled), as one PNG."""
  # pylint: disable=g-import-not-at-top
  import dataclasses
  import cv2
  import numpy as np
  from hmr_tf.files import atomic_io
  from hmr_tf.inference import crops as crops_lib
  # pylint: enable=g-import-not-at-top
  size = frames[0].shape[0]
  columns = []
  for image, crop in list(zip(frames, crops))[::15][:8]:
    crop = dataclasses.replace(crop,
                               base_crop_size=model_config.base_crop_size)
    net = crops_lib.crop_image(image, crop, model_config.img_size)
    net = cv2.resize(((net + 1) * 127.5).clip(0, 255).astype(np.uint8),
                     (size, size), interpolation=cv2.INTER_NEAREST)
    columns.append(np.concatenate([image, net], axis=0))
  ok, png = cv2.imencode('.png', np.concatenate(columns, axis=1)[..., ::-1])
  if ok:
    atomic_io.write_bytes_atomic(path, png.tobytes())


def accel_error_mm(pred, gt):
  """VIBE's acceleration error, [T - 2] mm/frame² (module docstring).

  Args:
    pred, gt: [T, 14, 3] LSP joints in metres (aligned as the caller wants).
  """
  import numpy as np  # pylint: disable=g-import-not-at-top
  accel = lambda p: p[:-2] - 2 * p[1:-1] + p[2:]
  return _M_TO_MM * np.linalg.norm(accel(pred) - accel(gt), axis=-1).mean(-1)


def _measure(pred_lsp, gt_lsp, cam_pred, cam_gt):
  """{'accel', 'pa_mpjpe', 'mpjpe', 'cam_accel'} over lists of sequences."""
  # pylint: disable=g-import-not-at-top
  import numpy as np
  from hmr_tf.evaluation import metrics
  # pylint: enable=g-import-not-at-top
  accel, pa, mpjpe, cam, cam_err = [], [], [], [], []
  for p, g, cp, cg in zip(pred_lsp, gt_lsp, cam_pred, cam_gt):
    accel.append(accel_error_mm(metrics.align_by_pelvis(p),
                                metrics.align_by_pelvis(g)))
    pa.append(metrics.pa_mpjpe(p, g))
    mpjpe.append(metrics.mpjpe(p, g))
    cam.append(accel_error_mm(cp[:, None], cg[:, None]))
    cam_err.append(_M_TO_MM * np.linalg.norm(cp - cg, axis=-1))
  mean = lambda xs: float(np.mean(np.concatenate(xs)))
  return {'accel': mean(accel), 'pa_mpjpe': mean(pa), 'mpjpe': mean(mpjpe),
          'cam_accel': mean(cam), 'cam_error': mean(cam_err)}


def _smoothed(tracks, pose_fn, config, fps):
  """LSP joints [T, 14, 3] and cam_t [T, 3] of each smoothed track."""
  # pylint: disable=g-import-not-at-top
  import numpy as np
  from hmr_tf.inference import smoothing
  from hmr_tf.synthetic import scene
  # pylint: enable=g-import-not-at-top
  joints, cams = [], []
  for track in tracks:
    theta, betas, cam = smoothing.smooth_track(
        track['frames'], track['theta'], track['betas'], track['cam_t'], fps,
        config)
    num = len(theta)
    _, (_, keypoints) = pose_fn(theta, np.repeat(betas[None], num, 0))
    joints.append(keypoints[:, :scene.NUM_LSP].astype(np.float64))
    cams.append(cam)
  return joints, cams


def main(argv):
  del argv
  # pylint: disable=g-import-not-at-top
  import dataclasses
  import numpy as np
  from hmr_tf.inference import demo_lib
  from hmr_tf.inference import smoothing
  from hmr_tf.synthetic import generator
  from hmr_tf.synthetic import pose_prior
  from hmr_tf.synthetic import scene as scene_lib
  # pylint: enable=g-import-not-at-top
  cfg = configs.from_flags(flags.FLAGS)
  smooth_cfg = configs.smoothing_from_flags(flags.FLAGS)
  fps = _FPS.value
  body, model, checkpoint = _body_and_model(cfg)
  pose_fn = _pose_fn(model.smpl)
  scene_cfg, prior = generator.scene_and_prior(cfg.synthetic)
  scene_renderer = scene_lib.SceneRenderer(
      body.faces, body.weights, body.v_template, body.cocoplus_regressor,
      _IMAGE_SIZE.value, scene_cfg)
  rest_joints = body.J_regressor @ body.v_template
  scale = pose_prior.body_scale(rest_joints)
  num_betas = min(generator.NUM_SHAPE, body.num_betas)
  num_frames = int(round(_SECONDS.value * fps))
  times = np.arange(num_frames) / fps
  rng = np.random.default_rng(_SEED.value)
  tracks, gt_lsp, gt_cam = [], [], []
  start = time.perf_counter()
  render_s = infer_s = 0.0
  with tempfile.TemporaryDirectory() as folder:
    for k in range(_SEQUENCES.value):
      t0 = time.perf_counter()
      poses, betas = _sequence(rng, pose_fn, num_betas, scale, prior, times)
      _, (vertices, keypoints) = pose_fn(poses,
                                         np.repeat(betas[None], num_frames, 0))
      frames, keypoints2d, cam_gt = _render_video(rng, scene_renderer,
                                                  vertices, keypoints, times)
      crops = _gt_crops(frames, keypoints2d, folder, f'seq{k}')
      if k == 0 and _SHEET.value:
        _write_sheet(_SHEET.value, frames, crops, model.config)
      t1 = time.perf_counter()
      results = demo_lib.run_on_images(model, frames, crops, batch_size=32)
      infer_s += time.perf_counter() - t1
      render_s += t1 - t0
      tracks.append({
          'frames': np.arange(num_frames),
          'theta': np.stack([r['pose'] for r in results]),
          'betas': np.stack([r['shape'] for r in results]),
          'cam_t': np.stack([r['cam_t_full'] for r in results]),
          'lsp': np.stack([r['keypoints3d'][:scene_lib.NUM_LSP]
                           for r in results]).astype(np.float64)})
      gt_lsp.append(keypoints[:, :scene_lib.NUM_LSP].astype(np.float64))
      gt_cam.append(cam_gt)

  keypoints_fn = _pose_fn(model.smpl, mesh=False)
  raw = _measure([t['lsp'] for t in tracks], gt_lsp,
                 [t['cam_t'] for t in tracks], gt_cam)
  joints, cams = _smoothed(tracks, keypoints_fn, smooth_cfg, fps)
  smooth = _measure(joints, gt_lsp, cams, gt_cam)
  gt_motion = float(np.mean([
      accel_error_mm(g, np.zeros_like(g)).mean() for g in gt_lsp]))

  print('Video smoothing: per-frame model vs smoothed tracks, ground truth '
        'known')
  print(f'setting: checkpoint {checkpoint}; {_SEQUENCES.value} synthetic '
        f'sequences x {num_frames} frames at {fps:g} fps '
        f'({_IMAGE_SIZE.value}-px frames, a key pose every '
        f'{_KEY_SECONDS.value:g} s, body {body.metadata.get("name", "?")}); '
        f'crops from the GT keypoints (demo OpenPose rule); '
        f'{smooth_cfg}; {os.cpu_count()} CPUs; rendering {render_s:.1f} s, '
        f'inference {infer_s:.1f} s, total {time.perf_counter() - start:.1f} s')
  print(f'ground truth: mean joint acceleration {gt_motion:.2f} mm/frame² '
        '(pelvis-centred)')
  print(f'{"measured (14 LSP joints)":38s} {"per-frame":>10s} '
        f'{"smoothed":>10s} {"ratio":>7s} {"target":>8s}')
  rows = (('acceleration error mm/frame²', 'accel', '<= 0.33'),
          ('PA-MPJPE mm', 'pa_mpjpe', '<= 1.02'),
          ('MPJPE mm (pelvis-aligned)', 'mpjpe', ''),
          ('camera acceleration error mm/frame²', 'cam_accel', ''),
          ('camera translation error mm', 'cam_error', ''))
  for name, key, target in rows:
    print(f'{name:38s} {raw[key]:10.2f} {smooth[key]:10.2f} '
          f'{smooth[key] / raw[key]:7.3f} {target:>8s}')
  met = (smooth['accel'] <= raw['accel'] / 3 and
         smooth['pa_mpjpe'] <= 1.02 * raw['pa_mpjpe'])
  print('targets ' + ('met' if met else 'NOT met'))
  report = {'raw': raw, 'smoothed': smooth, 'config':
            dataclasses.asdict(smooth_cfg), 'targets_met': met,
            'checkpoint': checkpoint, 'gt_accel': gt_motion}

  if _SWEEP.value:
    print('\nsweep (accel ratio / PA-MPJPE ratio; * meets both targets):')
    cutoffs = (0.1, 0.2, 0.4, 0.7, 1.0, 1.5, 2.0)
    betas = (0.0, 0.3, 1.0, 3.0, 10.0)
    sweep = []
    for zero_phase in (True, False):
      print(f'zero_phase={zero_phase}  min_cutoff \\ beta ' +
            ' '.join(f'{b:>13g}' for b in betas))
      for cutoff in cutoffs:
        cells = []
        for beta in betas:
          config = dataclasses.replace(smooth_cfg, min_cutoff=cutoff,
                                       beta=beta, zero_phase=zero_phase)
          joints, cams = _smoothed(tracks, keypoints_fn, config, fps)
          got = _measure(joints, gt_lsp, cams, gt_cam)
          ra = got['accel'] / raw['accel']
          rp = got['pa_mpjpe'] / raw['pa_mpjpe']
          ok = '*' if ra <= 1 / 3 and rp <= 1.02 else ' '
          cells.append(f'{ra:5.3f}/{rp:5.3f}{ok}')
          sweep.append({'zero_phase': zero_phase, 'min_cutoff': cutoff,
                        'beta': beta, 'accel_ratio': ra, 'pa_ratio': rp})
        print(f'{"":17s}{cutoff:>12g} ' + ' '.join(f'{c:>13s}' for c in cells))
    print('\ncamera (accel ratio / translation error ratio), zero_phase='
          f'{smooth_cfg.zero_phase}:')
    cam_cutoffs = (0.1, 0.2, 0.4, 0.7, 1.0, 2.0)
    cam_betas = (0.0, 0.3, 1.0, 3.0, 10.0)
    print('cam_min_cutoff \\ cam_beta ' +
          ' '.join(f'{b:>13g}' for b in cam_betas))
    for cutoff in cam_cutoffs:
      cells = []
      for beta in cam_betas:
        config = dataclasses.replace(smooth_cfg, cam_min_cutoff=cutoff,
                                     cam_beta=beta)
        cams = [smoothing.smooth_track(
            t['frames'], t['theta'], t['betas'], t['cam_t'], fps,
            config)[2] for t in tracks]
        got = _measure([t['lsp'] for t in tracks], gt_lsp, cams, gt_cam)
        ra = got['cam_accel'] / raw['cam_accel']
        re = got['cam_error'] / raw['cam_error']
        cells.append(f'{ra:5.3f}/{re:5.3f}')
        sweep.append({'zero_phase': smooth_cfg.zero_phase,
                      'cam_min_cutoff': cutoff, 'cam_beta': beta,
                      'cam_accel_ratio': ra, 'cam_error_ratio': re})
      print(f'{cutoff:>25g} ' + ' '.join(f'{c:>13s}' for c in cells))
    report['sweep'] = sweep
  if _JSON.value:
    from hmr_tf.files import atomic_io  # pylint: disable=g-import-not-at-top
    atomic_io.write_json_atomic(_JSON.value, report)


if __name__ == '__main__':
  if not any(a.startswith('--flagfile') for a in sys.argv[1:]):
    sys.argv.insert(1, f'--flagfile={_DEFAULT_FLAGFILE}')
  app.run(main)
