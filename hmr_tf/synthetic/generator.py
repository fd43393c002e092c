"""The synthetic dataset: rendered bodies with exact labels, plus mocap.

`generate` (command line: `python -m datasets.synthetic`) writes, in the layout of the real converters (see hmr_tf/data/writer.py):
  DIR/synthetic_2d/     2D records (keypoints only), train and test splits
  DIR/synthetic_3d/     3D records (+ pose, shape, 3D joints; has_3d = 1)
  DIR/synthetic_mocap/  mocap records (pose, shape), train and test splits
  DIR/mean_params.npz   `pose` [72], `shape` [10]: the mean of the mocap
                        train split (the file hmr_tf.modeling.mean_params
                        reads). `shape` is the arithmetic mean of the betas;
                        the body joints of `pose` are the arithmetic mean of
                        the axis-angle vectors; the global rotation is the
                        chordal mean of the global rotation matrices
                        (projected back to a rotation), not a mean of
                        axis-angle vectors, which would wrap around at pi.
  DIR/synthetic_meta.json  what was rendered from which body model (always
                        says when the body is a stand-in, never real data).
                        Written last: its presence marks a complete dataset.

Each image example: a pose from the joint-limit prior (hmr_tf.synthetic.pose_prior,
crossing poses rejected), betas from a standard normal truncated to
|beta_i| <= 2, posed with the SMPL layer (in batches), rendered by
hmr_tf.synthetic.scene (camera, background, lighting, visibility rule).
Labels are exact: the 19 cocoplus keypoints projected by the same weak-
perspective camera as the mesh, the 14 LSP keypoints in metres in the camera
frame (the SMPL output frame after the global rotation; weak perspective has
no depth translation) as `mosh/gt3d`, and the pose and betas that made the
mesh. 2D and 3D datasets hold independent examples: `num_train` training
examples (the 3D set `num_train_3d` when given) and `num_test` test examples
each. The scene options (part colours, background; see
hmr_tf.synthetic.scene) and the pose prior's yaw range are recorded in
synthetic_meta.json.

Determinism: example i of a dataset and split draws everything from its own
seeds, `SeedSequence([seed, dataset id, split id, i])`, so records do not
depend on the batch size or on the number of worker processes, and the same
seed gives byte-identical records.
"""

import contextlib
import io
import json
import multiprocessing
import os
import sys
import time
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
from scipy import special
from scipy.spatial import transform
import tensorflow as tf

from hmr_tf import configs
from hmr_tf.data import schema
from hmr_tf.data import writer as writer_lib
from hmr_tf.files import atomic_io
from hmr_tf.geometry import crop as crop_lib
from hmr_tf.smpl import layer as layer_lib
from hmr_tf.smpl import lbs
from hmr_tf.smpl import model_io
from hmr_tf.synthetic import pose_prior
from hmr_tf.synthetic import scene as scene_lib

DATASET_2D = configs.SYNTHETIC_2D
DATASET_3D = configs.SYNTHETIC_3D
DATASET_MOCAP = configs.SYNTHETIC_MOCAP
META_FILE = 'synthetic_meta.json'
MEAN_PARAMS_FILE = 'mean_params.npz'
KINDS = ('2d', '3d', 'mocap')
SPLITS = ('train', 'test')
BETA_LIMIT = 2.0
NUM_SHAPE = schema.SHAPE_DIM

# Image datasets of at least this many examples pose their meshes under XLA
# (`_Poser`): its one-off compilation costs what ~4,000 bodies gain.
XLA_MIN_IMAGES = 4000

_DATASET_IDS = {DATASET_2D: 1, DATASET_3D: 2, DATASET_MOCAP: 3}
_SPLIT_IDS = {'train': 0, 'test': 1}
_LSP = schema.NUM_LSP_JOINTS


def example_seeds(seed: int, dataset: str, split: str, index: int):
  """(pose, shape, scene) SeedSequences of one example."""
  root = np.random.SeedSequence(
      [int(seed), _DATASET_IDS[dataset], _SPLIT_IDS[split], int(index)])
  return root.spawn(3)


def sample_betas(rng: np.random.Generator, num_betas: int) -> np.ndarray:
  """[num_betas] standard normal truncated to [-2, 2] (inverse CDF)."""
  lo, hi = special.ndtr(-BETA_LIMIT), special.ndtr(BETA_LIMIT)
  return special.ndtri(lo + (hi - lo) * rng.random(num_betas))


class _Poser:
  """Poses batches with the SMPL layer in compiled tf.functions.

  The crossing test needs the joints only (`joints_only`, any batch size);
  the accepted poses then get their mesh (`mesh`) in batches of a fixed
  size, `mesh_batch` rows padded with rest poses. With `jit` that is one
  XLA program, compiled once (about 2 s), whose fused skinning does not
  materialise a 3x4 transform per vertex and body: ~3x faster per body, so
  `generate` uses it for datasets of `XLA_MIN_IMAGES` images and more.
  """

  def __init__(self, body_model: model_io.BodyModel, mesh_batch: int = 64,
               jit: bool = False):
    if body_model.cocoplus_regressor is None:
      raise ValueError('body model: the synthetic dataset needs keypoints, '
                       'but the model has no cocoplus_regressor')
    self.smpl = layer_lib.SMPL(body_model)
    self.num_betas = min(NUM_SHAPE, body_model.num_betas)
    rest_joints = body_model.J_regressor @ body_model.v_template
    self.scale = pose_prior.body_scale(rest_joints)
    self.mesh_batch = int(mesh_batch)
    # One trace for every batch size (rejection rounds shrink the batch).
    signature = [tf.TensorSpec([None, schema.POSE_DIM], tf.float32),
                 tf.TensorSpec([None, self.num_betas], tf.float32)]
    self._joints_fn = tf.function(self._joints, input_signature=signature)
    fixed = [tf.TensorSpec([self.mesh_batch, schema.POSE_DIM], tf.float32),
             tf.TensorSpec([self.mesh_batch, self.num_betas], tf.float32)]
    self._mesh_fn = tf.function(self._mesh, input_signature=fixed,
                                jit_compile=bool(jit))
    # The keypoints outside XLA: fused into the same program, the regressor
    # made XLA recompute the skinning (2.5x slower than both apart).
    self._keypoints_fn = tf.function(
        lambda vertices: lbs.regress_joints(vertices,
                                            self.smpl.cocoplus_regressor))

  def _mesh(self, pose, betas):
    return self.smpl(pose, betas).vertices

  def _joints(self, pose, betas):
    return self.smpl.keypoints_only(pose, betas).joints

  def _inputs(self, pose, betas):
    return (tf.constant(pose, tf.float32),
            tf.constant(betas[:, :self.num_betas], tf.float32))

  def joints_only(self, pose: np.ndarray, betas: np.ndarray):
    """(pose [B, 72], betas [B, 10]) -> (joints [B, 24, 3], ())."""
    return self._joints_fn(*self._inputs(pose, betas)).numpy(), ()

  def mesh(self, pose: np.ndarray, betas: np.ndarray):
    """(pose [B, 72], betas [B, 10]) -> (vertices [B, N, 3], keypoints)."""
    vertices, keypoints = [], []
    for start in range(0, len(pose), self.mesh_batch):
      rows = slice(start, start + self.mesh_batch)
      count = len(pose[rows])
      pad = ((0, self.mesh_batch - count), (0, 0))
      v = self._mesh_fn(*self._inputs(np.pad(pose[rows], pad),
                                      np.pad(betas[rows], pad)))
      vertices.append(v.numpy()[:count])
      keypoints.append(self._keypoints_fn(v).numpy()[:count])
    return np.concatenate(vertices), np.concatenate(keypoints)


class _Timer:
  """Accumulates seconds per stage."""

  def __init__(self):
    self.seconds: Dict[str, float] = {}

  def add(self, stage: str, seconds: float) -> None:
    self.seconds[stage] = self.seconds.get(stage, 0.0) + seconds


def _pose_batch(poser: _Poser, dataset: str, split: str,
                indices: Sequence[int], seed: int,
                prior: pose_prior.PosePriorConfig, mesh: bool = True):
  """Poses, betas [B, 10], vertices, keypoints and scene seeds of a batch.

  Without `mesh` (mocap) vertices and keypoints are None: the crossing test
  needs the joints only.
  """
  seeds = [example_seeds(seed, dataset, split, i) for i in indices]
  betas = np.zeros([len(indices), NUM_SHAPE])
  for row, (_, shape_seed, _) in enumerate(seeds):
    betas[row, :poser.num_betas] = sample_betas(
        np.random.default_rng(shape_seed), poser.num_betas)
  rngs = [np.random.default_rng(s[0]) for s in seeds]
  poses, _, _ = pose_prior.sample_valid(rngs, poser.joints_only, betas,
                                        poser.scale, prior)
  if not mesh:
    return poses, betas, None, None, [s[2] for s in seeds]
  vertices, keypoints = poser.mesh(poses, betas)
  return poses, betas, vertices, keypoints, [s[2] for s in seeds]


def _image_example(dataset: str, split: str, index: int, result,
                   is_3d: bool, pose, betas, keypoints3d, img_size: int):
  kwargs = {}
  if is_3d:
    kwargs = dict(pose=pose, shape=betas, joints3d=keypoints3d[:_LSP])
  return schema.make_image_example(
      result.jpeg, img_size, img_size, f'{dataset}/{split}/{index:07d}.jpg',
      result.center, result.keypoints, scale=result.scale, dataset=dataset,
      **kwargs)


def _write_images(output_dir: str, dataset: str, counts: Dict[str, int],
                  poser: _Poser, renderer: scene_lib.SceneRenderer,
                  pool, seed: int, img_size: int, shard_size: int,
                  batch_size: int, prior: pose_prior.PosePriorConfig,
                  extra: dict, timer: _Timer) -> dict:
  """Renders and writes one image dataset (2D or 3D), double-buffered.

  While the worker pool renders batch k, this process poses batch k + 1.
  `pool`: None (render here) or a `_RenderPool`.
  """
  is_3d = dataset == DATASET_3D
  kind = schema.KIND_3D if is_3d else schema.KIND_2D
  batches = [(split, list(range(start, min(start + batch_size, n))))
             for split in SPLITS for n in [counts[split]]
             for start in range(0, n, batch_size)]

  def pose(batch):
    start = time.perf_counter()
    split, indices = batch
    out = _pose_batch(poser, dataset, split, indices, seed, prior)
    timer.add('posing', time.perf_counter() - start)
    return out

  def submit(posed, k):
    """Starts rendering batch k: a list of results, or the pool's handle."""
    poses, betas, vertices, keypoints, scene_seeds = posed
    if pool is None:
      return [renderer.render(*job)
              for job in zip(vertices, keypoints, scene_seeds)]
    # The meshes go through the pool's shared block (slot k % 2: batch k - 2,
    # the slot's last user, has been collected before batch k is posed);
    # the jobs carry only their slot and row.
    slot = k % len(pool.meshes)
    pool.meshes[slot, :len(vertices)] = vertices
    jobs = [(slot, row, kp, seed)
            for row, (kp, seed) in enumerate(zip(keypoints, scene_seeds))]
    return pool.pool.map_async(scene_lib.render_shared_in_worker, jobs,
                               chunksize=4)

  with writer_lib.ShardedWriter(output_dir, dataset, kind,
                                shard_size=shard_size, extra=extra) as w:
    for split in SPLITS:
      w.add_split(split)
    pending = None
    for k in range(len(batches) + 1):
      nxt = None
      if k < len(batches):
        posed = pose(batches[k])
        nxt = (batches[k], posed, submit(posed, k))
      if pending is not None:
        (split, indices), posed, handle = pending
        results = handle if isinstance(handle, list) else handle.get()
        start = time.perf_counter()
        poses, betas, _, keypoints, _ = posed
        for row, (index, result) in enumerate(zip(indices, results)):
          for stage, seconds in result.timings.items():
            timer.add(stage, seconds)
          w.write(split, _image_example(dataset, split, index, result, is_3d,
                                        poses[row], betas[row],
                                        keypoints[row], img_size))
        timer.add('writing', time.perf_counter() - start)
      pending = nxt
  return w.summary()


@contextlib.contextmanager
def _main_module_hidden():
  """Keeps spawned workers from re-importing the `__main__` module.

  A spawned process imports the parent's main module first (by name or
  path). Here that module is this one or a script that imports TensorFlow,
  which would cost each worker seconds and memory for nothing: the workers
  run only `synthetic_scene` (NumPy + OpenCV), which they import by name.
  """
  main = sys.modules['__main__']
  saved = {k: main.__dict__[k] for k in ('__spec__', '__file__')
           if k in main.__dict__}
  try:
    main.__spec__ = None
    main.__dict__.pop('__file__', None)
    yield
  finally:
    main.__dict__.pop('__spec__', None)
    main.__dict__.update(saved)


# What a spawned rendering worker reads at start-up: one BLAS/OpenMP thread
# each (NumPy's BLAS and OpenMP read these when they load), and glibc's
# malloc told to keep freed memory (256 MB thresholds): each rendering
# allocates and frees a few MB of temporaries, which by default went back to
# the system and faulted in again, ~900 page faults an image (11 of the
# workers' 52 CPU seconds in the quickstart's data stage went to the kernel;
# 0.8 with these). Other C libraries ignore the two MALLOC_ variables.
_WORKER_ENV = {'OMP_NUM_THREADS': '1', 'OPENBLAS_NUM_THREADS': '1',
               'MKL_NUM_THREADS': '1',
               'MALLOC_MMAP_THRESHOLD_': str(256 << 20),
               'MALLOC_TRIM_THRESHOLD_': str(256 << 20)}


@contextlib.contextmanager
def _worker_environment():
  """Spawned workers start with `_WORKER_ENV` (variables the user set kept).

  The workers already fill every core between them (one process per core),
  and this process poses the next batch meanwhile: a multi-threaded BLAS
  call in a worker would only wait on threads competing for the same cores.
  """
  saved = {k: os.environ.get(k) for k in _WORKER_ENV}
  try:
    for key, value in _WORKER_ENV.items():
      os.environ.setdefault(key, value)
    yield
  finally:
    for key, value in saved.items():
      if value is None:
        os.environ.pop(key, None)
      else:
        os.environ[key] = value


class _RenderPool:
  """Rendering worker processes and the shared block the meshes go through.

  Sending each job's mesh through the pool's pipe (pickled, 160 KB for the
  MakeHuman body) cost this process and the workers ~10 CPU seconds in the
  quickstart's data stage; the meshes of two batches (the one rendering and
  the next) are written into `meshes`, a float32 [2, batch, N, 3] block the
  workers map at start-up, and a job names only its slot and row.
  """

  def __init__(self, num_workers: int, renderer: scene_lib.SceneRenderer,
               batch_size: int, num_vertices: int):
    # 'spawn': forking a process that already runs TensorFlow is unsafe.
    context = multiprocessing.get_context('spawn')
    shape = (2, int(batch_size), int(num_vertices), 3)
    block = context.RawArray('f', int(np.prod(shape)))
    self.meshes = np.frombuffer(block, np.float32).reshape(shape)
    with _main_module_hidden(), _worker_environment():
      self.pool = context.Pool(num_workers, initializer=scene_lib.init_worker,
                               initargs=(renderer, block, shape))
    # Waits until every worker has started (imports take a few seconds).
    self.pool.map(scene_lib.worker_ready, range(num_workers), chunksize=1)

  def close(self):
    self.pool.close()
    self.pool.join()


def _rotation_mean(rotvecs: np.ndarray) -> np.ndarray:
  """Chordal mean of [M, 3] axis-angle rotations -> [3] axis-angle."""
  mean = transform.Rotation.from_rotvec(rotvecs).as_matrix().mean(axis=0)
  u, _, vt = np.linalg.svd(mean)
  rot = u @ vt
  if np.linalg.det(rot) < 0:
    rot = u @ np.diag([1.0, 1.0, -1.0]) @ vt
  return transform.Rotation.from_matrix(rot).as_rotvec()


def _write_mocap(output_dir: str, counts: Dict[str, int], poser: _Poser,
                 seed: int, shard_size: int, batch_size: int,
                 prior: pose_prior.PosePriorConfig, extra: dict,
                 timer: _Timer):
  """Writes the mocap dataset; returns (sidecar, mean pose, mean shape)."""
  train_poses, train_betas = [], []
  with writer_lib.ShardedWriter(output_dir, DATASET_MOCAP, schema.KIND_MOCAP,
                                shard_size=shard_size, extra=extra) as w:
    for split in SPLITS:
      w.add_split(split)
      for start in range(0, counts[split], batch_size):
        indices = range(start, min(start + batch_size, counts[split]))
        t0 = time.perf_counter()
        poses, betas, _, _, _ = _pose_batch(poser, DATASET_MOCAP, split,
                                            indices, seed, prior, mesh=False)
        t1 = time.perf_counter()
        for row in range(len(indices)):
          w.write(split, schema.make_mocap_example(poses[row], betas[row]))
        timer.add('posing', t1 - t0)
        timer.add('writing', time.perf_counter() - t1)
        if split == 'train':
          train_poses.append(poses)
          train_betas.append(betas)
  if not train_poses:
    raise ValueError('num_mocap: the mean parameters need at least one mocap '
                     'training example')
  poses = np.concatenate(train_poses)
  mean_pose = poses.mean(axis=0)
  mean_pose[:3] = _rotation_mean(poses[:, :3])
  return w.summary(), mean_pose, np.concatenate(train_betas).mean(axis=0)


def write_mean_params(path: str, pose: np.ndarray, shape: np.ndarray) -> None:
  """Writes `pose` [72] and `shape` [10] as .npz (hmr_tf.files.atomic_io)."""
  pose = np.asarray(pose, np.float64).reshape(-1)
  shape = np.asarray(shape, np.float64).reshape(-1)
  if pose.shape != (schema.POSE_DIM,) or shape.shape != (NUM_SHAPE,):
    raise ValueError(f'{path}: expected pose [72] and shape [10], got '
                     f'{pose.shape} and {shape.shape}')
  buf = io.BytesIO()
  np.savez(buf, pose=pose, shape=shape)
  atomic_io.write_bytes_atomic(path, buf.getvalue())


def generate(output_dir: str,
             num_train: int,
             num_test: int,
             num_mocap: Optional[int],
             body_model: model_io.BodyModel,
             img_size: int = 224,
             seed: int = 0,
             num_workers: int = 0,
             shard_size: int = writer_lib.DEFAULT_SHARD_SIZE,
             mocap_shard_size: int = writer_lib.DEFAULT_MOCAP_SHARD_SIZE,
             batch_size: int = 64,
             kinds: Sequence[str] = KINDS,
             prior: pose_prior.PosePriorConfig = pose_prior.PosePriorConfig(),
             scene: scene_lib.SceneConfig = scene_lib.SceneConfig(),
             timings: Optional[Dict[str, float]] = None,
             num_train_3d: Optional[int] = None) -> dict:
  """Writes the synthetic dataset (see the module docstring).

  Args:
    output_dir: root output folder.
    num_train: training examples of each image dataset (2D and 3D).
    num_test: test examples of each image dataset, and of the mocap set.
    num_mocap: mocap training examples; None = max(1000, 4 * num_train).
    body_model: the body to render (a stand-in or a real SMPL file with a
      cocoplus regressor).
    img_size: S, the side of the rendered (and stored) images.
    seed: the dataset seed.
    num_workers: processes rendering in parallel; 0 renders in this process.
    shard_size: records per image shard.
    mocap_shard_size: records per mocap shard.
    batch_size: examples posed together.
    kinds: which of '2d', '3d', 'mocap' to write ('mocap' also writes the
      mean parameters).
    prior: the pose prior's global-rotation options.
    scene: camera, lighting and visibility options.
    timings: optional dict that receives seconds per stage ('posing',
      'rendering', 'jpeg', 'writing', and 'startup' of the worker pool);
      rendering and JPEG times are summed over worker processes.
    num_train_3d: training examples of the 3D dataset; None: `num_train`.

  Returns:
    The content written to synthetic_meta.json.
  """
  if num_train_3d is None:
    num_train_3d = num_train
  for name, value in (('num_train', num_train), ('num_test', num_test),
                      ('num_train_3d', num_train_3d)):
    if value < 0:
      raise ValueError(f'{name}: expected >= 0, got {value}')
  if num_mocap is None:
    num_mocap = max(1000, 4 * num_train)
  if num_mocap < 0:
    raise ValueError(f'num_mocap: expected >= 0, got {num_mocap}')
  unknown = set(kinds) - set(KINDS)
  if unknown:
    raise ValueError(f'kinds: unknown {sorted(unknown)}; expected some of '
                     f'{KINDS}')
  if batch_size <= 0 or num_workers < 0:
    raise ValueError(f'batch_size > 0 and num_workers >= 0 expected, got '
                     f'{batch_size}, {num_workers}')
  os.makedirs(output_dir, exist_ok=True)
  meta_path = os.path.join(output_dir, META_FILE)
  if os.path.exists(meta_path):
    os.remove(meta_path)  # Marks completion: absent while (re)writing.
  name = body_model.metadata.get('name', 'unnamed body model')
  extra = {'synthetic': True, 'body_model': name,
           'standin': body_model.is_standin, 'img_size': int(img_size),
           'seed': int(seed)}
  timer = _Timer()
  counts = {DATASET_2D: {'train': int(num_train), 'test': int(num_test)},
            DATASET_3D: {'train': int(num_train_3d), 'test': int(num_test)}}
  sidecars = {}

  image_sets = [d for k, d in (('2d', DATASET_2D), ('3d', DATASET_3D))
                if k in kinds]
  num_images = sum(sum(counts[d].values()) for d in image_sets)
  poser = _Poser(body_model, mesh_batch=batch_size,
                 jit=num_images >= XLA_MIN_IMAGES)
  if image_sets:
    renderer = scene_lib.SceneRenderer(
        body_model.faces, body_model.weights, body_model.v_template,
        body_model.cocoplus_regressor, img_size, scene)
    pool = None
    if num_workers > 0:
      start = time.perf_counter()
      pool = _RenderPool(num_workers, renderer, batch_size,
                         body_model.num_vertices)
      timer.add('startup', time.perf_counter() - start)
    try:
      for dataset in image_sets:
        sidecars[dataset] = _write_images(
            output_dir, dataset, counts[dataset], poser, renderer, pool, seed,
            img_size, shard_size, batch_size, prior, extra, timer)
    finally:
      if pool is not None:
        pool.close()

  mean_params = None
  if 'mocap' in kinds:
    mocap_counts = {'train': int(num_mocap), 'test': int(num_test)}
    sidecars[DATASET_MOCAP], mean_pose, mean_shape = _write_mocap(
        output_dir, mocap_counts, poser, seed, mocap_shard_size, batch_size,
        prior, extra, timer)
    mean_params = os.path.join(output_dir, MEAN_PARAMS_FILE)
    write_mean_params(mean_params, mean_pose, mean_shape)

  meta = {
      'note': ('Synthetic data rendered from the body model named below. It '
               'is not real data' +
               ('; the body model is a STAND-IN, not the licensed SMPL model, '
                'so results on it say nothing about SMPL.'
                if body_model.is_standin else '.')),
      'body_model': name,
      'standin': body_model.is_standin,
      'num_vertices': int(body_model.num_vertices),
      'img_size': int(img_size),
      'seed': int(seed),
      'datasets': {d: {s: info['num_examples']
                       for s, info in sc['splits'].items()}
                   for d, sc in sidecars.items()},
      'mean_params': MEAN_PARAMS_FILE if mean_params else None,
      'image_scale': crop_lib.BASE_CROP_SIZE / img_size,
      'scene': scene_options(scene, prior),
  }
  atomic_io.write_json_atomic(meta_path, meta)
  if timings is not None:
    timings.update(timer.seconds)
  return meta


def scene_and_prior(synthetic: configs.SyntheticConfig
                    ) -> Tuple[scene_lib.SceneConfig, pose_prior.PosePriorConfig]:
  """The scene and pose-prior options of a run's synthetic configuration."""
  return (scene_lib.SceneConfig(part_colors=synthetic.part_colors,
                                background=synthetic.background,
                                antialias=synthetic.antialias),
          pose_prior.PosePriorConfig(yaw_max_deg=synthetic.yaw_max_deg))


def scene_options(scene: scene_lib.SceneConfig,
                  prior: pose_prior.PosePriorConfig) -> dict:
  """The options that change what the images show, as recorded in the meta."""
  return {'part_colors': scene.part_colors, 'background': scene.background,
          'yaw_max_deg': float(prior.yaw_max_deg),
          'antialias': bool(scene.antialias)}


def read_meta(output_dir: str) -> Optional[dict]:
  """synthetic_meta.json's content, or None when the dataset is incomplete."""
  path = os.path.join(output_dir, META_FILE)
  if not os.path.exists(path):
    return None
  with open(path, 'r', encoding='utf-8') as f:
    return json.load(f)
