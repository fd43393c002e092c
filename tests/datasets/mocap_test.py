"""datasets.mocap: MoSh Python-2 pickles and AMASS .npz -> mocap records."""

import os
import pickle
import subprocess
import sys

import numpy as np
import pytest

import repo_paths  # tests/support/
import fixtures_datasets as fx
from datasets import mocap
from hmr_tf.data import writer as writer_lib


def _write(input_dir):
  rng = np.random.default_rng(2)
  a = {'poses': rng.normal(size=(3, 72)), 'betas': rng.normal(size=10),
       'trans': rng.normal(size=(3, 3))}
  b = {'new_poses': rng.normal(size=(2, 72)), 'betas': rng.normal(size=10)}
  held_out = {'poses': rng.normal(size=(4, 72)), 'betas': rng.normal(size=10)}
  amass = _amass(rng, 4, 120.0)
  fx.write_py2_pickle(os.path.join(input_dir, '01', '01_01.pkl'), a)
  fx.write_py2_pickle(os.path.join(input_dir, '02', '02_05.pkl'), b)
  fx.write_py2_pickle(os.path.join(input_dir, 'S9', 'walk.pkl'), held_out)
  np.savez(os.path.join(input_dir, '02', 'amass_poses.npz'), **amass)
  np.savez(os.path.join(input_dir, '02', 'shape.npz'),
           betas=rng.normal(size=16), gender=np.array('male'))
  # Expected frames: MoSh's as they are; AMASS's 22 body joints (66
  # numbers) then zero hands, and its first 10 betas.
  pairs = [(p, a['betas']) for p in a['poses']]
  pairs += [(p, b['betas']) for p in b['new_poses']]
  pairs += [(_smpl_of_amass(p), amass['betas'][:10]) for p in amass['poses']]
  return pairs


def _amass(rng, frames, framerate):
  """One AMASS SMPL+H file's arrays, in AMASS's layout."""
  return {'poses': rng.normal(size=(frames, 156)),
          'betas': rng.normal(size=16), 'trans': rng.normal(size=(frames, 3)),
          'dmpls': rng.normal(size=(frames, 8)), 'gender': np.array('female'),
          'mocap_framerate': np.array(framerate)}


def _smpl_of_amass(pose):
  """The reference: SMPL joints 0-21 from SMPL+H's, joints 22, 23 zero."""
  out = np.zeros(72)
  out[:66] = pose[:66]
  return out


def _match(got, expected):
  """Index of each record's expected frame; asserts a one-to-one match."""
  got = np.array([np.concatenate(g) for g in got], np.float64)
  expected = np.array([np.concatenate(e) for e in expected])
  distance = np.abs(got[:, None] - expected[None]).max(-1)
  order = distance.argmin(1)
  assert sorted(order) == list(range(len(expected)))
  np.testing.assert_allclose(got, expected[order], rtol=1e-6, atol=1e-6)
  return order


def test_round_trip(tmp_path):
  input_dir, out = str(tmp_path / 'neutrSMPL_CMU'), str(tmp_path / 'out')
  pairs = _write(input_dir)
  meta = mocap.convert(input_dir, out, shard_size=4)
  assert meta['kind'] == 'mocap'
  assert meta['splits']['train']['num_examples'] == 9
  assert meta['splits']['train']['files'] == [
      'train_00000.tfrecord', 'train_00001.tfrecord', 'train_00002.tfrecord']
  assert meta['splits']['train']['filtered'] == {'shape-only file': 1}
  records, _ = fx.read_split(out, 'neutrSMPL_CMU', 'train', mocap=True)
  got = [(r['pose'], r['shape']) for r in records]
  order = _match(got, pairs)  # Every frame once; S9 left out.
  assert list(order) != list(range(len(pairs)))  # Shuffled.


def test_command_line_default_shard_size(tmp_path):
  input_dir, out = str(tmp_path / 'neutrSMPL_CMU'), str(tmp_path / 'out')
  _write(input_dir)
  root = repo_paths.ROOT
  subprocess.run([sys.executable, '-m', 'datasets.mocap',
                  f'--input_dir={input_dir}', f'--output_dir={out}',
                  '--dataset_name=cmu', '--exclude='], check=True, cwd=root,
                 capture_output=True)
  meta = writer_lib.read_sidecar(out, 'cmu')
  assert meta['shard_size'] == 10000
  assert meta['splits']['train']['num_examples'] == 13  # S9 included.


def test_malformed_inputs(tmp_path):
  input_dir, out = str(tmp_path / 'mocap'), str(tmp_path / 'out')
  with pytest.raises(FileNotFoundError, match='mocap folder not found'):
    mocap.convert(input_dir, out)
  os.makedirs(input_dir)
  with pytest.raises(FileNotFoundError, match='no .pkl or .npz'):
    mocap.convert(input_dir, out)
  _write(input_dir)
  bad = os.path.join(input_dir, '03', 'bad.pkl')
  fx.write_py2_pickle(bad, {'poses': np.zeros((2, 69)),
                            'betas': np.zeros(10)})
  with pytest.raises(writer_lib.BadRecordError,
                     match=r'bad\.pkl: record file: poses: expected'):
    mocap.convert(input_dir, out, shard_size=2)
  assert fx.final_files(out, 'mocap') == []
  meta = mocap.convert(input_dir, out, skip_bad=True)
  assert meta['splits']['train']['num_examples'] == 9
  assert meta['num_skipped'] == 1
  # Unreadable file, and a pickle with a class other than NumPy's.
  with open(bad, 'wb') as f:
    f.write(b'garbage')
  with pytest.raises(writer_lib.BadRecordError, match=r'bad\.pkl.*cannot'):
    mocap.convert(input_dir, out)
  with open(bad, 'wb') as f:
    pickle.dump({'poses': np.zeros((1, 72)), 'betas': np.zeros(10),
                 'when': __import__('datetime').date(2020, 1, 1)}, f)
  with pytest.raises(writer_lib.BadRecordError,
                     match='refusing to load datetime.date'):
    mocap.convert(input_dir, out)


def test_malicious_mocap_pickle_never_runs(tmp_path):
  """Protocol 4, module `numpy`, name `f2py.os.system`: refused, not run."""
  input_dir, out = str(tmp_path / 'mocap'), str(tmp_path / 'out')
  _write(input_dir)
  marker = tmp_path / 'pwned'

  def text(s):
    return pickle.SHORT_BINUNICODE + bytes([len(s)]) + s.encode()

  evil = os.path.join(input_dir, '03', 'evil.pkl')
  os.makedirs(os.path.dirname(evil))
  with open(evil, 'wb') as f:
    f.write(pickle.PROTO + b'\x04' + text('numpy') + text('f2py.os.system') +
            pickle.STACK_GLOBAL + text(f'touch {marker}') + pickle.TUPLE1 +
            pickle.REDUCE + pickle.STOP)
  with pytest.raises(writer_lib.BadRecordError,
                     match=r'evil\.pkl.*refusing to load numpy\.f2py\.os'
                     r'\.system'):
    mocap.convert(input_dir, out)
  assert not marker.exists()
  meta = mocap.convert(input_dir, out, skip_bad=True)
  assert meta['num_skipped'] == 1
  assert not marker.exists()


def test_amass_hands_zero_betas_rule_and_frame_rate(tmp_path):
  input_dir, out = str(tmp_path / 'amass'), str(tmp_path / 'out')
  rng = np.random.default_rng(4)
  fast = _amass(rng, 9, 120.0)  # 30 Hz keeps frames 0, 4, 8.
  slow = _amass(rng, 6, 60.0)  # 30 Hz keeps frames 0, 2, 4.
  mosh = {'poses': rng.normal(size=(5, 72)), 'betas': rng.normal(size=10)}
  np.savez(_mkdir(input_dir, 'ACCAD', 'fast.npz'), **fast)
  np.savez(_mkdir(input_dir, 'CMU', 'slow.npz'), **slow)
  fx.write_py2_pickle(os.path.join(input_dir, 'mosh', 'm.pkl'), mosh)
  meta = mocap.convert(input_dir, out, dataset_name='amass', target_fps=30)
  train = meta['splits']['train']
  assert train['num_examples'] == 3 + 3 + 5  # MoSh: no frame rate, all.
  assert train['filtered'] == {'subsampled to 30 fps': 6 + 3}
  assert meta['amass_betas'] == 'keep' and meta['target_fps'] == 30
  records, _ = fx.read_split(out, 'amass', 'train', mocap=True)
  got = [(r['pose'], r['shape']) for r in records]
  expected = [(_smpl_of_amass(fast['poses'][i]), fast['betas'][:10])
              for i in (0, 4, 8)]
  expected += [(_smpl_of_amass(slow['poses'][i]), slow['betas'][:10])
               for i in (0, 2, 4)]
  expected += [(p, mosh['betas']) for p in mosh['poses']]
  _match(got, expected)
  # AMASS records: hands exactly zero; the MoSh ones keep theirs.
  hands = np.array([r['pose'][66:] for r in records])
  assert (np.abs(hands).max(1) == 0).sum() == 6
  # --amass_betas=zero: AMASS betas zero, MoSh betas kept; every frame.
  meta = mocap.convert(input_dir, out, dataset_name='amass',
                       amass_betas='zero')
  assert meta['splits']['train']['num_examples'] == 9 + 6 + 5
  records, _ = fx.read_split(out, 'amass', 'train', mocap=True)
  got = [(r['pose'], r['shape']) for r in records]
  expected = [(_smpl_of_amass(p), np.zeros(10)) for p in fast['poses']]
  expected += [(_smpl_of_amass(p), np.zeros(10)) for p in slow['poses']]
  expected += [(p, mosh['betas']) for p in mosh['poses']]
  _match(got, expected)
  with pytest.raises(ValueError, match='amass_betas: expected one of'):
    mocap.convert(input_dir, out, amass_betas='neutral')


def _mkdir(*parts):
  os.makedirs(os.path.join(*parts[:-1]), exist_ok=True)
  return os.path.join(*parts)


def test_subsample_hand_computed():
  np.testing.assert_array_equal(mocap.subsample(9, 120, 30), [0, 4, 8])
  # 100 Hz to 30: times 0, 1/30, 2/30 s are frames 0, 3.33, 6.67 -> 0, 3, 7.
  np.testing.assert_array_equal(mocap.subsample(10, 100, 30), [0, 3, 7])
  np.testing.assert_array_equal(mocap.subsample(4, 30, 60), [0, 1, 2, 3])
