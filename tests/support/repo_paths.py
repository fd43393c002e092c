"""Where the repository is, for tests that start `python -m ...` processes."""

import os

# tests/support/ -> the repository root.
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))
SUPPORT = os.path.join(ROOT, 'tests', 'support')
