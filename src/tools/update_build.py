"""Regenerates BUILD from the source tree: `python src/tools/update_build.py`.

Targets mirror the architecture: one py_library per package of hmr_tf (see
docs/ARCHITECTURE.md) plus the converters' shared helpers, py_binary entry
points (main, demo, every converter, benchmarks and tools) and one py_test per
test file.
Dependencies come from each file's imports. tests/build_test.py fails when
BUILD and the tree disagree, so run this after adding or removing a file.
"""

import ast
import os
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]

# Library layers, one per package of hmr_tf (docs/ARCHITECTURE.md): target
# name -> predicate on the path (first match wins).
def _package(name):
  return lambda p: p.startswith(f'hmr_tf/{name}/')


LAYERS = (
    # The package marker, the exit-status contract every layer raises and
    # where the shipped files are (TensorFlow-free, no hmr_tf imports).
    ('base', lambda p: p in ('hmr_tf/__init__.py', 'hmr_tf/errors.py',
                             'hmr_tf/resources.py')),
    ('files', _package('files')),
    ('smpl', _package('smpl')),
    ('render', _package('render')),
    ('geometry', _package('geometry')),
    ('data', _package('data')),
    ('synthetic_lib', _package('synthetic')),  # datasets/synthetic.py is 'synthetic'
    # Pure metric math below modeling: the model's test_step reports it too.
    ('metrics', lambda p: p == 'hmr_tf/evaluation/metrics.py'),
    ('modeling', _package('modeling')),
    ('evaluation', _package('evaluation')),
    ('training', _package('training')),
    ('inference', _package('inference')),
    ('configs', lambda p: p in ('hmr_tf/configs.py', 'hmr_tf/flags.py')),
    ('stages', lambda p: p in ('hmr_tf/stages.py', 'hmr_tf/preflight.py')),
    ('main', lambda p: p == 'hmr_tf/main.py'),
    ('demo', lambda p: p == 'hmr_tf/demo.py'),
    ('web', _package('web')),  # python -m hmr_tf.web
    ('datasets', lambda p: p in ('datasets/__init__.py', 'datasets/common.py')),
)
BINARIES = ('main', 'demo', 'web')
# A binary's main file where it is not the last of its sources.
_MAINS = {'demo': 'hmr_tf/demo.py', 'web': 'hmr_tf/web/__main__.py'}


def _files(folder):
  return sorted(p.relative_to(ROOT).as_posix()
                for p in (ROOT / folder).rglob('*.py')
                if '__pycache__' not in p.parts)


def _target_of(path, targets):
  for name, srcs in targets.items():
    if path in srcs:
      return name
  return None


def _module_path(module):
  """'hmr_tf.smpl.lbs' -> 'hmr_tf/smpl/lbs.py' (or the package __init__)."""
  base = module.replace('.', '/')
  for cand in (base + '.py', base + '/__init__.py'):
    if (ROOT / cand).is_file():
      return cand
  return None


def _imports(path):
  tree = ast.parse((ROOT / path).read_text(), path)
  out = set()
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      out.update(a.name for a in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
      # `from pkg import mod` depends on mod only, not on pkg's siblings.
      subs = [f'{node.module}.{a.name}' for a in node.names]
      modules = [m for m in subs if _module_path(m)]
      out.update(modules or [node.module])
  return out


def _local_deps(srcs, targets, test_dir_modules):
  deps = set()
  for src in srcs:
    for module in _imports(src):
      path = _module_path(module)
      if path is None and module.split('.')[0] in test_dir_modules:
        path = f'tests/support/{module.split(".")[0]}.py'
      if path:
        target = _target_of(path, targets)
        if target:
          deps.add(target)
  return deps


def build_targets():
  """Returns [(kind, name, srcs, deps)]."""
  targets = {}
  kinds = {}
  for path in _files('hmr_tf') + _files('datasets'):
    for name, match in LAYERS:
      if match(path):
        targets.setdefault(name, []).append(path)
        kinds[name] = 'py_binary' if name in BINARIES else 'py_library'
        break
    else:  # a converter module: its own binary
      assert path.startswith('datasets/'), f'{path} is in no layer'
      name = pathlib.Path(path).stem
      targets[name] = [path]
      kinds[name] = 'py_binary'
  test_support = [p for p in _files('tests') if not p.endswith('_test.py')]
  targets['test_support'] = test_support
  kinds['test_support'] = 'py_library'
  for path in _files('src'):
    name = pathlib.Path(path).stem
    targets[name] = [path]
    kinds[name] = 'py_binary'
  for path in _files('tests'):
    if path.endswith('_test.py'):
      name = pathlib.Path(path).stem
      targets[name] = [path]
      kinds[name] = 'py_test'
  test_modules = {pathlib.Path(p).stem for p in test_support}
  out = []
  for name, srcs in targets.items():
    deps = sorted(_local_deps(srcs, targets, test_modules) - {name})
    if kinds[name] == 'py_test' and 'test_support' not in deps:
      deps.append('test_support')  # conftest.py applies to every test
    out.append((kinds[name], name, srcs, deps))
  order = {'py_library': 0, 'py_binary': 1, 'py_test': 2}
  return sorted(out, key=lambda t: (order[t[0]], t[1]))


def render_build(targets):
  lines = [
      '# Bazel targets mirroring the architecture. Generated by',
      '# src/tools/update_build.py from the tree and its imports; run it after',
      '# adding or removing a file (tests/build_test.py checks the sync).',
      '# Third-party requirements come from requirements.txt (pip).',
      '',
      'package(default_visibility = ["//visibility:public"])',
  ]
  for kind, name, srcs, deps in targets:
    lines.append('')
    lines.append(f'{kind}(')
    lines.append(f'    name = "{name}",')
    lines.append('    srcs = [')
    lines.extend(f'        "{s}",' for s in srcs)
    lines.append('    ],')
    if kind == 'py_binary':
      lines.append(f'    main = "{_MAINS.get(name, srcs[-1])}",')
    if kind == 'py_test' and name in _SIZE_LARGE:
      lines.append('    size = "large",')
    if deps:
      lines.append('    deps = [')
      lines.extend(f'        ":{d}",' for d in deps)
      lines.append('    ],')
    lines.append(')')
  return '\n'.join(lines) + '\n'


# Tests that start subprocesses or train for a while.
_SIZE_LARGE = frozenset({'loop_test', 'train_resume_test', 'export_test',
                         'demo_test', 'hmr_model_test', 'web_app_test',
                         'packaging_test'})


def main():
  text = render_build(build_targets())
  path = ROOT / 'BUILD'
  tmp = path.with_suffix('.tmp')
  tmp.write_text(text)
  os.replace(tmp, path)
  sys.stdout.write(f'wrote {path}\n')


if __name__ == '__main__':
  main()
