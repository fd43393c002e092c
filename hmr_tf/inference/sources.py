"""The demo's image sources: one image, a folder, a video's frames.

The first stage of the demo's flow (source -> people -> crops -> model ->
tracks -> writers): each source yields (stem, uint8 RGB [H, W, 3] image)
lazily, so a long video or a big folder is held one image at a time. A bad
input is a `DemoInputError` whose message is one line naming the file.
"""

import os
from typing import Iterator, List, Sequence, Tuple

import cv2
import numpy as np

from hmr_tf import errors

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.bmp', '.tif', '.tiff',
                    '.webp')


# The frame rate assumed for a video whose container reports none.
DEFAULT_FPS = 25.0


class DemoInputError(errors.InputError):
  """Bad demo input; the message is one line naming the file or flag."""


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
  yields (`frame_NNNNNN`, frame) and releases the file at the end; a second
  pass over the video constructs a new VideoFrames.

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
    fps = float(self._capture.get(cv2.CAP_PROP_FPS))
    # Some containers report no rate: the animation then plays at 25.
    self.fps = fps if np.isfinite(fps) and fps > 0 else DEFAULT_FPS

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
