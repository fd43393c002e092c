"""Benchmark: the quickstart of another commit next to this tree's, wall time.

  python src/bench/quickstart_compare.py [--commit=6e94591] [--rounds=1]
      [--work_dir=DIR] [--keep] [--extra=--flag=value ...]

Extracts the given commit of this repository (`git archive`, no network)
into a temporary folder and runs both quickstarts, that commit's and this
working tree's, each `python -m hmr_tf.main --flagfile=src/flags/
quickstart.flags` into a fresh output folder (so rendering the data counts),
alternating (commit, tree, commit, tree, ...) so that other load on the
machine hurts both alike. Prints for each run the wall time and its stages
(data, training, the rest: evaluation, export, demo, start-up), each run's
held-out PA-MPJPE, the data's mean-parameter baseline (the untrained Θ_0;
the same data for both, so one number) and the ratio of the tree's median
wall time to the commit's. Run it on a quiet machine: both quickstarts use
every core.
"""

import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime

from absl import app
from absl import flags

_COMMIT = flags.DEFINE_string('commit', '6e94591',
                              'The commit to compare with (any git revision).')
_ROUNDS = flags.DEFINE_integer('rounds', 1, 'Runs of each, alternating.',
                               lower_bound=1)
_WORK_DIR = flags.DEFINE_string(
    'work_dir', '', 'Where the extracted commit and the runs go (default: a '
    'temporary folder, deleted afterwards unless --keep).')
_KEEP = flags.DEFINE_bool('keep', False, 'Keep the runs\' output folders.')
_EXTRA = flags.DEFINE_multi_string(
    'extra', [], 'A flag passed to both quickstarts (repeatable), e.g. '
    '--extra=--synthetic_workers=2.')

_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
_FLAGFILE = os.path.join('src', 'flags', 'quickstart.flags')
# absl's log prefix: I1207 04:05:23.795537 ...
_STAMP = re.compile(r'^[IWEF](\d{4}) (\d\d:\d\d:\d\d\.\d+)')


def _extract(commit: str, folder: str) -> str:
  """Writes `commit`'s files into `folder`; returns its full hash."""
  full = subprocess.run(['git', 'rev-parse', '--verify', commit + '^{commit}'],
                        cwd=_ROOT, capture_output=True, text=True, check=True
                        ).stdout.strip()
  os.makedirs(folder, exist_ok=True)
  archive = subprocess.Popen(['git', 'archive', full], cwd=_ROOT,
                             stdout=subprocess.PIPE)
  subprocess.run(['tar', '-x', '-C', folder], stdin=archive.stdout,
                 check=True)
  archive.stdout.close()
  if archive.wait() != 0:
    raise RuntimeError(f'git archive {full} failed')
  return full


def _seconds(line: str):
  match = _STAMP.match(line)
  if not match:
    return None
  stamp = datetime.strptime(match.group(1) + ' ' + match.group(2),
                            '%m%d %H:%M:%S.%f')
  return stamp.timestamp()


def _stages(log: str, wall: float) -> dict:
  """Stage times (s) from a quickstart's log: data, train, the rest."""
  data = train_start = train_end = None
  for line in log.splitlines():
    found = re.search(r'Synthetic dataset written to .* in (\d+) s', line)
    if found:
      data = float(found.group(1))
    if re.search(r'\] Training: \d+ epochs', line):
      train_start = _seconds(line)
    if re.search(r'\] Training done', line):
      train_end = _seconds(line)
  train = (train_end - train_start
           if train_start is not None and train_end is not None else None)
  rest = (wall - (data or 0.0) - train) if train is not None else None
  return {'wall': wall, 'data': data, 'train': train, 'rest': rest}


def _run(tree: str, out: str) -> dict:
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHONPATH=tree)
  start = time.perf_counter()
  result = subprocess.run(
      [sys.executable, '-m', 'hmr_tf.main', f'--flagfile={_FLAGFILE}',
       f'--output_dir={out}', *_EXTRA.value],
      cwd=tree, env=env, capture_output=True, text=True)
  wall = time.perf_counter() - start
  if result.returncode != 0:
    raise RuntimeError(f'quickstart in {tree} failed (exit '
                       f'{result.returncode}): {result.stderr[-2000:]}')
  row = _stages(result.stderr, wall)
  with open(os.path.join(out, 'eval', 'eval_synthetic_3d_test.json'),
            encoding='utf-8') as f:
    scalars = json.load(f)['scalars']
  row['pa_mpjpe'] = scalars['pa_mpjpe']
  row['data_baseline'] = scalars.get('data_mean_baseline/pa_mpjpe')
  return row


def _fmt(value, spec='8.0f'):
  return format(value, spec) if value is not None else f'{"?":>8}'


def main(argv):
  del argv
  work = _WORK_DIR.value or tempfile.mkdtemp(prefix='quickstart_compare_')
  old_tree = os.path.join(work, 'commit')
  full = _extract(_COMMIT.value, old_tree)
  trees = {f'commit {full[:7]}': old_tree, 'this tree': _ROOT}
  rows = {name: [] for name in trees}
  try:
    for round_ in range(_ROUNDS.value):
      for name, tree in trees.items():
        out = os.path.join(work, f'run_{name.split()[0]}_{round_}')
        shutil.rmtree(out, ignore_errors=True)
        rows[name].append(_run(tree, out))
        if not _KEEP.value:
          shutil.rmtree(out, ignore_errors=True)
  finally:
    if not _KEEP.value and not _WORK_DIR.value:
      shutil.rmtree(work, ignore_errors=True)

  baseline = next((r['data_baseline'] for rs in rows.values() for r in rs
                   if r['data_baseline'] is not None), None)
  print(f'The quickstart at {full[:7]} vs this tree, {_ROUNDS.value} '
        f'alternating round(s), {os.cpu_count()} CPUs')
  print(f'{"run":22s} {"wall s":>8s} {"data s":>8s} {"train s":>8s} '
        f'{"rest s":>8s} {"PA-MPJPE":>9s} {"/ base":>7s}')
  for name, runs in rows.items():
    for i, r in enumerate(runs):
      ratio = (f'{r["pa_mpjpe"] / baseline:7.3f}' if baseline else
               f'{"?":>7}')
      print(f'{name + f" #{i + 1}":22s} {_fmt(r["wall"])} {_fmt(r["data"])} '
            f'{_fmt(r["train"])} {_fmt(r["rest"])} {r["pa_mpjpe"]:9.1f} '
            f'{ratio}')
  print(f'data mean-parameter baseline (untrained Θ_0): '
        f'{_fmt(baseline, ".1f").strip()} mm PA-MPJPE')
  old, new = (statistics.median(r['wall'] for r in runs)
              for runs in rows.values())
  print(f'wall time, this tree / commit (medians): {new / old:.2f}')


if __name__ == '__main__':
  app.run(main)
