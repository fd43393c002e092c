"""hmr_tf as an installable package (pyproject.toml).

Default run: the wheel built from the checkout holds every hmr_tf package,
the assets, the flagfiles and the web examples, and no top-level
`datasets` (it would shadow Hugging Face's); the shipped flagfiles are
found from any folder. Slow: a fresh venv, `pip install` of the checkout,
then the entry points run from another folder.
"""

import glob
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile

import pytest

import repo_paths  # tests/support/
import web_app  # tests/support/

from hmr_tf import resources

ROOT = repo_paths.ROOT
# What a build reads (pyproject.toml's packages, package data, dynamic
# dependencies, the readme): the copy the wheel is built from, so the
# checkout gets no build/ or .egg-info.
_BUILD_INPUTS = ('pyproject.toml', 'README.md', 'requirements.txt',
                 'requirements-web.txt', 'hmr_tf', os.path.join('src', 'flags'))


def _copy_for_build(folder) -> str:
  source = os.path.join(str(folder), 'source')
  for item in _BUILD_INPUTS:
    src, dst = os.path.join(ROOT, item), os.path.join(source, item)
    if os.path.isdir(src):
      shutil.copytree(src, dst, ignore=shutil.ignore_patterns('__pycache__'))
    else:
      os.makedirs(os.path.dirname(dst), exist_ok=True)
      shutil.copy(src, dst)
  return source


def _build_wheel(folder) -> str:
  source = _copy_for_build(folder)
  out = os.path.join(str(folder), 'wheel')
  # No build isolation: setuptools from this environment, nothing fetched.
  proc = subprocess.run(
      [sys.executable, '-m', 'pip', 'wheel', '--no-deps',
       '--no-build-isolation', '--disable-pip-version-check', '-q', '-w', out,
       source], capture_output=True, text=True, timeout=300, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  (wheel,) = glob.glob(os.path.join(out, 'hmr_tf-*.whl'))
  return wheel


def _tree_packages():
  return sorted(
      os.path.relpath(d, ROOT).replace(os.sep, '.')
      for d, _, names in os.walk(os.path.join(ROOT, 'hmr_tf'))
      if '__init__.py' in names and '__pycache__' not in d)


def test_wheel_holds_hmr_tf_its_data_and_no_datasets(tmp_path):
  with open(os.path.join(ROOT, 'pyproject.toml'), 'rb') as f:
    project = tomllib.load(f)
  listed = project['tool']['setuptools']['packages']
  # Every package of the tree is listed (a new one must be added).
  assert sorted(set(listed) - {'hmr_tf.flagfiles'}) == _tree_packages()
  assert set(project['project']['scripts']) == {'hmr_tf', 'hmr_tf-demo',
                                                'hmr_tf-web'}
  wheel = zipfile.ZipFile(_build_wheel(tmp_path))
  names = wheel.namelist()
  tops = {n.split('/')[0] for n in names}
  assert tops == {'hmr_tf', 'hmr_tf-0.1.0.dist-info'}  # no datasets/, src/
  for package in _tree_packages():
    assert package.replace('.', '/') + '/__init__.py' in names, package
  expected = (
      ['hmr_tf/assets/makehuman_smpl.npz', 'hmr_tf/assets/ATTRIBUTION.md',
       'hmr_tf/web/examples/examples.json',
       'hmr_tf/web/examples/astronaut.jpg',
       'hmr_tf/web/examples/synthetic_heldout.jpg'] +
      [f'hmr_tf/flagfiles/{os.path.basename(p)}'
       for p in glob.glob(os.path.join(ROOT, 'src', 'flags', '*.flags'))])
  missing = sorted(set(expected) - set(names))
  assert not missing, missing
  entry_points = wheel.read('hmr_tf-0.1.0.dist-info/entry_points.txt').decode()
  assert 'hmr_tf-web = hmr_tf.web.__main__:run' in entry_points


def test_shipped_flagfiles_are_found_from_any_folder(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  quickstart = os.path.join(ROOT, 'src', 'flags', 'quickstart.flags')
  for given in ('src/flags/quickstart.flags', 'quickstart.flags'):
    (arg,) = resources.resolve_flagfiles([f'--flagfile={given}'])
    assert os.path.samefile(arg.split('=', 1)[1], quickstart)
  # A file that exists here wins; an unknown name is left for absl to refuse.
  (tmp_path / 'quickstart.flags').write_text('--mode=demo\n')
  assert resources.resolve_flagfiles(['--flagfile=quickstart.flags']) == [
      '--flagfile=quickstart.flags']
  assert resources.resolve_flagfiles(['--flagfile=nope.flags', '-v']) == [
      '--flagfile=nope.flags', '-v']


@pytest.mark.slow  # A venv, an install and four TensorFlow start-ups (~3 min).
def test_fresh_venv_install_then_entry_points_from_another_folder(tmp_path):
  venv = str(tmp_path / 'venv')
  # The system site-packages give TensorFlow and the rest (not downloaded
  # again); hmr_tf itself is only in the venv, from the wheel.
  subprocess.run([sys.executable, '-m', 'venv', '--system-site-packages',
                  venv], check=True, timeout=300)
  python = os.path.join(venv, 'bin', 'python')
  source = _copy_for_build(tmp_path)
  subprocess.run([python, '-m', 'pip', 'install', '--no-deps',
                  '--no-build-isolation', '--disable-pip-version-check', '-q',
                  source], check=True, timeout=600)
  elsewhere = tmp_path / 'elsewhere'
  elsewhere.mkdir()
  env = {k: v for k, v in os.environ.items() if k != 'PYTHONPATH'}
  env['TF_CPP_MIN_LOG_LEVEL'] = '2'

  def run(*args, timeout=600):
    return subprocess.run([os.path.join(venv, 'bin', args[0]), *args[1:]],
                          cwd=str(elsewhere), env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)

  where = run('python', '-c', 'import hmr_tf; print(hmr_tf.__file__)')
  assert where.stdout.strip().startswith(venv), where.stdout + where.stderr
  # The checkout's converters were not installed.
  files = run('python', '-m', 'pip', 'show', '-f', 'hmr_tf').stdout
  assert 'hmr_tf/web/examples/astronaut.jpg' in files
  assert 'datasets/' not in files
  # absl's --help prints the flags and exits with status 1.
  help_text = run('hmr_tf-demo', '--help')
  assert '--checkpoint' in help_text.stdout, help_text.stderr[-3000:]
  assert '--port' in run('hmr_tf-web', '--help').stdout
  # The quickstart's flagfile and the embedded body model, from the package:
  # --mode=body_model writes the body model of the flagfile's run.
  body = run('hmr_tf', '--flagfile=src/flags/quickstart.flags',
             '--mode=body_model', f'--output_dir={tmp_path / "run"}')
  assert body.returncode == 0, body.stderr[-3000:]
  assert os.path.isfile(tmp_path / 'run' / 'body_model' / 'body_model.npz')
  # The demo on a small model, from another folder.
  checkpoint = web_app.tiny_model(str(tmp_path / 'tiny'))
  demo = run('hmr_tf-demo', f'--checkpoint={checkpoint}',
             f'--image={os.path.join(resources.WEB_EXAMPLES_DIR, "astronaut.jpg")}',
             '--output_dir=out')
  assert demo.returncode == 0, demo.stderr[-3000:]
  assert os.path.isfile(elsewhere / 'out' / 'astronaut_overlay.png')
  # The web app starts from there and answers.
  app = web_app.WebApp([f'--checkpoint={checkpoint}'],
                       command=[os.path.join(venv, 'bin', 'hmr_tf-web')],
                       cwd=str(elsewhere), env={'PYTHONPATH': ''})
  try:
    app.wait()
    from gradio_client import Client  # pylint: disable=g-import-not-at-top
    from gradio_client import handle_file  # pylint: disable=g-import-not-at-top
    example = os.path.join(venv, 'lib', 'python3.11', 'site-packages',
                           'hmr_tf', 'web', 'examples', 'astronaut.jpg')
    result = Client(app.url, verbose=False,
                    download_files=str(tmp_path / 'client')).predict(
                        handle_file(example), '', api_name='/predict')
    assert '1 person' in result[4]
  finally:
    app.stop()
