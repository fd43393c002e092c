"""What each `--mode` of hmr_tf.main does, given the typed config.

Stages (each also runnable alone with --mode=NAME):
  body_model  resolve the body model and write it into the run folder;
  data        write the synthetic dataset unless a matching one is there;
  train       train (or resume) HMR;
  eval        evaluate the latest checkpoint, with the mean baseline;
  export      write the SavedModel for TF Serving (or, with
              --export_format=tflite, the LiteRT models);
  demo        run the demo on one held-out synthetic image.
`quickstart` runs them in order and prints a summary. Every stage reuses
what an earlier run left (the body model file, the dataset, checkpoints).
"""

import dataclasses
import os
import time
from typing import Any, Dict

from absl import logging
import numpy as np
import tensorflow as tf

from hmr_tf import configs as config_lib
from hmr_tf.data import decoder
from hmr_tf.data import input_pipeline
from hmr_tf import errors
from hmr_tf.evaluation import evaluate as evaluate_lib
from hmr_tf.inference import crops as crops_lib
from hmr_tf.inference import demo_lib
from hmr_tf.inference import export as export_lib
from hmr_tf.inference import original_import
from hmr_tf.inference import tflite_export
from hmr_tf.inference import writers
from hmr_tf.modeling import mean_params
from hmr_tf.render import renderer
from hmr_tf.smpl import body_models
from hmr_tf.smpl import joints as joints_lib
from hmr_tf.smpl import model_io
from hmr_tf.training import checkpoints
from hmr_tf.training import distribute
from hmr_tf.training import loop
from hmr_tf.training import run_lock

# Modes that read the evaluation split of --data_dir.
_EVAL_SPLIT_MODES = ('eval', 'demo')


def _available(data_dir: str) -> str:
  names = (sorted(n for n in os.listdir(data_dir)
                  if os.path.isdir(os.path.join(data_dir, n)))
           if os.path.isdir(data_dir) else [])
  return (f'there are: {", ".join(names)}' if names else
          'it has no dataset folders')


def _check_dataset(flag: str, data_dir: str, name: str, split: str) -> None:
  """Stops with a usage error when `name`/`split` has no shards."""
  try:
    input_pipeline.list_shards(data_dir, name, split)
  except FileNotFoundError as e:
    if not os.path.isdir(os.path.join(data_dir, name)):
      raise errors.UsageError(
          f'{flag}: no dataset {name!r} under {data_dir} '
          f'({_available(data_dir)})') from e
    raise errors.UsageError(f'{flag}: {e}') from e
  except ValueError as e:  # A malformed sidecar (named).
    raise errors.InputError(str(e)) from e


def check(cfg: config_lib.RunConfig) -> None:
  """Checks the inputs of a run before any work; raises UsageError.

  The flag validators (hmr_tf.flags) already checked what needs no file:
  output paths that are files, empty dataset lists, the quickstart's
  dataset names; `hmr_tf.preflight` (before TensorFlow loads) that every
  dataset folder, file and model folder a flag names exists. Here: the
  model folder of a training run must not be held by another trainer nor
  hold checkpoints of another model; --mode=train's datasets must have
  shards under --data_dir; eval and demo need the evaluation split.

  Raises:
    errors.UsageError: one line naming the flag and what was expected.
    errors.ModelDirLockedError: another trainer holds the model folder.
  """
  d = cfg.data
  if cfg.mode in ('quickstart', 'train'):
    # Before the quickstart spends minutes on its dataset: a folder another
    # trainer holds, or whose checkpoints were trained with another model.
    run_lock.ModelDirLock(cfg.paths.model_dir).check_free()
    checkpoints.check_model_config(cfg.paths.model_dir, cfg.model)
  if cfg.mode == 'train':
    # hmr_tf.preflight has checked the names (dataset folders, the
    # mean-parameter file) before TensorFlow loaded; here their contents.
    for name in d.datasets:
      _check_dataset('--datasets', d.data_dir, name, d.train_split)
    for name in d.mocap_datasets:
      _check_dataset('--mocap_datasets', d.data_dir, name, d.train_split)
  elif cfg.mode in _EVAL_SPLIT_MODES:
    _check_dataset('--eval_dataset', cfg.paths.data_dir, cfg.eval.dataset,
                   cfg.eval.split)


def _check_writable(path: str) -> None:
  """Creates `path` or stops with an error naming it."""
  try:
    os.makedirs(path, exist_ok=True)
  except OSError as e:
    raise OSError(f'{path}: cannot create the output folder ({e.strerror})'
                  ) from e
  if not os.access(path, os.W_OK):
    raise OSError(f'{path}: the output folder is not writable')


def body_model(cfg: config_lib.RunConfig) -> model_io.BodyModel:
  """Resolves the configured body model and writes it as the run's file."""
  b = cfg.body
  model = body_models.resolve_body_model(b.smpl_model_path, b.body_model,
                                      b.standin_num_vertices, b.seed)
  path = cfg.paths.body_model_file
  _check_writable(os.path.dirname(path))
  model_io.save_model(model, path)
  obj = os.path.join(os.path.dirname(path), 'template.obj')
  renderer.write_obj(obj, model.v_template, model.faces)
  logging.info('Body model: %s (%d vertices, %d faces) and %s', path,
               model.num_vertices, len(model.faces), obj)
  return model


def _imported_body_model(cfg: config_lib.RunConfig):
  """The body model of an imported original model, or None.

  An import records where its (licensed) SMPL arrays come from instead of
  copying them into the run folder: --smpl_model_path when given (loaded,
  not copied), else the recorded file or original checkpoint.
  """
  folder = (cfg.checkpoint if os.path.isdir(cfg.checkpoint) else
            os.path.dirname(cfg.checkpoint))
  if original_import.read_record(folder) is None:
    return None
  if cfg.body.smpl_model_path:
    return model_io.load_model(cfg.body.smpl_model_path)
  return original_import.recorded_body_model(folder)


def _run_body_model(cfg: config_lib.RunConfig) -> model_io.BodyModel:
  """The body model of this run: its file if written, else resolved now.

  Checkpoints do not hold the body model, so every stage after the first
  must use the one the run was trained with: the run folder's copy (or, for
  an imported original model, the file or checkpoint it was imported from).
  """
  imported = _imported_body_model(cfg)
  if imported is not None:
    return imported
  if os.path.isfile(cfg.paths.body_model_file) and not cfg.body.smpl_model_path:
    return model_io.load_model(cfg.paths.body_model_file)
  return body_model(cfg)


def _synthetic_matches(meta, cfg: config_lib.RunConfig,
                       body: model_io.BodyModel) -> bool:
  if meta is None:
    return False
  from hmr_tf.synthetic import generator  # pylint: disable=g-import-not-at-top
  s = cfg.synthetic
  sets = meta.get('datasets', {})
  counts_2d = sets.get('synthetic_2d', {})
  counts_3d = sets.get('synthetic_3d', {})
  num_train_3d = s.num_train if s.num_train_3d is None else s.num_train_3d
  return (meta.get('img_size') == s.img_size and meta.get('seed') == s.seed
          and counts_2d.get('train') == s.num_train and
          counts_3d.get('train') == num_train_3d and
          counts_3d.get('test') == s.num_test and
          meta.get('scene') == generator.scene_options(
              *generator.scene_and_prior(s)) and
          meta.get('num_vertices') == body.num_vertices and
          meta.get('body_model') == body.metadata.get('name', ''))


def data(cfg: config_lib.RunConfig) -> Dict[str, Any]:
  """Writes the synthetic dataset, unless a matching one is there."""
  # Imported here: the converters package is only needed by this stage.
  from hmr_tf.synthetic import generator  # pylint: disable=g-import-not-at-top
  body = _run_body_model(cfg)
  data_dir = cfg.paths.data_dir
  meta = generator.read_meta(data_dir)
  if _synthetic_matches(meta, cfg, body):
    logging.info('Synthetic dataset: reusing %s.', data_dir)
    return meta
  _check_writable(data_dir)
  s = cfg.synthetic
  scene, prior = generator.scene_and_prior(s)
  start = time.time()
  meta = generator.generate(data_dir, s.num_train, s.num_test, s.num_mocap,
                            body, img_size=s.img_size, seed=s.seed,
                            num_workers=s.workers, scene=scene, prior=prior,
                            num_train_3d=s.num_train_3d)
  logging.info('Synthetic dataset written to %s in %.0f s.', data_dir,
               time.time() - start)
  return meta


def _mean_theta_path(cfg: config_lib.RunConfig) -> str:
  if not os.path.isfile(cfg.mean_params_path):
    raise FileNotFoundError(
        f'--mean_params_path: {cfg.mean_params_path} does not exist (the '
        'synthetic dataset writes DATA_DIR/mean_params.npz; for the real '
        'datasets pass the original neutral_smpl_mean_params.h5)')
  return cfg.mean_params_path


def _mean_theta(cfg: config_lib.RunConfig) -> np.ndarray:
  return mean_params.load_mean_params(_mean_theta_path(cfg))


def train(cfg: config_lib.RunConfig) -> Dict[str, Any]:
  """Trains HMR, resuming from the latest checkpoint in the model folder."""
  sc = cfg.scale
  # MultiWorkerMirroredStrategy must exist before other TensorFlow work, and
  # the precision policy before the model is built.
  strategy = distribute.make_strategy(
      sc.strategy, sc.tpu_address, collective_timeout_s=sc.collective_timeout_s)
  distribute.set_precision_policy(sc.mixed_precision)
  body = _run_body_model(cfg)
  _check_writable(cfg.paths.model_dir)
  _check_writable(cfg.paths.log_dir)
  trained = loop.train(cfg.model, cfg.data, cfg.train, body,
                            _mean_theta(cfg), strategy=strategy)
  if trained['interrupted']:
    # No later stage runs on a partly trained model (quickstart).
    saved = (f'checkpoint {trained["checkpoint"]}' if trained['checkpoint']
             else 'no checkpoint')
    raise errors.Interrupted(
        f'interrupted at step {trained["global_step"]}/'
        f'{trained["total_steps"]}; {saved}; rerun the same command to '
        'resume')
  return trained


def _restored(cfg: config_lib.RunConfig):
  return checkpoints.restore_model(cfg.checkpoint, _run_body_model(cfg))


def _crop_rule(cfg: config_lib.RunConfig, model_config) -> Dict[str, Any]:
  """The crop settings of a trained model: {img_size, base_crop_size}.

  They travel with the model (model_config.json): eval, export and the demo
  use them, and a flag given explicitly with another value is refused
  rather than silently overridden.

  Raises:
    CropRuleError: naming the flag, its value and the model's.
  """
  rule = {'img_size': model_config.img_size,
          'base_crop_size': model_config.base_crop_size}
  for name, value in rule.items():
    given = getattr(cfg.data, name)
    if name in cfg.explicit_flags and given != value:
      raise CropRuleError(
          f'--{name}={given:g}: the model in {cfg.checkpoint} was trained '
          f'with {name} {value:g} (its model_config.json); leave the flag '
          'out or pass that value')
  return rule


class CropRuleError(errors.UsageError):
  """A crop flag that contradicts the trained model's crop rule (exit 2)."""


def evaluate(cfg: config_lib.RunConfig, model=None) -> Dict[str, Any]:
  """Evaluates the checkpoint (and the mean baseline) on the eval split."""
  model = model or _restored(cfg)
  ckpt = checkpoints.resolve_checkpoint(cfg.checkpoint)
  eval_cfg = dataclasses.replace(cfg.eval, checkpoint=ckpt)
  data_cfg = dataclasses.replace(cfg.data, **_crop_rule(cfg, model.config))
  _check_writable(cfg.paths.eval_dir)
  # The data's mean parameters (the untrained Θ_0), where there are any: a
  # baseline that stays fixed while the trained Θ_0 moves from run to run.
  data_theta = None
  if eval_cfg.include_mean_baseline and os.path.isfile(cfg.mean_params_path):
    data_theta = _mean_theta(cfg)
  return evaluate_lib.evaluate(model, data_cfg, eval_cfg,
                               data_mean_theta=data_theta)


# Export flags that only the SavedModel has, with the values that ask for
# nothing a LiteRT model could differ in (another explicit value with
# --export_format=tflite is refused).
_SAVED_MODEL_ONLY = {
    'export_precision': ('float32',),
    'export_jit_compile': ('none', config_lib.ExportConfig.jit_compile)}


def _check_tflite_flags(cfg: config_lib.RunConfig) -> None:
  """Refuses SavedModel-only options given with --export_format=tflite."""
  e = cfg.export
  values = {'export_precision': e.precision,
            'export_jit_compile': e.jit_compile}
  for name, neutral in _SAVED_MODEL_ONLY.items():
    if name in cfg.explicit_flags and values[name] not in neutral:
      raise errors.UsageError(
          f'--{name}={values[name]}: applies to the SavedModel only, not to '
          '--export_format=tflite (its models are float32 and '
          '--tflite_quantization); leave it out')


def export(cfg: config_lib.RunConfig, model=None) -> str:
  """Writes the SavedModel (replacing an older export of the same version).

  With --export_format=tflite, the LiteRT models instead
  (EXPORT_DIR/tflite/, replacing an older one).
  """
  e = cfg.export
  if e.format == 'tflite':
    _check_tflite_flags(cfg)
  model = model or _restored(cfg)
  _crop_rule(cfg, model.config)  # the export crops with the model's rule
  _check_writable(e.export_dir)
  if e.format == 'tflite':
    path = tflite_export.export_tflite(
        model, e.export_dir, include_vertices=e.include_vertices,
        quantization=e.tflite_quantization, overwrite=True)
    logging.info('LiteRT models written to %s', path)
    return path
  path = export_lib.export_saved_model(model, e.export_dir, e.version,
                                       include_vertices=e.include_vertices,
                                       overwrite=True,
                                       precision=e.precision,
                                       jit_compile=e.jit_compile)
  logging.info('SavedModel written to %s', path)
  return path


# Held-out records the demo looks through for a person fully in the image.
_DEMO_CANDIDATES = 50


def _held_out_image(cfg: config_lib.RunConfig):
  """The demo's held-out test record: (image, filename, crop).

  The first record whose 14 body keypoints all lie inside the image (the
  synthetic set pushes about 10% of its people over a border), else the
  first record. The crop is the record's own person window at the model's
  training crop size (its base_crop_size), so the network sees the person
  as large as in training.
  """
  shards = input_pipeline.list_shards(cfg.paths.data_dir,
                                      cfg.eval.dataset, cfg.eval.split)
  chosen = None
  records = tf.data.TFRecordDataset(list(shards.files))
  for record in records.take(_DEMO_CANDIDATES):
    example = decoder.decode_image_example(record)
    image = example['image'].numpy()
    kp = example['keypoints2d'].numpy()[:joints_lib.NUM_LSP_JOINTS]
    height, width = image.shape[:2]
    inside = bool(np.all((kp[:, 0] >= 0) & (kp[:, 0] <= width - 1) &
                         (kp[:, 1] >= 0) & (kp[:, 1] <= height - 1)))
    if chosen is None or inside:
      center = tuple(float(c) for c in example['center'].numpy())
      # The window side is the model's base_crop_size / scale, as in
      # training (demo_lib.run_on_images applies the model's crop rule).
      scale = float(example['scale'].numpy())
      chosen = (image, example['filename'].numpy().decode('utf-8'),
                crops_lib.Crop(center=center, scale=scale,
                              source='held-out record'))
    if inside:
      break
  if chosen is None:
    raise ValueError(f'{cfg.eval.dataset}/{cfg.eval.split}: no records')
  return chosen


def demo(cfg: config_lib.RunConfig, model=None) -> Dict[str, str]:
  """Runs the demo on one held-out image; writes overlay, .obj and .json."""
  model = model or _restored(cfg)
  _crop_rule(cfg, model.config)  # the demo crops with the model's rule
  demo_lib.check_faces(model.smpl.body_model)
  image, name, crop = _held_out_image(cfg)
  result = demo_lib.run_on_image(model, image, crop)
  stem = os.path.splitext(os.path.basename(name))[0]
  paths = writers.write_outputs(cfg.paths.demo_dir, stem, image, result,
                                 model.smpl.body_model.faces,
                                 source=f'{cfg.eval.dataset}/{name}')
  logging.info('Demo outputs: %s', ', '.join(sorted(paths.values())))
  return paths


def _versus_baseline(model_pa: float, base_pa: float, name: str) -> str:
  """'PA-MPJPE 0.NN of the <name> baseline's (N% lower)', rounded."""
  change = 100 * (1 - model_pa / base_pa)
  word = 'lower' if change >= 0 else 'higher'
  return (f'    PA-MPJPE {model_pa / base_pa:.2f} of the {name} baseline\'s '
          f'({abs(change):.0f}% {word}).')


def summarize(cfg: config_lib.RunConfig, trained: Dict, report: Dict,
              export_path: str, demo_paths: Dict[str, str],
              seconds: float) -> str:
  """The closing summary: outputs, metrics, and how to continue."""
  s = report['scalars']
  model_mp, model_pa = s['mpjpe'], s['pa_mpjpe']
  base_mp, base_pa = s['mean_baseline/mpjpe'], s['mean_baseline/pa_mpjpe']
  rows = [f'    {"trained model":30}{model_mp:10.1f}{model_pa:13.1f}']
  if 'data_mean_baseline/pa_mpjpe' in s:
    # The fixed baseline first: the trained Θ_0 moves from run to run.
    data_mp = s['data_mean_baseline/mpjpe']
    data_pa = s['data_mean_baseline/pa_mpjpe']
    rows.append(f'    {"data mean params (fixed)":30}{data_mp:10.1f}'
                f'{data_pa:13.1f}')
  rows.append(f'    {"trained Θ_0 alone":30}{base_mp:10.1f}{base_pa:13.1f}')
  if 'data_mean_baseline/pa_mpjpe' in s:
    rows.append(_versus_baseline(model_pa, data_pa, 'data mean params'))
  else:
    rows.append(_versus_baseline(model_pa, base_pa, 'trained Θ_0'))
  p = cfg.paths
  lines = [
      '',
      f'hmr_tf quickstart done in {seconds / 60:.1f} min.',
      f'  trained {trained["global_step"]} steps; checkpoints: {p.model_dir}',
      f'  held-out {cfg.eval.dataset}/{cfg.eval.split}, '
      f'{report.get("num_examples", "?")} images:',
      f'    {"":30}{"MPJPE mm":>10}{"PA-MPJPE mm":>13}',
      *rows,
      f'  evaluation JSON: {p.eval_dir}',
      f'  SavedModel (TF Serving): {export_path}',
      f'  demo: {demo_paths["overlay"]}, {demo_paths["mesh"]}, '
      f'{demo_paths["params"]}',
      'Next:',
      f'  tensorboard --logdir {p.log_dir}',
      '  the paper\'s configuration: python -m hmr_tf.main '
      '--flagfile=src/flags/hmr_paper.flags (needs the SMPL file and the '
      'converted datasets; see README)',
      '  real SMPL: --smpl_model_path=neutral_smpl_with_cocoplus_reg.pkl; '
      'datasets: python -m datasets.NAME --input_dir=... --output_dir=...',
      'Numbers on the embedded body and synthetic images are a pipeline '
      'check, not results on SMPL or real data.',
  ]
  return '\n'.join(lines)


def quickstart(cfg: config_lib.RunConfig) -> Dict[str, Any]:
  """Every stage in order, reusing what is already there; prints a summary."""
  start = time.time()
  _check_writable(cfg.paths.output_dir)
  body_model(cfg)
  data(cfg)
  trained = train(cfg)
  model = checkpoints.restore_model(trained['checkpoint'],
                                      _run_body_model(cfg))
  report = evaluate(cfg, model)
  export_path = export(cfg, model)
  demo_paths = demo(cfg, model)
  text = summarize(cfg, trained, report, export_path, demo_paths,
                   time.time() - start)
  logging.info('%s', text)
  return {'train': trained, 'eval': report, 'export': export_path,
          'demo': demo_paths, 'summary': text}


def import_original(cfg: config_lib.RunConfig) -> Dict[str, Any]:
  """Turns the original's released checkpoint into OUTPUT_DIR/model."""
  record = original_import.import_original(
      cfg.original_checkpoint, cfg.paths.model_dir, cfg.body.smpl_model_path)
  out = cfg.paths.output_dir
  logging.info(
      'Imported the original HMR model into %s (global step %d; '
      'discriminator %s; body model: %s). Next, with --output_dir=%s: '
      '--mode=eval, --mode=export, --mode=demo, or fine-tune with '
      '--init_checkpoint=%s.', cfg.paths.model_dir, record['global_step'],
      'imported' if record['discriminator_imported'] else 'fresh',
      record['smpl_model_path'] or 'the checkpoint\'s arrays (no faces)',
      out, cfg.paths.model_dir)
  return record


_MODES = {
    'quickstart': quickstart,
    'body_model': body_model,
    'data': data,
    'train': train,
    'eval': evaluate,
    'export': export,
    'demo': demo,
    'import_original': import_original,
}


def run(cfg: config_lib.RunConfig):
  """Runs the mode named in `cfg`."""
  return _MODES[cfg.mode](cfg)
