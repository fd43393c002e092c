"""Joint names, orders, kinematic tree and left/right flip permutations.

This module is the one place where joint orders live. Everything else (the
body model loader, the converters, the parser's flip augmentation, the losses
and metrics) imports the constants from here.

Orders:
  * SMPL: the 24 joints of the SMPL kinematic tree (joint 0 = pelvis = root).
  * LSP: the 14 joints of the Leeds Sports Pose dataset, the order every HMR
    2D record uses for `image/x`, `image/y`, `image/visibility`.
  * COCOPLUS: the 19 keypoints HMR regresses from the mesh: the 14 LSP joints
    followed by the 5 COCO face points (nose, eyes, ears).
"""

from typing import Tuple

SMPL_JOINT_NAMES: Tuple[str, ...] = (
    'pelvis', 'left_hip', 'right_hip', 'spine1', 'left_knee', 'right_knee',
    'spine2', 'left_ankle', 'right_ankle', 'spine3', 'left_foot', 'right_foot',
    'neck', 'left_collar', 'right_collar', 'head', 'left_shoulder',
    'right_shoulder', 'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist',
    'left_hand', 'right_hand')
NUM_SMPL_JOINTS = len(SMPL_JOINT_NAMES)  # 24

# Parent of every SMPL joint in the kinematic tree; -1 for the root. This is
# row 0 of the official files' `kintree_table`.
SMPL_PARENTS: Tuple[int, ...] = (
    -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19,
    20, 21)


def _mirror_perm(names):
  """Index of each name's left/right twin (itself if it has none)."""
  index = {n: i for i, n in enumerate(names)}

  def twin(name):
    for a, b in (('left', 'right'), ('right', 'left'), ('L_', 'R_'),
                 ('R_', 'L_')):
      if name.startswith(a):
        return b + name[len(a):]
    return name

  return tuple(index[twin(n)] for n in names)


# SMPL joint index of each joint's mirror image (left <-> right).
SMPL_FLIP_PERM: Tuple[int, ...] = _mirror_perm(SMPL_JOINT_NAMES)

LSP_JOINT_NAMES: Tuple[str, ...] = (
    'R_ankle', 'R_knee', 'R_hip', 'L_hip', 'L_knee', 'L_ankle', 'R_wrist',
    'R_elbow', 'R_shoulder', 'L_shoulder', 'L_elbow', 'L_wrist', 'neck',
    'head_top')
NUM_LSP_JOINTS = len(LSP_JOINT_NAMES)  # 14

FACE_POINT_NAMES: Tuple[str, ...] = ('nose', 'L_eye', 'R_eye', 'L_ear',
                                     'R_ear')
NUM_FACE_POINTS = len(FACE_POINT_NAMES)  # 5

COCOPLUS_JOINT_NAMES: Tuple[str, ...] = LSP_JOINT_NAMES + FACE_POINT_NAMES
NUM_COCOPLUS_JOINTS = len(COCOPLUS_JOINT_NAMES)  # 19

LSP_FLIP_PERM: Tuple[int, ...] = _mirror_perm(LSP_JOINT_NAMES)
# [5,4,3,2,1,0,11,10,9,8,7,6,12,13,14,16,15,18,17], as in the original code.
COCOPLUS_FLIP_PERM: Tuple[int, ...] = _mirror_perm(COCOPLUS_JOINT_NAMES)

# Pelvis of the LSP skeleton: the mean of both hips. 3D losses and metrics
# align predicted and true skeletons there.
LSP_PELVIS_JOINTS: Tuple[int, int] = (LSP_JOINT_NAMES.index('R_hip'),
                                      LSP_JOINT_NAMES.index('L_hip'))

# The SMPL joints nearest to each LSP limb joint (used where a body model has
# no cocoplus regressor, e.g. the stand-in builder's starting point).
SMPL_TO_LSP_LIMBS: Tuple[int, ...] = tuple(
    SMPL_JOINT_NAMES.index(n) for n in (
        'right_ankle', 'right_knee', 'right_hip', 'left_hip', 'left_knee',
        'left_ankle', 'right_wrist', 'right_elbow', 'right_shoulder',
        'left_shoulder', 'left_elbow', 'left_wrist'))
