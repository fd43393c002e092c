"""Where the files hmr_tf ships are, in a checkout and when installed.

Every path a command reads by default is found from the package, never from
the current folder, so the commands run the same from any folder:
  * the embedded body model and its attribution: `hmr_tf/assets/`;
  * the web demo's example photos: `hmr_tf/web/examples/`;
  * the flagfiles: `src/flags/` in a checkout, installed as the package data
    `hmr_tf/flagfiles/` (pyproject.toml maps one onto the other).

`--flagfile=src/flags/quickstart.flags` (the README's form) or
`--flagfile=quickstart.flags` therefore works from any folder: a flagfile
path that does not exist where the command runs is looked up by its name
among the shipped flagfiles.
"""

import os
from typing import List, Optional, Sequence

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
ASSETS_DIR = os.path.join(PACKAGE_DIR, 'assets')
WEB_EXAMPLES_DIR = os.path.join(PACKAGE_DIR, 'web', 'examples')
# Installed (the wheel's package data), then the checkout's own folder.
FLAGFILE_DIRS = (os.path.join(PACKAGE_DIR, 'flagfiles'),
                 os.path.join(os.path.dirname(PACKAGE_DIR), 'src', 'flags'))
_FLAGFILE = '--flagfile='


def shipped_flagfile(name: str) -> Optional[str]:
  """The shipped flagfile called `name` (a base name), or None."""
  for folder in FLAGFILE_DIRS:
    path = os.path.join(folder, os.path.basename(name))
    if os.path.isfile(path):
      return path
  return None


def resolve_flagfiles(argv: Sequence[str]) -> List[str]:
  """argv with each missing `--flagfile=PATH` pointed at the shipped one.

  A path that exists (relative to the current folder, or absolute) is kept
  as it is; so is one that names no shipped flagfile (absl then says it is
  missing).
  """
  out = []
  for arg in argv:
    if arg.startswith(_FLAGFILE):
      path = arg[len(_FLAGFILE):]
      shipped = None if os.path.exists(path) else shipped_flagfile(path)
      arg = _FLAGFILE + shipped if shipped else arg
    out.append(arg)
  return out
