"""BUILD stays in sync with the source tree."""

import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent


def _targets():
  """Evaluates BUILD with stand-ins for the Bazel rules it uses."""
  targets = []

  def rule(kind):

    def record(name, srcs=(), deps=(), main=None, **unused):
      targets.append({'kind': kind, 'name': name, 'srcs': list(srcs),
                      'deps': list(deps), 'main': main})

    return record

  env = {'py_library': rule('py_library'), 'py_binary': rule('py_binary'),
         'py_test': rule('py_test'), 'load': lambda *a, **k: None,
         'package': lambda **k: None}
  exec(compile((ROOT / 'BUILD').read_text(), 'BUILD', 'exec'), env)  # pylint: disable=exec-used
  return targets


def _py_files(folder):
  return {p.relative_to(ROOT).as_posix()
          for p in (ROOT / folder).rglob('*.py') if '__pycache__' not in p.parts}


def test_every_target_file_exists():
  for t in _targets():
    for src in t['srcs']:
      assert (ROOT / src).is_file(), f'BUILD target {t["name"]} names {src}'


def test_every_module_has_a_target():
  covered = {s for t in _targets() for s in t['srcs']}
  missing = sorted((_py_files('hmr_tf') | _py_files('datasets') |
                    _py_files('src') | _py_files('tests')) - covered)
  assert not missing, f'files with no BUILD target: {missing}'


def test_every_test_file_is_a_py_test():
  tests = {s for t in _targets() if t['kind'] == 'py_test' for s in t['srcs']}
  for f in sorted(_py_files('tests')):
    if f.endswith('_test.py'):
      assert f in tests, f'{f} is not a py_test'


def test_deps_name_existing_targets():
  names = {t['name'] for t in _targets()}
  for t in _targets():
    for dep in t['deps']:
      assert dep.lstrip(':') in names, f'{t["name"]} depends on unknown {dep}'


def test_main_binary_exists():
  mains = [t for t in _targets() if t['kind'] == 'py_binary'
           and t['name'] == 'main']
  assert mains and mains[0]['srcs'] == ['hmr_tf/main.py']


def test_target_names_unique():
  names = [t['name'] for t in _targets()]
  assert len(names) == len(set(names))


def test_library_deps_have_no_cycle():
  deps = {t['name']: [d.lstrip(':') for d in t['deps']] for t in _targets()}
  state = {}

  def visit(name, path):
    if state.get(name) == 'done':
      return
    assert state.get(name) != 'open', f'dependency cycle: {path + [name]}'
    state[name] = 'open'
    for dep in deps.get(name, []):
      visit(dep, path + [name])
    state[name] = 'done'

  for name in deps:
    visit(name, [])
