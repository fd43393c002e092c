"""The demo's writers: pictures (png), meshes (obj, glb) and parameters (json).

The last stage of the demo's flow (source -> people -> crops -> model ->
tracks -> writers). Every image's files are written into a temporary folder
inside the output folder and moved into place at the end, so a failure
leaves no partial outputs; each file gets the umask's mode.

Per image: `<stem>_overlay.png` (the meshes over the image, rendered in the
whole image's perspective camera with one z-buffer), `<stem>_side.png`,
`<stem>_keypoints.png`, one mesh per person as `.obj` and as glTF binary
(`.glb`, hmr_tf.inference.gltf), both in that camera's frame (metres, x
right, y down, z forward), and `<stem>_params.json`. Per video track
(`write_track_glb`): one animated `.glb` of the track's smoothed poses.
"""

import json
import os
import shutil
import tempfile
from typing import Dict, Sequence

import cv2
import numpy as np

from hmr_tf.inference import gltf
from hmr_tf.render import renderer


def camera_frame_vertices(result: Dict) -> np.ndarray:
  """The mesh [N, 3] in the perspective camera's frame (metres)."""
  return (np.asarray(result['vertices'], np.float64) +
          np.asarray(result['perspective']['translation']))


def render_outputs(image: np.ndarray, result: Dict,
                   faces: np.ndarray) -> Dict[str, np.ndarray]:
  """The pictures: mesh overlay, side view and keypoints, [H, W, 3] uint8."""
  height, width = image.shape[:2]
  verts = camera_frame_vertices(result)
  persp = result['perspective']
  projected = renderer.perspective_project(verts, persp['focal_px'],
                                         persp['principal_point'])
  overlay = renderer.render_mesh(projected, faces, height, width,
                               background=image, shading_vertices=verts)
  side = renderer.side_view(verts, faces, height, width, background=(1, 1, 1))
  keypoints = renderer.draw_keypoints(image, result['keypoints2d_image'])
  return {'overlay': overlay.image, 'side': side.image,
          'keypoints': keypoints}


def _json_ready(result: Dict, image_shape, source: str) -> Dict:
  def lst(key):
    return np.asarray(result[key], np.float64).tolist()
  out = {
      'image': source,
      'image_size': {'height': int(image_shape[0]),
                     'width': int(image_shape[1])},
      'pose': lst('pose'),
      'shape': lst('shape'),
      'camera_crop': {'s': float(result['cam'][0]),
                      'tx': float(result['cam'][1]),
                      'ty': float(result['cam'][2]),
                      'convention': 'x_crop = s * (X + tx), in [-1, 1] crop '
                                    'coordinates'},
      'camera_image': result['camera_image'],
      'cam_t_full': lst('cam_t_full'),
      'perspective_camera': dict(
          result['perspective'],
          note='the whole image\'s pinhole camera: focal length (default '
               'the image diagonal) and principal point (the image centre) '
               'in pixels; the body (vertices, joints3d, keypoints3d) moved '
               'by translation = cam_t_full, in metres; the overlay uses it'),
      'crop': result['crop'],
      'joints3d': lst('joints3d'),
      'keypoints3d': lst('keypoints3d'),
      'keypoints2d_crop': lst('keypoints2d'),
      'keypoints2d_image': lst('keypoints2d_image'),
  }
  if 'box' in result['crop']:  # a person found by a detector or given
    out['box'] = result['crop']['box']
    out['box_convention'] = 'x, y, w, h: left and top edges, width, height '
    out['box_convention'] += 'in image pixels'
  if 'score' in result['crop']:
    out['detector_score'] = result['crop']['score']
  if 'track_id' in result:
    out['track_id'] = int(result['track_id'])
  if 'smoothed' in result:  # a video's: the track's smoothed parameters
    out['smoothed'] = bool(result['smoothed'])
  return out


def output_paths(output_dir: str, stem: str) -> Dict[str, str]:
  """Where `write_outputs` puts each file."""
  names = {'overlay': f'{stem}_overlay.png', 'side': f'{stem}_side.png',
           'keypoints': f'{stem}_keypoints.png', 'mesh': f'{stem}_mesh.obj',
           'glb': f'{stem}_mesh.glb', 'params': f'{stem}_params.json'}
  return {k: os.path.join(output_dir, v) for k, v in names.items()}


def render_people(image: np.ndarray, results: Sequence[Dict],
                  faces: np.ndarray) -> Dict[str, np.ndarray]:
  """The pictures of several people in one image, [H, W, 3] uint8 each.

  All meshes are placed by their full-image cameras (the same camera for
  the whole image) and rendered together with one z-buffer, so nearer
  people hide farther ones; each person has their own colour.
  """
  height, width = image.shape[:2]
  verts = [camera_frame_vertices(r) for r in results]
  faces = np.asarray(faces)
  all_faces = np.concatenate([faces + k * len(v) for k, v in
                              enumerate(verts)]) if verts else faces[:0]
  all_verts = np.concatenate(verts)
  persp = results[0]['perspective']
  projected = renderer.perspective_project(all_verts, persp['focal_px'],
                                         persp['principal_point'])
  palette = np.array([(0.9, 0.7, 0.55), (0.55, 0.75, 0.95), (0.6, 0.9, 0.6),
                      (0.95, 0.6, 0.8), (0.85, 0.85, 0.5), (0.7, 0.6, 0.95)])
  colors = np.repeat(palette[np.arange(len(verts)) % len(palette)],
                     len(faces), axis=0)
  overlay = renderer.render_mesh(projected, all_faces, height, width,
                               background=image, shading_vertices=all_verts,
                               face_colors=colors)
  side = renderer.side_view(all_verts, all_faces, height, width,
                          background=(1, 1, 1), face_colors=colors)
  keypoints = image
  for r in results:
    keypoints = renderer.draw_keypoints(keypoints, r['keypoints2d_image'])
  return {'overlay': overlay.image, 'side': side.image,
          'keypoints': keypoints}


def people_output_paths(output_dir: str, stem: str,
                        num_people: int) -> Dict[str, str]:
  """Where `write_people_outputs` puts each file."""
  paths = output_paths(output_dir, stem)
  del paths['mesh'], paths['glb']
  for k in range(num_people):
    for key, ext in (('mesh', 'obj'), ('glb', 'glb')):
      paths[f'{key}_{k}'] = os.path.join(output_dir,
                                         f'{stem}_person{k}_mesh.{ext}')
  return paths


def write_people_outputs(output_dir: str, stem: str, image: np.ndarray,
                         results: Sequence[Dict], faces: np.ndarray,
                         source: str = '') -> Dict[str, str]:
  """Writes one image's outputs for every person in it.

  One overlay, side view and keypoint picture with everybody; one `.obj`
  and one `.glb` per person (`<stem>_person<k>_mesh.obj|glb`, in the
  full-image camera's frame, so the meshes stand where they stand in the
  picture); one JSON with a 'people' list (each entry as the single-person
  JSON, plus 'person' and 'depth_rank': 0 for the nearest by cam_t_full's
  Z; 'box' and 'detector_score' for a detected person, 'track_id' in a
  video).
  Written beside and moved into place, as `write_outputs`.
  """
  if not results:
    raise ValueError(f'{stem}: no people to write')
  depth = [float(r['cam_t_full'][2]) for r in results]
  rank = np.argsort(np.argsort(depth))
  people = []
  for k, r in enumerate(results):
    entry = _json_ready(r, image.shape, source)
    entry.update(person=k, depth_rank=int(rank[k]))
    people.append(entry)
  params = {'image': source,
            'image_size': {'height': int(image.shape[0]),
                           'width': int(image.shape[1])},
            'num_people': len(results), 'people': people}
  meshes = {}
  for k, r in enumerate(results):
    verts = camera_frame_vertices(r)
    meshes[f'mesh_{k}'] = meshes[f'glb_{k}'] = (verts, faces,
                                                f'{stem}_person{k}')
  return _write_files(output_dir, people_output_paths,
                      (stem, len(results)), render_people(image, results,
                                                          faces),
                      meshes, params)


def _write_files(output_dir: str, paths_fn, paths_args, pictures,
                 meshes, params) -> Dict[str, str]:
  """Writes pictures, meshes and the JSON beside, then moves them in."""
  os.makedirs(output_dir, exist_ok=True)
  final = paths_fn(output_dir, *paths_args)
  tmp_dir = tempfile.mkdtemp(dir=output_dir, prefix='.tmp_demo_')
  try:
    tmp = paths_fn(tmp_dir, *paths_args)
    for key, picture in pictures.items():
      if not cv2.imwrite(tmp[key], cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)):
        raise OSError(f'{final[key]}: could not write the image')
    for key, (verts, faces, name) in meshes.items():
      if key.startswith('glb'):
        gltf.write_mesh_glb(tmp[key], verts, faces, name=name)
      else:
        renderer.write_obj(tmp[key], verts, faces)
    with open(tmp['params'], 'w') as f:
      json.dump(params, f, indent=1)
    for key in final:
      os.replace(tmp[key], final[key])
  finally:
    shutil.rmtree(tmp_dir, ignore_errors=True)
  return final


def write_outputs(output_dir: str, stem: str, image: np.ndarray, result: Dict,
                  faces: np.ndarray, source: str = '') -> Dict[str, str]:
  """Writes the overlay, side view, keypoints, .obj and .json of one image.

  Everything is written into a temporary folder inside `output_dir` first
  and moved into place at the end, so a failure leaves no partial outputs.

  Args:
    output_dir: the output folder (created if needed).
    stem: the file name prefix, e.g. the input image's name.
    image: uint8 RGB [H, W, 3], the original image.
    result: `run_on_image`'s output for it.
    faces: [F, 3] the body model's faces.
    source: the input's path, recorded in the JSON.

  Returns:
    {'overlay', 'side', 'keypoints', 'mesh', 'glb', 'params'} -> path.
  """
  verts = camera_frame_vertices(result)
  return _write_files(
      output_dir, output_paths, (stem,), render_outputs(image, result, faces),
      {'mesh': (verts, faces, stem), 'glb': (verts, faces, stem)},
      _json_ready(result, image.shape, source))


def track_glb_path(output_dir: str, track_id: int) -> str:
  """Where `write_track_glb` puts track `track_id`'s animation."""
  return os.path.join(output_dir, f'track{track_id:03d}.glb')


def write_track_glb(output_dir: str, track_id: int, body_model,
                    betas: np.ndarray, theta: np.ndarray,
                    cam_t: np.ndarray, fps: float) -> str:
  """Writes one video track as an animated, skinned glTF binary.

  Args:
    output_dir: the output folder (created if needed).
    track_id: the track's id (the per-frame JSON's 'track_id').
    body_model: hmr_tf.smpl.model_io.BodyModel the poses are for.
    betas: [B] the track's one shape.
    theta: [T, 72] its pose in each of its frames (axis-angle).
    cam_t: [T, 3] its cam_t_full in each frame (metres, the camera's frame).
    fps: frames per second of the animation (the video's rate; T covers the
      track's span, see hmr_tf.inference.video.hold_gaps).

  Returns:
    The file's path (written under a temporary name and renamed).
  """
  os.makedirs(output_dir, exist_ok=True)
  return gltf.write_track_glb(
      track_glb_path(output_dir, track_id), body_model,
      np.asarray(betas, np.float64), np.asarray(theta, np.float64),
      np.asarray(cam_t, np.float64), float(fps), name=f'track{track_id:03d}')
