"""The MPI-INF-3DHP test-set protocol (the HMR paper's Table 2).

Test set: six sequences TS1..TS6 (TS1-TS4 in the studio, with and without a
green screen; TS5, TS6 outdoors), 2,929 valid frames in all, each labelled
with one of seven activities. Metrics on the 14 LSP joints after pelvis
alignment: PCK at 150 mm, AUC over 0..150 mm and MPJPE, without and with
rigid (Procrustes) alignment, over all frames, per sequence and per activity.

Ground truth choice. The test annotations hold two 3D skeletons:
  * `annot3`: the joints in the camera's coordinates, in the subject's own
    size (millimetres);
  * `univ_annot3`: the "universal" skeleton, the same pose rescaled to a
    fixed body height, which the dataset's own evaluation compares against.
Neither the HMR paper nor its released code says which one Table 2 used: the
original code reads `annot3` for the training subjects (its `univ_annot3`
line is commented out) and ships no test-set converter or evaluation.
Later work that compares with HMR on this test set (e.g. SPIN's
preprocessing) uses `univ_annot3`, the benchmark's own choice, which is the
default here. The converter records its choice in the dataset sidecar and
the evaluation copies it into its JSON, so every number says which skeleton
it was measured against.
"""

import os
from typing import Dict, Tuple

from hmr_tf import configs

# The dataset folder the test-set converter writes (apart from the training
# records in 'mpi_inf_3dhp', so neither conversion deletes the other).
TEST_DATASET = configs.MPI_INF_3DHP_TEST_DATASET
TEST_SPLIT = 'test'
SEQUENCES: Tuple[str, ...] = ('TS1', 'TS2', 'TS3', 'TS4', 'TS5', 'TS6')

# Index of each LSP joint (R ankle, knee, hip, L hip, knee, ankle, R wrist,
# elbow, shoulder, L shoulder, elbow, wrist, neck, head top) among the 17
# joints of the test set (and the 17-joint training subset): head top, neck,
# R shoulder, R elbow, R wrist, L shoulder, L elbow, L wrist, R hip, R knee,
# R ankle, L hip, L knee, L ankle, pelvis, spine, head (0-based). Pelvis,
# spine and head are not evaluated.
JOINTS17_TO_LSP: Tuple[int, ...] = (10, 9, 8, 11, 12, 13, 4, 3, 2, 5, 6, 7,
                                    1, 0)

ANNOT3_UNIVERSAL = 'univ_annot3'
ANNOT3_CAMERA = 'annot3'
ANNOT3_CHOICES: Tuple[str, ...] = (ANNOT3_UNIVERSAL, ANNOT3_CAMERA)
DEFAULT_ANNOT3 = ANNOT3_UNIVERSAL
ANNOT3_DESCRIPTIONS: Dict[str, str] = {
    ANNOT3_UNIVERSAL: 'univ_annot3: the universal skeleton (fixed body '
                      'height), the benchmark\'s own evaluation choice',
    ANNOT3_CAMERA: 'annot3: camera coordinates in the subject\'s own size',
}

# The activity codes of `activity_annotation` (the dataset paper's seven
# activity classes, in its order).
ACTIVITIES: Dict[int, str] = {
    1: 'Standing/Walking',
    2: 'Exercising',
    3: 'Sitting',
    4: 'Reaching/Crouching',
    5: 'On the floor',
    6: 'Sports',
    7: 'Miscellaneous',
}

PROTOCOL_DESCRIPTION = (
    'MPI-INF-3DHP test set (TS1-TS6, valid frames): 14 LSP joints, pelvis '
    'aligned; PCK@150 mm, AUC over 0-150 mm (31 thresholds), MPJPE; without '
    'and with Procrustes alignment; overall (all frames), per sequence, per '
    'activity')


def sequence_of(filename) -> str:
  """The test sequence ('TS1'..'TS6') of a stored file name.

  Args:
    filename: str or bytes, e.g. 'TS3/imageSequence/img_000012.jpg'.

  Raises:
    ValueError: naming the file name when its first folder is no sequence.
  """
  if isinstance(filename, bytes):
    filename = filename.decode('utf-8', 'replace')
  first = str(filename).replace('\\', '/').split('/')[0]
  if first not in SEQUENCES:
    raise ValueError(f'image/filename {filename!r}: not an MPI-INF-3DHP test '
                     f'frame; expected TS<1-6>/imageSequence/img_NNNNNN.jpg')
  return first


def activity_name(code: int) -> str:
  """The name of an activity code ('unknown activity N' when not 1..7)."""
  return ACTIVITIES.get(int(code), f'unknown activity {int(code)}')


def image_name(sequence: str, frame_index: int) -> str:
  """Relative path of a test frame: 0-based index -> 1-based file name."""
  return os.path.join(sequence, 'imageSequence',
                      f'img_{frame_index + 1:06d}.jpg')
