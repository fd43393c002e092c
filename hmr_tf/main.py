"""hmr_tf entry point: `python -m hmr_tf.main --flagfile=src/flags/NAME.flags`.

Parses flags, builds the typed config once, and hands it to the library
function of the chosen mode. The logic lives in the libraries.
"""

import re
import sys

from absl import app
from absl import flags

from hmr_tf import flags as _  # pylint: disable=unused-import  (defines flags)
from hmr_tf import resources

FLAGS = flags.FLAGS

# Exit status of a bad flag value or a bad combination of flags.
USAGE_ERROR = 2


def _fail(message, status: int, what: str = 'error: '):
  """One line on stderr, then exit with `status` (hmr_tf.errors)."""
  text = str(message).strip().splitlines() or ['']
  sys.stderr.write(f'hmr_tf.main: {what}{text[0]}\n')
  sys.exit(status)


def _usage_error(message: str):
  _fail(message, USAGE_ERROR)


def parse_flags(argv):
  """absl's parsing, but one clear line and exit status 2 on bad input."""
  try:
    # Shipped flagfiles are found from the package, from any folder.
    return FLAGS(resources.resolve_flagfiles(argv))
  except flags.Error as e:
    # absl's flagfile errors start with their own 'ERROR:: '.
    _usage_error(str(e).splitlines()[0].removeprefix('ERROR:: '))


def main(argv):
  if len(argv) > 1:
    _usage_error(f'unexpected arguments: {" ".join(argv[1:])}')
  # pylint: disable=g-import-not-at-top
  from absl import logging
  from hmr_tf import configs as config_lib
  from hmr_tf import errors
  from hmr_tf import preflight
  # Names that must exist (datasets, files, folders) are checked before
  # TensorFlow loads, which takes seconds: a typo is one line at once.
  try:
    cfg = config_lib.from_flags(FLAGS)
    preflight.check(cfg)
  except errors.HmrError as e:
    _fail(e, e.exit_code)
  except ValueError as e:
    _usage_error(str(e))
  # Imported after the checks: TensorFlow loads only for a valid command line.
  import tensorflow as tf
  from hmr_tf import stages
  # pylint: enable=g-import-not-at-top
  try:
    stages.check(cfg)  # Before any work: no folder is created.
  except errors.HmrError as e:
    _fail(e, e.exit_code)
  except ValueError as e:
    _usage_error(str(e))
  except OSError as e:
    _fail(e, errors.EXIT_FAILURE)
  # Expected failures are one line naming the file and what was expected;
  # --verbosity=1 adds the traceback. Anything else is a bug: a traceback.
  try:
    stages.run(cfg)
  except KeyboardInterrupt:
    _fail('interrupted', errors.EXIT_INTERRUPTED, what='')
  except errors.Interrupted as e:
    _fail(e, e.exit_code, what='')
  except (errors.HmrError, OSError, ValueError, tf.errors.DataLossError,
          tf.errors.InvalidArgumentError, tf.errors.NotFoundError) as e:
    if logging.get_verbosity() >= 1:
      logging.exception('Traceback of the error below:')
    # A missing input, an unwritable folder, a full disk, a bad body model,
    # a corrupt record, an unreadable checkpoint: the message names it.
    if isinstance(e, tf.errors.OpError):
      e = _op_error_line(e)
    _fail(e, getattr(e, 'exit_code', errors.EXIT_FAILURE))


def _op_error_line(error) -> str:
  """A TensorFlow error's message without its graph-node decorations."""
  text = re.sub(r'\{\{function_node [^}]*\}\}\s*', '',
                error.message.strip().splitlines()[0])
  text = re.sub(r'\s*\[(Op|\[\{\{node)[^\]]*\].*$', '', text).strip()
  # A tf.debugging.Assert of ours (the input pipeline names a damaged
  # shard this way): its message alone.
  asserted = re.search(r'assertion failed: \[(.*)\]$', text)
  if asserted:
    return asserted.group(1).replace('\\"', '"')
  if type(error).__name__ == 'DataLossError':
    text += (' (a damaged TFRecord file under --data_dir: convert that '
             'dataset again, or pass --skip_corrupt_records to skip bad '
             'records)')
  else:
    # A bad record usually; a bug sometimes: say where to look.
    text += (f' (TensorFlow {type(error).__name__}; --verbosity=1 shows the '
             'traceback)')
  return text


def run() -> None:
  """The console entry point (`hmr_tf`), as `python -m hmr_tf.main`."""
  app.run(main, flags_parser=parse_flags)


if __name__ == '__main__':
  run()
