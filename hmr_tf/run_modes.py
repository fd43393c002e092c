"""What each `--mode` of hmr_tf.main does, given the typed config."""

import os

from absl import logging

from hmr_tf import config as config_lib
from hmr_tf import render
from hmr_tf.smpl import model_io
from hmr_tf.smpl import registry


def write_body_model(cfg: config_lib.RunConfig) -> str:
  """Writes the configured body model as .npz and its template as .obj."""
  b = cfg.body
  model = registry.resolve_body_model(b.smpl_model_path, b.body_model,
                                      b.standin_num_vertices, b.seed)
  out_dir = os.path.join(cfg.output_dir, 'body_model')
  os.makedirs(out_dir, exist_ok=True)
  npz = os.path.join(out_dir, 'body_model.npz')
  obj = os.path.join(out_dir, 'template.obj')
  model_io.save_model(model, npz)
  render.write_obj(obj, model.v_template, model.faces)
  logging.info('Wrote %s (%d vertices, %d faces) and %s', npz,
               model.num_vertices, len(model.faces), obj)
  return npz


_MODES = {
    'body_model': write_body_model,
}


def run(cfg: config_lib.RunConfig):
  """Runs the mode named in `cfg`."""
  return _MODES[cfg.mode](cfg)
