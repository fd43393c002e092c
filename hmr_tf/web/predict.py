"""One uploaded photo -> the demo's outputs, for the web page.

Everything here calls the demo's library (hmr_tf.inference.demo_lib) the
way `python -m hmr_tf.demo` does: the same image reader, box file reader
and crop rules (boxes: the box rule; none: the whole image), the same
batched run and the same writers (`write_outputs` for the whole image,
`write_people_outputs` with boxes, as the demo's `--bbox` / `--bboxes`).
What the page adds: limits on what an upload may be (checked before it is
decoded), messages that name the uploaded file rather than a server path,
one mesh of everybody for the 3D view, and the timing.
"""

import dataclasses
import json
import os
import re
import shutil
import struct
import tempfile
import time
from typing import Dict, List, Optional

from absl import logging
import numpy as np

from hmr_tf import configs
from hmr_tf.files import atomic_io
from hmr_tf.inference import demo_lib


# Request folders kept on disk (older ones are removed as new ones come).
KEEP_REQUESTS = 16


class UploadError(ValueError):
  """An upload the page refuses; the message is one line for the page."""


@dataclasses.dataclass(frozen=True)
class WebResult:
  """What the page shows for one photo.

  Attributes:
    overlay: path of the mesh-over-photo PNG (the photo's size).
    side: path of the side view PNG.
    keypoints: path of the keypoints PNG.
    view_mesh: path of one .glb with every person, for the 3D view (y up,
      glTF's frame; also among the downloads).
    downloads: the demo's files (pictures, meshes as .obj in the image
      camera's frame, the JSON) and the .glb.
    num_people: how many people were run.
    seconds: {'read', 'model', 'outputs', 'total'} wall-clock seconds.
  """
  overlay: str
  side: str
  keypoints: str
  view_mesh: str
  downloads: List[str]
  num_people: int
  seconds: Dict[str, float]


def load_model(checkpoint: str, smpl_model_path: str = '',
               body_model: str = configs.BodyModelConfig.body_model,
               standin_num_vertices: int = (
                   configs.BodyModelConfig.standin_num_vertices),
               img_size: Optional[int] = None):
  """The demo's model and body model, found as `python -m hmr_tf.demo` does.

  The body model: `smpl_model_path`; else the body an imported original
  model records; else the run's `body_model/body_model.npz` beside the
  checkpoint folder; else the embedded `body_model`.

  Returns:
    (HMRModel, BodyModel).

  Raises:
    hmr_tf.errors.HmrError, DemoInputError, OSError, ValueError: a missing
      or bad checkpoint or body model (one line naming it).
  """
  # pylint: disable=g-import-not-at-top
  from hmr_tf import demo
  from hmr_tf.inference import original_import
  from hmr_tf.smpl import body_models
  from hmr_tf.training import checkpoints
  from hmr_tf.training import model_files
  # pylint: enable=g-import-not-at-top
  folder = (checkpoint if os.path.isdir(checkpoint) else
            os.path.dirname(checkpoint))
  body = (None if smpl_model_path else
          original_import.recorded_body_model(folder))
  if body is None:
    body = body_models.resolve_body_model(
        smpl_model_path or demo._run_body_model_file(checkpoint),  # pylint: disable=protected-access
        body_model, standin_num_vertices)
  demo_lib.check_faces(body)
  fallback = configs.ModelConfig(img_size=img_size) if img_size else None
  config = model_files.read_model_config(
      checkpoints.resolve_checkpoint(checkpoint), fallback)
  model = checkpoints.restore_model(checkpoint, body, config)
  return model, body


def check_upload(path: str, name: str,
                 max_megapixels: float = configs.WEB_MAX_MEGAPIXELS) -> None:
  """Refuses an empty file or one whose header claims too many pixels.

  The pixel count is read from the header (Pillow, gradio's own image
  library) before anything is decoded, so a small file that claims a huge
  image costs nothing; files Pillow cannot identify go on to the demo's
  reader, which says whether OpenCV can decode them.

  Raises:
    UploadError: naming the upload.
  """
  # Pillow comes with gradio, the page's requirement (not hmr_tf's).
  import PIL.Image  # pylint: disable=g-import-not-at-top
  if not os.path.isfile(path) or os.path.getsize(path) == 0:
    raise UploadError(f'{name}: the file is empty')
  try:
    with PIL.Image.open(path) as image:
      width, height = image.size
  except (PIL.Image.DecompressionBombError,) as e:
    raise UploadError(f'{name}: the image is too large ({e}); the page '
                      f'takes at most {max_megapixels:g} megapixels') from e
  except (PIL.UnidentifiedImageError, OSError, ValueError):
    return  # The demo's reader decides (and names the formats it reads).
  if width * height > max_megapixels * 1e6:
    raise UploadError(
        f'{name}: the image is {width}x{height} pixels '
        f'({width * height / 1e6:.1f} megapixels); the page takes at most '
        f'{max_megapixels:g} megapixels (downscale it first)')


def read_photo(path: str, name: str,
               max_megapixels: float = configs.WEB_MAX_MEGAPIXELS
               ) -> np.ndarray:
  """The upload as uint8 RGB [H, W, 3], through the demo's image reader.

  Raises:
    UploadError: an empty, oversized or unreadable file (the message names
      the upload, not the server's copy of it).
  """
  check_upload(path, name, max_megapixels)
  try:
    return demo_lib.load_image(path)
  except demo_lib.DemoInputError as e:
    raise UploadError(str(e).replace(f'--image {path}', name)) from e


def read_boxes(text: str, folder: str) -> List[tuple]:
  """Person boxes typed in the page, one `x,y,w,h` a line (may be empty).

  Read by the demo's box-file reader (`--bboxes`), through a file.

  Raises:
    UploadError: a malformed line (named by its number).
  """
  if not (text or '').strip():
    return []
  path = os.path.join(folder, 'boxes.txt')
  with open(path, 'w') as f:
    f.write(text)
  try:
    return demo_lib.read_bboxes(path)
  except demo_lib.DemoInputError as e:
    raise UploadError(str(e).replace(f'--bboxes {path}', 'Person boxes')
                      ) from e


def _stem(name: str) -> str:
  """A safe file-name stem from the upload's name."""
  stem = os.path.splitext(os.path.basename(name))[0]
  return re.sub(r'[^A-Za-z0-9_.-]+', '_', stem).strip('._') or 'photo'


def view_vertices(results) -> np.ndarray:
  """Everybody's vertices [N_total, 3] in a y-up frame for 3D viewers.

  The demo's meshes are in the image camera's frame (x right, y down, z
  forward, OpenCV's); a half turn about x gives y up with the camera
  looking down -z, the frame of glTF and of the page's viewer, so the
  people stand upright and face the viewer.
  """
  verts = np.concatenate([demo_lib.camera_frame_vertices(r) for r in results])
  return verts * np.array([1.0, -1.0, -1.0])


# Each person's colour in the 3D view (as the overlay's palette order).
VIEW_COLORS = ((0.9, 0.7, 0.55), (0.55, 0.75, 0.95), (0.6, 0.9, 0.6),
               (0.95, 0.6, 0.8), (0.85, 0.85, 0.5), (0.7, 0.6, 0.95))


def vertex_normals(verts: np.ndarray, faces: np.ndarray) -> np.ndarray:
  """Unit normals [N, 3]: the area-weighted sum of each vertex's faces'."""
  tri = verts[faces]
  face_normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
  normals = np.zeros_like(verts)
  for corner in range(3):
    np.add.at(normals, faces[:, corner], face_normals)
  return normals / np.maximum(np.linalg.norm(normals, axis=1,
                                             keepdims=True), 1e-12)


def write_view_glb(path: str, results, faces: np.ndarray) -> None:
  """One binary glTF (.glb) of everybody for the page's 3D view.

  The page's viewer (Babylon.js in gradio's Model3D) lights glTF's PBR
  materials with its environment; an .obj gets no usable light there (it
  draws black). One mesh with one primitive per person: `view_vertices`'
  y-up frame (glTF's), smooth normals, a matte colour per person (the
  overlay's palette). Written to a temporary name and renamed.
  """
  faces = np.asarray(faces, np.uint32)
  verts_all = view_vertices(results).astype(np.float32)
  num = len(results[0]['vertices'])
  blob = bytearray()
  views, accessors, primitives, materials = [], [], [], []

  def add(array, target, **accessor):
    data = np.ascontiguousarray(array).tobytes()
    views.append({'buffer': 0, 'byteOffset': len(blob),
                  'byteLength': len(data), 'target': target})
    blob.extend(data + b'\0' * (-len(data) % 4))
    accessors.append(dict(bufferView=len(views) - 1, **accessor))
    return len(accessors) - 1

  for k in range(len(results)):
    verts = verts_all[k * num:(k + 1) * num]
    normals = vertex_normals(verts.astype(np.float64), faces).astype(
        np.float32)
    position = add(verts, 34962, componentType=5126, count=num, type='VEC3',
                   min=verts.min(0).tolist(), max=verts.max(0).tolist())
    normal = add(normals, 34962, componentType=5126, count=num, type='VEC3')
    indices = add(faces.ravel(), 34963, componentType=5125,
                  count=int(faces.size), type='SCALAR')
    # glTF's colour factors are linear; the palette is sRGB.
    color = [c ** 2.2 for c in VIEW_COLORS[k % len(VIEW_COLORS)]] + [1.0]
    materials.append({'name': f'person{k}', 'pbrMetallicRoughness': {
        'baseColorFactor': color, 'metallicFactor': 0.0,
        'roughnessFactor': 0.7}})
    primitives.append({'attributes': {'POSITION': position,
                                      'NORMAL': normal},
                       'indices': indices, 'material': k})
  gltf = {'asset': {'version': '2.0', 'generator': 'hmr_tf.web'},
          'scene': 0, 'scenes': [{'nodes': [0]}],
          'nodes': [{'mesh': 0, 'name': 'people'}],
          'meshes': [{'primitives': primitives}], 'materials': materials,
          'buffers': [{'byteLength': len(blob)}], 'bufferViews': views,
          'accessors': accessors}
  text = json.dumps(gltf, separators=(',', ':')).encode('utf-8')
  text += b' ' * (-len(text) % 4)
  chunks = (struct.pack('<II', len(text), 0x4E4F534A) + text +
            struct.pack('<II', len(blob), 0x004E4942) + bytes(blob))
  atomic_io.write_bytes_atomic(
      path, struct.pack('<III', 0x46546C67, 2, 12 + len(chunks)) + chunks)


class Predictor:
  """Runs uploaded photos through a loaded model (one at a time).

  Args:
    model: the HMRModel (`load_model`).
    faces: [F, 3] the body model's triangles.
    output_root: where each request's folder goes.
    focal_length: the full-image camera's focal length (None: each image's
      diagonal, the demo's default).
    max_megapixels: the largest image the page takes.
  """

  def __init__(self, model, faces: np.ndarray, output_root: str,
               focal_length: Optional[float] = None,
               max_megapixels: float = configs.WEB_MAX_MEGAPIXELS):
    self.model = model
    self.faces = np.asarray(faces)
    self.output_root = output_root
    self.focal_length = focal_length
    self.max_megapixels = max_megapixels
    os.makedirs(output_root, exist_ok=True)

  def _prune(self, keep: int = KEEP_REQUESTS) -> None:
    """Removes all but the newest `keep` request folders.

    gradio copies what a request returns into its own cache when it answers,
    so older folders are no longer read.
    """
    folders = [os.path.join(self.output_root, n)
               for n in os.listdir(self.output_root)
               if n.startswith('request_')]
    folders.sort(key=os.path.getmtime)
    for folder in folders[:max(0, len(folders) - keep)]:
      shutil.rmtree(folder, ignore_errors=True)

  def run(self, path: str, name: str, boxes_text: str = '') -> WebResult:
    """The demo's outputs for one photo.

    Args:
      path: the uploaded file on the server.
      name: its name as uploaded (messages and the output names use it).
      boxes_text: optional person boxes, one `x,y,w,h` a line; none: the
        whole image (the demo's rule without boxes).

    Raises:
      UploadError: a bad upload or box (the page shows the message).
    """
    start = time.perf_counter()
    self._prune()
    folder = tempfile.mkdtemp(dir=self.output_root, prefix='request_')
    image = read_photo(path, name, self.max_megapixels)
    boxes = read_boxes(boxes_text, folder)
    try:
      crops = ([demo_lib.crop_from_bbox(b, image.shape) for b in boxes]
               or [demo_lib.crop_whole_image(image.shape)])
    except demo_lib.DemoInputError as e:
      raise UploadError(str(e).replace('--bbox', 'Person box')) from e
    read_done = time.perf_counter()
    results = demo_lib.run_on_images(self.model, [image] * len(crops), crops,
                                     focal_length=self.focal_length)
    model_done = time.perf_counter()
    stem = _stem(name)
    out_dir = os.path.join(folder, 'outputs')
    if boxes:
      paths = demo_lib.write_people_outputs(out_dir, stem, image, results,
                                            self.faces, source=name)
    else:
      paths = demo_lib.write_outputs(out_dir, stem, image, results[0],
                                     self.faces, source=name)
    view = os.path.join(out_dir, f'{stem}_people.glb')
    write_view_glb(view, results, self.faces)
    end = time.perf_counter()
    seconds = {'read': read_done - start, 'model': model_done - read_done,
               'outputs': end - model_done, 'total': end - start}
    logging.info('%s: %d person(s) in %.2f s.', name, len(results),
                 seconds['total'])
    return WebResult(
        overlay=paths['overlay'], side=paths['side'],
        keypoints=paths['keypoints'], view_mesh=view,
        downloads=[paths[k] for k in sorted(paths)] + [view],
        num_people=len(results),
        seconds=seconds)
