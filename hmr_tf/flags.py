"""Every command-line flag of `python -m hmr_tf.main`, with its validators.

Each flag is declared once, as a field of a config dataclass in
hmr_tf.configs (its name, default, help text, bounds and choices); this
module defines the flags from those fields and registers the validators.
`hmr_tf.configs.from_flags` turns the parsed values into the typed, frozen
config dataclasses once, in `main`; no code below `main` reads FLAGS.
Defaults are the paper's / the original code's values; the flagfiles in
src/flags/ override them per run.
"""

import os

from absl import flags

from hmr_tf import configs

def _define(field, spec, flag_values=flags.FLAGS) -> None:
  """Defines the flag declared by the config field `field`."""
  name = configs.flag_name(field)
  default = configs.flag_default(field)
  kind = configs.flag_kind(field)
  if kind == 'enum':
    flags.DEFINE_enum(name, default, spec.choices, spec.help,
                      flag_values=flag_values)
  elif kind == 'list':
    flags.DEFINE_list(name, list(default), spec.help,
                      flag_values=flag_values)
  elif kind == 'boolean':
    flags.DEFINE_boolean(name, default, spec.help, flag_values=flag_values)
  elif kind == 'string':
    flags.DEFINE_string(name, default, spec.help, flag_values=flag_values)
  else:
    define = (flags.DEFINE_integer if kind == 'integer' else
              flags.DEFINE_float)
    define(name, default, spec.help, lower_bound=spec.lower_bound,
           upper_bound=spec.upper_bound, flag_values=flag_values)


for _field, _spec in configs.defined_flags():
  _define(_field, _spec)


def define_flags_of(cls, flag_values=flags.FLAGS) -> None:
  """Defines the flags of a config dataclass that hmr_tf.main does not use.

  E.g. `configs.SmoothingConfig` (video only) for src/bench/
  smoothing_bench.py; `configs.smoothing_from_flags` reads them back.

  Args:
    cls: a dataclass of hmr_tf.configs whose fields are `flag_field`s.
    flag_values: where to define them (absl's global FLAGS by default).
  """
  for field in configs.flag_fields(cls):
    spec = configs.flag_spec(field)
    if spec.defines:
      _define(field, spec, flag_values)


def _file_or_empty(path):
  return not path or os.path.isfile(path)


flags.register_validator(
    'smpl_model_path', _file_or_empty,
    message='--smpl_model_path: expected an existing SMPL .pkl or .npz file '
    '(or empty for the embedded body model)')
for _name in ('smpl_male_path', 'smpl_female_path', 'pw3d_joint_regressor'):
  flags.register_validator(
      _name, _file_or_empty,
      message=f'--{_name}: expected an existing file (or empty)')
flags.register_validator(
    'mean_params_path', _file_or_empty,
    message='--mean_params_path: expected an existing .npz or .h5 file (or '
    'empty)')
flags.register_validator(
    'encoder_weights',
    lambda v: (v in ('none', 'imagenet') or os.path.isfile(v) or
               os.path.isfile(v + '.index')),
    message='--encoder_weights: expected none, imagenet, the path of an '
    'existing Keras weights file or a TF-Slim checkpoint (.ckpt, or a prefix '
    'with a .index file)')
flags.register_multi_flags_validator(
    ['encoder', 'encoder_weights'],
    lambda f: (f['encoder'] == configs.RESNET50_V2 or
               f['encoder_weights'] != 'imagenet'),
    message='--encoder_weights=imagenet: only --encoder=resnet50v2 has '
    'ImageNet weights')
flags.register_multi_flags_validator(
    ['lr_schedule', 'steps_per_epoch'],
    lambda f: f['lr_schedule'] == 'constant' or f['steps_per_epoch'] > 0,
    message='--lr_schedule=cosine: expected --steps_per_epoch > 0 (the '
    'schedule\'s length is --epochs x --steps_per_epoch)')
flags.register_multi_flags_validator(
    ['scale_min', 'scale_max'], lambda f: f['scale_min'] <= f['scale_max'],
    message='--scale_min must not exceed --scale_max')


def _weights_ok(f):
  if not f['dataset_weights']:
    return True
  try:
    weights = [float(w) for w in f['dataset_weights']]
  except ValueError:
    return False
  return (len(weights) == len(f['datasets']) and min(weights) >= 0 and
          sum(weights) > 0)


flags.register_multi_flags_validator(
    ['datasets', 'dataset_weights'], _weights_ok,
    message='--dataset_weights: expected one non-negative number per '
    '--datasets entry, with a positive sum')


def _checkpoint_ok(path):
  return (not path or os.path.isdir(path) or os.path.isfile(path + '.index')
          or (path.endswith('.h5') and os.path.isfile(path)))


flags.register_validator(
    'checkpoint', _checkpoint_ok,
    message='--checkpoint: expected a folder with checkpoints, a checkpoint '
    'prefix (with a .index file beside it) or a .weights.h5 file')
flags.register_multi_flags_validator(
    ['mode', 'original_checkpoint'],
    lambda f: f['mode'] != 'import_original' or (
        f['original_checkpoint'] and (
            os.path.isfile(f['original_checkpoint'] + '.index') or
            os.path.isfile(f['original_checkpoint']))),
    message='--mode=import_original: expected --original_checkpoint=PREFIX '
    'of the original checkpoint (e.g. models/model.ckpt-667589, with '
    'model.ckpt-667589.index beside it)')
flags.register_validator(
    'init_checkpoint', _checkpoint_ok,
    message='--init_checkpoint: expected a folder with checkpoints or a '
    'checkpoint prefix (with a .index file beside it)')


# --- Checks before any work (issue 19 §7) -----------------------------------
QUICKSTART_DATASETS = configs.QUICKSTART_DATASETS
QUICKSTART_MOCAP_DATASETS = configs.QUICKSTART_MOCAP_DATASETS
_TRAINING_MODES = ('quickstart', 'train')


def _not_a_file(path):
  """A folder path a run may create: neither a file nor under one."""
  probe = os.path.abspath(path) if path else ''
  while probe and probe != os.path.dirname(probe):
    if os.path.exists(probe):
      return os.path.isdir(probe)
    probe = os.path.dirname(probe)
  return True


for _name in ('output_dir', 'data_dir', 'model_dir', 'tensorboard_dir',
              'export_dir'):
  flags.register_validator(
      _name, _not_a_file,
      message=f'--{_name}: expected a folder (or a path for one), got a file '
      'or a path under a file')


def _names_ok(names):
  return bool(names) and all(n.strip() for n in names)


flags.register_multi_flags_validator(
    ['mode', 'datasets'],
    lambda f: f['mode'] not in _TRAINING_MODES or _names_ok(f['datasets']),
    message='--datasets: expected one or more dataset names (folders under '
    '--data_dir) for training')
flags.register_multi_flags_validator(
    ['mode', 'mocap_datasets'],
    lambda f: (f['mode'] not in _TRAINING_MODES or
               _names_ok(f['mocap_datasets'])),
    message='--mocap_datasets: expected one or more mocap dataset names for '
    'training')
flags.register_multi_flags_validator(
    ['mode', 'datasets'],
    lambda f: f['mode'] != 'quickstart' or set(f['datasets']) <= set(
        QUICKSTART_DATASETS),
    message='--datasets: the quickstart trains on the synthetic datasets it '
    f'writes: some of {",".join(QUICKSTART_DATASETS)} (its settings: '
    '--flagfile=src/flags/quickstart.flags)')
flags.register_multi_flags_validator(
    ['mode', 'mocap_datasets'],
    lambda f: f['mode'] != 'quickstart' or set(f['mocap_datasets']) <= set(
        QUICKSTART_MOCAP_DATASETS),
    message='--mocap_datasets: the quickstart writes only '
    f'{",".join(QUICKSTART_MOCAP_DATASETS)}')
flags.register_multi_flags_validator(
    ['mode', 'eval_dataset'],
    lambda f: (f['mode'] != 'quickstart' or
               f['eval_dataset'] in QUICKSTART_DATASETS),
    message='--eval_dataset: the quickstart evaluates on one of '
    f'{",".join(QUICKSTART_DATASETS)}')
