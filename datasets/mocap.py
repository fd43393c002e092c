"""SMPL mocap parameters (MoSh pickles, AMASS .npz) to mocap TFRecords.

Input: a folder searched recursively for
  * MoSh pickles as HMR used them (`neutrSMPL_CMU/*/*.pkl`, Python 2 pickles:
    read with latin-1 strings) holding `poses` (or `new_poses`) [T, 72] and
    `betas` [10];
  * AMASS `.npz` files holding `poses` [T, >=72] and `betas` [>=10].
Every frame becomes one record with the first 72 pose numbers and the first
10 betas (AMASS's SMPL-H poses: numbers 66-71 are then its first two left
hand finger joints, not SMPL's hands). Files under a folder named like a
Human3.6M test subject (S9, S11) are left out, as the original did. Frames
are shuffled (seeded) before writing so each shard mixes sequences.

  python -m datasets.mocap --input_dir=.../neutrMosh/neutrSMPL_CMU \
      --output_dir=... [--dataset_name=neutrSMPL_CMU]
"""

import os
from typing import Optional, Sequence, Tuple

from absl import flags
import numpy as np

from datasets import common
from hmr_tf.data import schema
from hmr_tf.data import writer as writer_lib
from hmr_tf.files import safe_pickle

FLAGS = flags.FLAGS
POSE_DIM = schema.POSE_DIM
SHAPE_DIM = schema.SHAPE_DIM
DEFAULT_EXCLUDE = ('S9', 'S11')
# AMASS keeps a subject's shape alone in shape.npz (no poses).
_SHAPE_ONLY_FILES = ('shape.npz',)


def load_file(path: str) -> Optional[Tuple[np.ndarray, np.ndarray]]:
  """(poses [T, 72], betas [10]) of one mocap file; None for AMASS shape-only
  files.

  Raises:
    BadRecordError: naming the file when it is unreadable or malformed.
  """
  try:
    if path.endswith('.npz'):
      with np.load(path, allow_pickle=False) as data:
        content = {k: data[k] for k in data.files}
    else:
      # The allow-list unpickler: arrays only, no code from the file runs.
      content = safe_pickle.load_pickle(path, encoding='latin1')
  except (OSError, ValueError, EOFError) as e:
    raise common.BadRecordError(path, 'file', f'cannot read ({e})') from e
  if not isinstance(content, dict):
    raise common.BadRecordError(path, 'file', 'expected a dict of arrays')
  poses = content.get('poses', content.get('new_poses'))
  if poses is None:
    if os.path.basename(path) in _SHAPE_ONLY_FILES:
      return None
    raise common.BadRecordError(path, 'file', 'no poses (or new_poses)')
  if 'betas' not in content:
    raise common.BadRecordError(path, 'file', 'no betas')
  poses = common.check_array(poses, [None, None], path, 'file',
                             'poses')
  betas = common.check_array(content['betas'], [None], path, 'file',
                             'betas')
  if poses.shape[1] < POSE_DIM:
    raise common.BadRecordError(
        path, 'file', f'poses: expected [T, >={POSE_DIM}], got '
        f'{list(poses.shape)}')
  if betas.shape[0] < SHAPE_DIM:
    raise common.BadRecordError(
        path, 'file', f'betas: expected [>={SHAPE_DIM}], got '
        f'{list(betas.shape)}')
  return poses[:, :POSE_DIM], betas[:SHAPE_DIM]


def find_files(input_dir: str, exclude: Sequence[str]) -> list:
  """Sorted .pkl/.npz files under input_dir, minus excluded folders."""
  if not os.path.isdir(input_dir):
    raise FileNotFoundError(f'{input_dir}: mocap folder not found')
  found = []
  for root, _, files in os.walk(input_dir):
    parts = set(os.path.relpath(root, input_dir).split(os.sep))
    if parts & set(exclude):
      continue
    found += [os.path.join(root, f) for f in files
              if f.endswith(('.pkl', '.npz'))]
  if not found:
    raise FileNotFoundError(f'{input_dir}: no .pkl or .npz mocap files')
  return sorted(found)


def convert(input_dir: str,
            output_dir: str,
            shard_size: int = writer_lib.DEFAULT_MOCAP_SHARD_SIZE,
            skip_bad: bool = False,
            dataset_name: Optional[str] = None,
            exclude: Sequence[str] = DEFAULT_EXCLUDE,
            seed: int = 0) -> dict:
  """Converts every mocap file under input_dir. Returns the sidecar dict.

  Args:
    input_dir: folder searched recursively.
    output_dir: root output folder.
    shard_size: records per shard.
    skip_bad: skip and count malformed files instead of stopping.
    dataset_name: output dataset name; default: input_dir's base name.
    exclude: folder names to leave out.
    seed: seed of the shuffle before writing.
  """
  name = dataset_name or os.path.basename(os.path.normpath(input_dir))
  files = find_files(input_dir, exclude)
  split = 'train'
  with writer_lib.ShardedWriter(output_dir, name, schema.KIND_MOCAP,
                                shard_size=shard_size, skip_bad=skip_bad,
                                extra={'num_files': len(files)}) as writer:
    writer.add_split(split)
    poses, betas = [], []
    for path in files:
      with writer.guard(split, path, 'file'):
        loaded = load_file(path)
        if loaded is None:
          writer.filtered(split, 'shape-only file')
          continue
        poses.append(loaded[0])
        betas.append(np.tile(loaded[1], (len(loaded[0]), 1)))
    if poses:
      poses, betas = np.concatenate(poses), np.concatenate(betas)
      for index in np.random.default_rng(seed).permutation(len(poses)):
        writer.write(split, schema.make_mocap_example(poses[index],
                                                        betas[index]))
  return writer.summary()


def main(argv):
  del argv  # Unused.
  convert(FLAGS.input_dir, FLAGS.output_dir, shard_size=FLAGS.shard_size,
          skip_bad=FLAGS.skip_bad, dataset_name=FLAGS.dataset_name,
          exclude=FLAGS.exclude, seed=FLAGS.seed)


if __name__ == '__main__':
  common.define_flags(writer_lib.DEFAULT_MOCAP_SHARD_SIZE)
  flags.DEFINE_string('dataset_name', None,
                      'Output dataset name (default: input_dir base name, '
                      'e.g. neutrSMPL_CMU).')
  flags.DEFINE_list('exclude', list(DEFAULT_EXCLUDE),
                    'Folder names to leave out (Human3.6M test subjects).')
  flags.DEFINE_integer('seed', 0, 'Seed of the shuffle before writing.')
  common.run(main, 'datasets.mocap')
