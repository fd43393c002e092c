"""Two local worker processes under MultiWorkerMirroredStrategy.

Each test starts two `python -c _WORKER_SCRIPT` processes on 127.0.0.1 with
their own TF_CONFIG (worker 0 is the chief) training the tiny fixtures with
hmr_tf.training.loop. Every wait is bounded: the workers use a collective
timeout and a short health-check period, and the test kills whatever is
still running at its deadline. Slow (each test trains twice or more, with
two TensorFlow processes sharing the machine).
"""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

import repo_paths  # tests/support/
import train_fixtures as tfx

_ROOT = repo_paths.ROOT

# Exit codes of the worker script.
_OK, _WORKER_FAILURE = 0, 3

_WORKER_SCRIPT = r"""
import json
import os
import sys
import time

config = json.loads(sys.argv[1])
from hmr_tf.training import distribute
# First: MultiWorkerMirroredStrategy must exist before other TF work.
strategy = distribute.make_strategy(
    'multi_worker', collective_timeout_s=config['collective_timeout_s'],
    check_health_interval_s=2.0)
import keras
import numpy as np
import train_fixtures as tfx
from hmr_tf.training import loop


class Pace(keras.callbacks.Callback):
  # Slows steps down so the test can kill a worker mid-run.
  def on_train_batch_end(self, batch, logs=None):
    time.sleep(config.get('sleep_per_step', 0.0))


def write(content):
  path = config['result']
  with open(path + '.tmp', 'w') as f:
    json.dump(content, f)
  os.replace(path + '.tmp', path)


try:
  result = loop.train(
      tfx.model_config(), tfx.data_config(config['data_dir'], batch_size=4),
      tfx.train_config(config['model_dir'], epochs=config['epochs'],
                       steps_per_epoch=2, checkpoint_every_steps=2,
                       summary_every_steps=1, image_summary_every_steps=0),
      tfx.load_body_model(config['body_model']), tfx.mean_theta(),
      strategy=strategy, callbacks=[Pace()])
except distribute.WorkerFailureError as e:
  write({'error': str(e)})
  sys.stdout.flush()
  os._exit(3)
model = result.pop('model')
weights = model.encoder.weights + model.regressor.weights + (
    model.discriminator.weights)
write({
    'global_step': result['global_step'],
    'start_step': result['start_step'],
    'resumed_from': result['resumed_from'],
    'checkpoint': result['checkpoint'],
    'num_replicas': strategy.num_replicas_in_sync,
    # Sums and norms of every variable: equal weights give equal digests.
    'digest': [[float(np.sum(w)), float(np.linalg.norm(w))]
               for w in (np.asarray(v, np.float64) for v in weights)],
    'theta': model(tfx.fixed_images())['theta_stages'].numpy().tolist(),
})
sys.stdout.flush()
# Leave without waiting for the collective executor's threads.
os._exit(0)
"""


def _free_ports(n):
  sockets = [socket.socket() for _ in range(n)]
  for s in sockets:
    s.bind(('127.0.0.1', 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports


class _Cluster:
  """Two worker processes; kills the survivors on exit."""

  def __init__(self, tmp_path, data_dir, model_dir, body, run_name,
               **options):
    ports = _free_ports(2)
    workers = [f'127.0.0.1:{p}' for p in ports]
    self.results = [str(tmp_path / f'{run_name}_result_{i}.json')
                    for i in range(2)]
    self.logs = [str(tmp_path / f'{run_name}_log_{i}.txt') for i in range(2)]
    self.procs = []
    for i in range(2):
      tf_config = {'cluster': {'worker': workers},
                   'task': {'type': 'worker', 'index': i}}
      env = dict(os.environ, TF_CONFIG=json.dumps(tf_config),
                 PYTHONPATH=os.pathsep.join(
                     [_ROOT, repo_paths.SUPPORT,
                      os.environ.get('PYTHONPATH', '')]))
      config = dict(data_dir=data_dir, model_dir=model_dir, body_model=body,
                    result=self.results[i], **options)
      with open(self.logs[i], 'w') as log:
        self.procs.append(subprocess.Popen(
            [sys.executable, '-c', _WORKER_SCRIPT, json.dumps(config)],
            env=env, stdout=log, stderr=subprocess.STDOUT))

  def wait(self, index, deadline):
    try:
      return self.procs[index].wait(timeout=max(deadline - time.time(), 1))
    except subprocess.TimeoutExpired:
      return None

  def result(self, index):
    with open(self.results[index]) as f:
      return json.load(f)

  def log(self, index):
    with open(self.logs[index], errors='replace') as f:
      return f.read()[-3000:]

  def __enter__(self):
    return self

  def __exit__(self, *exc):
    for proc in self.procs:
      if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=30)


def _fixtures(tmp_path):
  data_dir = tfx.write_tiny_data(str(tmp_path / 'data'))
  body = tfx.write_body_model(str(tmp_path / 'body.npz'))
  return data_dir, body


def _run_to_end(tmp_path, data_dir, model_dir, body, name, epochs,
                timeout=420):
  with _Cluster(tmp_path, data_dir, model_dir, body, name, epochs=epochs,
                collective_timeout_s=120.0) as cluster:
    deadline = time.time() + timeout
    codes = [cluster.wait(i, deadline) for i in range(2)]
    assert codes == [_OK, _OK], (codes, cluster.log(0), cluster.log(1))
    return [cluster.result(i) for i in range(2)]


@pytest.mark.slow
def test_two_workers_train_write_one_checkpoint_and_agree(tmp_path):
  data_dir, body = _fixtures(tmp_path)
  model_dir = str(tmp_path / 'run')
  chief, other = _run_to_end(tmp_path, data_dir, model_dir, body, 'a',
                             epochs=2)
  assert chief['num_replicas'] == other['num_replicas'] == 2
  assert chief['global_step'] == other['global_step'] == 4
  # One set of checkpoints, written by the chief only.
  names = sorted(os.listdir(model_dir))
  assert not [n for n in names if n.startswith('.worker_tmp')], names
  assert chief['checkpoint'].endswith('ckpt-4'), chief
  assert os.path.exists(os.path.join(model_dir, 'ckpt-4.index')), names
  assert not os.path.exists(os.path.join(model_dir, 'train_1')), names
  np.testing.assert_allclose(other['digest'], chief['digest'], rtol=1e-6,
                             atol=1e-6)
  np.testing.assert_allclose(other['theta'], chief['theta'], rtol=1e-6,
                             atol=1e-6)


@pytest.mark.slow
def test_killed_worker_fails_the_run_clearly_and_rerun_resumes(tmp_path):
  data_dir, body = _fixtures(tmp_path)
  model_dir = str(tmp_path / 'run')
  with _Cluster(tmp_path, data_dir, model_dir, body, 'paced', epochs=4,
                sleep_per_step=1.0, collective_timeout_s=60.0) as cluster:
    deadline = time.time() + 300
    while not os.path.exists(os.path.join(model_dir, 'ckpt-2.index')):
      assert time.time() < deadline, (cluster.log(0), cluster.log(1))
      assert cluster.procs[0].poll() is None, cluster.log(0)
      time.sleep(0.5)
    cluster.procs[1].send_signal(signal.SIGKILL)
    # The chief must stop on its own, well before the test's deadline.
    code = cluster.wait(0, time.time() + 180)
    assert code == _WORKER_FAILURE, (code, cluster.log(0))
    error = cluster.result(0)['error']
    assert 'another worker stopped responding' in error, error
    assert 'Restart every worker' in error and 'ckpt-' in error, error

  saved = int(open(os.path.join(model_dir, 'checkpoint')).read().split(
      '"')[1].rsplit('-', 1)[1])
  assert 2 <= saved < 8, saved
  chief, other = _run_to_end(tmp_path, data_dir, model_dir, body, 'rerun',
                             epochs=4)
  for result in (chief, other):
    assert result['resumed_from'].endswith(f'ckpt-{saved}'), result
    assert result['start_step'] == saved and result['global_step'] == 8
  np.testing.assert_allclose(other['digest'], chief['digest'], rtol=1e-6,
                             atol=1e-6)
