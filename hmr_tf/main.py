"""hmr_tf entry point: `python -m hmr_tf.main --flagfile=src/flags/NAME.flags`.

Parses flags, builds the typed config once, and hands it to the library
function of the chosen mode. The logic lives in the libraries.
"""

from absl import app
from absl import flags

from hmr_tf import config as config_lib
from hmr_tf import flags as _  # pylint: disable=unused-import  (defines flags)
from hmr_tf import run_modes

FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
  run_modes.run(config_lib.from_flags(FLAGS))


if __name__ == '__main__':
  app.run(main)
