"""The demo on a video: people tracked, their motion smoothed, files written.

Two passes over the file, so that memory stays flat however long it is:

  1. frames -> people (the finder) -> crops -> model, in batches; each
     frame's people get track ids (hmr_tf.inference.tracking) and their
     predictions are kept, without the meshes (a few hundred numbers a
     person a frame);
  2. each finished track is smoothed over time
     (hmr_tf.inference.smoothing: one shape per track, pose and place
     filtered; with smoothing off the per-frame predictions stay), then the video is read again
     and each frame's meshes are posed from the (smoothed) parameters and
     written as for a photograph (hmr_tf.inference.writers), the JSON
     carrying each person's `track_id`; last, one animated `.glb` per
     track (`track<id>.glb`).

A frame where nobody is found gets one log line and no files; the video
goes on. A track's animation spans its first to its last frame; the frames
in between where it was not found hold its last pose and place.
"""

import collections
import dataclasses
from typing import Callable, Dict, List, Optional

from absl import logging
import numpy as np

from hmr_tf import configs
from hmr_tf.inference import demo_lib
from hmr_tf.inference import smoothing
from hmr_tf.inference import sources
from hmr_tf.inference import tracking
from hmr_tf.inference import writers
from hmr_tf.render import renderer

# What pass 1 keeps of each prediction: the meshes are posed again in pass 2
# from the (smoothed) parameters.
_DROPPED = ('vertices',)


@dataclasses.dataclass
class VideoOptions:
  """How `run_on_video` runs (the demo's flags).

  Attributes:
    multi: write each frame with the several-people naming
      (`<frame>_person<k>_mesh.obj`, a `people` list in the JSON).
    smoothing: the smoothing's config (`enabled` False keeps the per-frame
      predictions).
    tracking: the tracker's config.
    focal_length: the full-image camera's focal length (None: diagonal).
    batch_size: people per forward pass.
    source: the input's name, recorded in the JSON.
  """
  multi: bool = False
  smoothing: configs.SmoothingConfig = configs.SmoothingConfig()
  tracking: configs.TrackingConfig = configs.TrackingConfig()
  focal_length: Optional[float] = None
  batch_size: int = 8
  source: str = ''


def box_of(result: Dict) -> np.ndarray:
  """[4] the person's box (x, y, w, h): the detector's, else the window."""
  crop = result['crop']
  if 'box' in crop:
    return np.asarray(crop['box'], np.float64)
  (cx, cy), side = crop['center'], crop['window_px']
  # The window around the pixel-centre coordinate centre, as edges.
  return np.array([cx + 0.5 - side / 2, cy + 0.5 - side / 2, side, side])


def track_people(model, frames, find_people: Callable,
                 options: VideoOptions, progress=None) -> Dict:
  """Pass 1: per frame, the people's predictions with their track ids.

  Returns:
    {'frames': {frame index: (stem, [result dicts with 'track_id'])},
     'tracks': {track id: [(frame index, position in that frame's list)]},
     'num_frames': frames read}.
  """
  tracker = tracking.BoxTracker(options.tracking)
  per_frame = {}
  tracks = collections.defaultdict(list)
  pending = []
  count = [0]

  def items():
    for index, (stem, image) in enumerate(frames):
      count[0] = index + 1
      crops = find_people(image)
      if not crops:
        logging.warning('%s: no person found; no files written for it.',
                        stem)
      for k, crop in enumerate(crops):
        yield (index, stem, k, len(crops)), image, crop

  def on_result(key, image, result):
    del image
    index, stem, k, num = key
    pending.append({n: v for n, v in result.items() if n not in _DROPPED})
    if k + 1 < num:
      return
    ids = tracker.update(index, [box_of(r) for r in pending])
    for position, (track_id, r) in enumerate(zip(ids, pending)):
      r['track_id'] = track_id
      tracks[track_id].append((index, position))
    per_frame[index] = (stem, list(pending))
    pending.clear()

  demo_lib.run_streaming(model, items(), on_result,
                         batch_size=options.batch_size, progress=progress,
                         focal_length=options.focal_length)
  return {'frames': per_frame, 'tracks': dict(tracks),
          'num_frames': count[0]}


def smooth_tracks(tracked: Dict, fps: float,
                  config: configs.SmoothingConfig) -> Dict[int, Dict]:
  """Smooths each track in place; returns its animation's parameters.

  Each track's pose and place go through
  hmr_tf.inference.smoothing.smooth_track, which also gives the track's one
  shape. With smoothing off (`config.enabled` False) the per-frame
  predictions stay as they are (their own shapes too); the animation takes
  the track's one shape.

  Returns:
    {track id: {'frames' [T], 'betas' [B], 'theta' [T, 72], 'cam_t' [T, 3]}}
  """
  out = {}
  for track_id, members in sorted(tracked['tracks'].items()):
    results = [tracked['frames'][f][1][p] for f, p in members]
    frames = np.array([f for f, _ in members])
    theta = np.stack([np.asarray(r['pose'], np.float64) for r in results])
    betas = np.stack([np.asarray(r['shape'], np.float64) for r in results])
    cam_t = np.stack([np.asarray(r['cam_t_full'], np.float64)
                      for r in results])
    theta, one_betas, cam_t = smoothing.smooth_track(frames, theta, betas,
                                                     cam_t, fps, config)
    if config.enabled:
      betas = np.broadcast_to(one_betas, betas.shape)
    for r, pose, shape, trans in zip(results, theta, betas, cam_t):
      r.update(pose=pose, shape=np.array(shape), cam_t_full=trans,
               smoothed=bool(config.enabled))
      r['perspective'] = dict(r['perspective'], translation=trans.tolist())
    out[track_id] = {'frames': frames, 'betas': np.asarray(one_betas),
                     'theta': theta, 'cam_t': cam_t}
  return out


def pose_people(smpl, results: List[Dict]) -> None:
  """Poses each person's mesh from their (smoothed) parameters, in place.

  Sets 'vertices', 'joints3d', 'keypoints3d' from `smpl(pose, shape)` and
  'keypoints2d_image' as the keypoints projected by the whole image's
  camera (where the overlay draws the mesh).
  """
  pose = np.stack([r['pose'] for r in results]).astype(np.float32)
  shape = np.stack([r['shape'] for r in results]).astype(np.float32)
  body = smpl(pose, shape)
  for i, r in enumerate(results):
    r['vertices'] = np.asarray(body.vertices[i], np.float64)
    r['joints3d'] = np.asarray(body.joints[i], np.float64)
    r['keypoints3d'] = np.asarray(body.keypoints[i], np.float64)
    persp = r['perspective']
    r['keypoints2d_image'] = renderer.perspective_project(
        r['keypoints3d'] + np.asarray(persp['translation']),
        persp['focal_px'], persp['principal_point'])[:, :2]


def hold_gaps(frames: np.ndarray, values: np.ndarray) -> np.ndarray:
  """[last - first + 1, ...] values over a track's span, gaps held.

  Args:
    frames: [T] increasing frame indices.
    values: [T, ...] the values at those frames.

  Returns:
    The value at each frame from frames[0] to frames[-1]: the value of the
    last frame at or before it.
  """
  span = np.arange(frames[0], frames[-1] + 1)
  return values[np.searchsorted(frames, span, side='right') - 1]


def run_on_video(model, path: str, find_people: Callable, output_dir: str,
                 options: VideoOptions, progress=None) -> Dict:
  """The demo's whole flow on a video file (see the module docstring).

  Args:
    model: an HMRModel (its `smpl` layer poses the smoothed meshes).
    path: the video file.
    find_people: callable(image) -> list of Crop.
    output_dir: where the files go.
    options: see VideoOptions.
    progress: optional callable(num_people_done) during pass 1.

  Returns:
    {'frames_written': count, 'tracks': {track id: .glb path},
     'num_frames': frames read}.

  Raises:
    DemoInputError: the video cannot be opened or read.
  """
  first = sources.VideoFrames(path)
  fps = first.fps
  tracked = track_people(model, first, find_people, options, progress)
  animations = smooth_tracks(tracked, fps, options.smoothing)
  faces = model.smpl.body_model.faces
  written = 0
  for index, (stem, image) in enumerate(sources.VideoFrames(path)):
    if index not in tracked['frames']:
      continue
    _, results = tracked['frames'][index]
    pose_people(model.smpl, results)
    if options.multi:
      writers.write_people_outputs(output_dir, stem, image, results, faces,
                                   source=options.source)
    else:
      writers.write_outputs(output_dir, stem, image, results[0], faces,
                            source=options.source)
    for r in results:  # the meshes are written; keep memory flat
      del r['vertices']
    written += 1
  glbs = {}
  for track_id, anim in animations.items():
    glbs[track_id] = writers.write_track_glb(
        output_dir, track_id, model.smpl.body_model, anim['betas'],
        hold_gaps(anim['frames'], anim['theta']),
        hold_gaps(anim['frames'], anim['cam_t']), fps)
  return {'frames_written': written, 'tracks': glbs,
          'num_frames': tracked['num_frames']}
