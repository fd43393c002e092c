"""Every command-line flag of `python -m hmr_tf.main`, with its validator.

Nothing else lives here. `hmr_tf.config.from_flags` turns the parsed values
into typed, frozen config dataclasses once, in `main`; no code below `main`
reads FLAGS.
"""

from absl import flags

MODES = ('body_model',)
BODY_MODELS = ('standin',)

# --- Run -------------------------------------------------------------------
flags.DEFINE_enum('mode', 'body_model', MODES,
                  'What to run. body_model: write the body model used by every '
                  'other stage (the stand-in, or --smpl_model_path) as .npz '
                  'plus an .obj of its template mesh.')
flags.DEFINE_string('output_dir', 'runs/quickstart',
                    'Root folder of everything a run writes (data, '
                    'checkpoints, logs, exports, demo outputs).')
flags.DEFINE_integer('seed', 0, 'Seed of every random choice.', lower_bound=0)

# --- Body model ------------------------------------------------------------
flags.DEFINE_string('smpl_model_path', '',
                    'An SMPL-format body model file: an official SMPL .pkl '
                    '(chumpy not needed), HMR\'s '
                    'neutral_smpl_with_cocoplus_reg.pkl, or an .npz with the '
                    'same keys. Empty: use --body_model.')
flags.DEFINE_enum('body_model', 'standin', BODY_MODELS,
                  'The embedded body model used when --smpl_model_path is '
                  'empty. standin: the procedural stand-in (not SMPL).')
flags.DEFINE_integer('standin_num_vertices', 4000,
                     'Target vertex count of the procedural stand-in body.',
                     lower_bound=200)


def _file_exists_or_empty(path):
  import os  # pylint: disable=g-import-not-at-top
  return not path or os.path.isfile(path)


flags.register_validator('smpl_model_path', _file_exists_or_empty,
                         message='--smpl_model_path must name an existing file '
                         '(an SMPL .pkl or .npz) or be empty')
