"""The demo's library: crops, inference, and outputs in the image's pixels.

Cropping follows the original HMR demo's rule: the network works best on a
person about 150 px tall in a 224-px crop. A crop is a square window of side
`window = 224 / scale` image pixels around `center`, resized to the model's
S x S input (hmr_tf.geometry.crop.warp_np: one bilinear warp with edge
pixels repeated outside the image, the twin of the data parser's warp):

  * a person box (x, y, w, h): centre of the box, scale = 150 / max(w, h);
  * an OpenPose json: the most confident person (mean confidence of the
    keypoints above 0.2) or `person_index`; the box of their keypoints above
    0.2; scale = 150 / the box's diagonal; centre = the box's centre (the
    original's rule);
  * neither: the whole image, centred, scale = 224 / max(H, W) (the original
    demo's rule: the image is assumed to show one person, tightly framed).

Coordinates (hmr_tf.geometry.crop's convention): image pixels with integer
values at pixel centres (OpenCV's, also `hmr_tf.render.renderer`'s); a box's
(x, y, w, h) are continuous edges, the image spanning [0, W] x [0, H]. A crop
coordinate x_n in [-1, 1] (the model's output space) maps to the image point
center + x_n * window / 2 (crop.crop_to_image_np).

Camera. HMR predicts a weak-perspective camera (s, tx, ty) of the crop:
x_n = s * (X + tx). The demo also gives the body's place in a perspective
camera of the whole image, the camera later HMR systems output: focal
length f (default: the image diagonal, `--focal_length` overrides it),
principal point at the image centre ((W - 1) / 2, (H - 1) / 2), the body
moved by cam_t_full = (TX, TY, TZ) with TZ = 2 f / (window * s) and
(TX, TY) = t + 2 (center - principal point) / (window * s)
(hmr_tf.geometry.camera.full_image_translation and its NumPy twin
full_image_translation_np, which the demo uses). Points at the body's depth
project exactly where the weak-perspective camera puts them; nearer parts a
little larger. The JSON and the overlay use this camera.
"""

import dataclasses
import json
import os
from typing import (Callable, Dict, Iterable, Iterator, List, Optional,
                    Sequence, Tuple)

from absl import logging
import cv2
import numpy as np

from hmr_tf.files import atomic_io
from hmr_tf.geometry import camera
from hmr_tf.geometry import crop as crop_lib
from hmr_tf.render import renderer

OPENPOSE_THRESHOLD = 0.2
IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff',
                    '.webp')


class DemoInputError(ValueError):
  """Bad demo input; the message is one line naming the file or flag."""


@dataclasses.dataclass(frozen=True)
class Crop:
  """Where the network's input comes from in the image.

  Attributes:
    center: (x, y) window centre in image pixels.
    scale: how much the image is scaled so that the person is about 150 px
      tall (HMR's normalisation, as the dataset records' `scale`).
    source: how the crop was chosen ('bbox', 'openpose', 'whole_image', or
      'held-out record': a dataset record's own person window).
    base_crop_size: the model's crop rule (ModelConfig.base_crop_size): the
      window side at scale 1; `run_on_images` sets the model's.
  """
  center: tuple
  scale: float
  source: str
  base_crop_size: float = crop_lib.BASE_CROP_SIZE

  @property
  def window(self) -> float:
    """Window side in image pixels."""
    return crop_lib.window_side(self.scale, self.base_crop_size)


# ---------------------------------------------------------------------------
# Inputs.


def load_image(path: str) -> np.ndarray:
  """Reads an image file as uint8 RGB [H, W, 3].

  Raises:
    DemoInputError: missing, empty or unreadable file, or not an image.
  """
  if not os.path.isfile(path):
    raise DemoInputError(f'--image {path}: no such file')
  if os.path.getsize(path) == 0:
    raise DemoInputError(f'--image {path}: the file is empty')
  data = np.fromfile(path, dtype=np.uint8)
  image = cv2.imdecode(data, cv2.IMREAD_COLOR)
  if image is None or image.size == 0:
    raise DemoInputError(f'--image {path}: not a readable image (expected '
                         'JPEG, PNG, BMP, TIFF or WebP)')
  return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def image_dir_files(folder: str) -> List[str]:
  """The image files of a folder, sorted by name.

  Raises:
    DemoInputError: no such folder, or no image in it.
  """
  if not os.path.isdir(folder):
    raise DemoInputError(f'--image_dir {folder}: no such folder')
  names = sorted(n for n in os.listdir(folder)
                 if n.lower().endswith(IMAGE_EXTENSIONS))
  if not names:
    raise DemoInputError(f'--image_dir {folder}: no images in it (expected '
                         f'{", ".join(IMAGE_EXTENSIONS)} files)')
  return [os.path.join(folder, n) for n in names]


def iter_images(paths: Sequence[str]) -> Iterator[Tuple[str, np.ndarray]]:
  """(stem, image) of each file, decoded only when the caller gets to it.

  Raises:
    DemoInputError: (when reached) a file that is not a readable image.
  """
  for path in paths:
    yield os.path.splitext(os.path.basename(path))[0], load_image(path)


class VideoFrames:
  """The frames of a video file, decoded one at a time (uint8 RGB).

  The file is opened and its first frame decoded at construction, so a
  missing or unreadable video fails before any model is built. Iterating
  yields (`frame_NNNNNN`, frame) and releases the file at the end.

  Args:
    path: the video file.

  Raises:
    DemoInputError: no such file, or no frame can be decoded.
  """

  def __init__(self, path: str):
    if not os.path.isfile(path):
      raise DemoInputError(f'--video {path}: no such file')
    self.path = path
    self._capture = cv2.VideoCapture(path)
    ok, frame = self._capture.read()
    if not ok:
      self._capture.release()
      raise DemoInputError(f'--video {path}: no readable frames (expected a '
                           'video OpenCV can decode)')
    self._first = frame
    count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))
    # Containers may not know (or misreport) their frame count.
    self.num_frames = count if count > 0 else None

  def __iter__(self) -> Iterator[Tuple[str, np.ndarray]]:
    frame, index = self._first, 0
    self._first = None
    try:
      while frame is not None:
        yield f'frame_{index:06d}', cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        ok, frame = self._capture.read()
        frame = frame if ok else None
        index += 1
    finally:
      self._capture.release()


def _check_shape(image_shape) -> tuple:
  height, width = int(image_shape[0]), int(image_shape[1])
  if height <= 0 or width <= 0:
    raise DemoInputError(f'image: empty ({height}x{width} pixels)')
  return height, width


def crop_whole_image(image_shape) -> Crop:
  """The whole image, centred: the window is the image's longer side."""
  height, width = _check_shape(image_shape)
  return Crop(center=crop_lib.image_center(height, width),
              scale=crop_lib.BASE_CROP_SIZE / max(height, width),
              source='whole_image')


def parse_bbox(text: str) -> tuple:
  """Parses '--bbox=x,y,w,h' into four floats."""
  try:
    values = tuple(float(t) for t in text.split(','))
  except ValueError:
    values = ()
  if len(values) != 4 or not all(np.isfinite(values)):
    raise DemoInputError(f'--bbox {text!r}: expected four numbers x,y,w,h')
  return values


def crop_from_bbox(bbox: Sequence[float], image_shape) -> Crop:
  """Crop around a person box.

  Args:
    bbox: (x, y, w, h): left and top edges, width and height in pixels.
    image_shape: (H, W, ...).

  Raises:
    DemoInputError: a box with no area or outside the image.
  """
  height, width = _check_shape(image_shape)
  x, y, w, h = (float(v) for v in bbox)
  if not (np.isfinite([x, y, w, h]).all() and w > 0 and h > 0):
    raise DemoInputError(f'--bbox {x:g},{y:g},{w:g},{h:g}: width and height '
                         'must be positive')
  if x >= width or y >= height or x + w <= 0 or y + h <= 0:
    raise DemoInputError(
        f'--bbox {x:g},{y:g},{w:g},{h:g}: the box lies outside the '
        f'{width}x{height} image')
  return Crop(center=crop_lib.box_center(x, y, w, h),
              scale=crop_lib.PERSON_HEIGHT_PX / max(w, h), source='bbox')


def read_openpose_people(json_path: str) -> List[np.ndarray]:
  """Each person's body keypoints [K, 3] (x, y, confidence) from OpenPose.

  Reads the current key `pose_keypoints_2d` or the old `pose_keypoints`.
  """
  try:
    with open(json_path) as f:
      data = json.load(f)
  except FileNotFoundError as e:
    raise DemoInputError(f'--openpose_json {json_path}: no such file') from e
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise DemoInputError(f'--openpose_json {json_path}: not valid JSON '
                         f'({e})') from e
  people = data.get('people') if isinstance(data, dict) else None
  if not isinstance(people, list):
    raise DemoInputError(f'--openpose_json {json_path}: expected an OpenPose '
                         'file with a "people" list')
  out = []
  for i, person in enumerate(people):
    values = None
    if isinstance(person, dict):
      values = person.get('pose_keypoints_2d', person.get('pose_keypoints'))
    try:
      kp = np.asarray(values, np.float64).reshape(-1, 3)
    except (TypeError, ValueError) as e:
      raise DemoInputError(
          f'--openpose_json {json_path}: person {i} has no '
          '"pose_keypoints_2d" (or "pose_keypoints") list of x, y, '
          'confidence triples') from e
    out.append(kp)
  return out


def _openpose_crop(points: np.ndarray, json_path: str, index: int,
                   height: int, width: int) -> Crop:
  """The crop of one person's confident keypoints [K, 2] (module rule)."""
  lo, hi = points.min(0), points.max(0)
  size = float(np.linalg.norm(hi - lo))
  if size <= 0:
    raise DemoInputError(f'--openpose_json {json_path}: person {index} has '
                         'a single confident keypoint; cannot size the crop')
  center = (lo + hi) / 2.0
  if not (0 <= center[0] < width and 0 <= center[1] < height):
    raise DemoInputError(f'--openpose_json {json_path}: person {index} '
                         f'lies outside the {width}x{height} image')
  return Crop(center=(float(center[0]), float(center[1])),
              scale=crop_lib.PERSON_HEIGHT_PX / size,
              source=f'openpose person {index}')


def crops_from_openpose(json_path: str, image_shape,
                        threshold: float = OPENPOSE_THRESHOLD) -> List[Crop]:
  """A crop for every person of an OpenPose file (the module's rule).

  People with fewer than two keypoints above the threshold, or whose box
  centre lies outside the image, are left out (and logged).

  Raises:
    DemoInputError: nobody is left.
  """
  height, width = _check_shape(image_shape)
  crops = []
  for i, kp in enumerate(read_openpose_people(json_path)):
    points = kp[kp[:, 2] > threshold][:, :2]
    if len(points) < 2:
      logging.info('%s: person %d has %d keypoint(s) above %g; skipped.',
                   json_path, i, len(points), threshold)
      continue
    try:
      crops.append(_openpose_crop(points, json_path, i, height, width))
    except DemoInputError as e:
      logging.info('%s; skipped.', e)
  if not crops:
    raise DemoInputError(f'--openpose_json {json_path}: no person with two '
                         f'or more keypoints above confidence {threshold}')
  return crops


def read_bboxes(path: str) -> List[tuple]:
  """Person boxes from a text file: one `x,y,w,h` (or `x y w h`) a line.

  Blank lines and lines starting with '#' are skipped.

  Raises:
    DemoInputError: naming the file and line of a malformed box, or a file
      without boxes.
  """
  try:
    with open(path) as f:
      lines = f.read().splitlines()
  except (OSError, UnicodeDecodeError) as e:
    raise DemoInputError(f'--bboxes {path}: cannot read it ({e})') from e
  boxes = []
  for number, line in enumerate(lines, start=1):
    text = line.strip()
    if not text or text.startswith('#'):
      continue
    try:
      box = tuple(float(t) for t in text.replace(',', ' ').split())
    except ValueError:
      box = ()
    if len(box) != 4 or not np.all(np.isfinite(box)) or min(box[2:]) <= 0:
      raise DemoInputError(f'--bboxes {path}: line {number}: expected four '
                           f'numbers x,y,w,h with w, h > 0, got {text!r}')
    boxes.append(box)
  if not boxes:
    raise DemoInputError(f'--bboxes {path}: no boxes in the file')
  return boxes


def crop_from_openpose(json_path: str, image_shape,
                       person_index: Optional[int] = None,
                       threshold: float = OPENPOSE_THRESHOLD) -> Crop:
  """Crop around an OpenPose detection (rule in the module docstring).

  Raises:
    DemoInputError: no person with a keypoint above the threshold, a bad
      person_index, or a detection outside the image.
  """
  height, width = _check_shape(image_shape)
  people = read_openpose_people(json_path)
  confident = [kp[kp[:, 2] > threshold] for kp in people]
  if person_index is not None:
    if not 0 <= person_index < len(people):
      raise DemoInputError(f'--person_index {person_index}: the file has '
                           f'{len(people)} people ({json_path})')
    chosen = person_index
    if not len(confident[chosen]):
      raise DemoInputError(f'--openpose_json {json_path}: person '
                           f'{person_index} has no keypoint with confidence '
                           f'above {threshold}')
  else:
    scores = [kp[:, 2].mean() if len(kp) else -np.inf for kp in confident]
    if not scores or max(scores) == -np.inf:
      raise DemoInputError(f'--openpose_json {json_path}: no person with a '
                           f'keypoint confidence above {threshold}')
    chosen = int(np.argmax(scores))
  return dataclasses.replace(
      _openpose_crop(confident[chosen][:, :2], json_path, chosen, height,
                     width), source='openpose')


def crop_image(image: np.ndarray, crop: Crop, img_size: int) -> np.ndarray:
  """The network input: float32 [S, S, 3] in [-1, 1].

  Output pixel (u, v) samples the image at center + (u + 0.5 - S / 2) *
  window / S (bilinear, edge pixels repeated): crop_lib.warp_np, the twin of
  the data parser's warp.
  """
  out = crop_lib.warp_np(image, crop.center, crop.window, img_size)
  return out / 127.5 - 1.0


def check_faces(body_model) -> None:
  """Stops with one line when the body model has no faces to render.

  A model imported from the original checkpoint without the SMPL file has
  the arrays to pose the body but not its triangles.
  """
  if not len(body_model.faces):
    raise DemoInputError(
        f'the body model ({body_model.metadata.get("name", "unnamed")}) has '
        'no faces to render; pass --smpl_model_path=the SMPL file (for the '
        'released HMR model: neutral_smpl_with_cocoplus_reg.pkl)')


# ---------------------------------------------------------------------------
# Inference.


def to_image_coordinates(prediction: Dict[str, np.ndarray], crop: Crop,
                         image_shape,
                         focal_length: Optional[float] = None) -> Dict:
  """Adds image-pixel quantities to one example's prediction.

  Args:
    prediction: numpy arrays of one example: cam [3], pose [72], shape [10],
      vertices [N, 3], joints3d [24, 3], keypoints3d [19, 3], keypoints2d
      [19, 2] (crop coordinates).
    crop: where the crop came from.
    image_shape: (height, width, ...) of the image.
    focal_length: the full-image camera's focal length in pixels; None: the
      image diagonal.

  Returns:
    The prediction plus 'keypoints2d_image' [19, 2] (image pixels),
    'camera_image' (the weak-perspective camera in image pixels: x_px =
    scale_px * (X + tx) + center), 'cam_t_full' [3] and 'perspective'
    (focal_px, principal_point, translation = cam_t_full: the full-image
    camera of the module docstring) and 'crop'.
  """
  out = dict(prediction)
  center = np.asarray(crop.center, np.float64)
  s, tx, ty = (float(v) for v in prediction['cam'])
  out['keypoints2d_image'] = crop_lib.crop_to_image_np(
      prediction['keypoints2d'], center, crop.window)
  height, width = image_shape[:2]
  if focal_length is None:
    focal_length = camera.default_focal_length_np((height, width))
  trans = camera.full_image_translation_np(
      prediction['cam'], center, crop.window, (height, width), focal_length)
  out['camera_image'] = {'scale_px': s * (crop.window / 2.0), 'tx': tx,
                         'ty': ty, 'center_px': center.tolist()}
  out['cam_t_full'] = trans
  out['perspective'] = {
      'focal_px': float(focal_length),
      'principal_point': list(crop_lib.image_center(height, width)),
      'translation': trans.tolist()}
  out['crop'] = {'center': list(crop.center), 'scale': crop.scale,
                 'window_px': crop.window, 'source': crop.source}
  return out


def _run_batch(model, batch: Sequence[tuple], on_result: Callable,
               focal_length: Optional[float]) -> None:
  """One forward pass over [(key, image, crop)]; on_result per image."""
  size = model.config.img_size
  # The window follows the crop rule the model was trained with.
  batch = [(key, image, dataclasses.replace(
      crop, base_crop_size=model.config.base_crop_size))
           for key, image, crop in batch]
  crops = np.stack([crop_image(image, crop, size)
                    for _, image, crop in batch])
  out = model(crops, training=False)
  out = {k: np.asarray(v) for k, v in out.items()}
  for i, (key, image, crop) in enumerate(batch):
    one = {k: v[i] for k, v in out.items()}
    on_result(key, image, to_image_coordinates(one, crop, image.shape,
                                               focal_length))


def run_streaming(model, items: Iterable[tuple], on_result: Callable,
                  batch_size: int = 8, progress=None,
                  focal_length: Optional[float] = None) -> int:
  """Runs the model over a stream of images, holding one batch at a time.

  Images are read from `items` as they are needed and dropped once their
  results are handed on, so memory stays flat however long the stream (a
  video, a folder of photographs).

  Args:
    model: an HMRModel (`model.config.img_size` gives S).
    items: (key, uint8 RGB [H, W, 3] image, Crop) tuples, e.g. a generator.
    on_result: callable(key, image, result) for each image, in order
      (result: see `to_image_coordinates`).
    batch_size: images per forward pass.
    progress: optional callable(num_done) called after each batch.
    focal_length: the full-image camera's focal length in pixels (None: each
      image's diagonal).

  Returns:
    The number of images processed.
  """
  if batch_size < 1:
    raise ValueError(f'batch_size: expected >= 1, got {batch_size}')
  done = 0
  batch = []
  for item in items:
    batch.append(item)
    if len(batch) == batch_size:
      _run_batch(model, batch, on_result, focal_length)
      done += len(batch)
      batch = []
      if progress is not None:
        progress(done)
  if batch:
    _run_batch(model, batch, on_result, focal_length)
    done += len(batch)
    if progress is not None:
      progress(done)
  return done


def run_on_images(model, images: Sequence[np.ndarray], crops: Sequence[Crop],
                  batch_size: int = 8, progress=None,
                  focal_length: Optional[float] = None) -> List[Dict]:
  """Runs the model on crops of several images, batched.

  Args:
    model: an HMRModel (`model.config.img_size` gives S).
    images: uint8 RGB [H, W, 3] images.
    crops: one Crop per image.
    batch_size: images per forward pass.
    progress: optional callable(num_done) called after each batch.
    focal_length: the full-image camera's focal length in pixels (None: each
      image's diagonal).

  Returns:
    One dict per image (see `to_image_coordinates`).
  """
  results = []
  run_streaming(model, ((i, im, c) for i, (im, c) in
                        enumerate(zip(images, crops))),
                lambda key, image, result: results.append(result),
                batch_size=batch_size, progress=progress,
                focal_length=focal_length)
  return results


def run_on_image(model, image: np.ndarray, crop: Crop) -> Dict:
  """One image (see `run_on_images`)."""
  return run_on_images(model, [image], [crop], batch_size=1)[0]


# ---------------------------------------------------------------------------
# Outputs.


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
  return {
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


def output_paths(output_dir: str, stem: str) -> Dict[str, str]:
  """Where `write_outputs` puts each file."""
  names = {'overlay': f'{stem}_overlay.png', 'side': f'{stem}_side.png',
           'keypoints': f'{stem}_keypoints.png', 'mesh': f'{stem}_mesh.obj',
           'params': f'{stem}_params.json'}
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
  del paths['mesh']
  for k in range(num_people):
    paths[f'mesh_{k}'] = os.path.join(output_dir,
                                      f'{stem}_person{k}_mesh.obj')
  return paths


def write_people_outputs(output_dir: str, stem: str, image: np.ndarray,
                         results: Sequence[Dict], faces: np.ndarray,
                         source: str = '') -> Dict[str, str]:
  """Writes one image's outputs for every person in it.

  One overlay, side view and keypoint picture with everybody; one `.obj`
  per person (`<stem>_person<k>_mesh.obj`, in the full-image camera's
  frame, so the meshes stand where they stand in the picture); one JSON
  with a 'people' list (each entry as the single-person JSON, plus
  'person' and 'depth_rank': 0 for the nearest by cam_t_full's Z).
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
  meshes = {f'mesh_{k}': (camera_frame_vertices(r), faces)
            for k, r in enumerate(results)}
  return _write_files(output_dir, people_output_paths,
                      (stem, len(results)), render_people(image, results,
                                                          faces),
                      meshes, params)


def _write_files(output_dir: str, paths_fn, paths_args, pictures,
                 meshes, params) -> Dict[str, str]:
  """Writes pictures, meshes and the JSON beside, then moves them in."""
  final = paths_fn(output_dir, *paths_args)
  with atomic_io.atomic_dir(output_dir, existing='merge') as tmp_dir:
    tmp = paths_fn(tmp_dir, *paths_args)
    for key, picture in pictures.items():
      if not cv2.imwrite(tmp[key], cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)):
        raise OSError(f'{final[key]}: could not write the image')
    for key, (verts, faces) in meshes.items():
      renderer.write_obj(tmp[key], verts, faces)
    with open(tmp['params'], 'w') as f:
      json.dump(params, f, indent=1)
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
    {'overlay', 'side', 'keypoints', 'mesh', 'params'} -> path.
  """
  return _write_files(
      output_dir, output_paths, (stem,), render_outputs(image, result, faces),
      {'mesh': (camera_frame_vertices(result), faces)},
      _json_ready(result, image.shape, source))
