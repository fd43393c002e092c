"""Names that must exist, checked before anything heavy (no TensorFlow).

`hmr_tf.main` runs `check(cfg)` right after parsing the flags and before it
imports TensorFlow (which takes seconds): a dataset name with no folder
under --data_dir, a missing mean-parameter file or a model folder that is
not there is one line naming the flag, the value and what is available,
exit status 2, within a second, and nothing is created. The flag
validators (hmr_tf.flags) have already checked the values that name files
directly (--smpl_model_path, --checkpoint, ...) and the quickstart's
dataset names (it writes its own data, so only its known names are
allowed); `hmr_tf.stages.check` then does the checks that need more than a
name (shard counts and sidecars, the training lock, the saved model config).
"""

import os
from typing import Sequence

from hmr_tf import configs as config_lib
from hmr_tf import errors

# Modes that read a model folder (a checkpoint) and the eval split.
_CHECKPOINT_MODES = ('eval', 'export', 'demo')
_EVAL_SPLIT_MODES = ('eval', 'demo')


def available(data_dir: str) -> str:
  """What --data_dir holds, for a message: its dataset folders."""
  if not os.path.isdir(data_dir):
    return f'{data_dir} does not exist'
  names = sorted(n for n in os.listdir(data_dir)
                 if os.path.isdir(os.path.join(data_dir, n)))
  return (f'there are: {", ".join(names)}' if names else
          'it has no dataset folders')


def check_dataset_names(flag: str, data_dir: str,
                        names: Sequence[str]) -> None:
  """Each of `names` must be a folder under `data_dir`.

  Raises:
    errors.UsageError: naming the flag, the first missing entry and the
      dataset folders that are there.
  """
  for name in names:
    if not os.path.isdir(os.path.join(data_dir, name)):
      raise errors.UsageError(
          f'{flag}: no dataset {name!r} under {data_dir} '
          f'({available(data_dir)})')


def check(cfg: config_lib.RunConfig) -> None:
  """The name checks of a run (see the module docstring).

  Raises:
    errors.UsageError: one line naming the flag and what was expected.
  """
  d = cfg.data
  if cfg.mode == 'train':
    check_dataset_names('--datasets', d.data_dir, d.datasets)
    check_dataset_names('--mocap_datasets', d.data_dir, d.mocap_datasets)
    if not os.path.isfile(cfg.mean_params_path):
      raise errors.UsageError(
          f'--mean_params_path: {cfg.mean_params_path} does not exist (the '
          'synthetic dataset writes DATA_DIR/mean_params.npz; for the real '
          'datasets pass the original neutral_smpl_mean_params.h5)')
  if cfg.mode in _EVAL_SPLIT_MODES:
    check_dataset_names('--eval_dataset', cfg.paths.data_dir,
                        [cfg.eval.dataset])
  if (cfg.mode in _CHECKPOINT_MODES and cfg.checkpoint == cfg.paths.model_dir
      and not os.path.isdir(cfg.checkpoint)):
    # An explicit --checkpoint was checked by its validator; this is the
    # run's model folder.
    raise errors.UsageError(
        f'--model_dir: {cfg.checkpoint} does not exist (no checkpoint to '
        f'{cfg.mode}: pass the --output_dir of a trained run, --model_dir or '
        '--checkpoint)')
