"""hmr_tf entry point: `python -m hmr_tf.main --flagfile=src/flags/NAME.flags`.

Parses flags, builds the typed config once, and hands it to the library
function of the chosen mode. The logic lives in the libraries.
"""

import sys

from absl import app
from absl import flags

from hmr_tf import flags as _  # pylint: disable=unused-import  (defines flags)

FLAGS = flags.FLAGS

# Exit status of a bad flag value or a bad combination of flags.
USAGE_ERROR = 2


def _usage_error(message: str):
  sys.stderr.write(f'hmr_tf.main: error: {message}\n')
  sys.exit(USAGE_ERROR)


def parse_flags(argv):
  """absl's parsing, but one clear line and exit status 2 on bad input."""
  try:
    return FLAGS(argv)
  except flags.Error as e:
    _usage_error(str(e).splitlines()[0])


def main(argv):
  if len(argv) > 1:
    _usage_error(f'unexpected arguments: {" ".join(argv[1:])}')
  # Imported after parsing: TensorFlow loads only for a valid command line.
  from hmr_tf import config as config_lib  # pylint: disable=g-import-not-at-top
  from hmr_tf import run_modes  # pylint: disable=g-import-not-at-top
  try:
    cfg = config_lib.from_flags(FLAGS)
  except ValueError as e:
    _usage_error(str(e))
  from hmr_tf import demo_lib  # pylint: disable=g-import-not-at-top
  from hmr_tf import original_import  # pylint: disable=g-import-not-at-top
  from hmr_tf import safe_pickle  # pylint: disable=g-import-not-at-top
  from hmr_tf.data import input_pipeline  # pylint: disable=g-import-not-at-top
  try:
    run_modes.run(cfg)
  except (original_import.OriginalImportError, demo_lib.DemoInputError,
          run_modes.CropRuleError) as e:
    # A bad original checkpoint or SMPL file (nothing was written), a body
    # model the demo cannot render, a crop flag against the model's.
    _usage_error(str(e))
  except (OSError, input_pipeline.InputDataError,
          safe_pickle.UnsafePickleError) as e:
    # A missing input, an unwritable folder, a full disk, damaged training
    # data, a pickle that asks to run code: the message names the path; a
    # traceback would only bury it.
    sys.stderr.write(f'hmr_tf.main: error: {e}\n')
    sys.exit(1)


if __name__ == '__main__':
  app.run(main, flags_parser=parse_flags)
