"""Fixture builders shared by the dataset converter tests.

Tiny images and annotation files in each dataset's real file format, a
stick-figure skeleton to place people, and readers that decode converted
shards back through `hmr_tf.data.decoder`.
"""

import io
import os
import pickle
import subprocess
import sys
import struct

import cv2
import numpy as np
import scipy.io
import tensorflow as tf

from datasets import writer as writer_lib
from hmr_tf.data import decoder

# A standing person in LSP order then the 5 face points, as fractions of the
# person's height: (x from the body axis, y down from the head top).
_SKELETON = np.array([
    (-0.10, 1.00), (-0.10, 0.75), (-0.10, 0.50), (0.10, 0.50), (0.10, 0.75),
    (0.10, 1.00), (-0.30, 0.50), (-0.25, 0.35), (-0.15, 0.20), (0.15, 0.20),
    (0.25, 0.35), (0.30, 0.50), (0.00, 0.15), (0.00, 0.00),
    (0.00, 0.07), (0.03, 0.05), (-0.03, 0.05), (0.06, 0.06), (-0.06, 0.06),
])


def skeleton(center_x: float, top_y: float, height: float) -> np.ndarray:
  """[19, 2] pixel positions of a standing person (LSP order + face)."""
  return _SKELETON * height + np.array([center_x, top_y])


def background(height: int, width: int, seed: int = 0) -> np.ndarray:
  """A dark, noisy BGR uint8 image (markers drawn on it stand out)."""
  rng = np.random.default_rng(seed)
  return rng.integers(0, 40, size=(height, width, 3), dtype=np.uint8)


def draw_marker(image: np.ndarray, xy, radius: int = 2) -> np.ndarray:
  """Draws a white disc centred on (x, y) (sub-pixel accurate)."""
  shift = 4
  center = tuple(int(round(v * (1 << shift))) for v in xy)
  cv2.circle(image, center, radius << shift, (255, 255, 255), -1,
             lineType=cv2.LINE_AA, shift=shift)
  return image


def marker_centroid(image: np.ndarray, threshold: int = 128) -> np.ndarray:
  """(x, y) intensity-weighted centroid of the bright pixels of an image."""
  gray = image.astype(np.float64).mean(axis=-1)
  weights = np.where(gray > threshold, gray, 0.0)
  if weights.sum() == 0:
    raise AssertionError('no marker found in the image')
  ys, xs = np.mgrid[:gray.shape[0], :gray.shape[1]]
  return np.array([(xs * weights).sum(), (ys * weights).sum()]) / weights.sum()


def write_image(path: str, image: np.ndarray) -> str:
  """Writes a BGR image (format from the extension), creating folders."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  if not cv2.imwrite(path, image, [cv2.IMWRITE_JPEG_QUALITY, 100]):
    raise OSError(f'cannot write {path}')
  return path


def write_garbage(path: str) -> str:
  """Writes a file that no image decoder accepts."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'wb') as f:
    f.write(b'this is not an image')
  return path


def read_split(output_dir: str, dataset: str, split: str, mocap=False):
  """Decodes every record of a converted split, in shard order.

  Returns:
    (list of dicts of NumPy values, the sidecar dict).
  """
  meta = writer_lib.read_sidecar(output_dir, dataset)
  files = [os.path.join(output_dir, dataset, f)
           for f in meta['splits'][split]['files']]
  decode = (decoder.decode_mocap_example if mocap
            else decoder.decode_image_example)
  records = []
  for serialized in tf.data.TFRecordDataset(files):
    records.append({k: v.numpy() for k, v in decode(serialized).items()})
  return records, meta


def snapshot(output_dir: str, dataset: str) -> dict:
  """{file name: bytes} of every file in a dataset folder (temp included)."""
  folder = os.path.join(output_dir, dataset)
  out = {}
  for name in final_files(output_dir, dataset):
    with open(os.path.join(folder, name), 'rb') as f:
      out[name] = f.read()
  return out


def run_converter(module: str, *args: str) -> subprocess.CompletedProcess:
  """Runs `python -m module args...` from the repository root."""
  root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  return subprocess.run([sys.executable, '-m', module, *args], cwd=root,
                        capture_output=True, text=True, check=False)


def assert_one_line_error(result: subprocess.CompletedProcess, prog: str,
                          *parts: str) -> None:
  """Exit status 1, no traceback, one `prog: error:` line naming every part.

  (TensorFlow's own start-up log lines may precede it on stderr.)
  """
  assert result.returncode == 1, result.stderr
  assert 'Traceback' not in result.stderr, result.stderr
  lines = [l for l in result.stderr.splitlines() if l.startswith(prog)]
  assert len(lines) == 1 and lines[0].startswith(f'{prog}: error: '), (
      result.stderr)
  for part in parts:
    assert part in lines[0], (part, lines[0])


def final_files(output_dir: str, dataset: str):
  """Names of files under a dataset folder (temp files included)."""
  folder = os.path.join(output_dir, dataset)
  return sorted(os.listdir(folder)) if os.path.isdir(folder) else []


class Py2Pickler(pickle._Pickler):  # pylint: disable=protected-access
  """Writes `bytes` with Python 2 `str` opcodes, as Python 2's cPickle did.

  Loading such a pickle in Python 3 needs encoding='latin1' (NumPy array
  data is a Python 2 str), which is what MoSh's pickles require.
  """

  dispatch = dict(pickle._Pickler.dispatch)  # pylint: disable=protected-access

  def _save_str(self, obj):
    if len(obj) < 256:
      self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
    else:
      self.write(pickle.BINSTRING + struct.pack('<i', len(obj)) + obj)
    self.memoize(obj)

  dispatch[bytes] = _save_str


def write_py2_pickle(path: str, obj) -> str:
  """Writes `obj` as a protocol-2 pickle with Python 2 strings."""
  os.makedirs(os.path.dirname(path), exist_ok=True)
  buffer = io.BytesIO()
  Py2Pickler(buffer, protocol=2).dump(obj)
  with open(path, 'wb') as f:
    f.write(buffer.getvalue())
  return path


def write_lsp(input_dir: str, num: int, extended: bool, size: int = 64):
  """An LSP (or LSP-extended) folder: joints.mat and numbered JPEGs.

  Each image shows a white marker at the person's right ankle.

  Returns:
    [num, 14, 3] keypoints (x, y, visible 0/1) as written.
  """
  rng = np.random.default_rng(num + 7 * extended)
  keypoints = np.zeros((num, 14, 3))
  for i in range(num):
    points = skeleton(size / 2 + rng.uniform(-5, 5), 6 + rng.uniform(0, 4),
                      size * 0.75)[:14]
    visible = rng.uniform(size=14) > 0.3
    visible[0] = True  # The marked ankle.
    keypoints[i, :, :2] = points
    keypoints[i, :, 2] = visible
    image = draw_marker(background(size, size, seed=i), points[0])
    name = f'im{i + 1:05d}.jpg' if extended else f'im{i + 1:04d}.jpg'
    write_image(os.path.join(input_dir, 'images', name), image)
  if extended:
    joints = np.transpose(keypoints, (1, 2, 0))  # [14, 3, N], 1 = visible.
  else:
    stored = keypoints.copy()
    stored[..., 2] = 1 - stored[..., 2]  # LSP: 1 = occluded.
    joints = np.transpose(stored, (2, 1, 0))  # [3, 14, N]
  scipy.io.savemat(os.path.join(input_dir, 'joints.mat'), {'joints': joints})
  return keypoints


def _struct_array(records, fields):
  """A 1 x N MATLAB struct array (savemat writes structured arrays so)."""
  array = np.empty((1, len(records)), dtype=[(f, 'O') for f in fields])
  for i, record in enumerate(records):
    for f in fields:
      array[0, i][f] = record[f]
  return array


# MPII joint id of each LSP joint (the fixture's own copy of the mapping).
_MPII_OF_LSP = {0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 6: 10, 7: 11, 8: 12,
                9: 13, 10: 14, 11: 15, 12: 8, 13: 9}


def mpii_person(points_lsp: np.ndarray, annotated: np.ndarray,
                extra_ids=(6, 7)):
  """One MPII `annorect` entry from LSP-order points [14, 2].

  Adds the pelvis (6) and thorax (7), which have no LSP joint, at made-up
  places, and writes `is_visible` in the file's mixed forms ('1', 1, []).
  """
  points = []
  forms = ['1', 1, np.zeros((0, 0))]
  for lsp, mpii_id in _MPII_OF_LSP.items():
    if annotated[lsp]:
      points.append({'id': mpii_id, 'x': float(points_lsp[lsp, 0]),
                     'y': float(points_lsp[lsp, 1]),
                     'is_visible': forms[lsp % 3]})
  for mpii_id in extra_ids:
    points.append({'id': mpii_id, 'x': 1.0, 'y': 1.0, 'is_visible': 1})
  return {
      'x1': 0.0, 'y1': 0.0, 'x2': 1.0, 'y2': 1.0, 'scale': 1.0,
      'objpos': {'x': 0.0, 'y': 0.0},
      'annopoints': {'point': _struct_array(
          points, ('id', 'x', 'y', 'is_visible'))},
  }


def write_mpii(path: str, images):
  """Writes a `mpii_human_pose_v1_u12_1.mat`-style RELEASE struct.

  Args:
    path: the .mat path.
    images: list of dicts: name, rects (list of annorect dicts), single
      (list of 1-based rect ids), train (bool).
  """
  annolist = _struct_array(
      [{'image': {'name': im['name']},
        'annorect': _struct_array(im['rects'], (
            'x1', 'y1', 'x2', 'y2', 'scale', 'objpos', 'annopoints')),
        'frame_sec': np.zeros((0, 0)), 'vididx': np.zeros((0, 0))}
       for im in images], ('image', 'annorect', 'frame_sec', 'vididx'))
  single = np.empty((len(images), 1), dtype=object)
  for i, im in enumerate(images):
    single[i, 0] = np.array(im['single'], dtype=np.float64).reshape(-1, 1)
  release = {
      'annolist': annolist,
      'img_train': np.array([[float(im['train']) for im in images]]),
      'single_person': single,
      'act': np.zeros((len(images), 1)),
      'video_list': np.zeros((0, 0)),
  }
  os.makedirs(os.path.dirname(path), exist_ok=True)
  scipy.io.savemat(path, {'RELEASE': release})


# COCO keypoint index of each cocoplus point (none for neck and head top):
# the fixture's own copy of the mapping.
_COCO_OF_COCOPLUS = {0: 16, 1: 14, 2: 12, 3: 11, 4: 13, 5: 15, 6: 10, 7: 8,
                     8: 6, 9: 5, 10: 7, 11: 9, 14: 0, 15: 1, 16: 2, 17: 3,
                     18: 4}


def coco_keypoints(points: np.ndarray, v) -> list:
  """COCO's flat [51] keypoint list from cocoplus points [19, 2].

  Args:
    points: [19, 2] pixel positions in cocoplus order.
    v: [17] COCO visibility (0 unlabelled, 1 occluded, 2 visible), indexed
      by COCO keypoint.
  """
  flat = np.zeros((17, 3))
  for plus, coco in _COCO_OF_COCOPLUS.items():
    if v[coco] > 0:
      flat[coco] = [points[plus, 0], points[plus, 1], v[coco]]
  return [float(x) for x in flat.ravel()]


def cocoplus_from_coco(flat) -> np.ndarray:
  """[19, 3] (x, y, labelled) from a flat COCO keypoint list (reference)."""
  flat = np.asarray(flat).reshape(17, 3)
  out = np.zeros((19, 3))
  for plus, coco in _COCO_OF_COCOPLUS.items():
    if flat[coco, 2] > 0:
      out[plus] = [flat[coco, 0], flat[coco, 1], 1]
  return out


# The 28 joints of MPI-INF-3DHP's training annotations, in file order.
MPI_INF_3DHP_JOINTS28 = (
    'spine3', 'spine4', 'spine2', 'spine', 'pelvis', 'neck', 'head',
    'head_top', 'left_clavicle', 'left_shoulder', 'left_elbow', 'left_wrist',
    'left_hand', 'right_clavicle', 'right_shoulder', 'right_elbow',
    'right_wrist', 'right_hand', 'left_hip', 'left_knee', 'left_ankle',
    'left_foot', 'left_toe', 'right_hip', 'right_knee', 'right_ankle',
    'right_foot', 'right_toe')
_LSP_AS_3DHP = ('right_ankle', 'right_knee', 'right_hip', 'left_hip',
                'left_knee', 'left_ankle', 'right_wrist', 'right_elbow',
                'right_shoulder', 'left_shoulder', 'left_elbow', 'left_wrist',
                'neck', 'head_top')


def lsp_to_3dhp28(lsp: np.ndarray, rng) -> np.ndarray:
  """[..., 14, D] LSP-order values -> [..., 28, D] in 3DHP order (others
  random)."""
  out = rng.uniform(-5, 5, size=lsp.shape[:-2] + (28, lsp.shape[-1]))
  for i, name in enumerate(_LSP_AS_3DHP):
    out[..., MPI_INF_3DHP_JOINTS28.index(name), :] = lsp[..., i, :]
  return out


def write_3dhp_sequence(seq_dir: str, gt2d, gt3d, frame_numbers,
                        size: int = 64, seed: int = 0):
  """annot.mat + frames of one MPI-INF-3DHP sequence.

  Args:
    seq_dir: .../S<s>/Seq<q>.
    gt2d: [C, N, 14, 2] pixels (LSP order), per camera.
    gt3d: [C, N, 14, 3] millimetres (LSP order), per camera.
    frame_numbers: [N] 0-based frame numbers (file names are 1-based).
    size: image side; each frame shows a marker at the right ankle.
    seed: noise seed.
  """
  rng = np.random.default_rng(seed)
  cameras, num = gt2d.shape[:2]
  annot2 = np.empty((cameras, 1), dtype=object)
  annot3 = np.empty((cameras, 1), dtype=object)
  for c in range(cameras):
    annot2[c, 0] = lsp_to_3dhp28(gt2d[c], rng).reshape(num, 56)
    annot3[c, 0] = lsp_to_3dhp28(gt3d[c], rng).reshape(num, 84)
    for i in range(num):
      image = draw_marker(background(size, size, seed=c * 100 + i),
                          gt2d[c, i, 0])
      write_image(os.path.join(seq_dir, 'imageFrames', f'video_{c}',
                               f'frame_{frame_numbers[i] + 1:06d}.jpg'),
                  image)
  scipy.io.savemat(os.path.join(seq_dir, 'annot.mat'), {
      'annot2': annot2, 'annot3': annot3,
      'frames': np.asarray(frame_numbers, np.float64).reshape(-1, 1),
      'cameras': np.arange(cameras, dtype=np.float64)})
