"""Expected failures and the exit status each one gives (no TensorFlow).

An expected failure (bad input, an unusable checkpoint, a busy model folder,
an interrupt) reaches the user as one line naming the file or flag and what
was expected; a traceback means a bug. The entry points (`hmr_tf.main`,
`hmr_tf.demo`) print `str(error)` and exit with `error.exit_code`.

Exit statuses: 0 success; 1 an expected failure at run time; 2 a usage
error (a bad flag value or combination, found before any work); 130 an
interrupt (Ctrl-C), the shell's convention for SIGINT.
"""

import sys
from typing import Callable

from absl import app
from absl import flags
from absl import logging


EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class HmrError(Exception):
  """An expected failure; `str()` is one line for the user."""
  exit_code = EXIT_FAILURE


class UsageError(HmrError, ValueError):
  """A bad flag value or combination of flags."""
  exit_code = EXIT_USAGE


class InputError(HmrError, ValueError):
  """An input file (data, body model, image) that is missing or malformed."""


class CheckpointError(HmrError, ValueError):
  """A checkpoint that cannot be read, or no usable checkpoint."""


class ModelDirLockedError(HmrError, RuntimeError):
  """Another training process holds the model folder."""


class Interrupted(HmrError):
  """The run was stopped by Ctrl-C (after writing a checkpoint, if any)."""
  exit_code = EXIT_INTERRUPTED


def fail(prog: str, message, status: int, what: str = 'error: ') -> None:
  """Writes `PROG: error: <first line of message>` to stderr and exits."""
  text = str(message).strip().splitlines() or ['']
  sys.stderr.write(f'{prog}: {what}{text[0]}\n')
  sys.exit(status)


def run_reporting(prog: str, body: Callable[[], None]) -> None:
  """Runs a command's body under this module's contract.

  Expected failures (HmrError, OSError, ValueError) are one line and their
  exit status (--verbosity=1 adds the traceback); Ctrl-C is one line and
  130; anything else is a bug and keeps its traceback.
  """
  try:
    body()
  except KeyboardInterrupt:
    fail(prog, 'interrupted', EXIT_INTERRUPTED, what='')
  except (HmrError, OSError, ValueError) as e:
    if logging.get_verbosity() >= 1:
      logging.exception('Traceback of the error below:')
    fail(prog, e, getattr(e, 'exit_code', EXIT_FAILURE))


def run_console(prog: str, module: str, define_flags: Callable[[], None],
                body: Callable[[], None]) -> None:
  """A command's console entry point: its flags, absl's app, this contract.

  Defines the command's flags, makes them the key flags that --help lists
  for the console script (absl lists those of the module sys.argv[0] names,
  which defines none), and runs `body` under `run_reporting` inside
  app.run (no positional arguments accepted).

  Args:
    prog: the name in the one-line errors (e.g. 'hmr_tf.demo').
    module: the `__name__` of the module that defines the flags.
    define_flags: defines them.
    body: the command's work.
  """
  define_flags()
  for flag in flags.FLAGS.get_key_flags_for_module(module):
    flags.FLAGS.register_key_flag_for_module(sys.argv[0], flag)

  def main(argv):
    if len(argv) > 1:
      raise app.UsageError(f'Unexpected arguments: {" ".join(argv[1:])}')
    run_reporting(prog, body)

  app.run(main)
