"""Shared pytest setup: quiet TensorFlow logs before anything imports it."""

import os

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')


import pytest  # pylint: disable=g-import-not-at-top,wrong-import-position

ORIGINAL_STEP = 667589


@pytest.fixture(scope='session')
def original_hmr(tmp_path_factory):
  """A checkpoint of the original HMR's graph (slim names), built once.

  Random weights with non-trivial batch-norm statistics, a 200-vertex body
  model as its SMPL variables. Returns a dict: prefix, body, crops [2, 224,
  224, 3], ref (the original graph's features, thetas and discriminator
  scores), smpl_file (the body as .npz).
  """
  # pylint: disable=g-import-not-at-top
  from hmr_tf.smpl import model_io
  import slim_reference
  import smpl_reference
  folder = tmp_path_factory.mktemp('original')
  body = smpl_reference.random_body_model(num_vertices=200, seed=4)
  crops = slim_reference.sample_crops()
  prefix = str(folder / f'model.ckpt-{ORIGINAL_STEP}')
  ref = slim_reference.build_original_checkpoint(
      prefix, body, crops, slim_reference.sample_mean_param(), seed=9,
      global_step=ORIGINAL_STEP, d_inputs=slim_reference.sample_d_inputs())
  smpl_file = str(folder / 'neutral_body.npz')
  model_io.save_model(body, smpl_file)
  return dict(prefix=prefix, body=body, crops=crops, ref=ref,
              smpl_file=smpl_file, folder=folder)
