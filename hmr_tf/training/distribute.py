"""Distribution strategies, mixed precision, worker roles and data sharding.

Three choices a run makes before building the model:

  * `make_strategy(name)`: which tf.distribute engine runs the train step.
    'default' (one device, no strategy), 'mirrored' (all GPUs of this
    machine, or its CPU), 'multi_worker' (MultiWorkerMirroredStrategy, the
    cluster read from the TF_CONFIG environment variable; create it at
    program start-up, before any other TensorFlow op) or 'tpu' (TPUStrategy
    through a TPUClusterResolver).
  * `set_precision_policy(name)`: the Keras global dtype policy the model
    is built under ('none' = float32, 'mixed_float16', 'mixed_bfloat16').
    HMRModel keeps float32 where precision matters (SMPL, losses, the
    regressor's Θ, the discriminator's scores) and wraps its optimizers in
    keras.optimizers.LossScaleOptimizer under mixed_float16.
  * `train_dataset(data_config, strategy)`: how each worker of a
    multi-worker run reads its part of the training data. Keras' `fit`
    distributes a tf.data dataset itself (per-replica batches of the global
    batch); with several input workers the data is sharded: FILE (each
    worker reads a disjoint subset of the shard files; cheap) when every
    dataset has at least one shard per worker, DATA otherwise (every worker
    reads everything and keeps every n-th batch; correct but reads n times
    the data).

Multi-worker runs. Every worker takes part in saving (variables may need
collective reads), but only the chief (`worker_role`: task type 'chief', or
worker 0 without a chief) writes into the model folder and the logs. When a
worker dies the others fail (collective timeout or TensorFlow's health
check, `PEER_ERRORS`) with WorkerFailureError; rerunning every worker
resumes from the chief's latest checkpoint. Checkpoints hold one copy of
each variable, so a run may resume with a different number of replicas or
workers.
"""

import json
import os
from typing import Dict, NamedTuple, Optional, Sequence, Tuple

import keras
import tensorflow as tf
from absl import logging

from hmr_tf import configs

STRATEGIES = configs.STRATEGIES
PRECISIONS = configs.MIXED_PRECISIONS

TF_CONFIG_EXAMPLE = (
    '{"cluster": {"worker": ["host0:12345", "host1:12345"]}, '
    '"task": {"type": "worker", "index": 0}}')


def parse_tf_config(text: Optional[str]) -> dict:
  """Validates the TF_CONFIG JSON of a multi-worker run.

  Args:
    text: the value of the TF_CONFIG environment variable (None if unset).

  Returns:
    The parsed dict.

  Raises:
    ValueError: unset, not JSON, or without a cluster of at least one worker
      and a task that belongs to it (the message names TF_CONFIG and shows
      the expected JSON).
  """
  expected = (f'Set the TF_CONFIG environment variable on every machine to '
              f'JSON like {TF_CONFIG_EXAMPLE} (the same "cluster" '
              f'everywhere, each machine its own "task" index; the first '
              f'worker, or a "chief" task if given, writes the checkpoints)')
  if not text:
    raise ValueError(f'strategy=multi_worker: TF_CONFIG is not set. '
                     f'{expected}.')
  try:
    config = json.loads(text)
  except json.JSONDecodeError as e:
    raise ValueError(f'TF_CONFIG: not valid JSON ({e}). {expected}.') from e
  if not isinstance(config, dict):
    raise ValueError(f'TF_CONFIG: expected a JSON object. {expected}.')
  cluster = config.get('cluster')
  task = config.get('task')
  if not isinstance(cluster, dict) or not (cluster.get('worker') or
                                           cluster.get('chief')):
    raise ValueError(f'TF_CONFIG: "cluster" must list the "worker" '
                     f'addresses (got {cluster!r}). {expected}.')
  if not isinstance(task, dict) or 'type' not in task or 'index' not in task:
    raise ValueError(f'TF_CONFIG: "task" must have "type" and "index" (got '
                     f'{task!r}). {expected}.')
  members = cluster.get(task['type'])
  if not isinstance(members, list):
    raise ValueError(f'TF_CONFIG: task type {task["type"]!r} is not a job '
                     f'of the cluster {sorted(cluster)}. {expected}.')
  index = task['index']
  if not isinstance(index, int) or not 0 <= index < len(members):
    raise ValueError(f'TF_CONFIG: task index {index!r} is outside the '
                     f'{len(members)} {task["type"]!r} task(s) of the '
                     f'cluster. {expected}.')
  return config


def _multi_worker(collective_timeout_s: float,
                  check_health_interval_s: Optional[float]):
  parse_tf_config(os.environ.get('TF_CONFIG'))
  options = tf.distribute.experimental.CommunicationOptions(
      timeout_seconds=collective_timeout_s or None)
  strategy = tf.distribute.MultiWorkerMirroredStrategy(
      communication_options=options)
  if check_health_interval_s:
    # How often the health-check thread pings the other workers; when one
    # is down it aborts the pending collectives with UnavailableError, so
    # the survivors stop instead of waiting forever. A private attribute of
    # CollectiveAllReduceExtended (30 s by default), read before each pause.
    extended = strategy.extended
    if hasattr(extended, '_check_health_interval'):
      extended._check_health_interval = float(check_health_interval_s)  # pylint: disable=protected-access
    else:
      logging.warning('This TensorFlow has no check-health interval to set; '
                      'keeping its default.')
  return strategy


def _tpu(tpu_address: str):
  # An empty address lets the resolver find a TPU from the environment (a
  # Cloud TPU VM, TPU_NAME); 'local' is a TPU VM's own chips.
  try:
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver(
        tpu=tpu_address or None)
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
  except (ValueError, RuntimeError, tf.errors.OpError) as e:
    raise RuntimeError(
        f'strategy=tpu: could not reach a TPU at tpu_address='
        f'{tpu_address!r} ({e}). Give the TPU name or grpc://host:8470 '
        f'address, or "local" on a TPU VM.') from e
  return tf.distribute.TPUStrategy(resolver)


def make_strategy(name: str, tpu_address: str = '',
                  collective_timeout_s: float = 0.0,
                  check_health_interval_s: Optional[float] = None,
                  devices: Optional[Sequence[str]] = None
                  ) -> tf.distribute.Strategy:
  """Builds the distribution strategy of a run.

  Args:
    name: 'default' (the current/default strategy: one device),
      'mirrored' (synchronous data parallelism over this machine's GPUs, or
      its CPU without GPUs), 'multi_worker' (over machines, cluster from
      TF_CONFIG) or 'tpu'.
    tpu_address: the TPU's name or grpc:// address for 'tpu' ('' = from the
      environment); must be empty for the other strategies.
    collective_timeout_s: multi_worker only: a collective (all-reduce,
      broadcast) that waits longer fails with DeadlineExceededError; 0 =
      wait forever. Leave room for the slowest step and for the first
      collective, which waits until every worker has started.
    check_health_interval_s: multi_worker only: period of TensorFlow's
      worker health check (None: TensorFlow's 30 s).
    devices: mirrored only: the devices to mirror over (default: all GPUs,
      else the CPU).

  Returns:
    The strategy. Build the model and optimizers inside `strategy.scope()`.

  Raises:
    ValueError: an unknown name, options that do not fit the name, or a
      missing/invalid TF_CONFIG for 'multi_worker'.
    RuntimeError: no TPU could be reached.
  """
  configs.check_choice('strategy', name, STRATEGIES)
  if tpu_address and name != 'tpu':
    raise ValueError(f'tpu_address={tpu_address!r} is only used with '
                     f'strategy=tpu, got strategy={name!r}')
  if devices is not None and name != 'mirrored':
    raise ValueError('devices: only for strategy=mirrored')
  if name == 'default':
    return tf.distribute.get_strategy()
  if name == 'mirrored':
    strategy = tf.distribute.MirroredStrategy(
        list(devices) if devices is not None else None)
  elif name == 'multi_worker':
    strategy = _multi_worker(collective_timeout_s, check_health_interval_s)
  else:
    strategy = _tpu(tpu_address)
  logging.info('Distribution: %s with %d replica(s) in sync.',
               type(strategy).__name__, strategy.num_replicas_in_sync)
  return strategy


def set_precision_policy(name: str) -> keras.DTypePolicy:
  """Sets the Keras global dtype policy; build the model afterwards.

  Args:
    name: 'none' (float32), 'mixed_float16' (GPUs; the model then scales
      its losses) or 'mixed_bfloat16' (TPUs, recent GPUs and CPUs).

  Returns:
    The global policy now in force.
  """
  configs.check_choice('mixed_precision', name, PRECISIONS)
  keras.mixed_precision.set_global_policy('float32' if name == 'none'
                                          else name)
  policy = keras.mixed_precision.global_policy()
  logging.info('Keras dtype policy: %s (compute %s, variables %s).',
               policy.name, policy.compute_dtype, policy.variable_dtype)
  return policy


# ---------------------------------------------------------------------------
# Worker roles and failures.


class WorkerFailureError(RuntimeError):
  """A multi-worker run lost contact with another worker."""


# What a collective op raises when a peer is gone: aborted by the health
# check (Unavailable), past CommunicationOptions.timeout_seconds
# (DeadlineExceeded), or cancelled/aborted as a consequence.
PEER_ERRORS = (tf.errors.UnavailableError, tf.errors.DeadlineExceededError,
               tf.errors.CancelledError, tf.errors.AbortedError)


def worker_role(strategy: tf.distribute.Strategy) -> Tuple[bool, str, int]:
  """(is_chief, task_type, task_id) from the strategy's cluster resolver.

  Single-machine strategies (no resolver, or no task type) are the chief.
  """
  resolver = getattr(strategy, 'cluster_resolver', None)
  task_type = getattr(resolver, 'task_type', None) if resolver else None
  task_id = getattr(resolver, 'task_id', None) if resolver else None
  if not task_type:
    return True, '', 0
  task_id = int(task_id or 0)
  if task_type == 'chief':
    return True, task_type, task_id
  cluster = resolver.cluster_spec().as_dict() if resolver else {}
  is_chief = task_type == 'worker' and task_id == 0 and 'chief' not in cluster
  return is_chief, task_type, task_id


# ---------------------------------------------------------------------------
# Input sharding.


def input_worker(strategy: tf.distribute.Strategy) -> Tuple[int, int]:
  """(input workers, this worker's index); (1, 0) without a cluster.

  Workers are numbered chief first (if the cluster has one), then the
  'worker' tasks in order.
  """
  resolver = getattr(strategy, 'cluster_resolver', None)
  if resolver is None:
    return 1, 0
  try:
    jobs = resolver.cluster_spec().as_dict()
  except (ValueError, RuntimeError):
    return 1, 0
  num_chief = len(jobs.get('chief', []))
  num_workers = num_chief + len(jobs.get('worker', []))
  if num_workers <= 1:
    return 1, 0
  task_type = getattr(resolver, 'task_type', None)
  task_id = int(getattr(resolver, 'task_id', None) or 0)
  index = 0 if task_type == 'chief' else num_chief + task_id
  return num_workers, index


def auto_shard_policy(files_per_source: Sequence[int],
                      num_workers: int) -> tf.data.experimental.AutoShardPolicy:
  """FILE when every source has at least one shard per worker, else DATA.

  Args:
    files_per_source: shard files of each dataset read by the pipeline (the
      image datasets and the mocap datasets).
    num_workers: input workers.

  Returns:
    The tf.data AutoShardPolicy.
  """
  if num_workers < 1:
    raise ValueError(f'num_workers: expected >= 1, got {num_workers}')
  if not files_per_source:
    raise ValueError('files_per_source: no datasets')
  if min(files_per_source) >= num_workers:
    return tf.data.experimental.AutoShardPolicy.FILE
  return tf.data.experimental.AutoShardPolicy.DATA


def set_auto_shard_policy(dataset: tf.data.Dataset,
                          policy: tf.data.experimental.AutoShardPolicy
                          ) -> tf.data.Dataset:
  """The dataset with `policy` as its tf.data auto-shard option."""
  options = tf.data.Options()
  options.experimental_distribute.auto_shard_policy = policy
  return dataset.with_options(options)


class ShardPlan(NamedTuple):
  """How the training data is split over the input workers.

  Attributes:
    policy: FILE (each worker reads its own shard files) or DATA (each
      worker reads everything and keeps its share of the batches).
    num_workers: input workers.
    index: this worker's index.
    files: {dataset name: shard files}.
  """
  policy: tf.data.experimental.AutoShardPolicy
  num_workers: int
  index: int
  files: Dict[str, int]


def shard_plan(data_config, strategy: tf.distribute.Strategy) -> ShardPlan:
  """Chooses FILE or DATA sharding for `data_config` under `strategy`."""
  # Imported here: the input pipeline is not needed by the rest.
  from hmr_tf.data import input_pipeline  # pylint: disable=g-import-not-at-top
  names = tuple(data_config.datasets) + tuple(data_config.mocap_datasets)
  files = {n: len(input_pipeline.list_shards(
      data_config.data_dir, n, data_config.train_split).files) for n in names}
  num_workers, index = input_worker(strategy)
  return ShardPlan(auto_shard_policy(list(files.values()), num_workers),
                   num_workers, index, files)


def train_dataset(data_config, strategy: tf.distribute.Strategy,
                  counter: Optional[tf.Variable] = None) -> tf.data.Dataset:
  """input_pipeline.train_dataset, sharded for the input workers.

  One worker: the dataset as is (Keras' `fit` splits each global batch
  over the local replicas). Several workers: FILE sharding when every
  dataset (image and mocap) has at least one shard file per worker, else
  DATA sharding. FILE is done by the pipeline itself (each worker lists
  only its files, `worker_shard`) with tf.data's auto-sharding OFF, because
  tf.data's FILE rewrite cannot see through the pipeline's mixing and
  indexing; DATA is tf.data's (every worker reads and decodes everything
  and keeps every n-th per-replica batch).

  Args:
    data_config: the configs.DataConfig (batch_size = global batch).
    strategy: the strategy `fit` distributes the dataset with.
    counter: where skipped corrupt records are counted.

  Returns:
    The training dataset of (batch, mocap) with its auto-shard option set.
  """
  from hmr_tf.data import input_pipeline  # pylint: disable=g-import-not-at-top
  plan = shard_plan(data_config, strategy)
  if plan.num_workers == 1:
    return input_pipeline.train_dataset(data_config, counter)
  logging.info('Input sharding over %d workers (this is worker %d): %s '
               '(shard files per dataset: %s).', plan.num_workers, plan.index,
               plan.policy.name, plan.files)
  if plan.policy == tf.data.experimental.AutoShardPolicy.FILE:
    dataset = input_pipeline.train_dataset(
        data_config, counter, worker_shard=(plan.num_workers, plan.index))
    return set_auto_shard_policy(dataset,
                                 tf.data.experimental.AutoShardPolicy.OFF)
  logging.warning('A dataset has fewer shard files than the %d workers: '
                  'every worker reads all data and keeps its share (DATA '
                  'sharding). Write at least %d shards per dataset to read '
                  'less.', plan.num_workers, plan.num_workers)
  dataset = input_pipeline.train_dataset(data_config, counter)
  return set_auto_shard_policy(dataset,
                               tf.data.experimental.AutoShardPolicy.DATA)


def check_global_batch(batch_size: int,
                       strategy: tf.distribute.Strategy) -> int:
  """The per-replica batch; the global batch must split evenly.

  Raises:
    ValueError: batch_size is not a multiple of the replica count.
  """
  replicas = strategy.num_replicas_in_sync
  if batch_size % replicas:
    raise ValueError(f'batch_size={batch_size} (the global batch) must be a '
                     f'multiple of the {replicas} replicas in sync')
  return batch_size // replicas
