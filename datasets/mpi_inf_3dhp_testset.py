"""MPI-INF-3DHP test set (TS1-TS6) to 3D TFRecords.

Input, as the dataset's owners distribute `mpi_inf_3dhp_test_set`:
`<input_dir>/TS{1..6}/annot_data.mat`, MATLAB v7.3 files (HDF5, read with
h5py, which sees MATLAB's arrays with their axes reversed) holding
  annot2 [N, 1, 17, 2] pixels, annot3 and univ_annot3 [N, 1, 17, 3]
  millimetres, valid_frame [N, 1] (0/1), activity_annotation [N, 1] (1..7),
and the frames `<input_dir>/TS<n>/imageSequence/img_%06d.jpg` (1-based).
Pairing: entry i of every per-frame array is `img_{i + 1:06d}.jpg` (the
distributed `imageSequence` folders number the frames from 1 in the order
of the annotation arrays; the original code had no test-set converter, so
this rule is not checked against it).

What is written (dataset folder `mpi_inf_3dhp_test`, split `test`), in
sequence and frame order:
  * valid frames only (`valid_frame` = 1); the others are counted as
    filtered;
  * the 14 LSP-order joints HMR evaluates, taken from the test set's 17
    joints (head top, neck, R shoulder, R elbow, R wrist, L shoulder,
    L elbow, L wrist, R hip, R knee, R ankle, L hip, L knee, L ankle, pelvis,
    spine, head) by `mpi_inf_3dhp_protocol.JOINTS17_TO_LSP`:
      R ankle 10, R knee 9, R hip 8, L hip 11, L knee 12, L ankle 13,
      R wrist 4, R elbow 3, R shoulder 2, L shoulder 5, L elbow 6,
      L wrist 7, neck 1, head top 0 (0-based indices into the 17);
    pelvis, spine and head are dropped;
  * the 3D joints from `univ_annot3` (default) or `annot3` (`--annot3`, see
    `hmr_tf.evaluation.mpi_inf_3dhp_protocol` for which to use), in metres; the choice
    is recorded in the sidecar;
  * the person crop as the training converter makes it: every joint counts
    as visible, the image is scaled so the person is ~150 px tall and a
    300x300 window around the person is stored; no frame is dropped for
    joints outside the image (evaluation keeps every valid frame);
  * `meta/activity`: the frame's activity code; the file name
    `TS<n>/imageSequence/img_NNNNNN.jpg` gives the sequence.

A missing `TS<n>` folder is logged and listed in the sidecar under
`missing_sequences`; conversion stops when none is present.

  python -m datasets.mpi_inf_3dhp --split=test \
      --input_dir=.../mpi_inf_3dhp_test_set --output_dir=... [--sequences=TS1,TS2]
"""

import os
from typing import NamedTuple, Sequence

from absl import logging
import h5py
import numpy as np

from datasets import common
from hmr_tf import configs
from hmr_tf.data import schema
from hmr_tf.data import writer as writer_lib
from hmr_tf.evaluation import mpi_inf_3dhp_protocol as protocol

DATASET = protocol.TEST_DATASET
SPLIT = protocol.TEST_SPLIT
ANNOTATION_FILE = 'annot_data.mat'
NUM_TEST_JOINTS = 17
_TO_LSP = list(protocol.JOINTS17_TO_LSP)
# Half the side of the stored window: the training converter's
# (mpi_inf_3dhp.MARGIN; a test keeps them equal).
MARGIN = 150


class TestSequence(NamedTuple):
  """The annotations of one test sequence, N frames.

  Attributes:
    annot2: [N, 17, 2] pixels.
    annot3: [N, 17, 3] millimetres (the chosen skeleton).
    valid: [N] bool.
    activity: [N] activity codes (float; checked per written frame).
  """
  annot2: np.ndarray
  annot3: np.ndarray
  valid: np.ndarray
  activity: np.ndarray


def parse_sequences(names: Sequence[str]) -> list:
  """['TS1', '3'] -> ['TS1', 'TS3'] (checked against the six sequences)."""
  out = []
  for name in names:
    name = str(name).strip()
    full = name if name.upper().startswith('TS') else f'TS{name}'
    full = 'TS' + full[2:]
    if full not in protocol.SEQUENCES:
      raise ValueError(f'sequences: expected names among '
                       f'{protocol.SEQUENCES} (or 1-6), got {name!r}')
    out.append(full)
  return out


def _per_frame(file: h5py.File, key: str, path: str, num: int,
               finite: bool = True) -> np.ndarray:
  """A [N, 1] / [1, N] / [N] per-frame variable as [N] float64.

  With `finite`, every value must be a number; otherwise the caller checks
  the frames it uses.
  """
  array = np.asarray(file[key])
  if array.ndim > 2 or (array.ndim == 2 and 1 not in array.shape):
    raise ValueError(f'{path}: {key}: expected one value per frame '
                     f'([N, 1]), got shape {list(array.shape)}')
  array = array.reshape(-1).astype(np.float64)
  if array.shape[0] != num:
    raise ValueError(f'{path}: {key}: {array.shape[0]} values for {num} '
                     'frames (annot2)')
  if finite and not np.all(np.isfinite(array)):
    raise ValueError(f'{path}: {key}: non-finite values')
  return array


def _joints(file: h5py.File, key: str, path: str, dim: int) -> np.ndarray:
  """annot2 / annot3: [N, 1, 17, dim] (or [N, 17, dim]) as [N, 17, dim]."""
  array = np.asarray(file[key], dtype=np.float64)
  if array.ndim == 4 and array.shape[1] == 1:
    array = array[:, 0]
  if array.ndim != 3 or array.shape[1:] != (NUM_TEST_JOINTS, dim):
    raise ValueError(f'{path}: {key}: expected shape [N, 1, '
                     f'{NUM_TEST_JOINTS}, {dim}] (MATLAB {dim}x17x1xN), got '
                     f'{list(np.asarray(file[key]).shape)}')
  return array


def read_annotations(path: str, annot3_key: str) -> TestSequence:
  """Reads and checks one `annot_data.mat` (MATLAB v7.3 / HDF5).

  Args:
    path: the file.
    annot3_key: 'univ_annot3' or 'annot3'.

  Returns:
    A `TestSequence`.

  Raises:
    ValueError: naming the file and the variable when it is not an HDF5
      MATLAB file, a variable is missing or has the wrong shape.
  """
  configs.check_choice('annot3', annot3_key, protocol.ANNOT3_CHOICES)
  common.require_file(path, 'MPI-INF-3DHP test annotation file')
  try:
    file = h5py.File(path, 'r')
  except OSError as e:
    raise ValueError(f'{path}: cannot read as a MATLAB v7.3 (HDF5) file '
                     f'({e})') from e
  with file:
    for key in ('annot2', annot3_key, 'valid_frame', 'activity_annotation'):
      if key not in file:
        raise ValueError(f'{path}: no variable named {key!r} (has '
                         f'{sorted(file.keys())})')
    annot2 = _joints(file, 'annot2', path, 2)
    annot3 = _joints(file, annot3_key, path, 3)
    if annot3.shape[0] != annot2.shape[0]:
      raise ValueError(f'{path}: annot2 has {annot2.shape[0]} frames, '
                       f'{annot3_key} {annot3.shape[0]}')
    num = annot2.shape[0]
    valid = _per_frame(file, 'valid_frame', path, num)
    activity = _per_frame(file, 'activity_annotation', path, num,
                          finite=False)
  return TestSequence(annot2, annot3, valid > 0, activity)


def convert_sequence(input_dir: str, sequence: str, annot3_key: str,
                     writer: writer_lib.ShardedWriter) -> int:
  """Writes the valid frames of one sequence; returns how many."""
  path = os.path.join(input_dir, sequence, ANNOTATION_FILE)
  data = read_annotations(path, annot3_key)
  writer.filtered(SPLIT, 'invalid frame (valid_frame = 0)',
                  int((~data.valid).sum()))
  written = 0
  for i in np.flatnonzero(data.valid):
    relative = protocol.image_name(sequence, int(i))
    record = f'frame {i} ({relative})'
    with writer.guard(SPLIT, path, record):
      activity = data.activity[i]
      if not (np.isfinite(activity) and activity >= 0 and
              activity == np.round(activity)):
        raise common.BadRecordError(path, record, 'activity_annotation: '
                                    f'expected a code >= 0, got {activity}')
      gt2d = common.check_array(data.annot2[i][_TO_LSP], [14, 2], path,
                                record, 'annot2')
      gt3d = common.check_array(data.annot3[i][_TO_LSP], [14, 3], path,
                                record, annot3_key)
      image = common.read_image(os.path.join(input_dir, relative),
                                f'{path} {record}')
      # All joints count as visible (motion capture), as in training.
      keypoints = np.concatenate([gt2d, np.ones((len(gt2d), 1))], axis=1)
      scale = common.person_scale(keypoints)
      if scale is None:
        raise common.BadRecordError(path, record, 'annot2: the joints span '
                                    'no area; cannot normalise the person')
      crop = common.crop_person(image, keypoints, scale, MARGIN)
      writer.write(SPLIT, common.image_example(
          crop.image, crop.keypoints, crop.center, relative, DATASET,
          joints3d=gt3d / 1000.0, activity=int(activity)))
      written += 1
  return written


def convert(input_dir: str,
            output_dir: str,
            shard_size: int = writer_lib.DEFAULT_SHARD_SIZE,
            skip_bad: bool = False,
            sequences: Sequence[str] = protocol.SEQUENCES,
            annot3: str = protocol.DEFAULT_ANNOT3) -> dict:
  """Converts the MPI-INF-3DHP test set. Returns the sidecar dict.

  Args:
    input_dir: the `mpi_inf_3dhp_test_set` folder (holding TS1..TS6).
    output_dir: root output folder.
    shard_size: records per shard.
    skip_bad: skip and count malformed records instead of stopping.
    sequences: the sequences to convert ('TS1'.. or 1..6).
    annot3: which 3D skeleton to store ('univ_annot3' or 'annot3').

  Raises:
    FileNotFoundError: when none of the sequences is present.
  """
  sequences = parse_sequences(sequences)
  configs.check_choice('annot3', annot3, protocol.ANNOT3_CHOICES)
  present = [s for s in sequences
             if os.path.isdir(os.path.join(input_dir, s))]
  missing = [s for s in sequences if s not in present]
  for s in missing:
    logging.warning('MPI-INF-3DHP test set: %s not found; skipping it.',
                    os.path.join(input_dir, s))
  if not present:
    raise FileNotFoundError(f'{input_dir}: none of the test sequences '
                            f'{sequences} found (expected TS<n> folders '
                            f'holding {ANNOTATION_FILE})')
  extra = {'annot3': annot3,
           'annot3_description': protocol.ANNOT3_DESCRIPTIONS[annot3],
           'sequences': present, 'missing_sequences': missing,
           'joints17_to_lsp': _TO_LSP, 'units': 'metres'}
  with writer_lib.ShardedWriter(output_dir, DATASET, schema.KIND_3D,
                                shard_size=shard_size, skip_bad=skip_bad,
                                extra=extra) as writer:
    writer.add_split(SPLIT)
    counts = {}
    for sequence in present:
      counts[sequence] = convert_sequence(input_dir, sequence, annot3, writer)
    writer.extra['examples_per_sequence'] = counts
  return writer.summary()
