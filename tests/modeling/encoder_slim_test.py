"""hmr_tf's resnet50v2 against TF-Slim's own resnet_v2_50 (the original's)."""

import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from hmr_tf.modeling import encoder
from hmr_tf.modeling import slim_names
import slim_reference  # tests/support/

_SIZE = 224


@pytest.fixture(scope='module')
def slim_checkpoint(original_hmr):
  """(checkpoint prefix, crops [2, 224, 224, 3], slim features [2, 2048]).

  The original HMR graph's checkpoint (conftest.py): slim's resnet_v2_50
  with random weights and batch-norm statistics, among other variables.
  """
  return (original_hmr['prefix'], original_hmr['crops'],
          original_hmr['ref']['features'])


def test_slim_checkpoint_has_the_270_encoder_variables(slim_checkpoint):
  prefix, _, _ = slim_checkpoint
  names = {n for n, _ in tf.train.list_variables(prefix)}
  model = encoder.build_encoder(_SIZE)
  mapped = {n for m in slim_names.encoder_mappings(model) for n, _ in m.sources}
  assert len(mapped) == 270
  # Everything else under resnet_v2_50/ is an optimizer slot.
  assert mapped <= names
  assert all(n.endswith('/Adam') for n in names - mapped
             if n.startswith('resnet_v2_50/'))
  # Every weight of the Keras model is set from the checkpoint.
  assert len(slim_names.encoder_mappings(model)) == len(model.weights)


def test_features_equal_slims(slim_checkpoint):
  prefix, crops, expected = slim_checkpoint
  model = encoder.build_encoder(_SIZE, weights=prefix)
  got = model(crops, training=False).numpy()
  spread = expected.max() - expected.min()
  assert spread > 0.1  # the reference is not degenerate
  assert np.abs(got - expected).max() < 1e-4 * spread, (
      np.abs(got - expected).max(), spread)


def test_keras_resnet50v2_is_not_slims_network(slim_checkpoint):
  # Keras' ResNet50V2 with the very same weights (copied by layer name)
  # pools differently (zero pad + VALID) and uses another epsilon: its
  # features are far from slim's (with random weights on these crops ~1% of
  # the range, 100x the tolerance hmr_tf's encoder meets; with the trained
  # weights on photographs ~40%). This is why hmr_tf builds its own.
  prefix, crops, expected = slim_checkpoint
  ours = encoder.build_encoder(_SIZE, weights=prefix)
  theirs = keras.applications.ResNet50V2(
      include_top=False, weights=None, input_shape=(_SIZE, _SIZE, 3),
      pooling='avg')
  for layer in theirs.layers:
    if layer.weights:
      layer.set_weights(ours.get_layer(layer.name).get_weights())
  got = theirs(crops, training=False).numpy()
  spread = expected.max() - expected.min()
  assert np.abs(got - expected).max() > 30 * 1e-4 * spread


def test_keras_imagenet_layout_loads_into_the_slim_network(tmp_path):
  # Keras' ImageNet file is a legacy .h5 of keras' ResNet50V2: written here
  # from a randomly initialised one, it must load into hmr_tf's encoder with
  # every weight landing on its namesake.
  import h5py  # pylint: disable=g-import-not-at-top
  from keras.src.legacy.saving import legacy_h5_format  # pylint: disable=g-import-not-at-top
  source = keras.applications.ResNet50V2(include_top=False, weights=None,
                                         input_shape=(64, 64, 3),
                                         pooling='avg')
  path = str(tmp_path / 'resnet50v2_notop.h5')
  with h5py.File(path, 'w') as f:
    legacy_h5_format.save_weights_to_hdf5_group(f, source)
  model = encoder.build_encoder(64, weights=path)
  for layer in (l for l in source.layers if l.weights):
    for a, b in zip(layer.get_weights(),
                    model.get_layer(layer.name).get_weights()):
      np.testing.assert_array_equal(a, b)
  assert sum(len(l.weights) for l in source.layers) == len(model.weights)


def test_slim_batch_norm_settings():
  model = encoder.build_encoder(64)
  bns = [l for l in model.layers
         if isinstance(l, keras.layers.BatchNormalization)]
  assert len(bns) == 16 * 3 + 1  # preact, conv1, conv2 per unit; postnorm
  assert all(l.epsilon == 1e-5 and abs(l.momentum - 0.997) < 1e-12
             for l in bns)
  pool = model.get_layer('pool1_pool')
  assert pool.padding == 'same'


def test_bad_slim_checkpoints(tmp_path, slim_checkpoint):
  prefix, _, _ = slim_checkpoint
  # A checkpoint without the encoder's variables: the first missing is named.
  other = str(tmp_path / 'other')
  tf.train.Checkpoint(v=tf.Variable([1.0])).write(other)
  with pytest.raises(ValueError, match='missing variable resnet_v2_50/conv1'):
    encoder.build_encoder(64, weights=other)
  # The small encoder cannot take slim's weights.
  with pytest.raises(ValueError, match='only --encoder=resnet50v2'):
    encoder.build_encoder(64, weights=prefix, name=encoder.RESNET_V2_SMALL)
  # A file named .ckpt that is no checkpoint.
  junk = tmp_path / 'junk.ckpt'
  junk.write_bytes(b'not a checkpoint')
  with pytest.raises(ValueError, match='not a readable TensorFlow checkpoint'):
    encoder.build_encoder(64, weights=str(junk))


def test_slims_v1_imagenet_checkpoint_format(slim_checkpoint, tmp_path):
  # TF-Slim's released resnet_v2_50.ckpt is one V1-format file (plus its
  # logits, which the encoder ignores).
  prefix, crops, expected = slim_checkpoint
  reader = tf.train.load_checkpoint(prefix)
  arrays = {n: reader.get_tensor(n) for n in reader.get_variable_to_shape_map()
            if n.startswith('resnet_v2_50/')}
  arrays['resnet_v2_50/logits/weights'] = np.zeros((1, 1, 2048, 1001),
                                                   np.float32)
  path = slim_reference.write_checkpoint(str(tmp_path / 'resnet_v2_50.ckpt'),
                                         arrays, v1=True)
  assert os.listdir(tmp_path) == ['resnet_v2_50.ckpt']  # one file
  model = encoder.build_encoder(_SIZE, weights=path)
  got = model(crops[:1], training=False).numpy()
  assert np.abs(got - expected[:1]).max() < 1e-4 * np.ptp(expected)
