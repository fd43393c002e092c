"""One uploaded photo -> the demo's outputs, for the web page.

Everything here calls the demo's library the way `python -m hmr_tf.demo`
does: the image reader (hmr_tf.inference.sources), the box-file reader and
crop rules (crops: boxes, else a detector's people (people, detectors),
else the whole image) and the demo's whole flow for one photograph,
`demo_lib.run_on_photo` (model, then the writers: pictures, `.obj` and
`.glb` per person, the JSON). What the page adds: limits on what an upload
may be (checked before it is decoded), messages that name the uploaded file
rather than a server path, one `.glb` of everybody for the 3D view
(hmr_tf.inference.gltf's writer), and the timing.
"""

import dataclasses
import os
import re
import shutil
import tempfile
import time
from typing import Callable, Dict, List, Optional

from absl import logging
import numpy as np

from hmr_tf import configs
from hmr_tf.inference import crops
from hmr_tf.inference import demo_lib
from hmr_tf.inference import gltf
from hmr_tf.inference import sources
from hmr_tf.inference import writers


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
      glTF's frame).
    downloads: the demo's files: the pictures, each person's mesh as .obj
      (the image camera's frame) and .glb (glTF's), the JSON.
    num_people: how many people were run.
    seconds: {'read', 'people', 'model and files', 'total'} wall-clock
      seconds ('people': the detector's time).
  """
  overlay: str
  side: str
  keypoints: str
  view_mesh: str
  downloads: List[str]
  num_people: int
  seconds: Dict[str, float]


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
    return sources.load_image(path)
  except sources.DemoInputError as e:
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
    return crops.read_bboxes(path)
  except sources.DemoInputError as e:
    raise UploadError(str(e).replace(f'--bboxes {path}', 'Person boxes')
                      ) from e


def _stem(name: str) -> str:
  """A safe file-name stem from the upload's name."""
  stem = os.path.splitext(os.path.basename(name))[0]
  return re.sub(r'[^A-Za-z0-9_.-]+', '_', stem).strip('._') or 'photo'


def write_view_glb(path: str, results, faces: np.ndarray) -> str:
  """One .glb of everybody for the page's 3D view (gltf.write_mesh_glb).

  The people's meshes in the image camera's frame, one after another (each
  person's faces index their own block of vertices), written in glTF's
  y-up frame by the demo's glTF writer. The page's viewer (Babylon.js in
  gradio's Model3D) lights glTF's materials; it draws an .obj black.
  """
  verts = np.concatenate([writers.camera_frame_vertices(r) for r in results])
  faces = np.asarray(faces)
  num = len(results[0]['vertices'])
  return gltf.write_mesh_glb(
      path, verts, np.concatenate([faces + k * num
                                   for k in range(len(results))]),
      name='people')


# The page's choice of how people are found when no box is given.
WHOLE_IMAGE = 'none (the whole image)'


class Predictor:
  """Runs uploaded photos through a loaded model (one at a time).

  Args:
    model: the HMRModel (the demo's model loading).
    faces: [F, 3] the body model's triangles.
    output_root: where each request's folder goes.
    finders: {choice name: callable(image) -> list of Crop}, the detectors
      the page offers (people.people_finder over detectors.load_detector);
      WHOLE_IMAGE is always offered.
    focal_length: the full-image camera's focal length (None: each image's
      diagonal, the demo's default).
    max_megapixels: the largest image the page takes.
  """

  def __init__(self, model, faces: np.ndarray, output_root: str,
               finders: Optional[Dict[str, Callable]] = None,
               focal_length: Optional[float] = None,
               max_megapixels: float = configs.WEB_MAX_MEGAPIXELS):
    self.model = model
    self.faces = np.asarray(faces)
    self.output_root = output_root
    self.finders = {WHOLE_IMAGE: lambda im: [crops.crop_whole_image(
        im.shape)]}
    self.finders.update(finders or {})
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

  def run(self, path: str, name: str, boxes_text: str = '',
          finder: str = WHOLE_IMAGE) -> WebResult:
    """The demo's outputs for one photo.

    Args:
      path: the uploaded file on the server.
      name: its name as uploaded (messages and the output names use it).
      boxes_text: optional person boxes, one `x,y,w,h` a line: every box
        is run (the demo's --bboxes).
      finder: without boxes, how people are found: a key of `finders`
        (WHOLE_IMAGE: the demo's rule without boxes or detector).

    Raises:
      UploadError: a bad upload, box or choice, or nobody found (the page
        shows the message).
    """
    start = time.perf_counter()
    self._prune()
    folder = tempfile.mkdtemp(dir=self.output_root, prefix='request_')
    image = read_photo(path, name, self.max_megapixels)
    boxes = read_boxes(boxes_text, folder)
    if finder not in self.finders:
      raise UploadError(f'Find people: expected one of {list(self.finders)}, '
                        f'got {finder!r}')
    timing = {'read': time.perf_counter() - start, 'people': 0.0}

    def find_people(im):
      begin = time.perf_counter()
      try:
        if boxes:
          return [crops.crop_from_bbox(b, im.shape) for b in boxes]
        return self.finders[finder](im)
      finally:
        timing['people'] = time.perf_counter() - begin

    stem = _stem(name)
    out_dir = os.path.join(folder, 'outputs')
    try:
      out = demo_lib.run_on_photo(
          self.model, image, find_people, output_dir=out_dir, stem=stem,
          faces=self.faces, source=name, focal_length=self.focal_length)
    except sources.DemoInputError as e:
      how = '' if boxes or finder == WHOLE_IMAGE else f' by {finder}'
      text = str(e).replace('--bbox', 'Person box')
      raise UploadError(text + how if text.endswith('no person found') else
                        text) from e
    results, paths = out['results'], out['paths']
    view = write_view_glb(os.path.join(folder, f'{stem}_people.glb'),
                          results, self.faces)
    total = time.perf_counter() - start
    timing['model and files'] = total - timing['read'] - timing['people']
    timing['total'] = total
    logging.info('%s: %d person(s) in %.2f s.', name, len(results), total)
    return WebResult(
        overlay=paths['overlay'], side=paths['side'],
        keypoints=paths['keypoints'], view_mesh=view,
        downloads=[paths[k] for k in sorted(paths)],
        num_people=len(results), seconds=timing)
