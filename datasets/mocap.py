"""SMPL mocap parameters (MoSh pickles, AMASS .npz) to mocap TFRecords.

Input: a folder searched recursively for
  * MoSh pickles as HMR used them (`neutrSMPL_CMU/*/*.pkl`, Python 2 pickles:
    read with latin-1 strings) holding `poses` (or `new_poses`) [T, 72] and
    `betas` [10]: the neutral SMPL's parameters, kept as they are (the first
    72 pose numbers and 10 betas);
  * AMASS `.npz` files as AMASS distributes them: `poses` [T, 156] (SMPL+H:
    22 body joints, then 15 joints of each hand; SMPL-X files have 165),
    `betas` [16] (SMPL+H's, of the file's `gender`), `trans` [T, 3],
    `mocap_framerate` (60 to 250 Hz), `gender`. A `.npz` whose poses are
    already SMPL's 72 numbers is read as SMPL.

AMASS's bodies are not SMPL's (`to_smpl`):
  * pose: the 22 body joints (66 numbers) are SMPL's first 22 joints; SMPL's
    joints 22 and 23 (left and right hand) have no SMPL+H counterpart (the
    numbers that follow are finger joints) and are set to zero, the
    convention of the projects that train on AMASS with SMPL (the
    discriminator must not learn finger rotations as hand rotations);
  * betas: SMPL+H's gendered shape space is not the neutral SMPL's. With
    `amass_betas='keep'` (default) the first 10 are kept as an approximation
    (logged once); `'zero'` writes zeros (the shape prior then learns only
    the mean shape from AMASS);
  * frame rate: with `target_fps`, each sequence keeps the frames nearest to
    a `target_fps` grid (`subsample`), so 120 Hz sequences do not count four
    times as much as 30 Hz ones; files without a frame rate (MoSh pickles)
    are kept whole.

Files under a folder named like a Human3.6M test subject (S9, S11) are left
out, as the original did. Frames are shuffled (seeded) before writing so
each shard mixes sequences.

  python -m datasets.mocap --input_dir=.../neutrMosh/neutrSMPL_CMU \
      --output_dir=... [--dataset_name=neutrSMPL_CMU]
  python -m datasets.mocap --input_dir=.../AMASS --output_dir=... \
      --dataset_name=amass --target_fps=30 [--amass_betas=zero]
"""

import os
from typing import NamedTuple, Optional, Sequence

from absl import flags
from absl import logging
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
# SMPL+H / SMPL-X share SMPL's first 22 joints (pelvis .. wrists).
NUM_BODY_JOINTS = 22
BODY_POSE_DIM = 3 * NUM_BODY_JOINTS
AMASS_BETAS = ('keep', 'zero')
# AMASS's SMPL+H files say `mocap_framerate`, its SMPL-X files
# `mocap_frame_rate`.
_FRAMERATE_KEYS = ('mocap_framerate', 'mocap_frame_rate')


class MocapFile(NamedTuple):
  """One mocap file's frames as SMPL parameters.

  Attributes:
    poses: [T, 72] SMPL axis-angle poses.
    betas: [10] SMPL betas.
    framerate: frames per second, None when the file does not say.
    is_amass: whether the file was an AMASS (SMPL+H / SMPL-X) file.
  """
  poses: np.ndarray
  betas: np.ndarray
  framerate: Optional[float]
  is_amass: bool


def to_smpl(poses: np.ndarray, betas: np.ndarray, amass_betas: str):
  """AMASS (SMPL+H / SMPL-X) parameters -> SMPL's (see the docstring).

  Args:
    poses: [T, P > 72] the file's poses, the 22 body joints first.
    betas: [B >= 10] the file's betas.
    amass_betas: 'keep' or 'zero'.

  Returns:
    ([T, 72] poses with joints 22, 23 zero, [10] betas).
  """
  out = np.zeros((poses.shape[0], POSE_DIM))
  out[:, :BODY_POSE_DIM] = poses[:, :BODY_POSE_DIM]
  if amass_betas == 'zero':
    return out, np.zeros(SHAPE_DIM)
  return out, np.asarray(betas[:SHAPE_DIM], np.float64)


def subsample(num_frames: int, framerate: float,
              target_fps: float) -> np.ndarray:
  """Indices of the frames nearest to a `target_fps` time grid.

  Frame k is at time k / framerate; the grid's times are j / target_fps for
  j = 0, 1, ... up to the sequence's last frame. A sequence at or below
  `target_fps` keeps every frame.

  Returns:
    int [M] increasing frame indices.
  """
  if framerate <= target_fps:
    return np.arange(num_frames)
  duration = (num_frames - 1) / framerate
  times = np.arange(int(np.floor(duration * target_fps + 1e-9)) + 1)
  return np.unique(np.minimum(np.round(times * framerate / target_fps),
                              num_frames - 1).astype(np.int64))


def load_file(path: str, amass_betas: str = 'keep'
             ) -> Optional[MocapFile]:
  """One mocap file as SMPL parameters; None for AMASS shape-only files.

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
  framerate = None
  for key in _FRAMERATE_KEYS:
    if key in content:
      framerate = float(common.check_array(content[key], [], path, 'file',
                                           key))
      if framerate <= 0:
        raise common.BadRecordError(path, 'file', f'{key}: expected > 0, '
                                    f'got {framerate}')
  is_amass = path.endswith('.npz') and poses.shape[1] > POSE_DIM
  if is_amass:
    smpl_poses, smpl_betas = to_smpl(poses, betas, amass_betas)
  else:
    smpl_poses, smpl_betas = poses[:, :POSE_DIM], betas[:SHAPE_DIM]
  return MocapFile(smpl_poses, smpl_betas, framerate, is_amass)


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
            seed: int = 0,
            amass_betas: str = 'keep',
            target_fps: Optional[float] = None) -> dict:
  """Converts every mocap file under input_dir. Returns the sidecar dict.

  Args:
    input_dir: folder searched recursively.
    output_dir: root output folder.
    shard_size: records per shard.
    skip_bad: skip and count malformed files instead of stopping.
    dataset_name: output dataset name; default: input_dir's base name.
    exclude: folder names to leave out.
    seed: seed of the shuffle before writing.
    amass_betas: what AMASS's SMPL+H betas become: 'keep' (the first 10,
      an approximation) or 'zero'.
    target_fps: keep the frames nearest to this rate's time grid in files
      that state their frame rate (AMASS); None keeps every frame.
  """
  if amass_betas not in AMASS_BETAS:
    raise ValueError(f'amass_betas: expected one of {AMASS_BETAS}, got '
                     f'{amass_betas!r}')
  if target_fps is not None and not target_fps > 0:
    raise ValueError(f'target_fps: expected > 0, got {target_fps}')
  name = dataset_name or os.path.basename(os.path.normpath(input_dir))
  files = find_files(input_dir, exclude)
  split = 'train'
  extra = {'num_files': len(files), 'amass_betas': amass_betas,
           'amass_hands': 'zero', 'target_fps': target_fps}
  with writer_lib.ShardedWriter(output_dir, name, schema.KIND_MOCAP,
                                shard_size=shard_size, skip_bad=skip_bad,
                                extra=extra) as writer:
    writer.add_split(split)
    poses, betas = [], []
    noted = False
    for path in files:
      with writer.guard(split, path, 'file'):
        loaded = load_file(path, amass_betas)
        if loaded is None:
          writer.filtered(split, 'shape-only file')
          continue
        if loaded.is_amass and not noted:
          noted = True
          logging.info(
              'AMASS (SMPL+H) files: SMPL joints 22, 23 (hands) set to zero; '
              'betas %s', 'zeroed (--amass_betas=zero)' if amass_betas ==
              'zero' else 'are SMPL+H\'s gendered ones, the first 10 kept as '
              'an approximation of the neutral SMPL\'s (--amass_betas=zero '
              'zeroes them)')
        frames = loaded.poses
        if target_fps is not None and loaded.framerate is not None:
          kept = subsample(len(frames), loaded.framerate, target_fps)
          if len(kept) < len(frames):
            writer.filtered(split, f'subsampled to {target_fps:g} fps',
                            len(frames) - len(kept))
          frames = frames[kept]
        poses.append(frames)
        betas.append(np.tile(loaded.betas, (len(frames), 1)))
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
          exclude=FLAGS.exclude, seed=FLAGS.seed,
          amass_betas=FLAGS.amass_betas, target_fps=FLAGS.target_fps)


if __name__ == '__main__':
  common.define_flags(writer_lib.DEFAULT_MOCAP_SHARD_SIZE)
  flags.DEFINE_string('dataset_name', None,
                      'Output dataset name (default: input_dir base name, '
                      'e.g. neutrSMPL_CMU).')
  flags.DEFINE_list('exclude', list(DEFAULT_EXCLUDE),
                    'Folder names to leave out (Human3.6M test subjects).')
  flags.DEFINE_integer('seed', 0, 'Seed of the shuffle before writing.')
  flags.DEFINE_enum('amass_betas', 'keep', list(AMASS_BETAS),
                    'AMASS\'s SMPL+H betas: keep the first 10 (an '
                    'approximation of SMPL\'s) or write zeros.')
  flags.DEFINE_float('target_fps', None,
                     'Subsample files that state their frame rate (AMASS) '
                     'to about this many frames per second (default: keep '
                     'every frame).', lower_bound=1e-3)
  common.run(main, 'datasets.mocap')
