"""Choosing the body model: a user's SMPL file, or an embedded default."""

import os

from absl import logging

from hmr_tf import configs
from hmr_tf.smpl import model_io
from hmr_tf.smpl import standin

# The MakeHuman-derived body (CC0 assets; see hmr_tf/assets/ATTRIBUTION.md).
MAKEHUMAN_PATH = os.path.join(os.path.dirname(os.path.dirname(__file__)),
                              'assets', 'makehuman_smpl.npz')
EMBEDDED = configs.BODY_MODELS


def resolve_body_model(
    smpl_model_path: str = '',
    body_model: str = configs.BodyModelConfig.body_model,
    standin_num_vertices: int = configs.BodyModelConfig.standin_num_vertices,
    seed: int = 0) -> model_io.BodyModel:
  """Loads `smpl_model_path` if given, else builds the embedded default.

  Args:
    smpl_model_path: an SMPL-format file (.pkl or .npz) or ''.
    body_model: the embedded model to use when no file is given:
      'makehuman' (a real human body derived from CC0 MakeHuman assets, no
      pose correctives) or 'standin' (the small procedural body).
    standin_num_vertices: target vertex count of the procedural stand-in.
    seed: seed of the stand-in builder.

  Returns:
    The BodyModel. Its `is_standin` says whether it is the licensed SMPL.
  """
  if smpl_model_path:
    model = model_io.load_model(smpl_model_path)
    logging.info('Body model: %s (%d vertices, %d shape directions).',
                 os.path.basename(smpl_model_path), model.num_vertices,
                 model.num_betas)
    return model
  if body_model == 'standin':
    model = standin.build(num_vertices=standin_num_vertices, seed=seed)
  elif body_model == 'makehuman':
    model = model_io.load_model(MAKEHUMAN_PATH)
  else:
    raise ValueError(f'--body_model: unknown embedded body model '
                     f'{body_model!r}; expected one of: {", ".join(EMBEDDED)}')
  logging.warning(
      'Body model: %s, a STAND-IN for the licensed SMPL model. Results on it '
      'say nothing about SMPL; pass --smpl_model_path to use the real one.',
      model.metadata.get('name', body_model))
  return model
