"""Evaluation: runs a restored HMRModel over an eval split and reports metrics.

What is measured (all from `hmr_tf.evaluation.metrics`):
  * 3D datasets (examples with `has_joints3d`): MPJPE and PA-MPJPE in mm
    (mean and median over examples) on the 14 LSP joints after pelvis
    alignment; PCK at 150 mm and AUC over 0..150 mm, without and with rigid
    (Procrustes) alignment (the MPI-INF-3DHP protocol).
  * Human3.6M (`configs.EvalConfig.h36m_protocol`, used when the dataset name starts
    with 'h36m'): frames are selected by the protocol from their
    `image/filename` (see `hmr_tf.evaluation.h36m_protocol`), and a
    per-action table and the mean over actions are added.
  * The MPI-INF-3DHP test set (dataset 'mpi_inf_3dhp_test', see
    `hmr_tf.evaluation.mpi_inf_3dhp_protocol`): the 3D metrics per test
    sequence and per activity as well, and which 3D ground truth the records
    hold (from the dataset's sidecar).
  * 3DPW (dataset '3dpw', see `hmr_tf.evaluation.pw3d_protocol`): MPJPE,
    PA-MPJPE and PVE from the ground-truth SMPL bodies (gendered models)
    against the predicted ones (neutral model), overall and per sequence.
  * 2D (examples with visible keypoints, e.g. LSP): PCK@0.2 of the torso
    diameter on the 14 LSP joints, and the mean keypoint error in pixels of
    the stored image.

Outputs: a table in the log, a JSON file with every number and what produced
it (checkpoint, dataset files, protocol), written atomically, and the
scalars in TensorBoard.
"""

import datetime
import os
from typing import Dict, List, Optional, Tuple

from absl import logging
import numpy as np
import tensorflow as tf

from hmr_tf import configs
from hmr_tf.data import input_pipeline
from hmr_tf.evaluation import h36m_protocol
from hmr_tf.evaluation import metrics as metrics_lib
from hmr_tf.evaluation import mpi_inf_3dhp_protocol
from hmr_tf.evaluation import pw3d_protocol
from hmr_tf.files import atomic_io
from hmr_tf.render import summaries
from hmr_tf.smpl import joints as joints_lib

_NUM_LSP = joints_lib.NUM_LSP_JOINTS
# Torso diameter for 2D PCK: right shoulder to left hip (LSP indices).
_TORSO = (joints_lib.LSP_JOINT_NAMES.index('R_shoulder'),
          joints_lib.LSP_JOINT_NAMES.index('L_hip'))
PCK_2D_TORSO_FRACTION = 0.2
# The baselines `evaluate` can report next to the model (keys of its
# results and prefixes of its scalars): the trained Θ_0 alone, and the
# data's mean parameters (the untrained Θ_0).
BASELINES = ('mean_baseline', 'data_mean_baseline')


# ---------------------------------------------------------------------------
# Predictions.


def collect_predictions(model, dataset: tf.data.Dataset,
                        max_examples: int = 0) -> Dict[str, np.ndarray]:
  """Runs the model over an eval dataset and gathers labels and predictions.

  Args:
    model: an HMRModel (or any callable with its `call` outputs).
    dataset: batches of eval parser outputs (input_pipeline.eval_dataset).
    max_examples: stop after this many examples (0: all).

  Returns:
    dict of numpy arrays over the N examples: 'filename' [N] bytes,
    'pred_joints3d' [N, 14, 3], 'pred_keypoints2d' [N, 19, 2] (crop
    coordinates), 'joints3d' [N, 14, 3], 'has_joints3d' [N],
    'keypoints2d' [N, 19, 3], 'crop_size' [N], 'activity' [N], 'gender' [N]
    bytes, 'pose' [N, 72], 'shape' [N, 10] (ground truth), and when the
    model outputs them 'pred_pose' [N, 72], 'pred_shape' [N, 10].
  """

  @tf.function(reduce_retracing=True)
  def predict(images):
    out = model(images, training=False)
    pred = {'pred_joints3d': out['keypoints3d'][:, :_NUM_LSP],
            'pred_keypoints2d': out['keypoints2d']}
    for key in ('pose', 'shape'):
      if key in out:
        pred[f'pred_{key}'] = out[key]
    return pred

  label_keys = ('filename', 'joints3d', 'has_joints3d', 'keypoints2d',
                'crop_size', 'activity', 'gender', 'pose', 'shape')
  parts: Dict[str, List[np.ndarray]] = {}
  count = 0
  for batch in dataset:
    for key, value in predict(batch['image']).items():
      parts.setdefault(key, []).append(value.numpy())
    for key in label_keys:
      parts.setdefault(key, []).append(batch[key].numpy())
    count += len(parts['filename'][-1])
    if max_examples and count >= max_examples:
      break
  if not count:
    raise ValueError('evaluation dataset is empty')
  out = {k: np.concatenate(v) for k, v in parts.items()}
  if max_examples:
    out = {k: v[:max_examples] for k, v in out.items()}
  return out


# ---------------------------------------------------------------------------
# Metrics from arrays (no model: testable on constructed data).


def metrics_3d(pred: np.ndarray, gt: np.ndarray) -> Dict[str, float]:
  """3D metrics of [N, 14, 3] predictions against ground truth (metres).

  Returns:
    mpjpe / pa_mpjpe (mean), mpjpe_median / pa_mpjpe_median (mm);
    pck150 / auc (fractions, no alignment beyond the pelvis) and
    pa_pck150 / pa_auc (after Procrustes alignment); num_examples.
  """
  err = metrics_lib.joint_errors(pred, gt)
  err_pa = metrics_lib.joint_errors(pred, gt, procrustes=True)
  out = {'num_examples': int(len(err))}
  for prefix, e in (('', err), ('pa_', err_pa)):
    summary = metrics_lib.summarize(e.mean(-1))
    out[f'{prefix}mpjpe'] = summary['mean']
    out[f'{prefix}mpjpe_median'] = summary['median']
    out[f'{prefix}pck150'] = metrics_lib.pck(e)
    out[f'{prefix}auc'] = metrics_lib.auc(e)
  return out


def metrics_2d(pred: np.ndarray, gt: np.ndarray,
               crop_size: np.ndarray) -> Dict[str, float]:
  """2D metrics on the 14 LSP joints, in crop coordinates.

  Args:
    pred: [N, >=14, 2] predicted keypoints in [-1, 1] crop coordinates.
    gt: [N, >=14, 3] true keypoints (x, y, visibility) in crop coordinates.
    crop_size: [N] crop window side in stored pixels (one crop unit is
      crop_size / 2 pixels).

  Returns:
    pck2d_torso0.2: fraction of visible joints within 0.2 torso diameters
    (examples whose torso joints are both visible); kp2d_error_px: mean
    distance over visible joints in stored-image pixels;
    num_examples_2d: examples with a visible joint.
  """
  pred = np.asarray(pred, np.float64)[:, :_NUM_LSP]
  gt = np.asarray(gt, np.float64)[:, :_NUM_LSP]
  vis = gt[..., 2] > 0
  dist = np.linalg.norm(pred - gt[..., :2], axis=-1)
  dist_px = dist * np.asarray(crop_size, np.float64)[:, None] / 2.0
  out = {'num_examples_2d': int(np.sum(vis.any(-1)))}
  out['kp2d_error_px'] = float(dist_px[vis].mean()) if vis.any() else float(
      'nan')
  a, b = _TORSO
  has_torso = vis[:, a] & vis[:, b]
  if has_torso.any():
    torso = np.linalg.norm(gt[has_torso, a, :2] - gt[has_torso, b, :2],
                           axis=-1)
    out['pck2d_torso0.2'] = metrics_lib.pck_2d(
        pred[has_torso], gt[has_torso], PCK_2D_TORSO_FRACTION, scale=torso)
  else:
    out['pck2d_torso0.2'] = float('nan')
  return out


def h36m_metrics(pred: np.ndarray, gt: np.ndarray, filenames,
                 protocol: str) -> Dict:
  """Human3.6M numbers under one protocol.

  Args:
    pred, gt: [N, 14, 3] predicted and true joints (metres).
    filenames: [N] the records' image/filename values.
    protocol: one of h36m_protocol.PROTOCOLS.

  Returns:
    {'protocol', 'protocol_description', 'num_frames', 'num_skipped',
    'overall': metrics_3d over the selected frames, 'per_action': the
    h36m_protocol.action_table of mpjpe and pa_mpjpe}.
  """
  mask, keys = h36m_protocol.select(filenames, protocol)
  if not mask.any():
    raise ValueError(f'Human3.6M protocol {protocol}: none of the {len(mask)} '
                     'frames belongs to it (subjects S9/S11'
                     + (', camera 3, trial 0' if protocol == 'p2_original'
                        else '') + ')')
  pred, gt = pred[mask], gt[mask]
  kept = [k for k, m in zip(keys, mask) if m]
  errors = {
      'mpjpe': metrics_lib.mpjpe(pred, gt),
      'pa_mpjpe': metrics_lib.pa_mpjpe(pred, gt),
  }
  return {
      'protocol': protocol,
      'protocol_description': h36m_protocol.PROTOCOL_DESCRIPTIONS[protocol],
      'num_frames': int(mask.sum()),
      'num_skipped': int((~mask).sum()),
      'overall': metrics_3d(pred, gt),
      'per_action': h36m_protocol.action_table(kept, errors),
  }


def mpi_inf_3dhp_metrics(pred: np.ndarray, gt: np.ndarray, filenames,
                         activities) -> Dict:
  """The MPI-INF-3DHP test-set numbers: overall, per sequence, per activity.

  Args:
    pred, gt: [N, 14, 3] predicted and true joints (metres).
    filenames: [N] the records' image/filename values (TS<n>/...).
    activities: [N] activity codes (meta/activity).

  Returns:
    {'protocol_description', 'overall': metrics_3d over all frames,
    'per_sequence': {'TS1': metrics_3d, ...}, 'per_activity':
    {name: metrics_3d, ...}} (groups in the protocol's order, present ones
    only).
  """
  sequences = np.array([mpi_inf_3dhp_protocol.sequence_of(f)
                        for f in filenames])
  activities = np.asarray(activities).astype(int)
  per_sequence = {}
  for seq in mpi_inf_3dhp_protocol.SEQUENCES:
    mask = sequences == seq
    if mask.any():
      per_sequence[seq] = metrics_3d(pred[mask], gt[mask])
  per_activity = {}
  for code in sorted(set(activities.tolist())):
    mask = activities == code
    per_activity[mpi_inf_3dhp_protocol.activity_name(code)] = metrics_3d(
        pred[mask], gt[mask])
  return {
      'protocol_description': mpi_inf_3dhp_protocol.PROTOCOL_DESCRIPTION,
      'overall': metrics_3d(pred, gt),
      'per_sequence': per_sequence,
      'per_activity': per_activity,
  }


def pw3d_metrics(arrays: Dict[str, np.ndarray],
                 models: pw3d_protocol.BodyModels,
                 joints: pw3d_protocol.JointSet) -> Dict:
  """The 3DPW numbers from predicted and true SMPL parameters.

  Args:
    arrays: `collect_predictions` output with 'pred_pose', 'pred_shape',
      'pose', 'shape', 'gender', 'filename'.
    models: the neutral and gendered body models.
    joints: the joint regressor choice.

  Returns:
    {'protocol_description', 'joint_regressor', 'overall': {mpjpe,
    pa_mpjpe, pve (mean, mm), their medians, num_examples},
    'per_sequence': pw3d_protocol.sequence_table}.
  """
  if 'pred_pose' not in arrays:
    raise ValueError('3DPW evaluation needs the model\'s predicted pose and '
                     'shape (pred_pose, pred_shape)')
  errors = pw3d_protocol.example_errors(
      arrays['pred_pose'], arrays['pred_shape'], arrays['pose'],
      arrays['shape'], arrays['gender'], models, joints,
      filenames=arrays['filename'])
  overall: Dict = {'num_examples': int(len(arrays['filename']))}
  for key, values in errors.items():
    summary = metrics_lib.summarize(values)
    overall[key] = summary['mean']
    overall[f'{key}_median'] = summary['median']
  return {
      'protocol_description': pw3d_protocol.PROTOCOL_DESCRIPTION,
      'joint_regressor': joints.description,
      'overall': overall,
      'per_sequence': pw3d_protocol.sequence_table(arrays['filename'],
                                                   errors),
  }


def mean_baseline_predictions(model, num_examples: int, theta=None
                              ) -> Dict[str, np.ndarray]:
  """Θ_0's joints and keypoints repeated for `num_examples` images.

  Args:
    model: an HMRModel (uses `regressor.theta0` and `smpl`).
    num_examples: N.
    theta: [85] another Θ to repeat instead of the model's Θ_0 (the data's
      mean parameters, the untrained Θ_0: a baseline that does not move
      with training).

  Returns:
    {'pred_joints3d': [N, 14, 3], 'pred_keypoints2d': [N, 19, 2],
    'pred_pose': [N, 72], 'pred_shape': [N, 10]}.
  """
  # Imported here: only the baseline needs the model's pieces.
  from hmr_tf.geometry import camera  # pylint: disable=g-import-not-at-top
  from hmr_tf.modeling import mean_params  # pylint: disable=g-import-not-at-top
  if theta is None:
    theta = model.regressor.theta0
  theta0 = tf.reshape(tf.convert_to_tensor(theta, tf.float32), [1, -1])
  cam, pose, betas = mean_params.split_theta(theta0)
  body = model.smpl(pose, betas)
  joints = body.keypoints[:, :_NUM_LSP].numpy()
  keypoints = camera.project(body.keypoints, cam).numpy()
  return {'pred_joints3d': np.repeat(joints, num_examples, axis=0),
          'pred_keypoints2d': np.repeat(keypoints, num_examples, axis=0),
          'pred_pose': np.repeat(pose.numpy(), num_examples, axis=0),
          'pred_shape': np.repeat(betas.numpy(), num_examples, axis=0)}


def compute_metrics(arrays: Dict[str, np.ndarray],
                    config: configs.EvalConfig,
                    pw3d: Optional[Tuple[pw3d_protocol.BodyModels,
                                         pw3d_protocol.JointSet]] = None
                   ) -> Dict:
  """All metrics of one evaluation from `collect_predictions`' arrays.

  Args:
    arrays: `collect_predictions` output.
    config: the configs.EvalConfig.
    pw3d: 3DPW only: (body models, joint set).
  """
  results: Dict = {}
  has_3d = np.asarray(arrays['has_joints3d']) > 0
  if config.is_3dpw:
    if pw3d is None:
      raise ValueError('3DPW evaluation needs the body models and the joint '
                       'regressor (pw3d)')
    results['3dpw'] = pw3d_metrics(arrays, *pw3d)
    results['3d'] = results['3dpw']['overall']
    # Its 2D keypoints are projected SMPL joints, not annotations: no 2D
    # numbers.
    return results
  if config.is_3dhp_test:
    results['mpi_inf_3dhp'] = mpi_inf_3dhp_metrics(
        arrays['pred_joints3d'][has_3d], arrays['joints3d'][has_3d],
        np.asarray(arrays['filename'])[has_3d],
        np.asarray(arrays['activity'])[has_3d])
    results['3d'] = results['mpi_inf_3dhp']['overall']
  elif config.is_h36m:
    results['h36m'] = h36m_metrics(arrays['pred_joints3d'],
                                   arrays['joints3d'], arrays['filename'],
                                   config.h36m_protocol)
    results['3d'] = results['h36m']['overall']
  elif has_3d.any():
    results['3d'] = metrics_3d(arrays['pred_joints3d'][has_3d],
                               arrays['joints3d'][has_3d])
  if np.any(np.asarray(arrays['keypoints2d'])[..., :_NUM_LSP, 2] > 0):
    results['2d'] = metrics_2d(arrays['pred_keypoints2d'],
                               arrays['keypoints2d'], arrays['crop_size'])
  return results


# ---------------------------------------------------------------------------
# Reporting.


def scalars(results: Dict) -> Dict[str, float]:
  """The headline numbers, flattened: 'mpjpe', 'pa_mpjpe', ... ."""
  out = {}
  for group in ('3d', '2d'):
    for key, value in results.get(group, {}).items():
      if not key.startswith('num_'):
        out[key] = value
  pw = results.get('3dpw')
  if pw and 'mean_over_sequences' in pw['per_sequence']:
    for key, value in pw['per_sequence']['mean_over_sequences'].items():
      out[f'{key}_mean_over_sequences'] = value
  h36m = results.get('h36m')
  if h36m and 'mean_over_actions' in h36m['per_action']:
    for key, value in h36m['per_action']['mean_over_actions'].items():
      out[f'{key}_mean_over_actions'] = value
  for baseline in BASELINES:
    if baseline in results:
      for key, value in scalars(results[baseline]).items():
        out[f'{baseline}/{key}'] = value
  return out


def format_table(results: Dict, title: str) -> str:
  """A plain-text table of the results for the console."""
  lines = [f'== {title} ==']
  h36m = results.get('h36m')
  if h36m:
    lines.append(f'protocol: {h36m["protocol"]} -- '
                 f'{h36m["protocol_description"]}')
    lines.append(f'frames: {h36m["num_frames"]} evaluated, '
                 f'{h36m["num_skipped"]} outside the protocol')
    lines.append(f'{"action":<20}{"MPJPE":>10}{"PA-MPJPE":>10}{"frames":>9}')
    for action, row in h36m['per_action'].items():
      frames = row.get('num_frames', '')
      lines.append(f'{action:<20}{row["mpjpe"]:>10.2f}'
                   f'{row["pa_mpjpe"]:>10.2f}{frames:>9}')
  hp = results.get('mpi_inf_3dhp')
  if hp:
    lines.append(f'protocol: {hp["protocol_description"]}')
    header = (f'{"":<20}{"PCK %":>8}{"AUC %":>8}{"MPJPE":>8}{"PA-PCK":>8}'
              f'{"PA-AUC":>8}{"PA-MPJPE":>9}{"frames":>8}')
    for title, group in (('sequence', hp['per_sequence']),
                         ('activity', hp['per_activity']),
                         ('overall', {'all frames': hp['overall']})):
      lines.append(f'-- {title}')
      lines.append(header)
      for name, row in group.items():
        lines.append(
            f'{name:<20}{100 * row["pck150"]:>8.1f}{100 * row["auc"]:>8.1f}'
            f'{row["mpjpe"]:>8.1f}{100 * row["pa_pck150"]:>8.1f}'
            f'{100 * row["pa_auc"]:>8.1f}{row["pa_mpjpe"]:>9.1f}'
            f'{row["num_examples"]:>8}')
  pw = results.get('3dpw')
  if pw:
    lines.append(f'protocol: {pw["protocol_description"]}')
    lines.append(f'joints: {pw["joint_regressor"]}')
    lines.append(f'{"sequence":<28}{"MPJPE":>9}{"PA-MPJPE":>10}{"PVE":>9}'
                 f'{"people":>8}')
    for name, row in pw['per_sequence'].items():
      count = row.get('num_examples', '')
      lines.append(f'{name:<28}{row["mpjpe"]:>9.1f}{row["pa_mpjpe"]:>10.1f}'
                   f'{row["pve"]:>9.1f}{count:>8}')
  for key, value in scalars(results).items():
    unit = '' if ('pck' in key or 'auc' in key) else ' mm'
    unit = ' px' if key.endswith('_px') else unit
    lines.append(f'{key:<32}{value:10.4f}{unit}')
  return '\n'.join(lines)


def write_summaries(summary_dir: str, name: str, values: Dict[str, float],
                    step: int) -> None:
  """Writes scalars `eval/<name>/<key>` to TensorBoard."""
  writer = tf.summary.create_file_writer(summary_dir)
  with writer.as_default():
    for key, value in values.items():
      tf.summary.scalar(f'eval/{name}/{key}', value, step=step)
  writer.close()  # Flushes.


def write_example_summaries(model, dataset: tf.data.Dataset,
                            config: configs.EvalConfig) -> None:
  """Image panels and meshes of the split's first examples, for TensorBoard.

  The same pictures as training's (hmr_tf.render.summaries): tags
  `eval/<name>/examples` (panels of `config.num_summary_images` examples)
  and `eval/<name>/meshes` (the first `config.num_summary_meshes` meshes),
  at `config.step`.

  Args:
    model: the HMRModel (its outputs and `smpl.body_model.faces` are used).
    dataset: the eval dataset (its first batch is shown).
    config: the eval config (summary_dir, name, step and the counts).
  """
  batch = next(iter(dataset))
  count = config.num_summary_images
  images = batch['image'][:count].numpy()
  keypoints = batch['keypoints2d'][:count].numpy()
  out = model(images, training=False)
  writer = tf.summary.create_file_writer(config.summary_dir)
  with writer.as_default():
    summaries.write_examples(
        f'eval/{config.name}/examples', f'eval/{config.name}/meshes', images,
        keypoints,
        {k: out[k].numpy() for k in ('keypoints2d', 'vertices', 'cam')},
        model.smpl.body_model.faces, config.step, config.num_summary_meshes)
  writer.close()  # Flushes.


def report(results: Dict, config: configs.EvalConfig, data_files: List[str],
           extra: Optional[Dict] = None) -> Dict:
  """Logs the table, writes the JSON and the TensorBoard scalars.

  Args:
    results: `compute_metrics` output.
    config: the configs.EvalConfig.
    data_files: the evaluated TFRecord files.
    extra: more facts for the JSON (e.g. the model config).

  Returns:
    The full JSON document (results plus provenance).
  """
  doc = {
      'checkpoint': config.checkpoint,
      'dataset': config.dataset,
      'split': config.split,
      'data_files': list(data_files),
      'h36m_protocol': config.h36m_protocol if config.is_h36m else None,
      'h36m_protocol_description': (
          h36m_protocol.PROTOCOL_DESCRIPTIONS[config.h36m_protocol]
          if config.is_h36m else None),
      'units': 'errors in mm (3D) or stored-image pixels (2D); PCK and AUC '
               'as fractions',
      'created': datetime.datetime.now(datetime.timezone.utc).isoformat(),
      'results': results,
      'scalars': scalars(results),
  }
  doc.update(extra or {})
  logging.info('\n%s', format_table(results, f'evaluation {config.name}'))
  if config.output_dir:
    path = os.path.join(config.output_dir, f'eval_{config.name}.json')
    atomic_io.write_json_atomic(path, doc)
    doc['json_path'] = path
    logging.info('Wrote %s', path)
  if config.summary_dir:
    write_summaries(config.summary_dir, config.name, doc['scalars'],
                    config.step)
  return doc


def evaluate(model, data_config: configs.DataConfig,
             eval_config: configs.EvalConfig,
             data_mean_theta: Optional[np.ndarray] = None) -> Dict:
  """Evaluates a (restored) model on one dataset split.

  Args:
    model: an HMRModel with its weights restored.
    data_config: the data config (data_dir, batch_size, img_size,
      base_crop_size are used).
    eval_config: what to evaluate and where to write.
    data_mean_theta: [85] the data's mean parameters (the untrained Θ_0);
      with `include_mean_baseline` its baseline is reported as well, under
      'data_mean_baseline' (fixed for a dataset, unlike the trained Θ_0's
      'mean_baseline').

  Returns:
    The JSON document of `report` (its 'results' and 'scalars' hold the
    numbers).
  """
  model_size = getattr(getattr(model, 'config', None), 'img_size', None)
  if model_size is not None and model_size != data_config.img_size:
    raise ValueError(f'img_size: the model takes {model_size}-pixel crops but '
                     f'the data config makes {data_config.img_size}')
  shards = input_pipeline.list_shards(data_config.data_dir,
                                      eval_config.dataset, eval_config.split)
  extra: Dict = {}
  pw3d = None
  if eval_config.is_3dpw:
    # Load the models first: a missing file stops before the long run.
    models = pw3d_protocol.load_body_models(
        model.smpl.body_model, eval_config.smpl_male_path,
        eval_config.smpl_female_path)
    pw3d = (models, pw3d_protocol.joint_set(eval_config.pw3d_joint_regressor,
                                            models.neutral))
    extra['pw3d'] = {'smpl_male_path': eval_config.smpl_male_path,
                     'smpl_female_path': eval_config.smpl_female_path,
                     'joint_regressor': pw3d[1].name}
  if eval_config.is_3dhp_test:
    meta = input_pipeline.read_sidecar(data_config.data_dir,
                                       eval_config.dataset) or {}
    annot3 = meta.get('annot3', 'unknown (no sidecar)')
    extra['mpi_inf_3dhp'] = {
        'annot3': annot3,
        'annot3_description': mpi_inf_3dhp_protocol.ANNOT3_DESCRIPTIONS.get(
            annot3, annot3),
        'paper_ground_truth': 'not stated by the HMR paper or its code; see '
                              'hmr_tf/evaluation/mpi_inf_3dhp_protocol.py'}
  dataset = input_pipeline.eval_dataset(data_config, eval_config.dataset,
                                        eval_config.split)
  arrays = collect_predictions(model, dataset, eval_config.max_examples)
  # Pictures need a mesh: only a model with a body (an HMRModel).
  if (eval_config.summary_dir and eval_config.num_summary_images > 0 and
      hasattr(model, 'smpl')):
    write_example_summaries(model, dataset, eval_config)
  results = compute_metrics(arrays, eval_config, pw3d)
  if eval_config.include_mean_baseline:
    baseline = dict(arrays)
    baseline.update(mean_baseline_predictions(model, len(arrays['filename'])))
    results['mean_baseline'] = compute_metrics(baseline, eval_config, pw3d)
    if data_mean_theta is not None:
      fixed = dict(arrays)
      fixed.update(mean_baseline_predictions(model, len(arrays['filename']),
                                             data_mean_theta))
      results['data_mean_baseline'] = compute_metrics(fixed, eval_config,
                                                      pw3d)
  extra['num_examples'] = int(len(arrays['filename']))
  return report(results, eval_config, list(shards.files), extra=extra)
