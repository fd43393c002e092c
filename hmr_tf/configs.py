"""Every option of a run, its choices, default and bounds, written once.

Each stage's options are a frozen dataclass here (DataConfig, ModelConfig,
TrainConfig, EvalConfig, ...); the stage libraries import them from this
module. A field set by a command-line flag is declared with `flag_field`: its
metadata holds the flag's name, help text, bounds and choices, and
`hmr_tf.flags` defines the flags from it. Fields that no flag sets (paths
derived from --output_dir, values computed from other flags, values a stage
fills in) are declared with `derived_field`.

`from_flags` is the only reader of FLAGS (called once, in `main`): it builds
each dataclass from its flag fields, plus a few explicit derived values.

This module imports neither TensorFlow nor NumPy, so that the flags, the
converters' and the benchmarks' command lines can read the choice lists
without loading them.
"""

import dataclasses
import os
import typing
from typing import Any, Iterator, Optional, Tuple

# --- Choice lists (the first of each is the default where it has one) -------
MODES = ('quickstart', 'body_model', 'data', 'train', 'eval', 'export', 'demo',
         'import_original')
BODY_MODELS = ('makehuman', 'standin')  # hmr_tf.smpl.body_models
RESNET50_V2 = 'resnet50v2'
RESNET_V2_SMALL = 'resnet_v2_small'
ENCODERS = (RESNET50_V2, RESNET_V2_SMALL)  # hmr_tf.modeling.encoder
LR_SCHEDULES = ('constant', 'cosine')  # hmr_tf.modeling.hmr_model
IEF_SUPERVISION = ('last', 'all')  # hmr_tf.modeling.hmr_model
H36M_PROTOCOLS = ('p1', 'p2_original', 'p2_all_cameras_pa')
NONFINITE_POLICIES = ('stop', 'skip')  # hmr_tf.training.loop
PROGRESS_MODES = ('auto', 'bar', 'epoch', 'none')
STRATEGIES = ('default', 'mirrored', 'multi_worker', 'tpu')
MIXED_PRECISIONS = ('none', 'mixed_float16', 'mixed_bfloat16')
EXPORT_PRECISIONS = ('float32', 'bfloat16', 'float16')
EXPORT_JIT_COMPILE = ('auto', 'none', 'head', 'all')
# Export XLA 'auto': the whole model compiled for batches up to this size,
# the head only above it (measured, issue 26: XLA's whole-model graph beat
# oneDNN's encoder at batches 1-8 on AVX2 and AVX-512 CPUs and lost or tied
# at 32).
EXPORT_AUTO_XLA_MAX_BATCH = 8
EXPORT_FORMATS = ('saved_model', 'tflite')  # hmr_tf.inference.export, tflite_export
TFLITE_QUANTIZATIONS = ('float16', 'dynamic_range')  # tflite_export
PART_COLORS = ('random', 'fixed')  # hmr_tf.synthetic.scene
BACKGROUNDS = ('clutter', 'plain')
# A keypoint label outside the crop window: kept visible (the original's
# input pipeline) or made invisible.
KEYPOINTS_OUTSIDE_CROP = ('keep', 'drop')  # hmr_tf.data.parser
# The synthetic datasets (hmr_tf.synthetic.generator) the quickstart writes
# and trains on.
SYNTHETIC_2D = 'synthetic_2d'
SYNTHETIC_3D = 'synthetic_3d'
SYNTHETIC_MOCAP = 'synthetic_mocap'
QUICKSTART_DATASETS = (SYNTHETIC_2D, SYNTHETIC_3D)
QUICKSTART_MOCAP_DATASETS = (SYNTHETIC_MOCAP,)
# JPEG quality of every image record (tf.io.encode_jpeg's default, as the
# original converters): the converters and the synthetic scenes.
JPEG_QUALITY = 95


def check_choice(name: str, value: Any, choices: Tuple) -> None:
  """Raises ValueError naming `name` unless `value` is one of `choices`."""
  if value not in choices:
    raise ValueError(f'{name}: expected one of {choices}, got {value!r}')


# --- Shared bounds ----------------------------------------------------------
MIN_IMG_SIZE = 32  # The smallest network input side (--img_size).
# The fewest vertices hmr_tf.smpl.standin.build accepts as a target (its
# coarsest mesh, one subdivision level, has 1682 vertices: a smaller target
# gets that one).
STANDIN_MIN_VERTICES = 100
# The pose prior's yaw range, in degrees (hmr_tf.synthetic.pose_prior).
YAW_MAX_DEG_BOUNDS = (0.0, 180.0)

# --- The web demo (hmr_tf.web) -----------------------------------------------
# Loopback by default: --host=0.0.0.0 exposes the page on purpose.
WEB_HOST = '127.0.0.1'
WEB_PORT = 7860
# Uploads over these limits get a message instead of a run: the file's size
# (checked by the server before the upload is kept) and its pixel count (read
# from the header before the image is decoded: a small file can still claim
# a huge image).
WEB_MAX_UPLOAD_MB = 25
WEB_MAX_MEGAPIXELS = 40.0
# Requests waiting in gradio's queue beyond the one running (more are told
# the queue is full rather than dropped silently).
WEB_QUEUE_SIZE = 32

# --- Dataset names the evaluation treats specially ---------------------------
PW3D_DATASET = '3dpw'  # hmr_tf.evaluation.pw3d_protocol
MPI_INF_3DHP_TEST_DATASET = 'mpi_inf_3dhp_test'  # mpi_inf_3dhp_protocol


# ---------------------------------------------------------------------------
# Field declarations.

_FLAG = 'hmr_tf_flag'  # Metadata key of a flag field's FlagSpec.
_DERIVED = 'hmr_tf_derived'  # Metadata key of a field no flag sets.
_SAME = object()  # flag_default not given: the field's default.


@dataclasses.dataclass(frozen=True)
class FlagSpec:
  """How one dataclass field maps to a command-line flag.

  Attributes:
    name: the flag's name; None: the field's name.
    help: the flag's help text; None for a field that reads a flag another
      field defines (see `shared_flag`).
    lower_bound, upper_bound: the flag's bounds (numeric flags).
    choices: the allowed values (an enum flag).
    default: the flag's default when it differs from the field's (e.g. the
      field's None spelled 0 or an empty list on the command line);
      `_SAME` otherwise.
  """
  name: Optional[str]
  help: Optional[str]
  lower_bound: Any = None
  upper_bound: Any = None
  choices: Optional[Tuple[str, ...]] = None
  default: Any = _SAME

  @property
  def defines(self) -> bool:
    """Whether this field defines the flag (else it only reads it)."""
    return self.help is not None


def flag_field(default, help, *, name=None,  # pylint: disable=redefined-builtin
               lower_bound=None, upper_bound=None, choices=None,
               flag_default=_SAME):
  """A dataclass field set by the flag `name` (default: the field's name).

  Args:
    default: the field's default, and the flag's unless `flag_default`.
    help: the flag's help text.
    name: the flag's name when it is not the field's.
    lower_bound, upper_bound: the flag's bounds.
    choices: the allowed values: the flag is an enum.
    flag_default: the flag's default, where the library's default differs
      (e.g. an evaluation library default vs. the command line's).

  Returns:
    A `dataclasses.field`.
  """
  spec = FlagSpec(name=name, help=help, lower_bound=lower_bound,
                  upper_bound=upper_bound,
                  choices=tuple(choices) if choices is not None else None,
                  default=flag_default)
  return dataclasses.field(default=default, metadata={_FLAG: spec})


def shared_flag(owner, field_name: str):
  """A field that reads the flag `owner.field_name` defines.

  Args:
    owner: a dataclass defined above, whose field defines the flag.
    field_name: that field's name.

  Returns:
    A `dataclasses.field` with the owner's default.
  """
  owned = _field(owner, field_name)
  spec = owned.metadata[_FLAG]
  return dataclasses.field(
      default=owned.default,
      metadata={_FLAG: FlagSpec(name=spec.name or field_name, help=None)})


def derived_field(default=dataclasses.MISSING):
  """A field no flag sets: `from_flags` derives it, or a stage fills it in."""
  return dataclasses.field(default=default, metadata={_DERIVED: True})


def _field(cls, name: str) -> dataclasses.Field:
  return next(f for f in dataclasses.fields(cls) if f.name == name)


def flag_spec(field: dataclasses.Field) -> Optional[FlagSpec]:
  """The field's FlagSpec, or None for a derived field."""
  return field.metadata.get(_FLAG)


def is_derived(field: dataclasses.Field) -> bool:
  return bool(field.metadata.get(_DERIVED))


def flag_name(field: dataclasses.Field) -> str:
  return flag_spec(field).name or field.name


def flag_default(field: dataclasses.Field):
  """The default of the flag behind `field`."""
  spec = flag_spec(field)
  return field.default if spec.default is _SAME else spec.default


def flag_kind(field: dataclasses.Field) -> str:
  """'enum', 'list', 'boolean', 'integer', 'float' or 'string'.

  From the field's type (Optional[X] as X) and its choices.
  """
  if flag_spec(field).choices is not None:
    return 'enum'
  kind = field.type
  args = typing.get_args(kind)
  if typing.get_origin(kind) is typing.Union:
    kind = next(a for a in args if a is not type(None))
  if typing.get_origin(kind) is tuple:
    return 'list'
  return {bool: 'boolean', int: 'integer', float: 'float',
          str: 'string'}[kind]


# ---------------------------------------------------------------------------
# The stages' options.


@dataclasses.dataclass(frozen=True)
class DataConfig:
  """Options of the input pipeline (the paper's values by default).

  Attributes:
    data_dir: root holding `<dataset>/<split>_NNNNN.tfrecord` shards and the
      `<dataset>/<dataset>_meta.json` sidecars.
    datasets: 2D and 3D image datasets mixed for training (the paper's six).
    dataset_weights: one sampling weight per dataset, or None for the
      original's scheme: half of every batch from the 3D datasets and half
      from the 2D ones, within each group proportional to the number of
      examples (from the sidecars).
    mocap_datasets: mocap (pose, shape) datasets for the discriminator,
      sampled in proportion to their sizes.
    train_split: split name used for training and for mocap.
    batch_size: B, images per batch (the paper used 64).
    num_stage: IEF iterations; the mocap batch has num_stage x B examples.
    img_size: S, side of the network input.
    base_crop_size: side of the crop window at scale 1 in stored pixels.
    scale_min, scale_max: range of the random scale factor.
    trans_max: range of the random centre jitter (+-, whole pixels at
      scale 1: integers in [-trans_max, trans_max - 1], as the original).
    flip_prob: probability of the horizontal flip.
    keypoints_outside_crop: a visible keypoint whose label falls outside the
      crop: 'keep' it visible (the original) or 'drop' it (invisible).
    shuffle_buffer: records in each dataset's shuffle buffer.
    seed: seed of every random choice.
    deterministic: produce elements in a deterministic order (otherwise
      tf.data may reorder parallel work for throughput).
    num_parallel_calls: parallelism of decode + parse (-1 = autotune).
    cycle_length: shards read at once per dataset (-1 = autotune).
    skip_corrupt_records: skip (and count) corrupt or truncated shards'
      unreadable records instead of stopping with an error.
    cache_crops: keep each training image's crop and labels in memory after
      the first pass (each dataset then reshuffled whole every pass), so
      later passes neither read, decode nor crop. Needs no augmentation
      (scale_min == scale_max, trans_max 0, flip_prob 0: every pass would
      crop the same) and memory for the crops (S x S x 3 float32 each:
      0.45 GB for the quickstart's 9,000 64-px crops). The decoded mocap
      samples are kept the same way (82 floats each).
  """
  data_dir: str = derived_field('')
  datasets: Tuple[str, ...] = flag_field(
      ('lsp', 'lsp_ext', 'mpii', 'h36m', 'coco', 'mpi_inf_3dhp'),
      'Image datasets mixed for training (folder names under --data_dir).')
  dataset_weights: Optional[Tuple[float, ...]] = flag_field(
      None,
      'One sampling weight per --datasets entry. Empty: the original scheme, '
      'half of each batch from the 3D datasets and half from the 2D ones, '
      'each group in proportion to the datasets\' sizes.', flag_default=())
  mocap_datasets: Tuple[str, ...] = flag_field(
      ('CMU', 'H3.6', 'jointLim'),
      'Mocap (pose, shape) datasets for the discriminator.')
  train_split: str = flag_field('train', 'Split used for training.')
  batch_size: int = flag_field(
      64, 'Global batch size (images per step over all replicas).',
      lower_bound=1)
  num_stage: int = flag_field(3, 'Iterative error feedback iterations.',
                              lower_bound=1)
  img_size: int = flag_field(224, 'Side S of the network input crops.',
                             lower_bound=MIN_IMG_SIZE)
  base_crop_size: float = flag_field(
      224.0,
      'Crop window side at record scale 1, in stored pixels (records are '
      'scaled so the person is ~150 px tall). Saved with the model: eval, '
      'export and the demo use the trained model\'s and refuse a different '
      'explicit value.', lower_bound=1.0)
  scale_min: float = flag_field(0.8, 'Smallest random scale factor.',
                                lower_bound=0.01)
  scale_max: float = flag_field(1.23, 'Largest random scale factor.',
                                lower_bound=0.01)
  trans_max: float = flag_field(
      20.0, 'Random centre jitter range: whole pixels at scale 1, drawn '
      'uniformly from [-trans_max, trans_max - 1] as the original did (a '
      'fraction is dropped).', lower_bound=0.0)
  flip_prob: float = flag_field(0.5, 'Probability of the horizontal flip.',
                                lower_bound=0.0, upper_bound=1.0)
  keypoints_outside_crop: str = flag_field(
      'keep', 'A visible keypoint outside the crop: keep it visible (the '
      'original\'s rule: the loss still pulls the prediction there) or drop '
      'it (invisible).', choices=KEYPOINTS_OUTSIDE_CROP)
  shuffle_buffer: int = flag_field(
      2000, 'Records in each dataset\'s shuffle buffer.', lower_bound=1)
  seed: int = flag_field(0, 'Seed of every random choice.', lower_bound=0)
  deterministic: bool = flag_field(
      True, 'Produce batches in a deterministic order.')
  num_parallel_calls: int = flag_field(
      -1, 'Parallel decode+parse calls (-1: autotune).', lower_bound=-1)
  cycle_length: int = flag_field(
      -1, 'Shards read at once per dataset (-1: autotune).', lower_bound=-1)
  skip_corrupt_records: bool = flag_field(
      False,
      'Read damaged (cut or corrupt) shards as far as they go and count the '
      'records lost (logged once per shard) instead of stopping with an error '
      'that names the file.')
  cache_crops: bool = flag_field(
      False,
      'Keep the training crops (and the decoded mocap samples) in memory '
      'after the first pass (needs no augmentation: --scale_min=--scale_max, '
      '--trans_max=0, --flip_prob=0).')

  @property
  def augments(self) -> bool:
    """Whether training crops differ between passes over a record."""
    return (self.scale_min != self.scale_max or self.trans_max > 0 or
            self.flip_prob > 0)

  def __post_init__(self):
    # Tuples keep the dataclass hashable and immutable even when lists are
    # passed in (e.g. from absl list flags).
    object.__setattr__(self, 'datasets', tuple(self.datasets))
    object.__setattr__(self, 'mocap_datasets', tuple(self.mocap_datasets))
    if self.dataset_weights is not None:
      weights = tuple(float(w) for w in self.dataset_weights)
      object.__setattr__(self, 'dataset_weights', weights)
      if len(weights) != len(self.datasets):
        raise ValueError(
            f'dataset_weights: expected {len(self.datasets)} weights (one '
            f'per dataset {self.datasets}), got {len(weights)}')
      if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError('dataset_weights: expected non-negative weights '
                         f'with a positive sum, got {weights}')
    if self.batch_size <= 0 or self.num_stage <= 0:
      raise ValueError('batch_size and num_stage must be positive, got '
                       f'{self.batch_size}, {self.num_stage}')
    if self.shuffle_buffer <= 0:
      raise ValueError(f'shuffle_buffer must be positive, got '
                       f'{self.shuffle_buffer}')
    if self.cache_crops and self.augments:
      raise ValueError(
          'cache_crops: needs training without augmentation (scale_min == '
          f'scale_max, trans_max 0, flip_prob 0), got scale {self.scale_min}'
          f'..{self.scale_max}, trans_max {self.trans_max}, flip_prob '
          f'{self.flip_prob}')


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Options of the model and its losses (defaults: the paper / original).

  Attributes:
    img_size: side S of the square input crops.
    num_stage: IEF iterations T.
    encoder: an ENCODERS name ('resnet50v2': the paper's).
    encoder_weights: 'none' | 'imagenet' | path of a Keras weights file.
    dropout_rate: dropout in the regressor.
    regressor_units: width of the regressor's hidden layers.
    d_pose_units: width of the discriminator's whole-pose hidden layers.
    e_loss_weight: weight of the 2D keypoint loss (λ).
    e_3d_weight: weight of the 3D joint loss, and of the SMPL parameter
      loss unless `e_smpl_weight` is set.
    e_smpl_weight: weight of the SMPL parameter loss (rotation matrices and
      betas); None: `e_3d_weight`, as the original (one weight for both).
    d_loss_weight: weight of the adversarial losses (generator and
      discriminator side).
    weight_decay: L2 weight decay coefficient on the kernels of both networks
      (the paper's 1e-4); 0 reproduces the original code, which never added
      its regularizers to the loss.
    use_3d_label: use the 3D losses where labels exist.
    e_lr: generator (encoder + regressor) Adam learning rate.
    d_lr: discriminator Adam learning rate.
    lr_schedule: 'constant' (the paper's) or 'cosine': both rates follow a
      half cosine from their value down to 0 over `lr_decay_steps` steps
      (not in the paper; for short runs, whose last steps then settle).
    lr_decay_steps: the cosine's length in steps (> 0 when 'cosine').
    ief_supervision: which IEF iterations the 2D keypoint, 3D joint and
      SMPL parameter losses supervise: 'last' (the original's: the losses
      of the final Θ_T only) or 'all' (the mean of each loss over Θ_1..Θ_T;
      not in the paper; costs SMPL keypoints for every iteration).
    sync_batch_norm: under a multi-replica strategy, compute the encoder's
      batch-norm statistics over the global batch (one all-reduce per
      batch-norm layer) instead of per replica.
    base_crop_size: the crop rule the model was trained with: the side of
      the crop window, in pixels of an image scaled so that the person is
      about 150 px tall (the paper: 224). Eval, the demo and the serving
      graph crop with it, so that the model sees people at its training
      size. Crops are float32 in [-1, 1] (pixel / 127.5 - 1).
  """
  img_size: int = shared_flag(DataConfig, 'img_size')
  num_stage: int = shared_flag(DataConfig, 'num_stage')
  encoder: str = flag_field(
      RESNET50_V2,
      'Image encoder. resnet50v2: the paper\'s ResNet-50 v2 (2048 features). '
      'resnet_v2_small: a small pre-activation ResNet (2 bottlenecks per '
      'stage, quarter width, 512 features; not in the paper) for training '
      'from scratch on a CPU; no ImageNet weights.', choices=ENCODERS)
  encoder_weights: str = flag_field(
      'none',
      'Encoder initial weights: none, imagenet (resnet50v2 only; downloaded '
      'by Keras, needs the network) or the path of a local Keras weights '
      'file.')
  dropout_rate: float = flag_field(0.5, 'Dropout rate of the regressor.',
                                   lower_bound=0.0, upper_bound=0.99)
  regressor_units: int = flag_field(
      1024,
      'Width of the regressor\'s two hidden layers (the paper: 1024; the '
      'quickstart narrows them with its small encoder).', lower_bound=1)
  d_pose_units: int = flag_field(
      1024,
      'Width of the discriminator\'s two whole-pose hidden layers (the '
      'paper: 1024).', lower_bound=1)
  e_loss_weight: float = flag_field(60.0, 'Weight of the 2D keypoint loss.',
                                    lower_bound=0.0)
  e_3d_weight: float = flag_field(
      60.0,
      'Weight of the 3D joint loss, and of the SMPL parameter loss unless '
      '--e_smpl_weight is given.', lower_bound=0.0)
  e_smpl_weight: Optional[float] = flag_field(
      None,
      'Weight of the SMPL parameter loss (rotation matrices and betas); '
      'default: --e_3d_weight (the original uses one weight for both 3D '
      'losses).', lower_bound=0.0)
  d_loss_weight: float = flag_field(
      1.0, 'Weight of the adversarial losses.', lower_bound=0.0)
  weight_decay: float = flag_field(
      1e-4,
      'L2 weight decay on both networks (the paper). 0 matches the original '
      'code, which configured but never applied it.', lower_bound=0.0)
  use_3d_label: bool = flag_field(
      True, 'Use the 3D losses where 3D labels exist.')
  e_lr: float = flag_field(
      1e-5, 'Adam learning rate of encoder+regressor.', lower_bound=0.0)
  d_lr: float = flag_field(
      1e-4, 'Adam learning rate of the discriminator.', lower_bound=0.0)
  lr_schedule: str = flag_field(
      'constant',
      'constant: the paper\'s fixed rates. cosine: both rates fall along a '
      'half cosine to 0 over the run (--epochs x --steps_per_epoch steps).',
      choices=LR_SCHEDULES)
  lr_decay_steps: int = derived_field(0)
  ief_supervision: str = flag_field(
      'last',
      'Which IEF iterations the 2D, 3D joint and SMPL parameter losses '
      'supervise. last: the final one (the original). all: the mean of each '
      'loss over every iteration (not in the paper).',
      choices=IEF_SUPERVISION)
  sync_batch_norm: bool = flag_field(
      False,
      'With several replicas, compute the encoder\'s batch-norm statistics '
      'over the global batch instead of per replica.')
  base_crop_size: float = shared_flag(DataConfig, 'base_crop_size')


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """Options of the training loop.

  Attributes:
    model_dir: where checkpoints are written and resumed from (required).
    log_dir: TensorBoard root; summaries go to `<log_dir>/train`. Empty:
      model_dir.
    epochs: training epochs (the total over all resumed runs).
    steps_per_epoch: steps per epoch; 0 = the training datasets' example
      counts from their sidecars divided by the (global) batch size.
    checkpoint_every_steps: save a checkpoint every N steps (0: only at the
      end and on Ctrl-C); a killed run loses at most N steps.
    max_to_keep: regular checkpoints kept.
    init_checkpoint: checkpoint (file prefix or directory) whose network
      weights start a new run, without optimizer state; ignored when
      model_dir already holds a checkpoint.
    summary_every_steps: TensorBoard scalar period in steps (0: none).
    image_summary_every_steps: TensorBoard image period in steps (0: none).
    num_summary_images: examples of the fixed batch shown in the images.
    num_summary_meshes: the first this many of them also as 3D meshes
      (TensorBoard's mesh plugin), at the image summaries' steps.
    on_nonfinite: 'stop' (emergency checkpoint, then NonFiniteLossError) or
      'skip' (roll the step back and count it; costs a copy of the model
      and optimizer state in memory and one device copy per step).
    max_consecutive_nonfinite: in 'skip' mode, stop after more than this
      many non-finite steps in a row.
    progress: 'auto' (a Keras progress bar on an interactive terminal,
      nothing otherwise), 'bar', 'epoch' (Keras' one line per epoch) or
      'none'. The absl epoch summary line is always logged.
    jit_compile: compile the train step (and predict/evaluate) with XLA;
      ignored, with a warning, under a strategy with several replicas.
    steps_per_execution: training steps run in one call into TensorFlow
      (Keras' steps_per_execution): the callbacks (step counter, loss
      check, summaries, checkpoints, Ctrl-C, progress) run once per call,
      so their per-step Python cost is shared by N steps. Periods that are
      not multiples of it act at the first call that passes them; a Ctrl-C
      stops after the current call; 'skip' mode runs 1 (it rolls back single
      steps).
    seed: seed of the weight initialisation and dropout.
  """
  model_dir: str = derived_field('')
  log_dir: str = derived_field('')
  epochs: int = flag_field(75, 'Total epochs over all resumed runs.',
                           lower_bound=1)
  steps_per_epoch: int = flag_field(
      0, 'Steps per epoch; 0: the sidecars\' example counts over the batch '
      'size.', lower_bound=0)
  checkpoint_every_steps: int = flag_field(
      500,
      'Checkpoint period: a killed run loses at most this many steps (0: '
      'only at the end and on Ctrl-C).', lower_bound=0)
  max_to_keep: int = flag_field(5, 'Regular checkpoints kept.', lower_bound=1)
  init_checkpoint: str = flag_field(
      '',
      'Checkpoint (prefix or folder) whose network weights start a new run, '
      'without optimizer state; ignored when resuming from --model_dir.')
  summary_every_steps: int = flag_field(
      100, 'TensorBoard scalar period in steps (0: none).', lower_bound=0)
  image_summary_every_steps: int = flag_field(
      1000, 'TensorBoard image period in steps (0: none).', lower_bound=0)
  num_summary_images: int = flag_field(
      4, 'Examples shown in each image summary.', lower_bound=1)
  num_summary_meshes: int = flag_field(
      2, 'Of those examples, the first this many also as predicted 3D meshes '
      '(TensorBoard\'s mesh plugin; 0: none).', lower_bound=0)
  on_nonfinite: str = flag_field(
      'stop',
      'A non-finite loss: stop writes an emergency checkpoint and exits with '
      'an error naming the step and the loss term; skip rolls the step back '
      'and counts it.', choices=NONFINITE_POLICIES)
  max_consecutive_nonfinite: int = flag_field(
      10,
      'With --on_nonfinite=skip, stop after more than this many bad steps in '
      'a row.', lower_bound=0)
  progress: str = flag_field(
      'auto',
      'Console progress: a Keras bar (auto: only on a terminal), one line per '
      'epoch, or nothing.', choices=PROGRESS_MODES)
  jit_compile: bool = flag_field(
      False, 'Compile the train step and inference with XLA.')
  steps_per_execution: int = flag_field(
      1, 'Training steps per call into TensorFlow; the callbacks (summaries, '
      'checkpoints, loss check, Ctrl-C) run once per call (see the README).',
      lower_bound=1)
  seed: int = shared_flag(DataConfig, 'seed')

  def __post_init__(self):
    if not self.model_dir:
      raise ValueError('model_dir: required (where checkpoints are written)')
    for name in ('epochs', 'max_to_keep', 'num_summary_images',
                 'steps_per_execution'):
      if getattr(self, name) < 1:
        raise ValueError(f'{name}: expected >= 1, got {getattr(self, name)}')
    for name in ('steps_per_epoch', 'checkpoint_every_steps',
                 'summary_every_steps', 'image_summary_every_steps',
                 'max_consecutive_nonfinite', 'num_summary_meshes'):
      if getattr(self, name) < 0:
        raise ValueError(f'{name}: expected >= 0, got {getattr(self, name)}')
    check_choice('on_nonfinite', self.on_nonfinite, NONFINITE_POLICIES)
    check_choice('progress', self.progress, PROGRESS_MODES)

  @property
  def train_log_dir(self) -> str:
    return os.path.join(self.log_dir or self.model_dir, 'train')


@dataclasses.dataclass(frozen=True)
class EvalConfig:
  """Options of one evaluation.

  Attributes:
    dataset: dataset directory name under DataConfig.data_dir.
    split: split name.
    h36m_protocol: 'p1' | 'p2_original' | 'p2_all_cameras_pa' (see
      hmr_tf.evaluation.h36m_protocol); used when `dataset` starts with 'h36m'.
    checkpoint: the evaluated checkpoint (recorded in the JSON only).
    output_dir: where the JSON goes; '' writes no files.
    summary_dir: TensorBoard log directory; '' writes no summaries.
    step: the step the TensorBoard scalars are written at.
    max_examples: stop after this many examples (0: the whole split).
    tag: name part of the JSON file and the TensorBoard scalars; default
      '<dataset>_<split>' (plus the protocol for Human3.6M).
    include_mean_baseline: also report the mean-parameter baseline (Θ_0
      alone, the same prediction for every image) under 'mean_baseline'.
    smpl_male_path, smpl_female_path: 3DPW: the gendered SMPL files the
      ground truth is posed with.
    pw3d_joint_regressor: 3DPW: '' (the model's cocoplus regressor, 14 LSP
      joints) or a Human3.6M-order `.npy` regressor (see pw3d_protocol).
    num_summary_images: with `summary_dir`, image panels of the first this
      many examples (the training flag's value).
    num_summary_meshes: the first this many of them also as 3D meshes
      (TensorBoard's mesh plugin).
  """
  # The library's defaults evaluate Human3.6M without the baseline; the
  # command line's, the quickstart's held-out set with it.
  dataset: str = flag_field('h36m', 'Dataset folder name to evaluate on.',
                            name='eval_dataset', flag_default='synthetic_3d')
  split: str = flag_field('test', 'Split to evaluate on.', name='eval_split')
  h36m_protocol: str = flag_field(
      'p1',
      'Human3.6M protocol. p1: S9+S11, all cameras. p2_original: S9+S11, '
      'camera 3, trial 0, as the HMR code defined it. p2_all_cameras_pa: all '
      'cameras with Procrustes alignment, as many later papers define P2.',
      choices=H36M_PROTOCOLS)
  checkpoint: str = derived_field('')
  output_dir: str = derived_field('')
  summary_dir: str = derived_field('')
  step: int = derived_field(0)
  max_examples: int = flag_field(
      0, 'Stop evaluating after this many examples (0: all).',
      name='eval_max_examples', lower_bound=0)
  tag: str = derived_field('')
  include_mean_baseline: bool = flag_field(
      False,
      'Also report the mean-parameter baseline (Θ_0 alone, the same '
      'prediction for every image) next to the model.',
      name='eval_mean_baseline', flag_default=True)
  smpl_male_path: str = flag_field(
      '',
      '3DPW evaluation: the male SMPL model (basicModel_m_lbs_10_207_0_v1.0.0'
      '.pkl, licensed) the ground truth of male subjects is posed with.')
  smpl_female_path: str = flag_field(
      '',
      '3DPW evaluation: the female SMPL model (basicModel_f_lbs_10_207_0_'
      'v1.0.0.pkl).')
  pw3d_joint_regressor: str = flag_field(
      '',
      '3DPW evaluation: the joints the errors are measured on. Empty: the '
      'model\'s own cocoplus regressor, 14 LSP joints. A .npy [17, V] '
      'Human3.6M-order regressor (e.g. J_regressor_h36m.npy) gives numbers '
      'comparable with later papers (see '
      'hmr_tf/evaluation/pw3d_protocol.py).')
  num_summary_images: int = shared_flag(TrainConfig, 'num_summary_images')
  num_summary_meshes: int = shared_flag(TrainConfig, 'num_summary_meshes')

  def __post_init__(self):
    check_choice('h36m_protocol', self.h36m_protocol, H36M_PROTOCOLS)
    if self.max_examples < 0:
      raise ValueError(f'max_examples: expected >= 0, got '
                       f'{self.max_examples}')

  @property
  def is_h36m(self) -> bool:
    return self.dataset.startswith('h36m')

  @property
  def is_3dhp_test(self) -> bool:
    return self.dataset == MPI_INF_3DHP_TEST_DATASET

  @property
  def is_3dpw(self) -> bool:
    return self.dataset == PW3D_DATASET

  @property
  def name(self) -> str:
    if self.tag:
      return self.tag
    name = f'{self.dataset}_{self.split}'
    return f'{name}_{self.h36m_protocol}' if self.is_h36m else name


@dataclasses.dataclass(frozen=True)
class BodyModelConfig:
  """Which body model to use.

  Attributes:
    smpl_model_path: an SMPL-format file; empty for the embedded model.
    body_model: name of the embedded model when no file is given.
    standin_num_vertices: target size of the procedural stand-in.
    seed: seed of the stand-in builder.
  """
  smpl_model_path: str = flag_field(
      '',
      'An SMPL-format body model file: an official SMPL .pkl (chumpy not '
      'needed), HMR\'s neutral_smpl_with_cocoplus_reg.pkl, or an .npz with '
      'the same keys. Empty: the embedded --body_model.')
  body_model: str = flag_field(
      'makehuman',
      'The embedded body model used when --smpl_model_path is empty (neither '
      'is SMPL). makehuman: a real human body in SMPL format derived from the '
      'CC0 MakeHuman assets (13,348 vertices, no pose correctives). standin: '
      'the small procedural body the unit tests use.', choices=BODY_MODELS)
  standin_num_vertices: int = flag_field(
      4000, 'Target vertex count of the procedural stand-in body.',
      lower_bound=STANDIN_MIN_VERTICES)
  seed: int = shared_flag(DataConfig, 'seed')


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
  """Size of the synthetic dataset (`hmr_tf.synthetic.generator.generate`).

  Attributes:
    num_train: training images of each image dataset (2D and 3D).
    num_test: held-out images of each dataset.
    num_mocap: mocap training poses; None: the generator's default.
    img_size: side of the rendered images.
    workers: rendering processes.
    seed: the dataset seed.
    num_train_3d: training images of the 3D dataset; None: num_train.
    part_colors: 'random' or 'fixed' (hmr_tf.synthetic.scene).
    background: 'clutter' or 'plain' (hmr_tf.synthetic.scene).
    yaw_max_deg: the pose prior's yaw range (hmr_tf.synthetic.pose_prior).
    antialias: anti-aliased silhouettes (hmr_tf.synthetic.scene).
  """
  num_train: int = flag_field(
      2000, 'Training images of each synthetic image dataset.',
      name='synthetic_num_train', lower_bound=1)
  num_test: int = flag_field(
      200, 'Held-out test images of each synthetic dataset.',
      name='synthetic_num_test', lower_bound=1)
  # 0 on the command line: None.
  num_mocap: Optional[int] = flag_field(
      None,
      'Synthetic mocap training poses; 0: 4 x --synthetic_num_train (at '
      'least 1000).', name='synthetic_num_mocap', lower_bound=0,
      flag_default=0)
  img_size: int = flag_field(
      224, 'Side of the rendered synthetic images (pixels).',
      name='synthetic_img_size', lower_bound=32)
  workers: int = flag_field(
      2, 'Processes rendering the synthetic images.',
      name='synthetic_workers', lower_bound=0)
  seed: int = shared_flag(DataConfig, 'seed')
  num_train_3d: Optional[int] = flag_field(
      None,
      'Training images of the synthetic 3D dataset; 0: --synthetic_num_train.',
      name='synthetic_num_train_3d', lower_bound=0, flag_default=0)
  part_colors: str = flag_field(
      'random',
      'Colours of the synthetic bodies\' 24 parts. random: each image draws '
      'its own (like clothing); fixed: the same colour per part in every '
      'image (an easier scene, the quickstart\'s).',
      name='synthetic_part_colors', choices=PART_COLORS)
  background: str = flag_field(
      'clutter',
      'Synthetic backgrounds. clutter: gradient, blotches and random shapes; '
      'plain: gradient and blotches only.', name='synthetic_background',
      choices=BACKGROUNDS)
  yaw_max_deg: float = flag_field(
      45.0,
      'Synthetic bodies turn about their vertical axis by a uniform angle of '
      'up to this many degrees (0: all face the camera).',
      name='synthetic_yaw_max', lower_bound=YAW_MAX_DEG_BOUNDS[0],
      upper_bound=YAW_MAX_DEG_BOUNDS[1])
  antialias: bool = flag_field(
      True,
      'Anti-alias the synthetic bodies\' silhouettes (edge pixels blend with '
      'the background by coverage); off renders ~40% faster.',
      name='synthetic_antialias')


@dataclasses.dataclass(frozen=True)
class ExportConfig:
  """SavedModel export options (see hmr_tf.inference.export)."""
  export_dir: str = derived_field()
  version: int = flag_field(1, 'Version folder of the export.',
                            name='export_version', lower_bound=1)
  include_vertices: bool = flag_field(
      True, 'Include the mesh vertices in the serving outputs.',
      name='export_vertices')
  precision: str = flag_field(
      'float32',
      'What the exported encoder computes in: bfloat16 (CPUs with AVX-512 '
      'BF16 or AMX, TPUs, recent GPUs) or float16 (GPUs); the regressor, Θ, '
      'SMPL and the outputs stay float32. Recorded in the export.',
      name='export_precision', choices=EXPORT_PRECISIONS)
  jit_compile: str = flag_field(
      'auto',
      'What XLA compiles in the export: auto (the whole model for batches '
      f'of up to {EXPORT_AUTO_XLA_MAX_BATCH} crops, the head above), '
      'nothing, the head (IEF, SMPL, the projection: many small ops fused; '
      'the encoder stays on oneDNN, as the bare encoder runs) or the whole '
      'model. Dynamic batch: one compilation per batch size met. Recorded '
      'in the export. With bfloat16/float16, auto runs small batches in '
      'float32 (the reduced type gains nothing there on CPUs); head keeps '
      'every batch in it.',
      name='export_jit_compile', choices=EXPORT_JIT_COMPILE)
  format: str = flag_field(
      EXPORT_FORMATS[0],
      'saved_model: the SavedModel for TF Serving (EXPORT_DIR/<version>/). '
      'tflite: LiteRT models of the crop signature, float32 and '
      '--tflite_quantization, with the crop rule beside them '
      '(EXPORT_DIR/tflite/).',
      name='export_format', choices=EXPORT_FORMATS)
  tflite_quantization: str = flag_field(
      TFLITE_QUANTIZATIONS[0],
      'The quantised LiteRT model written next to the float32 one: float16 '
      'weights (half the size) or dynamic_range (int8 weights, a quarter; '
      'coarser keypoints).',
      choices=TFLITE_QUANTIZATIONS)


@dataclasses.dataclass(frozen=True)
class ScaleConfig:
  """Distribution and precision (see hmr_tf.training.distribute)."""
  strategy: str = flag_field(
      'default',
      'tf.distribute strategy. default: one device. mirrored: the GPUs of '
      'this machine. multi_worker: several machines, cluster from the '
      'TF_CONFIG environment variable. tpu: a TPU (--tpu_address).',
      choices=STRATEGIES)
  tpu_address: str = flag_field(
      '', 'TPU name or grpc:// address for --strategy=tpu.')
  collective_timeout_s: float = flag_field(
      0.0,
      'multi_worker: fail a collective that waits longer than this (a dead '
      'worker then stops the run with an error instead of a hang); 0: wait '
      'forever.', lower_bound=0.0)
  mixed_precision: str = flag_field(
      'none',
      'Keras mixed-precision policy (SMPL, losses and the discriminator '
      'outputs stay float32; float16 uses loss scaling).',
      choices=MIXED_PRECISIONS)


# --- The demo's people (hmr_tf.inference.people, detectors, tracking) ------
HOG_DETECTOR = 'hog'  # --detector=hog: the built-in detector, no download
COCO_PERSON_CLASS = 1  # The TF2 Object Detection API's (COCO) person class
MIN_MOVENET_SIDE = 32  # MoveNet's input sides are multiples of this
# Keypoints above this confidence set a crop (the original demo's OpenPose
# threshold; hmr_tf.inference.crops and the detectors' keypoints).
KEYPOINT_THRESHOLD = 0.2


@dataclasses.dataclass(frozen=True)
class PeopleConfig:
  """How the demo finds people (python -m hmr_tf.demo --detector=...)."""
  detector: str = flag_field(
      '',
      'Find every person with a detector: a TF SavedModel folder with the '
      'TF2 Object Detection API\'s signature (detection_boxes, '
      'detection_classes, detection_scores, optional detection_keypoints) or '
      'MoveNet MultiPose\'s (output_0 [1, 6, 56]), or "hog" for the '
      'built-in HOG people detector (weak, no download). Empty: the '
      'people come from --bbox / --bboxes / --openpose_json or the whole '
      'image.')
  threshold: float = flag_field(
      0.3,
      'Keep the detections scoring at least this (the SavedModel\'s score in '
      '[0, 1]; for hog, its linear classifier\'s probability).',
      name='detector_threshold', lower_bound=0.0, upper_bound=1.0)
  max_people: int = flag_field(
      10, 'At most this many people per image (the highest scores).',
      lower_bound=1)
  nms_iou: float = flag_field(
      0.5,
      'Two detections whose boxes overlap more than this (intersection over '
      'union) are one person: the lower-scoring one is dropped.',
      name='detector_nms_iou', lower_bound=0.0, upper_bound=1.0)
  keypoint_threshold: float = flag_field(
      KEYPOINT_THRESHOLD,
      'A detector\'s keypoints above this score set the crop (the OpenPose '
      'rule, the original demo\'s 0.2); with fewer than two, the box does.',
      name='detector_keypoint_threshold', lower_bound=0.0, upper_bound=1.0)
  movenet_side: int = flag_field(
      256,
      'MoveNet MultiPose: the image is resized so that its longer side is '
      'this (rounded up to a multiple of 32; MoveNet\'s recommended 256), '
      'the shorter side padded to a multiple of 32.',
      lower_bound=MIN_MOVENET_SIDE)


@dataclasses.dataclass(frozen=True)
class TrackingConfig:
  """How the demo follows people through a video (hmr_tf.inference.tracking)."""
  min_iou: float = flag_field(
      0.3,
      'A detection continues a track when its box overlaps the track\'s '
      'predicted box at least this much (intersection over union).',
      name='track_min_iou', lower_bound=0.0, upper_bound=1.0)
  max_missed: int = flag_field(
      5,
      'A track survives this many frames without a matching detection; '
      'after that a reappearing person gets a new track id.',
      name='track_max_missed', lower_bound=0)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Paths:
  """Where a run reads and writes; all derived from --output_dir by default.

  The flag fields hold the flags' values only as `from_flags` derives them
  (an empty flag: a folder under output_dir).
  """
  output_dir: str = flag_field(
      'runs/quickstart',
      'Root folder of a run. Unless given explicitly, the stages use '
      'OUTPUT_DIR/{body_model,data,model,logs,eval,export,demo}.')
  body_model_file: str = derived_field()
  data_dir: str = flag_field(
      '',
      'Root of the TFRecord datasets (DATASET/SPLIT_NNNNN.tfrecord plus the '
      'DATASET/DATASET_meta.json sidecars). Empty: OUTPUT_DIR/data.')
  model_dir: str = flag_field(
      '', 'Checkpoints are written and resumed here. Empty: OUTPUT_DIR/model.')
  # Not --log_dir: absl.logging owns that name (its text log files).
  log_dir: str = flag_field(
      '',
      'TensorBoard root (training summaries under TENSORBOARD_DIR/train, '
      'evaluation under TENSORBOARD_DIR/eval). Empty: OUTPUT_DIR/logs.',
      name='tensorboard_dir')
  eval_dir: str = derived_field()
  export_dir: str = flag_field(
      '',
      'SavedModel root (versioned: EXPORT_DIR/1/). Empty: OUTPUT_DIR/export.')
  demo_dir: str = derived_field()


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunConfig:
  """Everything `main` needs, grouped by stage."""
  mode: str = flag_field(
      'quickstart',
      'What to run. quickstart: every stage below in order, each reusing '
      'what is already there. body_model: write the body model (.npz) and '
      'its template (.obj). data: write the synthetic dataset. train: train '
      'HMR. eval: evaluate a checkpoint. export: write a SavedModel for TF '
      'Serving. demo: run the demo on one held-out synthetic image. '
      'import_original: turn the original HMR\'s released checkpoint '
      '(--original_checkpoint) into an hmr_tf model in OUTPUT_DIR/model.',
      choices=MODES)
  paths: Paths = derived_field()
  body: BodyModelConfig = derived_field()
  synthetic: SyntheticConfig = derived_field()
  data: DataConfig = derived_field()
  model: ModelConfig = derived_field()
  train: TrainConfig = derived_field()
  eval: EvalConfig = derived_field()
  export: ExportConfig = derived_field()
  # The flag's value; empty: DATA_DIR/mean_params.npz.
  mean_params_path: str = flag_field(
      '',
      'Initial parameters Θ_0: an .npz with pose [72] and shape [10] (the '
      'synthetic dataset writes one) or the original '
      'neutral_smpl_mean_params.h5. Empty: DATA_DIR/mean_params.npz.')
  # The flag's value; empty: the run's model folder.
  checkpoint: str = flag_field(
      '',
      'Checkpoint to evaluate / export / run the demo with: a checkpoint '
      'prefix or a folder holding checkpoints (the latest is used). Empty: '
      'the latest checkpoint of the run\'s model folder.')
  scale: ScaleConfig = derived_field()
  original_checkpoint: str = flag_field(
      '',
      'With --mode=import_original: the original HMR checkpoint prefix, e.g. '
      'models/model.ckpt-667589 (beside its .index and .data files).')
  # Flags given on the command line or in a flagfile (not left at their
  # defaults): a stage that reads a setting from a saved model refuses a
  # conflicting explicit one.
  explicit_flags: frozenset = derived_field(frozenset())


# The dataclasses whose fields declare the flags of hmr_tf.main.
FLAG_CONFIGS = (RunConfig, Paths, BodyModelConfig, SyntheticConfig,
                DataConfig, ModelConfig, TrainConfig, ScaleConfig, EvalConfig,
                ExportConfig)


def flag_fields(cls=None) -> Iterator[dataclasses.Field]:
  """The flag fields of `cls` (default: of every FLAG_CONFIGS class)."""
  for config in ((cls,) if cls is not None else FLAG_CONFIGS):
    for field in dataclasses.fields(config):
      if flag_spec(field) is not None:
        yield field


def defined_flags() -> Iterator[Tuple[dataclasses.Field, FlagSpec]]:
  """(field, spec) of each field that defines a flag, each flag once."""
  for field in flag_fields():
    spec = flag_spec(field)
    if spec.defines:
      yield field, spec


# ---------------------------------------------------------------------------
# From the parsed flags.


def _from_flags(cls, f, **derived):
  """`cls` with each flag field from its flag, plus the `derived` values."""
  values = {field.name: getattr(f, flag_name(field))
            for field in flag_fields(cls)}
  values.update(derived)
  return cls(**values)


def _paths(f) -> Paths:
  out = f.output_dir
  return Paths(
      output_dir=out,
      body_model_file=os.path.join(out, 'body_model', 'body_model.npz'),
      data_dir=f.data_dir or os.path.join(out, 'data'),
      model_dir=f.model_dir or os.path.join(out, 'model'),
      log_dir=f.tensorboard_dir or os.path.join(out, 'logs'),
      eval_dir=os.path.join(out, 'eval'),
      export_dir=f.export_dir or os.path.join(out, 'export'),
      demo_dir=os.path.join(out, 'demo'))


def _given(f, name: str) -> bool:
  """Whether flag `name` was set on the command line or in a flagfile."""
  try:
    return bool(f[name].present)
  except (KeyError, TypeError, AttributeError):
    return False  # a plain namespace (tests): nothing is explicit


def from_flags(f) -> RunConfig:
  """Builds the RunConfig from parsed absl flags (called once, in main)."""
  paths = _paths(f)
  checkpoint = f.checkpoint or paths.model_dir
  return _from_flags(
      RunConfig, f,
      paths=paths,
      body=_from_flags(BodyModelConfig, f),
      synthetic=_from_flags(
          SyntheticConfig, f,
          num_mocap=f.synthetic_num_mocap or None,
          num_train_3d=f.synthetic_num_train_3d or None),
      data=_from_flags(
          DataConfig, f,
          data_dir=paths.data_dir,
          dataset_weights=([float(w) for w in f.dataset_weights]
                           if f.dataset_weights else None)),
      model=_from_flags(
          ModelConfig, f,
          lr_decay_steps=(f.epochs * f.steps_per_epoch
                          if f.lr_schedule == 'cosine' else 0)),
      train=_from_flags(TrainConfig, f, model_dir=paths.model_dir,
                        log_dir=paths.log_dir),
      eval=_from_flags(
          EvalConfig, f,
          checkpoint=checkpoint,
          output_dir=paths.eval_dir,
          summary_dir=os.path.join(paths.log_dir, 'eval')),
      export=_from_flags(ExportConfig, f, export_dir=paths.export_dir),
      mean_params_path=(f.mean_params_path or
                        os.path.join(paths.data_dir, 'mean_params.npz')),
      checkpoint=checkpoint,
      scale=_from_flags(ScaleConfig, f),
      explicit_flags=frozenset(
          name for name in ('img_size', 'base_crop_size', 'export_precision',
                            'export_jit_compile')
          if _given(f, name)))


# ---------------------------------------------------------------------------
# Video: temporal smoothing of each person's track
# (hmr_tf.inference.smoothing; the demo's --video flow). Not a flag of
# hmr_tf.main (it has no video mode): the demo and src/bench/smoothing_bench.py
# define these flags with `hmr_tf.flags.define_flags_of(SmoothingConfig)` and
# read them with `smoothing_from_flags`.


@dataclasses.dataclass(frozen=True)
class SmoothingConfig:
  """The One-Euro filter of each track's rotations and camera.

  Defaults chosen with src/bench/smoothing_bench.py --bench_sweep (see the
  README's video smoothing section): on its synthetic videos, at key poses
  1 s and 0.5 s apart, they cut the acceleration error to 0.05-0.09 of the
  per-frame one and lower PA-MPJPE by ~4% (the targets: at most 1/3, and
  at most 2% worse). One causal pass (zero_phase False) needs a higher
  beta (about 3) to keep PA-MPJPE within 2% in fast motion.

  Attributes:
    enabled: smooth the tracks of a video (off: the per-frame outputs).
    min_cutoff: the rotations' cutoff frequency at rest, Hz.
    beta: how fast the rotations' cutoff rises with their speed, Hz per
      (quaternion units / s).
    cam_min_cutoff: cam_t_full's cutoff at rest, Hz.
    cam_beta: how fast cam_t_full's cutoff rises with its speed, Hz per m/s.
    d_cutoff: the cutoff of the speed estimate's own smoothing, Hz.
    zero_phase: filter forward, then backward (no lag; the track is
      finished when it is smoothed); off: one causal pass.
  """
  enabled: bool = flag_field(
      True,
      'Smooth each person\'s track over the video\'s frames (a One-Euro '
      'filter of the joint rotations as quaternions and of the camera, one '
      'shape per track); --nosmoothing writes the per-frame results.',
      name='smoothing')
  min_cutoff: float = flag_field(
      1.0, 'Smoothing: the rotations\' cutoff frequency at rest (Hz); lower '
      'removes more jitter.', name='smoothing_min_cutoff', lower_bound=1e-6)
  beta: float = flag_field(
      1.0, 'Smoothing: how fast the rotations\' cutoff rises with their '
      'speed (higher: less lag in fast motion).', name='smoothing_beta',
      lower_bound=0.0)
  cam_min_cutoff: float = flag_field(
      1.0, 'Smoothing: the camera translation\'s cutoff at rest (Hz).',
      name='smoothing_cam_min_cutoff', lower_bound=1e-6)
  # 0: the translation's speed estimate is mostly depth noise (TZ jitters
  # by metres per second), so a speed-dependent cutoff lets the noise
  # through; measured (smoothing_bench --bench_sweep) best with 0.
  cam_beta: float = flag_field(
      0.0, 'Smoothing: how fast the camera translation\'s cutoff rises with '
      'its speed (Hz per m/s).', name='smoothing_cam_beta', lower_bound=0.0)
  d_cutoff: float = flag_field(
      1.0, 'Smoothing: the cutoff of the speed estimate (Hz).',
      name='smoothing_d_cutoff', lower_bound=1e-6)
  zero_phase: bool = flag_field(
      True, 'Smoothing: filter forward then backward over the finished track '
      '(no lag); off: one causal pass.', name='smoothing_zero_phase')

  def __post_init__(self):
    for name in ('min_cutoff', 'cam_min_cutoff', 'd_cutoff'):
      if not getattr(self, name) > 0:
        raise ValueError(f'{name}: expected > 0 Hz, got '
                         f'{getattr(self, name)}')
    for name in ('beta', 'cam_beta'):
      if not getattr(self, name) >= 0:
        raise ValueError(f'{name}: expected >= 0, got {getattr(self, name)}')


def smoothing_from_flags(f) -> SmoothingConfig:
  """The SmoothingConfig from parsed flags (those `define_flags_of` made)."""
  return _from_flags(SmoothingConfig, f)
