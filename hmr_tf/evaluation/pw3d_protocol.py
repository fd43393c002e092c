"""The 3DPW evaluation protocol (the in-the-wild benchmark of HMR's successors).

3DPW (von Marcard et al., ECCV 2018) gives, per person and frame, the SMPL
pose and shape fitted to IMU and video data, with the person's gender. Its
test split is the benchmark; `datasets.pw3d` writes one record per person
per frame with a valid camera pose, the ground-truth pose (global rotation in
the camera's frame), betas and gender.

Per example:
  1. Ground-truth mesh: the pose and betas posed with the person's gendered
     SMPL model (`basicModel_m/f_lbs_10_207_0_v1.0.0.pkl`, licensed files
     the user gives with --smpl_male_path / --smpl_female_path); predicted
     mesh: the predicted pose and betas posed with the neutral model the
     network was trained with.
  2. Joints: both meshes through the same joint regressor (`JointSet`):
     * 'cocoplus' (default): the neutral model's own cocoplus regressor, the
       14 LSP joints; pelvis = the mean of the hips (as hmr_tf's Human3.6M
       and MPI-INF-3DHP numbers);
     * a user-supplied `.npy` regressor [17, V] in Human3.6M's joint order,
       e.g. `J_regressor_h36m.npy` as later papers (SPIN, VIBE, ...) use:
       pelvis = its joint 0, evaluated on its 14 LSP-like joints
       H36M_TO_J14 (SPIN's `H36M_TO_J14`), for numbers comparable with
       theirs.
  3. Both joint sets are centred at their pelvis; MPJPE = mean joint
     distance; PA-MPJPE = the same after the similarity Procrustes alignment
     of `hmr_tf.evaluation.metrics` (reflections excluded); PVE = mean vertex distance
     between the two meshes, each centred at its own pelvis (the same pelvis
     point as the joints). All in mm.
Reported: the mean over all examples, a per-sequence table (file names
`imageFiles/<sequence>/image_NNNNN.jpg`) and the mean over sequences.
"""

import dataclasses
import os
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from hmr_tf import configs
from hmr_tf.data import schema
from hmr_tf.evaluation import metrics as metrics_lib
from hmr_tf.smpl import joints as joints_lib
from hmr_tf.smpl import model_io

DATASET = configs.PW3D_DATASET
REGRESSOR_COCOPLUS = 'cocoplus'
# Rows of a Human3.6M-order regressor (J_regressor_h36m.npy).
NUM_H36M_JOINTS = 17
H36M_PELVIS = (0,)
# The 14 joints later papers evaluate from a Human3.6M regressor, in LSP
# order (SPIN's constants.H36M_TO_J14).
H36M_TO_J14 = (6, 5, 4, 1, 2, 3, 16, 15, 14, 11, 12, 13, 8, 10)
PROTOCOL_DESCRIPTION = (
    '3DPW: ground truth posed with the gendered SMPL models, prediction with '
    'the neutral model; joints through one regressor; MPJPE and PA-MPJPE '
    'after pelvis alignment, PVE on the pelvis-centred vertices (mm); overall '
    'and per sequence')
_M_TO_MM = 1000.0
_CHUNK = 64  # Examples posed at once.


@dataclasses.dataclass(frozen=True)
class JointSet:
  """How joints are read from a mesh for the metrics.

  Attributes:
    name: 'cocoplus' or the regressor file's path.
    regressor: [J, V] vertex -> joint weights.
    eval_joints: the rows evaluated.
    pelvis_joints: the rows averaged into the pelvis.
    description: one line for the JSON.
  """
  name: str
  regressor: np.ndarray
  eval_joints: Tuple[int, ...]
  pelvis_joints: Tuple[int, ...]
  description: str


def cocoplus_joint_set(neutral: model_io.BodyModel) -> JointSet:
  """The neutral model's own cocoplus regressor, 14 LSP joints."""
  if neutral.cocoplus_regressor is None:
    raise ValueError('3DPW: the neutral body model has no cocoplus regressor; '
                     'give one with --pw3d_joint_regressor=PATH.npy')
  return JointSet(
      name=REGRESSOR_COCOPLUS,
      regressor=np.asarray(neutral.cocoplus_regressor, np.float64),
      eval_joints=tuple(range(joints_lib.NUM_LSP_JOINTS)),
      pelvis_joints=tuple(joints_lib.LSP_PELVIS_JOINTS),
      description='the neutral model\'s cocoplus regressor, 14 LSP joints, '
                  'pelvis = mean of the hips')


def load_joint_set(path: str, num_vertices: int) -> JointSet:
  """A Human3.6M-order `.npy` regressor [17, V] (e.g. J_regressor_h36m.npy).

  Raises:
    ValueError: naming the file when it does not load or has another shape.
  """
  if not os.path.isfile(path):
    raise FileNotFoundError(f'{path}: joint regressor not found')
  try:
    regressor = np.load(path, allow_pickle=False)
  except (ValueError, OSError) as e:
    raise ValueError(f'{path}: cannot read the .npy regressor ({e})') from e
  if regressor.shape != (NUM_H36M_JOINTS, num_vertices):
    raise ValueError(f'{path}: expected a Human3.6M-order regressor of shape '
                     f'[{NUM_H36M_JOINTS}, {num_vertices}] (joints x the '
                     f'body model\'s vertices), got {list(regressor.shape)}')
  if not np.all(np.isfinite(regressor)):
    raise ValueError(f'{path}: non-finite regressor weights')
  return JointSet(
      name=path, regressor=regressor.astype(np.float64),
      eval_joints=H36M_TO_J14, pelvis_joints=H36M_PELVIS,
      description=f'{os.path.basename(path)}: Human3.6M-order regressor, the '
                  '14 joints H36M_TO_J14, pelvis = joint 0 (as SPIN/VIBE)')


def joint_set(regressor: str, neutral: model_io.BodyModel) -> JointSet:
  """'' or 'cocoplus' -> `cocoplus_joint_set`; a path -> `load_joint_set`."""
  if regressor in ('', REGRESSOR_COCOPLUS):
    return cocoplus_joint_set(neutral)
  return load_joint_set(regressor, neutral.num_vertices)


@dataclasses.dataclass(frozen=True, eq=False)
class BodyModels:
  """The three SMPL models of the protocol (same mesh topology)."""
  neutral: model_io.BodyModel
  male: model_io.BodyModel
  female: model_io.BodyModel

  def __post_init__(self):
    for name in ('male', 'female'):
      model = getattr(self, name)
      if model.num_vertices != self.neutral.num_vertices:
        raise ValueError(
            f'3DPW: the {name} model has {model.num_vertices} vertices, the '
            f'neutral one {self.neutral.num_vertices}; the ground truth and '
            'the prediction must share one mesh (give the SMPL files)')


def load_body_models(neutral: model_io.BodyModel, male_path: str,
                     female_path: str) -> BodyModels:
  """Loads the gendered SMPL files next to the network's neutral model."""
  for flag, path in (('smpl_male_path', male_path),
                     ('smpl_female_path', female_path)):
    if not path:
      raise ValueError(f'3DPW evaluation needs --{flag}: the ground truth is '
                       'posed with the person\'s gendered SMPL model (the '
                       'licensed basicModel_m/f files)')
  return BodyModels(neutral, model_io.load_model(male_path),
                    model_io.load_model(female_path))


def sequence_of(filename) -> str:
  """'imageFiles/<sequence>/image_00000.jpg' -> '<sequence>'."""
  if isinstance(filename, bytes):
    filename = filename.decode('utf-8', 'replace')
  parts = str(filename).replace('\\', '/').split('/')
  if len(parts) < 2 or not parts[-2]:
    raise ValueError(f'image/filename {filename!r}: expected '
                     'imageFiles/<sequence>/image_NNNNN.jpg')
  return parts[-2]


def _vertices(layer, pose: np.ndarray, betas: np.ndarray) -> np.ndarray:
  """[n, 72], [n, K] -> [n, V, 3] float64."""
  out = layer(tf.constant(pose, tf.float64), tf.constant(betas, tf.float64))
  return out.vertices.numpy()


def _centred(vertices: np.ndarray, joints: JointSet):
  """(joints [n, 14, 3], vertices [n, V, 3]) centred at the pelvis."""
  regressed = np.einsum('jv,nvc->njc', joints.regressor, vertices)
  pelvis = regressed[:, list(joints.pelvis_joints)].mean(axis=1,
                                                          keepdims=True)
  return (regressed[:, list(joints.eval_joints)] - pelvis,
          vertices - pelvis)


def example_errors(pred_pose: np.ndarray, pred_betas: np.ndarray,
                   gt_pose: np.ndarray, gt_betas: np.ndarray,
                   genders: Sequence, models: BodyModels,
                   joints: JointSet,
                   filenames: Optional[Sequence] = None
                  ) -> Dict[str, np.ndarray]:
  """Per-example MPJPE, PA-MPJPE and PVE in mm.

  Args:
    pred_pose: [N, 72] predicted axis-angle pose.
    pred_betas: [N, K] predicted betas.
    gt_pose: [N, 72] ground-truth pose (global rotation in camera frame).
    gt_betas: [N, K'] ground-truth betas.
    genders: [N] 'male' / 'female' (str or bytes): the ground truth's model.
    models: the neutral (prediction) and gendered (ground truth) models.
    joints: the joint regressor and joint choice.
    filenames: [N] names for error messages (optional).

  Returns:
    {'mpjpe', 'pa_mpjpe', 'pve'}: [N] float64 each.

  Raises:
    ValueError: naming the example when its gender is missing or unknown.
  """
  # Imported here: the converter imports this module for its names only,
  # and the SMPL layer's imports (TensorFlow) take seconds.
  from hmr_tf.smpl.layer import SMPL  # pylint: disable=g-import-not-at-top
  genders = [g.decode() if isinstance(g, bytes) else str(g) for g in genders]
  for i, g in enumerate(genders):
    if g not in schema.GENDERS:
      name = filenames[i] if filenames is not None else i
      raise ValueError(f'3DPW example {name!r}: gender {g!r}; expected one of '
                       f'{schema.GENDERS} (meta/gender, written by '
                       'datasets.pw3d)')
  layers = {'neutral': SMPL(models.neutral, dtype='float64'),
            schema.GENDER_MALE: SMPL(models.male, dtype='float64'),
            schema.GENDER_FEMALE: SMPL(models.female, dtype='float64')}
  n = len(genders)
  out = {k: np.zeros(n) for k in ('mpjpe', 'pa_mpjpe', 'pve')}
  genders = np.asarray(genders)
  for start in range(0, n, _CHUNK):
    idx = np.arange(start, min(start + _CHUNK, n))
    pred_v = _vertices(layers['neutral'], pred_pose[idx], pred_betas[idx])
    gt_v = np.zeros_like(pred_v)
    for gender in schema.GENDERS:
      sel = genders[idx] == gender
      if sel.any():
        gt_v[sel] = _vertices(layers[gender], gt_pose[idx][sel],
                              gt_betas[idx][sel])
    pred_j, pred_v = _centred(pred_v, joints)
    gt_j, gt_v = _centred(gt_v, joints)
    out['mpjpe'][idx] = np.linalg.norm(pred_j - gt_j, axis=-1).mean(-1)
    aligned = metrics_lib.procrustes_align(pred_j, gt_j)
    out['pa_mpjpe'][idx] = np.linalg.norm(aligned - gt_j, axis=-1).mean(-1)
    out['pve'][idx] = np.linalg.norm(pred_v - gt_v, axis=-1).mean(-1)
  return {k: v * _M_TO_MM for k, v in out.items()}


def sequence_table(filenames: Sequence, errors: Dict[str, np.ndarray]
                  ) -> Dict[str, Dict[str, float]]:
  """Per-sequence means, sorted by name, plus 'mean_over_sequences'."""
  names = [sequence_of(f) for f in filenames]
  table: Dict[str, Dict[str, float]] = {}
  for seq in sorted(set(names)):
    mask = np.array([n == seq for n in names])
    row = {k: float(np.mean(v[mask])) for k, v in errors.items()}
    row['num_examples'] = int(mask.sum())
    table[seq] = row
  if table:
    table['mean_over_sequences'] = {
        k: float(np.mean([row[k] for row in table.values()]))
        for k in errors}
  return table
