"""MPI-INF-3DHP (training subjects) to 3D TFRecords.

Input (as distributed, with the videos unpacked to frames):
`<input_dir>/S{1..8}/Seq{1,2}/annot.mat` holding the cells `annot2` (per
camera [N, 2J] pixels) and `annot3` (per camera [N, 3J] millimetres), J = 28
(or the 17-joint H3.6M-style subset), optionally `frames` (0-based frame
numbers), and the frames
`<input_dir>/S*/Seq*/imageFrames/video_<camera>/frame_%06d.jpg` (1-based).
Pairing: row i of camera c's `annot2`/`annot3` is
`video_<c>/frame_{frames[i] + 1:06d}.jpg` (row i's frame when `frames` is
absent), as the original converter (`mpi_inf_3dhp_to_tfrecords.py`) names
them.

As in the original converter: subjects S1-S7 (S8 is held out), cameras
0, 1, 2, 4, 5, 6, 7, 8; per camera a frame is kept only when some joint moved
at least 200 mm since the last kept frame, and then only when at least 8 of
the 14 joints lie inside the image; all 14 joints count as visible; 3D joints
go from millimetres to metres (camera coordinates); the image is scaled so
the person is ~150 px tall and a 300x300 window is stored. The kept frames
are shuffled (seeded) before writing so shards mix sequences.

  python -m datasets.mpi_inf_3dhp --input_dir=.../mpi_inf_3dhp --output_dir=...

`--split=test` converts the test set (TS1-TS6) instead, with
`datasets.mpi_inf_3dhp_testset`:

  python -m datasets.mpi_inf_3dhp --split=test \
      --input_dir=.../mpi_inf_3dhp_test_set --output_dir=...
"""

import os
from typing import List, NamedTuple, Sequence

from absl import flags
import numpy as np
import scipy.io

from datasets import common
from hmr_tf.data import schema
from hmr_tf.data import writer as writer_lib
from hmr_tf.evaluation import mpi_inf_3dhp_protocol

FLAGS = flags.FLAGS
DATASET = 'mpi_inf_3dhp'
MARGIN = 150  # Half the side of the stored window (original: 300x300).
MIN_MOTION_MM = 200.0
MIN_JOINTS_IN_IMAGE = 8
DEFAULT_SUBJECTS = (1, 2, 3, 4, 5, 6, 7)
DEFAULT_SEQUENCES = (1, 2)
DEFAULT_CAMERAS = (0, 1, 2, 4, 5, 6, 7, 8)
SPLITS = ('train', 'test')  # --split: training subjects or the test set.
# Index of each LSP joint among the 28 joints of the training annotations
# (0-based; R ankle, knee, hip, L hip, knee, ankle, R wrist, elbow, shoulder,
# L shoulder, elbow, wrist, neck, head top).
JOINTS28_TO_LSP = (25, 24, 23, 18, 19, 20, 16, 15, 14, 9, 10, 11, 5, 7)
# The same for the 17-joint subset (head top, neck, R shoulder, elbow, wrist,
# L shoulder, elbow, wrist, R hip, knee, ankle, L hip, knee, ankle, pelvis,
# spine, head), which the test set uses too.
JOINTS17_TO_LSP = mpi_inf_3dhp_protocol.JOINTS17_TO_LSP
_TO_LSP = {28: JOINTS28_TO_LSP, 17: JOINTS17_TO_LSP}


class Frame(NamedTuple):
  """One motion-sampled frame of one camera."""
  image_path: str
  relative: str  # Image path relative to input_dir (stored as filename).
  gt2d: np.ndarray  # [14, 2] pixels.
  gt3d: np.ndarray  # [14, 3] millimetres.
  annot_path: str
  record: str  # 'camera C frame I' inside annot_path.


def sample_frames(joints3d: np.ndarray,
                  min_motion: float = MIN_MOTION_MM) -> np.ndarray:
  """Indices of frames where some joint moved >= min_motion since the last
  kept frame (the first frame is always kept).

  Args:
    joints3d: [N, K, 3] joint positions.
    min_motion: the distance threshold, same units as joints3d.

  Returns:
    int [M] kept frame indices.
  """
  if len(joints3d) == 0:
    return np.zeros([0], int)
  kept = [0]
  for i in range(1, len(joints3d)):
    motion = np.linalg.norm(joints3d[i] - joints3d[kept[-1]], axis=-1)
    if np.any(motion >= min_motion):
      kept.append(i)
  return np.array(kept)


def _camera_array(cells, camera: int, columns_per_joint: int, path: str,
                  name: str) -> np.ndarray:
  """One camera's annotation as [N, J, columns_per_joint]."""
  cells = np.asarray(cells, dtype=object).ravel() if isinstance(
      cells, np.ndarray) and cells.dtype == object else None
  if cells is None:
    raise ValueError(f'{path}: {name}: expected a cell array (one per camera)')
  if camera >= len(cells):
    raise common.BadRecordError(
        path, f'{name} camera {camera}',
        f'camera index out of range: the file has {len(cells)} cameras')
  array = common.check_array(cells[camera], [None, None], path,
                             f'{name} camera {camera}', name)
  num_joints = array.shape[1] // columns_per_joint
  if (array.shape[1] % columns_per_joint or num_joints not in _TO_LSP):
    raise common.BadRecordError(
        path, f'{name} camera {camera}',
        f'expected [N, {columns_per_joint} x (28 or 17)] columns, got '
        f'{array.shape}')
  array = array.reshape(array.shape[0], num_joints, columns_per_joint)
  return array[:, list(_TO_LSP[num_joints])]


def check_sequence(input_dir: str, subject: int, sequence: int) -> str:
  """Checks one sequence's input without loading its data; returns the path
  of its annot.mat.

  Raises:
    FileNotFoundError: naming the missing annot.mat or frame folder.
    ValueError: naming the annot.mat when it is not a readable .mat file
      holding annot2 and annot3.
  """
  seq_dir = os.path.join(input_dir, f'S{subject}', f'Seq{sequence}')
  path = common.require_file(os.path.join(seq_dir, 'annot.mat'),
                             'MPI-INF-3DHP annotation file')
  try:
    names = {entry[0] for entry in scipy.io.whosmat(path)}
  except (ValueError, OSError, NotImplementedError, TypeError, IndexError,
          scipy.io.matlab.MatReadError) as e:
    raise ValueError(f'{path}: cannot read the .mat file ({e})') from e
  for key in ('annot2', 'annot3'):
    if key not in names:
      raise ValueError(f'{path}: no variable named {key!r}')
  frames_dir = os.path.join(seq_dir, 'imageFrames')
  if not os.path.isdir(frames_dir):
    raise FileNotFoundError(f'{frames_dir}: MPI-INF-3DHP frame folder not '
                            'found (extract the videos to JPEG frames)')
  return path


def collect_sequence(input_dir: str, subject: int, sequence: int,
                     cameras: Sequence[int],
                     writer: writer_lib.ShardedWriter, split: str
                    ) -> List[Frame]:
  """The motion-sampled frames of one sequence, all selected cameras."""
  path = check_sequence(input_dir, subject, sequence)
  mat = common.load_mat(path, squeeze_me=True)
  for key in ('annot2', 'annot3'):
    if key not in mat:
      raise ValueError(f'{path}: no variable named {key!r}')
  frames = []
  for camera in cameras:
    with writer.guard(split, path, f'camera {camera}'):
      gt2d = _camera_array(mat['annot2'], camera, 2, path, 'annot2')
      gt3d = _camera_array(mat['annot3'], camera, 3, path, 'annot3')
      if gt2d.shape[0] != gt3d.shape[0]:
        raise common.BadRecordError(
            path, f'camera {camera}', f'annot2 has {gt2d.shape[0]} frames, '
            f'annot3 {gt3d.shape[0]}')
      numbers = np.arange(gt2d.shape[0])
      if 'frames' in mat:
        numbers = np.asarray(mat['frames']).astype(int).ravel()
        if numbers.shape[0] != gt2d.shape[0]:
          raise common.BadRecordError(
              path, f'camera {camera}', f'frames has {numbers.shape[0]} '
              f'entries, annot2 {gt2d.shape[0]} frames')
      kept = sample_frames(gt3d)
      writer.filtered(split, 'moved less than 200 mm',
                      gt2d.shape[0] - len(kept))
      for i in kept:
        relative = os.path.join(f'S{subject}', f'Seq{sequence}',
                                'imageFrames', f'video_{camera}',
                                f'frame_{numbers[i] + 1:06d}.jpg')
        frames.append(Frame(os.path.join(input_dir, relative), relative,
                            gt2d[i], gt3d[i], path,
                            f'camera {camera} frame {i}'))
  return frames


def convert(input_dir: str,
            output_dir: str,
            shard_size: int = writer_lib.DEFAULT_SHARD_SIZE,
            skip_bad: bool = False,
            subjects: Sequence[int] = DEFAULT_SUBJECTS,
            sequences: Sequence[int] = DEFAULT_SEQUENCES,
            cameras: Sequence[int] = DEFAULT_CAMERAS,
            seed: int = 0) -> dict:
  """Converts MPI-INF-3DHP training sequences. Returns the sidecar dict."""
  split = 'train'
  # Every sequence's input is checked before the writer starts, and the
  # writer keeps the previous conversion until this one is complete.
  for subject in subjects:
    for sequence in sequences:
      check_sequence(input_dir, subject, sequence)
  with writer_lib.ShardedWriter(
      output_dir, DATASET, schema.KIND_3D, shard_size=shard_size,
      skip_bad=skip_bad,
      extra={'subjects': list(subjects), 'cameras': list(cameras)}) as writer:
    writer.add_split(split)
    frames = []
    for subject in subjects:
      for sequence in sequences:
        frames += collect_sequence(input_dir, subject, sequence, cameras,
                                   writer, split)
    order = np.random.default_rng(seed).permutation(len(frames))
    for index in order:
      image_path, relative, gt2d, gt3d, annot_path, record = frames[index]
      with writer.guard(split, annot_path, record):
        image = common.read_image(image_path, f'{annot_path} {record}')
        height, width = image.shape[:2]
        inside = ((gt2d[:, 0] >= 0) & (gt2d[:, 0] < width) &
                  (gt2d[:, 1] >= 0) & (gt2d[:, 1] < height))
        if inside.sum() < MIN_JOINTS_IN_IMAGE:
          writer.filtered(split, 'fewer than 8 joints inside the image')
          continue
        # All joints count as visible (they come from motion capture).
        keypoints = np.concatenate([gt2d, np.ones((len(gt2d), 1))], axis=1)
        scale = common.person_scale(keypoints)
        if scale is None:
          writer.filtered(split, 'cannot normalise the person scale')
          continue
        crop = common.crop_person(image, keypoints, scale, MARGIN)
        writer.write(split, common.image_example(
            crop.image, crop.keypoints, crop.center, relative, DATASET,
            joints3d=gt3d / 1000.0))
  return writer.summary()


def main(argv):
  del argv  # Unused.
  if FLAGS.split == 'test':
    # pylint: disable-next=g-import-not-at-top
    from datasets import mpi_inf_3dhp_testset
    sequences = (FLAGS.sequences if FLAGS['sequences'].present else
                 mpi_inf_3dhp_protocol.SEQUENCES)
    mpi_inf_3dhp_testset.convert(
        FLAGS.input_dir, FLAGS.output_dir, shard_size=FLAGS.shard_size,
        skip_bad=FLAGS.skip_bad, sequences=sequences, annot3=FLAGS.annot3)
    return
  convert(FLAGS.input_dir, FLAGS.output_dir, shard_size=FLAGS.shard_size,
          skip_bad=FLAGS.skip_bad,
          subjects=[int(s) for s in FLAGS.subjects],
          sequences=[int(s) for s in FLAGS.sequences],
          cameras=[int(c) for c in FLAGS.cameras], seed=FLAGS.seed)


if __name__ == '__main__':
  common.define_flags(writer_lib.DEFAULT_SHARD_SIZE)
  flags.DEFINE_list('subjects', [str(s) for s in DEFAULT_SUBJECTS],
                    'Subjects to convert (S8 is held out by default).')
  flags.DEFINE_enum('split', 'train', SPLITS,
                    'train: the training subjects (S*/Seq*); test: the test '
                    'set (TS1-TS6, mpi_inf_3dhp_test_set).')
  flags.DEFINE_list('sequences', [str(s) for s in DEFAULT_SEQUENCES],
                    'Sequences of each subject (train); with --split=test, '
                    'the test sequences (TS1..TS6 or 1..6; default all six).')
  flags.DEFINE_enum('annot3', mpi_inf_3dhp_protocol.DEFAULT_ANNOT3,
                    mpi_inf_3dhp_protocol.ANNOT3_CHOICES,
                    '--split=test: the 3D ground truth to store (see '
                    'hmr_tf/evaluation/mpi_inf_3dhp_protocol.py).')
  flags.DEFINE_list('cameras', [str(c) for c in DEFAULT_CAMERAS],
                    'Cameras (video_N) to use.')
  flags.DEFINE_integer('seed', 0, 'Seed of the shuffle before writing.')
  common.run(main, 'datasets.mpi_inf_3dhp')
