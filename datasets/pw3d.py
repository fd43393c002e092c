"""3DPW (3D Poses in the Wild) to 3D TFRecords with SMPL ground truth.

Input, as distributed (von Marcard et al., ECCV 2018):
`<input_dir>/sequenceFiles/{train,validation,test}/<sequence>.pkl`, Python 2
pickles (read through `hmr_tf.files.safe_pickle` with latin-1) of a dict with, for
the P people of the sequence and its N frames:
  poses [P][N, 72] (SMPL, world frame), betas [P][10+], trans [P][N, 3],
  jointPositions [P][N, 72] (the 24 SMPL joints, world frame, metres),
  cam_poses [N, 4, 4] (world -> camera), cam_intrinsics [3, 3],
  campose_valid [P][N] (0/1), poses2d [P][N, 3, 18], genders [P] ('m'/'f'),
  poses_60Hz [P][M, 72], trans_60Hz [P][M, 3], img_frame_ids [N],
  sequence (the name);
and the frames `<input_dir>/imageFiles/<sequence>/image_%05d.jpg`.

Frame <-> image <-> annotation pairing (the dataset's readme, and SPIN's and
VIBE's 3DPW preprocessing, which read it so): `poses`, `trans`,
`jointPositions`, `cam_poses`, `campose_valid` and `poses2d` are "aligned
with image data", one entry per image, and the images are numbered in that
order from 0, so frame i is `image_{i:05d}.jpg` with `cam_poses[i]`.
`img_frame_ids` is "an index-array to down-sample 60 Hz 3D poses to
corresponding image frame ids": it indexes the 60 Hz arrays (`poses_60Hz`,
`trans_60Hz`), not the image files. It is only checked here (N entries,
each a frame of the 60 Hz arrays when they are present).

What is written (dataset folder `3dpw`, one split per name in --splits), in
sequence, person and frame order: one record per person per frame whose
camera pose is valid (`campose_valid`; the others are counted as filtered),
holding
  * `mosh/pose`: the SMPL pose with its global rotation turned into the
    camera's frame (R_camera * R_global, so the body is seen as in the
    image); `mosh/shape`: the first 10 betas; `meta/gender`: 'male' or
    'female' (the SMPL model the parameters belong to); no `mosh/gt3d`
    (the 3D joints come from posing the body at evaluation time);
  * 2D keypoints: the ground-truth joints (jointPositions) projected with
    the camera, the 12 LSP limb joints from their SMPL namesakes and the
    neck from SMPL's neck; the head top has no SMPL joint and is left
    invisible, as are points outside the image. They are SMPL joints, not
    annotated LSP joints: fine for cropping, approximate for 2D losses;
  * the person crop, as later work crops 3DPW (e.g. SPIN, VIBE): the box
    around all 24 projected joints; the crop is the square of 1.2 times the
    box's longer side centred on the box. Here the image is scaled so that
    this square is 224 px (the box's longer side 224 / 1.2 = 186.7 px), so
    the evaluation parser's window (base_crop_size = 224 at record scale 1)
    is exactly that crop, and a 300x300 window around the person is
    stored. People with no projected joint inside the image are counted as
    filtered.

  python -m datasets.pw3d --input_dir=.../3DPW --output_dir=... --splits=test
"""

import glob
import os
from typing import Dict, List, Sequence

from absl import app
from absl import flags
from absl import logging
import numpy as np
from scipy.spatial.transform import Rotation

from datasets import common
from hmr_tf.data import schema
from hmr_tf.data import writer as writer_lib
from hmr_tf.evaluation import pw3d_protocol
from hmr_tf.files import safe_pickle
from hmr_tf.smpl import joints as joints_lib

FLAGS = flags.FLAGS
DATASET = pw3d_protocol.DATASET
SPLITS = ('train', 'validation', 'test')
DEFAULT_SPLITS = ('test',)
MARGIN = 150  # Half the side of the stored window (as the other 3D sets).
CROP_PX = 224.0  # The evaluation window at record scale 1.
BOX_TO_CROP = 1.2  # Later work's square crop: 1.2 x the box's longer side.
NUM_SMPL_JOINTS = joints_lib.NUM_SMPL_JOINTS
NUM_BETAS = schema.SHAPE_DIM
GENDERS = {'m': schema.GENDER_MALE, 'f': schema.GENDER_FEMALE}
# SMPL joint of each LSP joint (the head top has none: -1).
SMPL_TO_LSP = joints_lib.SMPL_TO_LSP_LIMBS + (
    joints_lib.SMPL_JOINT_NAMES.index('neck'), -1)
_KEYS = ('sequence', 'poses', 'betas', 'jointPositions', 'cam_poses',
         'cam_intrinsics', 'campose_valid', 'genders')
_60HZ_KEYS = ('poses_60Hz', 'trans_60Hz')


def _text(value) -> str:
  return value.decode('latin-1') if isinstance(value, bytes) else str(value)


def _per_frame_array(value, shape, path: str, where: str,
                     name: str) -> np.ndarray:
  """Shape-checked float64 array whose values are checked per record.

  Frames whose camera pose is invalid may hold no numbers (NaN); each
  written record's values are checked for finiteness where it is built.
  """
  try:
    array = np.asarray(value, dtype=np.float64)
  except (TypeError, ValueError) as e:
    raise common.BadRecordError(path, where, f'{name}: not numeric ({e})'
                                ) from e
  if array.ndim != len(shape) or any(
      s is not None and s != a for s, a in zip(shape, array.shape)):
    want = '[' + ', '.join('*' if s is None else str(s) for s in shape) + ']'
    raise common.BadRecordError(path, where, f'{name}: expected shape {want}, '
                                f'got {array.shape}')
  return array


def load_sequence(path: str) -> Dict:
  """Loads and checks one sequence file.

  Returns:
    dict with 'sequence' str, 'poses' [P, N, 72], 'betas' [P, 10],
    'joints' [P, N, 24, 3], 'cam_poses' [N, 4, 4], 'intrinsics' [3, 3],
    'valid' [P, N] bool, 'genders' [P] ('male'/'female'). Frame i of
    every per-frame array is image i (`image_name`).

  Raises:
    ValueError: naming the file and the key when the pickle is unsafe or
      unreadable, a key is missing or an array has the wrong shape.
  """
  raw = safe_pickle.load_pickle(path, encoding='latin1')
  if not isinstance(raw, dict):
    raise ValueError(f'{path}: expected a dict, got {type(raw).__name__}')
  raw = {_text(k): v for k, v in raw.items()}
  missing = [k for k in _KEYS if k not in raw]
  if missing:
    raise ValueError(f'{path}: no key(s) {missing}')
  people = len(raw['poses'])
  cam_poses = _per_frame_array(raw['cam_poses'], [None, 4, 4], path,
                               'cam_poses', 'cam_poses')
  num = cam_poses.shape[0]
  out = {
      'sequence': _text(raw['sequence']),
      'cam_poses': cam_poses,
      'intrinsics': common.check_array(raw['cam_intrinsics'], [3, 3], path,
                                       'cam_intrinsics', 'cam_intrinsics'),
  }
  _check_frame_ids(raw, num, people, path)
  for key in ('betas', 'jointPositions', 'campose_valid', 'genders'):
    if len(raw[key]) != people:
      raise ValueError(f'{path}: {key}: {len(raw[key])} entries for {people} '
                       'people (poses)')
  poses, betas, joints, valid, genders = [], [], [], [], []
  for p in range(people):
    where = f'person {p}'
    poses.append(_per_frame_array(raw['poses'][p], [num, 72], path, where,
                                  'poses'))
    b = np.asarray(raw['betas'][p], np.float64).reshape(-1)
    betas.append(common.check_array(b[:NUM_BETAS], [NUM_BETAS], path, where,
                                    'betas'))
    joints.append(_per_frame_array(
        raw['jointPositions'][p], [num, 3 * NUM_SMPL_JOINTS], path, where,
        'jointPositions').reshape(num, NUM_SMPL_JOINTS, 3))
    # NaN compares False: a frame without a number is not valid.
    valid.append(_per_frame_array(raw['campose_valid'][p], [num], path,
                                  where, 'campose_valid') > 0)
    gender = _text(raw['genders'][p]).strip().lower()
    if gender not in GENDERS:
      raise ValueError(f'{path}: genders[{p}]: expected one of '
                       f'{sorted(GENDERS)}, got {gender!r}')
    genders.append(GENDERS[gender])
  out.update(poses=np.asarray(poses).reshape(people, num, 72),
             betas=np.asarray(betas).reshape(people, NUM_BETAS),
             joints=np.asarray(joints).reshape(people, num, NUM_SMPL_JOINTS,
                                               3),
             valid=np.asarray(valid, bool).reshape(people, num),
             genders=genders)
  return out


def _check_frame_ids(raw: Dict, num: int, people: int, path: str) -> None:
  """Checks `img_frame_ids` against the 60 Hz arrays (when present).

  They only say which 60 Hz frame each image frame is; a file where they do
  not fit was not made the way the readme describes, so it is refused
  rather than converted on a guess.
  """
  if 'img_frame_ids' not in raw:
    return
  ids = common.check_array(raw['img_frame_ids'], [num], path,
                           'img_frame_ids', 'img_frame_ids')
  if np.any(ids < 0) or np.any(ids != np.round(ids)):
    raise ValueError(f'{path}: img_frame_ids: expected frame numbers >= 0')
  for key in _60HZ_KEYS:
    if key not in raw:
      continue
    for p in range(min(people, len(raw[key]))):
      frames = len(raw[key][p])
      if ids.size and ids.max() >= frames:
        raise ValueError(
            f'{path}: img_frame_ids: frame {int(ids.max())} is past the end '
            f'of {key}[{p}] ({frames} frames at 60 Hz)')


def image_name(sequence: str, frame: int) -> str:
  """Frame `frame`'s image, relative to the 3DPW root (see the docstring)."""
  return os.path.join('imageFiles', sequence, f'image_{frame:05d}.jpg')


def camera_pose(pose: np.ndarray, cam_pose: np.ndarray) -> np.ndarray:
  """[72] world-frame SMPL pose -> the same with the camera-frame root."""
  out = np.array(pose, np.float64)
  root = Rotation.from_matrix(cam_pose[:3, :3]) * Rotation.from_rotvec(
      out[:3])
  out[:3] = root.as_rotvec()
  return out


def project(points: np.ndarray, cam_pose: np.ndarray,
            intrinsics: np.ndarray) -> np.ndarray:
  """[K, 3] world points -> ([K, 2] pixels, [K] depth in the camera)."""
  cam = points @ cam_pose[:3, :3].T + cam_pose[:3, 3]
  pixels = cam @ intrinsics.T
  depth = cam[:, 2]
  with np.errstate(divide='ignore', invalid='ignore'):
    return pixels[:, :2] / depth[:, None], depth


def box_scale(points: np.ndarray) -> float:
  """Image scale that makes 1.2 x the box's longer side CROP_PX pixels."""
  side = float(np.max(points.max(0) - points.min(0)))
  return CROP_PX / (BOX_TO_CROP * side) if side > 0 else 0.0


def convert_sequence(path: str, input_dir: str, split: str,
                     writer: writer_lib.ShardedWriter) -> int:
  """Writes every valid person-frame of one sequence; returns how many."""
  data = load_sequence(path)
  seq = data['sequence']
  written = 0
  for p in range(len(data['genders'])):
    writer.filtered(split, 'camera pose not valid',
                    int((~data['valid'][p]).sum()))
    for i in np.flatnonzero(data['valid'][p]):
      relative = image_name(seq, int(i))
      record = f'person {p} frame {i} ({relative})'
      with writer.guard(split, path, record):
        for name, value in (('poses', data['poses'][p, i]),
                            ('jointPositions', data['joints'][p, i]),
                            ('cam_poses', data['cam_poses'][i])):
          if not np.all(np.isfinite(value)):
            raise common.BadRecordError(path, record,
                                        f'{name}: non-finite values')
        points, depth = project(data['joints'][p, i], data['cam_poses'][i],
                                data['intrinsics'])
        if np.any(depth <= 0) or not np.all(np.isfinite(points)):
          raise common.BadRecordError(path, record, 'jointPositions: a joint '
                                      'lies behind the camera (cam_poses)')
        image = common.read_image(os.path.join(input_dir, relative),
                                  f'{path} {record}')
        height, width = image.shape[:2]
        inside = ((points[:, 0] >= 0) & (points[:, 0] < width) &
                  (points[:, 1] >= 0) & (points[:, 1] < height))
        if not inside.any():
          writer.filtered(split, 'person outside the image')
          continue
        scale = box_scale(points)
        if scale <= 0:
          raise common.BadRecordError(path, record, 'jointPositions: the '
                                      'projected joints span no area')
        all_joints = np.concatenate([points, np.ones((len(points), 1))], 1)
        crop = common.crop_person(image, all_joints, scale, MARGIN)
        keypoints = np.zeros((schema.NUM_LSP_JOINTS, 3))
        for k, j in enumerate(SMPL_TO_LSP):
          if j >= 0 and inside[j]:
            keypoints[k] = crop.keypoints[j]
        writer.write(split, common.image_example(
            crop.image, keypoints, crop.center, relative, DATASET,
            pose=camera_pose(data['poses'][p, i], data['cam_poses'][i]),
            shape=data['betas'][p], gender=data['genders'][p]))
        written += 1
  return written


def convert(input_dir: str,
            output_dir: str,
            shard_size: int = writer_lib.DEFAULT_SHARD_SIZE,
            skip_bad: bool = False,
            splits: Sequence[str] = DEFAULT_SPLITS) -> dict:
  """Converts 3DPW. Returns the sidecar dict.

  Args:
    input_dir: the 3DPW folder (sequenceFiles/, imageFiles/).
    output_dir: root output folder.
    shard_size: records per shard.
    skip_bad: skip and count malformed records (and unreadable sequence
      files) instead of stopping.
    splits: among SPLITS.

  Raises:
    FileNotFoundError: a split has no sequence file.
  """
  splits = list(splits)
  for split in splits:
    if split not in SPLITS:
      raise ValueError(f'splits: expected names among {SPLITS}, got '
                       f'{split!r}')
  files: Dict[str, List[str]] = {}
  for split in splits:
    folder = os.path.join(input_dir, 'sequenceFiles', split)
    files[split] = sorted(glob.glob(os.path.join(folder, '*.pkl')))
    if not files[split]:
      raise FileNotFoundError(f'{folder}: no 3DPW sequence files (*.pkl)')
  per_sequence: Dict[str, Dict[str, int]] = {}
  with writer_lib.ShardedWriter(
      output_dir, DATASET, schema.KIND_3D, shard_size=shard_size,
      skip_bad=skip_bad,
      extra={'crop': 'square of 1.2 x the longer side of the projected '
                     'ground-truth joints\' box = 224 px at scale 1',
             'pose_frame': 'camera'}) as writer:
    for split in splits:
      writer.add_split(split)
      per_sequence[split] = {}
      for path in files[split]:
        with writer.guard(split, path, 'sequence file'):
          name = os.path.splitext(os.path.basename(path))[0]
          per_sequence[split][name] = convert_sequence(path, input_dir, split,
                                                       writer)
          logging.info('3DPW %s/%s: %d records', split, name,
                       per_sequence[split][name])
    writer.extra['examples_per_sequence'] = per_sequence
  return writer.summary()


def main(argv):
  del argv  # Unused.
  convert(FLAGS.input_dir, FLAGS.output_dir, shard_size=FLAGS.shard_size,
          skip_bad=FLAGS.skip_bad, splits=FLAGS.splits)


if __name__ == '__main__':
  common.define_flags(writer_lib.DEFAULT_SHARD_SIZE)
  flags.DEFINE_list('splits', list(DEFAULT_SPLITS),
                    f'Splits to convert, among {SPLITS}.')
  app.run(main)
