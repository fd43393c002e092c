"""Typed, frozen run configuration, built once from the parsed flags."""

import dataclasses


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
  body_model: str = 'standin'
  standin_num_vertices: int = 4000
  seed: int = 0


@dataclasses.dataclass(frozen=True)
class RunConfig:
  """Everything `main` needs, grouped by stage."""
  mode: str
  output_dir: str
  body: BodyModelConfig


def from_flags(flag_values) -> RunConfig:
  """Builds the RunConfig from parsed absl flags (called once, in main)."""
  f = flag_values
  return RunConfig(
      mode=f.mode,
      output_dir=f.output_dir,
      body=BodyModelConfig(smpl_model_path=f.smpl_model_path,
                           body_model=f.body_model,
                           standin_num_vertices=f.standin_num_vertices,
                           seed=f.seed))
