"""Writes the synthetic dataset (see hmr_tf.synthetic.generator).

  python -m datasets.synthetic --output_dir=DIR --num_train=N --num_test=M \
      [--num_train_3d=N3] [--num_mocap=K] [--img_size=224] \
      [--part_colors=random|fixed] [--background=clutter|plain] \
      [--yaw_max=45] [--noantialias] [--smpl_model_path=FILE] [--seed=0]
"""

import os
import time
from typing import Sequence

from absl import app
from absl import flags
from absl import logging

from hmr_tf import configs
from hmr_tf.data import writer as writer_lib
from hmr_tf.synthetic import generator
from hmr_tf.synthetic import pose_prior
from hmr_tf.synthetic import scene as scene_lib


def _define_flags() -> None:
  flags.DEFINE_string('output_dir', None, 'Root output folder.')
  flags.DEFINE_integer('num_train', 1000,
                       'Training examples of each image dataset (2D, 3D).',
                       lower_bound=0)
  flags.DEFINE_integer('num_test', 200,
                       'Test examples of each image dataset and of mocap.',
                       lower_bound=0)
  flags.DEFINE_integer('num_train_3d', None,
                       'Training examples of the 3D dataset (default '
                       '--num_train).', lower_bound=0)
  flags.DEFINE_enum('part_colors', configs.SyntheticConfig.part_colors,
                    configs.PART_COLORS,
                    'random: each image draws the body parts\' colours; '
                    'fixed: the same colour per part in every image.')
  flags.DEFINE_enum('background', configs.SyntheticConfig.background,
                    configs.BACKGROUNDS,
                    'clutter: gradient, blotches and random shapes; plain: '
                    'without the shapes.')
  flags.DEFINE_bool('antialias', configs.SyntheticConfig.antialias,
                    'Anti-alias the silhouettes (--noantialias: ~40% faster '
                    'rendering, hard edges).')
  flags.DEFINE_float('yaw_max', configs.SyntheticConfig.yaw_max_deg,
                     'Bodies turn about their vertical axis by up to this '
                     'many degrees (0: facing the camera).',
                     lower_bound=configs.YAW_MAX_DEG_BOUNDS[0],
                     upper_bound=configs.YAW_MAX_DEG_BOUNDS[1])
  flags.DEFINE_integer('num_mocap', None,
                       'Mocap training examples (default max(1000, '
                       '4 * num_train)).', lower_bound=0)
  flags.DEFINE_integer('img_size', 224, 'Rendered image side in pixels.',
                       lower_bound=8)
  flags.DEFINE_string('smpl_model_path', '',
                      'An SMPL-format model file with a cocoplus regressor; '
                      'default: the embedded --body_model.')
  flags.DEFINE_enum('body_model', configs.BodyModelConfig.body_model,
                    configs.BODY_MODELS,
                    'Embedded body when no --smpl_model_path is given: the '
                    'MakeHuman-derived body or the procedural stand-in.')
  flags.DEFINE_integer('standin_num_vertices',
                       configs.BodyModelConfig.standin_num_vertices,
                       'Target vertex count of the stand-in body.',
                       lower_bound=configs.STANDIN_MIN_VERTICES)
  flags.DEFINE_integer('seed', 0, 'Dataset seed.')
  flags.DEFINE_integer('num_workers', min(2, os.cpu_count() or 1),
                       'Rendering processes (0: render in the main process).',
                       lower_bound=0)
  flags.DEFINE_integer('shard_size', writer_lib.DEFAULT_SHARD_SIZE,
                       'Records per image shard.', lower_bound=1)
  flags.DEFINE_integer('mocap_shard_size',
                       writer_lib.DEFAULT_MOCAP_SHARD_SIZE,
                       'Records per mocap shard.', lower_bound=1)
  flags.mark_flag_as_required('output_dir')


def main(argv: Sequence[str]) -> None:
  del argv
  # Imported here: building the stand-in is only needed from the command line.
  from hmr_tf.smpl import body_models  # pylint: disable=g-import-not-at-top
  f = flags.FLAGS
  body_model = body_models.resolve_body_model(
      f.smpl_model_path, f.body_model, f.standin_num_vertices)
  start = time.perf_counter()
  meta = generator.generate(f.output_dir, f.num_train, f.num_test, f.num_mocap,
                  body_model, img_size=f.img_size, seed=f.seed,
                  num_workers=f.num_workers, shard_size=f.shard_size,
                  mocap_shard_size=f.mocap_shard_size,
                  prior=pose_prior.PosePriorConfig(yaw_max_deg=f.yaw_max),
                  scene=scene_lib.SceneConfig(
                      part_colors=f.part_colors, background=f.background,
                      antialias=f.antialias),
                  num_train_3d=f.num_train_3d)
  logging.info('Synthetic dataset written to %s in %.1f s: %s', f.output_dir,
               time.perf_counter() - start, meta['datasets'])


if __name__ == '__main__':
  _define_flags()
  app.run(main)
