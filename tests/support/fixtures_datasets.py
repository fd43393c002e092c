"""Fixture builders shared by the dataset converter tests.

Tiny images and annotation files in each dataset's real file format, a
stick-figure skeleton to place people, and readers that decode converted
shards back through `hmr_tf.data.decoder`.
"""

import io
import os
import pickle
import struct
import subprocess
import sys
import types

import cv2
import h5py
import numpy as np
import scipy.io
import tensorflow as tf

import repo_paths  # tests/support/
from hmr_tf.data import decoder
from hmr_tf.data import writer as writer_lib

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


# Each background carries a tag, its seed modulo NUM_TAGS, as its grey level
# (TAG_STEP * tag + noise in [0, 8)): a resize or a crop keeps the median
# grey, so `image_tag` reads back which file a record's image came from and a
# converter that pairs an annotation with the wrong image is caught. The
# levels stay below `marker_centroid`'s threshold.
NUM_TAGS = 8
TAG_STEP = 12


def background(height: int, width: int, seed: int = 0) -> np.ndarray:
  """A dark, noisy BGR uint8 image tagged `seed % NUM_TAGS` (see above)."""
  rng = np.random.default_rng(seed)
  level = TAG_STEP * (seed % NUM_TAGS)
  return (level + rng.integers(0, 8, size=(height, width, 3))).astype(
      np.uint8)


def image_tag(image: np.ndarray) -> int:
  """The tag of the background an image (or a crop of it) was drawn on."""
  median = float(np.median(np.asarray(image, np.float64).mean(axis=-1)))
  return int(round((median - 3.5) / TAG_STEP))


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
  root = repo_paths.ROOT
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


# The MPI-INF-3DHP test set's 17 joints (the order of its annot2/annot3).
MPI_INF_3DHP_TEST_JOINTS17 = (
    'head_top', 'neck', 'right_shoulder', 'right_elbow', 'right_wrist',
    'left_shoulder', 'left_elbow', 'left_wrist', 'right_hip', 'right_knee',
    'right_ankle', 'left_hip', 'left_knee', 'left_ankle', 'pelvis', 'spine',
    'head')


def lsp_to_3dhp17(lsp: np.ndarray, rng) -> np.ndarray:
  """[..., 14, D] LSP-order values -> [..., 17, D] test-set order (pelvis,
  spine and head random)."""
  out = rng.uniform(-5, 5, size=lsp.shape[:-2] + (17, lsp.shape[-1]))
  for i, name in enumerate(_LSP_AS_3DHP):
    out[..., MPI_INF_3DHP_TEST_JOINTS17.index(name), :] = lsp[..., i, :]
  return out


def write_matlab_v73(path: str, variables) -> str:
  """A MATLAB v7.3 .mat file: HDF5 behind MATLAB's 512-byte header block.

  MATLAB writes an array of size [d1, .., dk] as an HDF5 dataset of shape
  [dk, .., d1] (column-major), so h5py reads it with the axes reversed; the
  arrays given here are in that h5py order (e.g. annot2 [N, 1, 17, 2]).
  """
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with h5py.File(path, 'w', userblock_size=512) as f:
    for name, value in variables.items():
      f.create_dataset(name, data=np.asarray(value, np.float64))
      f[name].attrs['MATLAB_class'] = np.bytes_('double')
  header = (b'MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: '
            b'Mon Jan  1 00:00:00 2018 HDF5 schema 1.00 .').ljust(116)
  with open(path, 'r+b') as f:
    f.write(header + b'\x00' * 8 + b'\x00\x02IM')
  return path


def write_3dhp_test_sequence(ts_dir: str, gt2d, gt3d, univ3d, valid,
                             activity, size: int = 64, seed: int = 0):
  """annot_data.mat (v7.3) + imageSequence JPEGs of one 3DHP test sequence.

  Args:
    ts_dir: .../TS<n>.
    gt2d: [N, 14, 2] pixels (LSP order).
    gt3d: [N, 14, 3] millimetres (LSP order), stored as annot3.
    univ3d: [N, 14, 3] millimetres, stored as univ_annot3.
    valid: [N] 0/1; images are written for valid frames only.
    activity: [N] activity codes.
    size: image side; each frame shows a marker at the right ankle.
    seed: noise seed.
  """
  rng = np.random.default_rng(seed)
  num = len(gt2d)
  write_matlab_v73(os.path.join(ts_dir, 'annot_data.mat'), {
      'annot2': lsp_to_3dhp17(np.asarray(gt2d), rng)[:, None],
      'annot3': lsp_to_3dhp17(np.asarray(gt3d), rng)[:, None],
      'univ_annot3': lsp_to_3dhp17(np.asarray(univ3d), rng)[:, None],
      'valid_frame': np.asarray(valid).reshape(num, 1),
      'activity_annotation': np.asarray(activity).reshape(num, 1),
      'bb_crop': rng.uniform(0, size, (num, 34)),
  })
  for i in range(num):
    if valid[i]:
      image = draw_marker(background(size, size, seed=seed * 100 + i),
                          gt2d[i][0])
      write_image(os.path.join(ts_dir, 'imageSequence',
                               f'img_{i + 1:06d}.jpg'), image)


def write_3dpw_sequence(input_dir: str, split: str, name: str, people,
                        cam_poses, intrinsics, img_frame_ids=None,
                        size: int = 64, marker_joint: int = 8,
                        seed: int = 0) -> str:
  """A 3DPW sequence file (Python 2 pickle) and its frames, in 3DPW's layout.

  As the dataset's readme describes it: `poses`, `trans`, `jointPositions`,
  `cam_poses`, `campose_valid` and `poses2d` have one entry per image (N),
  the images are `image_00000.jpg`, `image_00001.jpg`, ... in that order,
  and `img_frame_ids` [N] index the 60 Hz arrays (`poses_60Hz`,
  `trans_60Hz`, here twice as long, filled with noise) at the image frames.

  Args:
    input_dir: the 3DPW root (sequenceFiles/, imageFiles/).
    split: 'train', 'validation' or 'test'.
    name: the sequence name.
    people: list of dicts with 'poses' [N, 72], 'betas' [10],
      'joints' [N, 24, 3] (world, metres), 'valid' [N] and 'gender'
      ('m'/'f').
    cam_poses: [N, 4, 4] world -> camera.
    intrinsics: [3, 3].
    img_frame_ids: [N] indices into the 60 Hz arrays (default 0, 2, 4, ...).
    size: image side; image i shows a marker at the first person's
      `marker_joint` (SMPL index) projected in frame i, on a background
      tagged (seed * 100 + i) % NUM_TAGS (`image_tag`).
    seed: noise seed.

  Returns:
    The pickle's path. Keys and text are Python 2 `str` (bytes here), the
    arrays NumPy arrays, as the distributed files.
  """
  num = len(cam_poses)
  if img_frame_ids is None:
    img_frame_ids = 2 * np.arange(num)
  num_60hz = 2 * num
  rng = np.random.default_rng(seed)
  sequence = {
      b'sequence': name.encode(),
      b'poses': [np.asarray(p['poses'], np.float64) for p in people],
      b'betas': [np.asarray(p['betas'], np.float64) for p in people],
      b'trans': [rng.normal(size=(num, 3)) for _ in people],
      b'poses_60Hz': [rng.normal(size=(num_60hz, 72)) for _ in people],
      b'trans_60Hz': [rng.normal(size=(num_60hz, 3)) for _ in people],
      b'jointPositions': [np.asarray(p['joints'], np.float64).reshape(num, 72)
                          for p in people],
      b'poses2d': [rng.uniform(0, size, (num, 3, 18)) for _ in people],
      b'cam_poses': np.asarray(cam_poses, np.float64),
      b'cam_intrinsics': np.asarray(intrinsics, np.float64),
      b'campose_valid': [np.asarray(p['valid'], np.float64) for p in people],
      b'genders': [p['gender'].encode() for p in people],
      b'img_frame_ids': np.asarray(img_frame_ids, np.int64),
  }
  for i in range(num):
    cam = people[0]['joints'][i][marker_joint] @ cam_poses[i][:3, :3].T
    pixel = (cam + cam_poses[i][:3, 3]) @ np.asarray(intrinsics).T
    image = draw_marker(background(size, size, seed=seed * 100 + i),
                        pixel[:2] / pixel[2])
    write_image(os.path.join(input_dir, 'imageFiles', name,
                             f'image_{i:05d}.jpg'), image)
  return write_py2_pickle(os.path.join(input_dir, 'sequenceFiles', split,
                                       f'{name}.pkl'), sequence)


# A small 3DPW scene: 64-px frames, focal length 60 px, principal point 32;
# three image frames at 60 Hz frames 0, 2, 4 (3DPW's images are at 30 Hz).
PW3D_IMG_FRAME_IDS = np.array([0, 2, 4])
PW3D_FOCAL, PW3D_CENTER = 60.0, 32.0
PW3D_INTRINSICS = np.array([[PW3D_FOCAL, 0, PW3D_CENTER],
                            [0, PW3D_FOCAL, PW3D_CENTER], [0, 0, 1]])


def _rot_y(degrees):
  a = np.deg2rad(degrees)
  return np.array([[np.cos(a), 0, np.sin(a)], [0, 1, 0],
                   [-np.sin(a), 0, np.cos(a)]])


def pw3d_scene(seed: int = 0):
  """Two people seen by a camera 5 m away over three frames.

  Person 0 (female) is valid in frames 0, 1; person 1 (male) in frames 0, 2.

  Returns:
    (people: list of dicts for `write_3dpw_sequence`, cam_poses [3, 4, 4]).
  """
  rng = np.random.default_rng(seed)
  cam_poses = np.tile(np.eye(4), (3, 1, 1))
  for i in range(3):
    cam_poses[i, :3, :3] = _rot_y(20 + 2 * i)
    cam_poses[i, :3, 3] = [0.05 * i, 0.1, 5.0]
  people = []
  for x, gender, valid in ((-0.9, 'f', [1, 1, 0]), (1.3, 'm', [1, 0, 1])):
    spread = np.array([0.3, 0.85, 0.2])
    joints = rng.uniform(-1, 1, (3, 24, 3)) * spread + [x, 0, 0]
    people.append({'poses': rng.normal(size=(3, 72)) * 0.4,
                   'betas': rng.normal(size=10), 'joints': joints,
                   'valid': valid, 'gender': gender})
  return people, cam_poses


def write_pw3d_scene(input_dir: str, split: str = 'test',
                     name: str = 'downtown_walk_00', seed: int = 0):
  """Writes `pw3d_scene(seed)` as one sequence; returns (people, cam_poses)."""
  people, cam_poses = pw3d_scene(seed)
  write_3dpw_sequence(input_dir, split, name, people, cam_poses,
                      PW3D_INTRINSICS, PW3D_IMG_FRAME_IDS, seed=seed)
  return people, cam_poses


def expected_3dhp_crop(points: np.ndarray):
  """The MPI-INF-3DHP converters' crop of 2D points, computed by hand.

  ~150 px tall person (box diagonal) in a 64-px-per-unit resize grid, a
  300 x 300 window around the box centre, clipped at the image's top-left.

  Returns:
    (points in the crop [K, 2], the person centre in the crop [2]).
  """
  scale = 150 / np.linalg.norm(points.max(0) - points.min(0))
  factor = np.floor(64 * scale) / 64
  scaled = (points + 0.5) * factor - 0.5
  center = (scaled.min(0) + scaled.max(0)) / 2
  start = np.maximum(np.floor(center - 150), 0)
  return scaled - start, center - start


def fake_module(name: str, **classes):
  """A module object named `name` holding `classes` (for pickle fixtures)."""
  module = types.ModuleType(name)
  for cls_name, cls in classes.items():
    cls.__module__ = name
    cls.__qualname__ = cls_name
    cls.__name__ = cls_name
    setattr(module, cls_name, cls)
  return module
