"""Tests for hmr_tf.training.distribute and training under MirroredStrategy.

The multi-replica tests run in a fresh process each: two logical CPU devices
must be configured before TensorFlow initialises its devices.
"""

import os
import subprocess
import sys
import types

import numpy as np
import pytest
import tensorflow as tf

import repo_paths  # tests/support/
import train_fixtures as tfx
from hmr_tf import configs
from hmr_tf.data import input_pipeline
from hmr_tf.data import schema
from hmr_tf.data import writer as writer_lib
from hmr_tf.training import distribute

_ROOT = repo_paths.ROOT
_FILE = tf.data.experimental.AutoShardPolicy.FILE
_DATA = tf.data.experimental.AutoShardPolicy.DATA
_OFF = tf.data.experimental.AutoShardPolicy.OFF


# ---------------------------------------------------------------------------
# Strategy and policy selection.


def test_unknown_strategy_is_rejected():
  with pytest.raises(ValueError, match="strategy: expected one of"):
    distribute.make_strategy('horovod')


def test_default_strategy_is_the_current_one():
  assert distribute.make_strategy('default') is tf.distribute.get_strategy()


def test_tpu_address_only_with_tpu():
  with pytest.raises(ValueError, match='only used with strategy=tpu'):
    distribute.make_strategy('mirrored', tpu_address='grpc://10.0.0.2:8470')


def test_multi_worker_without_tf_config_names_the_variable(monkeypatch):
  monkeypatch.delenv('TF_CONFIG', raising=False)
  with pytest.raises(ValueError) as error:
    distribute.make_strategy('multi_worker')
  message = str(error.value)
  assert 'TF_CONFIG is not set' in message
  # The expected JSON is shown and is itself valid TF_CONFIG.
  assert distribute.TF_CONFIG_EXAMPLE in message
  distribute.parse_tf_config(distribute.TF_CONFIG_EXAMPLE)


@pytest.mark.parametrize('text, expected', [
    ('{"cluster": ', 'not valid JSON'),
    ('[1, 2]', 'expected a JSON object'),
    ('{"task": {"type": "worker", "index": 0}}', '"cluster" must list'),
    ('{"cluster": {"worker": ["a:1"]}}', '"task" must have'),
    ('{"cluster": {"worker": ["a:1"]}, "task": {"type": "ps", "index": 0}}',
     "'ps' is not a job"),
    ('{"cluster": {"worker": ["a:1", "b:2"]}, '
     '"task": {"type": "worker", "index": 2}}', 'task index 2 is outside'),
])
def test_bad_tf_config_is_explained(text, expected):
  with pytest.raises(ValueError, match=expected):
    distribute.parse_tf_config(text)


def test_set_precision_policy():
  import keras  # pylint: disable=g-import-not-at-top
  try:
    policy = distribute.set_precision_policy('mixed_bfloat16')
    assert (policy.compute_dtype, policy.variable_dtype) == ('bfloat16',
                                                             'float32')
    assert keras.mixed_precision.global_policy().name == 'mixed_bfloat16'
    assert distribute.set_precision_policy('none').name == 'float32'
    with pytest.raises(ValueError, match='mixed_precision: expected'):
      distribute.set_precision_policy('float8')
  finally:
    keras.mixed_precision.set_global_policy('float32')


def test_check_global_batch():
  strategy = types.SimpleNamespace(num_replicas_in_sync=4)
  assert distribute.check_global_batch(64, strategy) == 16
  with pytest.raises(ValueError, match='multiple of the 4 replicas'):
    distribute.check_global_batch(30, strategy)


# ---------------------------------------------------------------------------
# Input sharding.


def _strategy_stub(cluster, task_type, task_id):
  resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
      tf.train.ClusterSpec(cluster), task_type=task_type, task_id=task_id)
  return types.SimpleNamespace(cluster_resolver=resolver,
                               num_replicas_in_sync=2)


def test_input_worker_numbers_chief_first():
  assert distribute.input_worker(tf.distribute.get_strategy()) == (1, 0)
  two = {'worker': ['a:1', 'b:1']}
  assert distribute.input_worker(_strategy_stub(two, 'worker', 1)) == (2, 1)
  chief = {'chief': ['c:1'], 'worker': ['a:1', 'b:1']}
  assert distribute.input_worker(_strategy_stub(chief, 'chief', 0)) == (3, 0)
  assert distribute.input_worker(_strategy_stub(chief, 'worker', 1)) == (3, 2)


def test_auto_shard_policy_needs_a_shard_per_worker():
  assert distribute.auto_shard_policy([4, 2, 3], 2) == _FILE
  assert distribute.auto_shard_policy([4, 1, 3], 2) == _DATA
  assert distribute.auto_shard_policy([1], 1) == _FILE
  with pytest.raises(ValueError):
    distribute.auto_shard_policy([], 2)


def _write_mocap_shards(root, name, num, shard_size):
  """Mocap records whose first pose value is the record number / 100."""
  with writer_lib.ShardedWriter(root, name, schema.KIND_MOCAP,
                                shard_size=shard_size) as w:
    for i in range(num):
      w.write('train', schema.make_mocap_example(
          np.full(72, i / 100.0), np.zeros(10)))


def _record_ids(dataset, take):
  return {int(round(float(b['pose'][0, 0]) * 100))
          for b in dataset.take(take)}


def test_file_sharding_gives_workers_disjoint_files(tmp_path):
  root = str(tmp_path)
  _write_mocap_shards(root, 'mocap4', 24, shard_size=6)  # 4 shards
  config = tfx.data_config(root, mocap_datasets=('mocap4',), batch_size=1,
                           num_stage=1)
  seen = [_record_ids(input_pipeline.mocap_dataset(
      config, worker_shard=(2, i)), take=48) for i in range(2)]
  # Each worker reads 2 of the 4 files (12 records) over and over.
  assert len(seen[0]) == len(seen[1]) == 12
  assert not seen[0] & seen[1]
  assert seen[0] | seen[1] == set(range(24))
  with pytest.raises(ValueError, match='cannot be split over 5'):
    input_pipeline.mocap_dataset(config, worker_shard=(5, 0))


def test_train_dataset_chooses_file_or_data_sharding(tmp_path):
  root = tfx.write_tiny_data(str(tmp_path))  # tiny2d/3d: 2 shards, mocap: 1
  _write_mocap_shards(root, 'mocap4', 24, shard_size=6)
  two_workers = _strategy_stub({'worker': ['a:1', 'b:1']}, 'worker', 1)

  config = tfx.data_config(root, mocap_datasets=('mocap4',))
  plan = distribute.shard_plan(config, two_workers)
  assert (plan.policy, plan.num_workers, plan.index) == (_FILE, 2, 1)
  assert plan.files == {'tiny2d': 2, 'tiny3d': 2, 'mocap4': 4}
  ds = distribute.train_dataset(config, two_workers)
  # The pipeline reads only this worker's files; tf.data must not shard again.
  assert ds.options().experimental_distribute.auto_shard_policy == _OFF
  next(iter(ds))

  config = tfx.data_config(root)  # tinymocap has a single shard
  assert distribute.shard_plan(config, two_workers).policy == _DATA
  ds = distribute.train_dataset(config, two_workers)
  assert ds.options().experimental_distribute.auto_shard_policy == _DATA
  # One worker: left as it is.
  ds = distribute.train_dataset(config, tf.distribute.get_strategy())
  assert ds.options().experimental_distribute.auto_shard_policy != _DATA


def test_data_sharding_interleaves_the_global_stream(tmp_path):
  # What tf.data's DATA rewrite does to the real training pipeline: worker i
  # of n gets elements i, i + n, ... of the unsharded (deterministic) stream.
  from tensorflow.python.data.experimental.ops import distribute as tf_dist  # pylint: disable=g-import-not-at-top
  root = tfx.write_tiny_data(str(tmp_path))
  config = tfx.data_config(root)
  everything = [m['pose'].numpy() for _, m in
                input_pipeline.train_dataset(config).take(6)]
  strategy = _strategy_stub({'worker': ['a:1', 'b:1']}, 'worker', 0)
  for index in range(2):
    ds = distribute.train_dataset(config, strategy)
    shard = tf_dist._AutoShardDataset(ds, 2, index)  # pylint: disable=protected-access
    got = [m['pose'].numpy() for _, m in shard.take(3)]
    for k, pose in enumerate(got):
      np.testing.assert_array_equal(pose, everything[2 * k + index])


# ---------------------------------------------------------------------------
# MirroredStrategy on two logical CPU devices (subprocesses).

_PRELUDE = r"""
import sys
import tensorflow as tf
cpu = tf.config.list_physical_devices('CPU')[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import keras
import numpy as np
MIRRORED = tf.distribute.MirroredStrategy(['/cpu:0', '/cpu:1'])
SINGLE = tf.distribute.get_strategy()
"""

# A HMRModel trained for 3 steps with a global batch of 4 under the default
# strategy and on 2 replicas (2 examples each) from the same initial weights.
# Batch norm runs in inference mode (frozen): then every loss is a per-example
# sum over a global normaliser and the replicas' gradients add up to the
# single-device gradient, so the weights agree to float round-off. (With BN
# in training mode, statistics are per replica unless sync_batch_norm; see
# the sync test below.)
_EQUAL_SCRIPT = _PRELUDE + r"""
import smpl_reference
from hmr_tf import configs
from hmr_tf.modeling import hmr_model, mean_params

def build(strategy, weights=None):
  with strategy.scope():
    keras.utils.set_random_seed(0)
    model = hmr_model.HMRModel(
        smpl_reference.random_body_model(60, seed=0),
        mean_params.mean_theta(np.zeros(72), np.zeros(10)),
        # The small encoder: the same train step, compiled twice as fast.
        configs.ModelConfig(img_size=32, dropout_rate=0.0,
                            encoder='resnet_v2_small', encoder_weights='none'))
    for layer in model.encoder.layers:
      if isinstance(layer, keras.layers.BatchNormalization):
        layer.trainable = False  # Keras 3: inference-mode statistics
    # SGD: the update is proportional to the gradient being compared.
    model.compile(g_optimizer=keras.optimizers.SGD(1e-4),
                  d_optimizer=keras.optimizers.SGD(1e-3))
    if weights is not None:
      model.set_weights(weights)
  return model

rng = np.random.default_rng(0)
b, steps = 4, 3
n = b * steps
data = dict(
    image=rng.uniform(-1, 1, (n, 32, 32, 3)).astype(np.float32),
    keypoints2d=np.concatenate([rng.uniform(-1, 1, (n, 19, 2)),
                                rng.integers(0, 2, (n, 19, 1))],
                               -1).astype(np.float32),
    joints3d=rng.normal(size=(n, 14, 3)).astype(np.float32),
    has_joints3d=rng.integers(0, 2, n).astype(np.float32),
    pose=rng.normal(size=(n, 72)).astype(np.float32) * 0.2,
    shape=rng.normal(size=(n, 10)).astype(np.float32),
    has_smpl=rng.integers(0, 2, n).astype(np.float32))
mocap = dict(pose=rng.normal(size=(3 * n, 72)).astype(np.float32) * 0.2,
             shape=rng.normal(size=(3 * n, 10)).astype(np.float32))
ds = tf.data.Dataset.zip(
    tf.data.Dataset.from_tensor_slices(data).batch(b),
    tf.data.Dataset.from_tensor_slices(mocap).batch(3 * b))
single = build(SINGLE)
initial = single.get_weights()
multi = build(MIRRORED, initial)
assert multi.distribute_strategy is MIRRORED
logs_1 = single.fit(ds, epochs=1, verbose=0).history
logs_2 = multi.fit(ds, epochs=1, verbose=0).history
for name in logs_1:
  np.testing.assert_allclose(logs_2[name][-1], logs_1[name][-1], rtol=1e-5,
                             atol=1e-6, err_msg=name)
moved = 0.0
for a, c, w in zip(single.weights, multi.weights, initial):
  a, c = np.asarray(a), np.asarray(c)
  moved = max(moved, float(np.max(np.abs(a - w))))
  np.testing.assert_allclose(c, a, rtol=1e-5, atol=1e-6, err_msg=a.path
                             if hasattr(a, 'path') else '')
assert moved > 1e-3, moved  # the comparison is not between untouched weights
print('EQUAL_OK')
"""

# Keras' synchronized batch norm (what ModelConfig.sync_batch_norm turns on
# in the encoder): statistics over the global batch, so 2 replicas train
# exactly like one device, moving statistics included. Tested on a small,
# well-conditioned conv net: ResNet-50 at 32 px has 1x1 feature maps with 2
# examples per replica, where the variance is so ill-conditioned that float
# round-off alone grows to percent-level weight differences in one step.
_SYNC_BN_SCRIPT = _PRELUDE + r"""
def build(strategy, weights=None):
  with strategy.scope():
    keras.utils.set_random_seed(1)
    model = keras.Sequential([
        keras.Input((8, 8, 3)),
        keras.layers.Conv2D(8, 3, padding='same', use_bias=False),
        keras.layers.BatchNormalization(synchronized=True, momentum=0.5),
        keras.layers.ReLU(),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(2)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss='mse')
    if weights is not None:
      model.set_weights(weights)
  return model

rng = np.random.default_rng(2)
x = rng.normal(size=(32, 8, 8, 3)).astype(np.float32)
x[:16] += 1.0  # replica 0's half differs from replica 1's
y = rng.normal(size=(32, 2)).astype(np.float32)
ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
single = build(SINGLE)
initial = single.get_weights()
multi = build(MIRRORED, initial)
single.fit(ds, epochs=2, verbose=0)
multi.fit(ds, epochs=2, verbose=0)
for a, c, w in zip(single.weights, multi.weights, initial):
  assert np.max(np.abs(np.asarray(a) - w)) > 1e-4, a.path
  np.testing.assert_allclose(np.asarray(c), np.asarray(a), rtol=1e-4,
                             atol=1e-5, err_msg=a.path)
# Per-replica statistics (the default) are not the same computation.
per_replica = build(MIRRORED, initial)
bn = [l for l in per_replica.layers
      if isinstance(l, keras.layers.BatchNormalization)][0]
bn.synchronized = False
per_replica.fit(ds, epochs=2, verbose=0)
single_bn = [l for l in single.layers
             if isinstance(l, keras.layers.BatchNormalization)][0]
diff = np.max(np.abs(np.asarray(bn.moving_variance) -
                     np.asarray(single_bn.moving_variance)))
assert diff > 1e-3, diff
print('SYNC_OK')
"""

# Resume across a change of replica count: 2 replicas -> 1 -> 2. The
# checkpoint holds one value per mirrored variable, so each run restores the
# previous run's exact weights and continues at its step.
_RESUME_SCRIPT = _PRELUDE + r"""
import json
import train_fixtures as tfx
from hmr_tf.training import loop
from hmr_tf.training import state as state_lib

data_dir, model_dir, body_path = sys.argv[1:4]
body = tfx.load_body_model(body_path)
images = tfx.fixed_images()

def run(strategy, epochs):
  result = loop.train(
      tfx.model_config(), tfx.data_config(data_dir, batch_size=4),
      tfx.train_config(model_dir, epochs=epochs, steps_per_epoch=2,
                       image_summary_every_steps=0, summary_every_steps=0),
      body, tfx.mean_theta(), strategy=strategy)
  return result, result['model'](images)['theta_stages'].numpy()

def restored(strategy):
  state = state_lib.build_state(
      tfx.model_config(), tfx.train_config(model_dir), body,
      tfx.mean_theta(), strategy)
  return state.model(images)['theta_stages'].numpy()

first, after_two = run(MIRRORED, 1)
assert first['global_step'] == 2 and first['resumed_from'] is None, first
np.testing.assert_allclose(restored(SINGLE), after_two, rtol=1e-6, atol=1e-6)
second, after_one = run(SINGLE, 2)
assert second['start_step'] == 2 and second['global_step'] == 4, second
assert second['resumed_from'].endswith('ckpt-2'), second['resumed_from']
assert np.max(np.abs(after_one - after_two)) > 0  # it trained on
np.testing.assert_allclose(restored(MIRRORED), after_one, rtol=1e-6,
                           atol=1e-6)
third, _ = run(MIRRORED, 3)
assert third['start_step'] == 4 and third['global_step'] == 6, third
print('RESUME_OK')
"""


def _run_script(script, *args, timeout=600):
  env = dict(os.environ, PYTHONPATH=os.pathsep.join(
      [_ROOT, repo_paths.SUPPORT, os.environ.get('PYTHONPATH', '')]))
  proc = subprocess.run([sys.executable, '-c', script, *args], env=env,
                        capture_output=True, text=True, timeout=timeout)
  return proc.returncode, proc.stdout + proc.stderr


def test_two_replicas_train_like_one_device_with_the_same_global_batch():
  code, out = _run_script(_EQUAL_SCRIPT)
  assert code == 0 and 'EQUAL_OK' in out, out[-4000:]


def test_synchronized_batch_norm_makes_replicas_equal_one_device():
  code, out = _run_script(_SYNC_BN_SCRIPT)
  assert code == 0 and 'SYNC_OK' in out, out[-4000:]


def test_sync_batch_norm_config_synchronizes_every_encoder_bn():
  import keras  # pylint: disable=g-import-not-at-top
  import smpl_reference  # pylint: disable=g-import-not-at-top
  from hmr_tf.modeling import hmr_model  # pylint: disable=g-import-not-at-top
  model = hmr_model.HMRModel(
      smpl_reference.random_body_model(60, seed=0), tfx.mean_theta(),
      configs.ModelConfig(img_size=32, sync_batch_norm=True))
  bns = [l for l in model.encoder.layers
         if isinstance(l, keras.layers.BatchNormalization)]
  assert len(bns) > 30 and all(l.synchronized for l in bns)


@pytest.mark.slow  # about 2 minutes on 2 cores: three training runs
def test_checkpoints_resume_across_replica_counts(tmp_path):
  data_dir = tfx.write_tiny_data(str(tmp_path / 'data'))
  body = tfx.write_body_model(str(tmp_path / 'body.npz'))
  code, out = _run_script(_RESUME_SCRIPT, data_dir, str(tmp_path / 'run'),
                          body)
  assert code == 0 and 'RESUME_OK' in out, out[-4000:]
