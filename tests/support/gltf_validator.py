"""The Khronos glTF validator (node + the npm package gltf-validator).

`validate(paths)` runs src/tools/validate_gltf.js on the files and returns
one report dict per file; the calling test is skipped, saying why, where
node or the package is absent (src/tools/install_gltf_validator.sh installs
the package; .ci/run does).
"""

import json
import os
import shutil
import subprocess

import pytest

import repo_paths

_VALIDATOR = os.path.join(repo_paths.ROOT, 'src', 'tools', 'validate_gltf.js')
_PACKAGE = os.path.join(
    os.environ.get('GLTF_VALIDATOR_DIR',
                   os.path.join(repo_paths.ROOT, '.gltf_validator')),
    'node_modules', 'gltf-validator')


def validate(paths):
  """[report] for each file: numErrors, numWarnings, messages, ..."""
  if shutil.which('node') is None:
    pytest.skip('node is not installed (the Khronos glTF validator runs on '
                'Node.js)')
  if not os.path.isdir(_PACKAGE):
    pytest.skip(f'the npm package gltf-validator is not installed in '
                f'{os.path.dirname(os.path.dirname(_PACKAGE))} (run '
                'src/tools/install_gltf_validator.sh)')
  proc = subprocess.run(['node', _VALIDATOR] + list(paths),
                        capture_output=True, text=True, timeout=120,
                        check=False)
  assert proc.returncode in (0, 1), proc.stderr
  return [json.loads(line) for line in proc.stdout.splitlines()]
