"""Typed, frozen run configuration, built once from the parsed flags.

`from_flags` is the only reader of FLAGS (called in `main`). Each stage's own
options live in its library as a frozen dataclass (DataConfig, ModelConfig,
TrainConfig, EvalConfig); this module groups them with the run's paths.
"""

import dataclasses
import os
from typing import Optional

from hmr_tf.evaluation import evaluate
from hmr_tf.training import loop
from hmr_tf.data import input_pipeline
from hmr_tf.modeling import hmr_model


@dataclasses.dataclass(frozen=True)
class BodyModelConfig:
  """Which body model to use.

  Attributes:
    smpl_model_path: an SMPL-format file; empty for the embedded model.
    body_model: name of the embedded model when no file is given.
    standin_num_vertices: target size of the procedural stand-in.
    seed: seed of the stand-in builder.
  """
  smpl_model_path: str = ''
  body_model: str = 'makehuman'
  standin_num_vertices: int = 4000
  seed: int = 0


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
  """
  num_train: int = 2000
  num_test: int = 200
  num_mocap: Optional[int] = None
  img_size: int = 224
  workers: int = 2
  seed: int = 0
  num_train_3d: Optional[int] = None
  part_colors: str = 'random'
  background: str = 'clutter'
  yaw_max_deg: float = 45.0


@dataclasses.dataclass(frozen=True)
class ExportConfig:
  """SavedModel export options (see hmr_tf.inference.export)."""
  export_dir: str
  version: int = 1
  include_vertices: bool = True
  precision: str = 'float32'
  jit_compile: str = 'none'


@dataclasses.dataclass(frozen=True)
class ScaleConfig:
  """Distribution and precision (see hmr_tf.training.distribute)."""
  strategy: str = 'default'
  tpu_address: str = ''
  collective_timeout_s: float = 0.0
  mixed_precision: str = 'none'


@dataclasses.dataclass(frozen=True)
class Paths:
  """Where a run reads and writes; all derived from --output_dir by default."""
  output_dir: str
  body_model_file: str
  data_dir: str
  model_dir: str
  log_dir: str
  eval_dir: str
  export_dir: str
  demo_dir: str


@dataclasses.dataclass(frozen=True)
class RunConfig:
  """Everything `main` needs, grouped by stage."""
  mode: str
  paths: Paths
  body: BodyModelConfig
  synthetic: SyntheticConfig
  data: input_pipeline.DataConfig
  model: hmr_model.ModelConfig
  train: loop.TrainConfig
  eval: evaluate.EvalConfig
  export: ExportConfig
  mean_params_path: str
  checkpoint: str
  scale: 'ScaleConfig'
  original_checkpoint: str = ''
  # Flags given on the command line or in a flagfile (not left at their
  # defaults): a stage that reads a setting from a saved model refuses a
  # conflicting explicit one.
  explicit_flags: frozenset = frozenset()


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
  weights = ([float(w) for w in f.dataset_weights]
             if f.dataset_weights else None)
  data = input_pipeline.DataConfig(
      data_dir=paths.data_dir,
      datasets=tuple(f.datasets),
      dataset_weights=weights,
      mocap_datasets=tuple(f.mocap_datasets),
      train_split=f.train_split,
      batch_size=f.batch_size,
      num_stage=f.num_stage,
      img_size=f.img_size,
      base_crop_size=f.base_crop_size,
      scale_min=f.scale_min,
      scale_max=f.scale_max,
      trans_max=f.trans_max,
      flip_prob=f.flip_prob,
      shuffle_buffer=f.shuffle_buffer,
      seed=f.seed,
      deterministic=f.deterministic,
      num_parallel_calls=f.num_parallel_calls,
      cycle_length=f.cycle_length,
      skip_corrupt_records=f.skip_corrupt_records)
  model = hmr_model.ModelConfig(
      img_size=f.img_size,
      num_stage=f.num_stage,
      encoder=f.encoder,
      encoder_weights=f.encoder_weights,
      dropout_rate=f.dropout_rate,
      e_loss_weight=f.e_loss_weight,
      e_3d_weight=f.e_3d_weight,
      e_smpl_weight=f.e_smpl_weight,
      d_loss_weight=f.d_loss_weight,
      weight_decay=f.weight_decay,
      use_3d_label=f.use_3d_label,
      e_lr=f.e_lr,
      d_lr=f.d_lr,
      lr_schedule=f.lr_schedule,
      lr_decay_steps=(f.epochs * f.steps_per_epoch
                      if f.lr_schedule == 'cosine' else 0),
      sync_batch_norm=f.sync_batch_norm,
      base_crop_size=f.base_crop_size)
  train = loop.TrainConfig(
      model_dir=paths.model_dir,
      log_dir=paths.log_dir,
      epochs=f.epochs,
      steps_per_epoch=f.steps_per_epoch,
      checkpoint_every_steps=f.checkpoint_every_steps,
      max_to_keep=f.max_to_keep,
      init_checkpoint=f.init_checkpoint,
      summary_every_steps=f.summary_every_steps,
      image_summary_every_steps=f.image_summary_every_steps,
      num_summary_images=f.num_summary_images,
      on_nonfinite=f.on_nonfinite,
      max_consecutive_nonfinite=f.max_consecutive_nonfinite,
      progress=f.progress,
      jit_compile=f.jit_compile,
      seed=f.seed)
  checkpoint = f.checkpoint or paths.model_dir
  evaluation = evaluate.EvalConfig(
      dataset=f.eval_dataset,
      split=f.eval_split,
      h36m_protocol=f.h36m_protocol,
      checkpoint=checkpoint,
      output_dir=paths.eval_dir,
      summary_dir=os.path.join(paths.log_dir, 'eval'),
      max_examples=f.eval_max_examples,
      include_mean_baseline=f.eval_mean_baseline,
      smpl_male_path=f.smpl_male_path,
      smpl_female_path=f.smpl_female_path,
      pw3d_joint_regressor=f.pw3d_joint_regressor)
  return RunConfig(
      mode=f.mode,
      paths=paths,
      body=BodyModelConfig(smpl_model_path=f.smpl_model_path,
                           body_model=f.body_model,
                           standin_num_vertices=f.standin_num_vertices,
                           seed=f.seed),
      synthetic=SyntheticConfig(num_train=f.synthetic_num_train,
                                num_test=f.synthetic_num_test,
                                num_mocap=f.synthetic_num_mocap or None,
                                img_size=f.synthetic_img_size,
                                workers=f.synthetic_workers,
                                num_train_3d=f.synthetic_num_train_3d or None,
                                part_colors=f.synthetic_part_colors,
                                background=f.synthetic_background,
                                yaw_max_deg=f.synthetic_yaw_max,
                                seed=f.seed),
      data=data,
      model=model,
      train=train,
      eval=evaluation,
      export=ExportConfig(export_dir=paths.export_dir,
                          version=f.export_version,
                          include_vertices=f.export_vertices,
                          precision=f.export_precision,
                          jit_compile=f.export_jit_compile),
      mean_params_path=(f.mean_params_path or
                        os.path.join(paths.data_dir, 'mean_params.npz')),
      checkpoint=checkpoint,
      scale=ScaleConfig(strategy=f.strategy, tpu_address=f.tpu_address,
                        collective_timeout_s=f.collective_timeout_s,
                        mixed_precision=f.mixed_precision),
      original_checkpoint=f.original_checkpoint,
      explicit_flags=frozenset(
          name for name in ('img_size', 'base_crop_size')
          if _given(f, name)))
