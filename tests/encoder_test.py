"""Tests for the ResNet50V2 encoder and its weight options."""

import urllib.error

import keras
import numpy as np
import pytest

from hmr_tf.modeling import encoder


def _images(size=64, seed=0):
  rng = np.random.default_rng(seed)
  return rng.uniform(-1, 1, (2, size, size, 3)).astype(np.float32)


def test_small_images_give_2048_features():
  model = encoder.build_encoder(64)
  out = model(_images(64), training=False)
  assert out.shape == (2, 2048)
  # Average pooling after the final ReLU: features are non-negative.
  assert np.all(out.numpy() >= 0)


def test_local_weights_file_round_trip(tmp_path):
  first = encoder.build_encoder(32)
  path = str(tmp_path / 'resnet.weights.h5')
  first.save_weights(path)
  second = encoder.build_encoder(32, weights=path)
  third = encoder.build_encoder(32)
  x = _images(32)
  np.testing.assert_array_equal(second(x).numpy(), first(x).numpy())
  assert not np.allclose(third(x).numpy(), first(x).numpy())


def test_missing_or_wrong_weights_file(tmp_path):
  with pytest.raises(ValueError, match='--encoder_weights=.*no such file'):
    encoder.build_encoder(32, weights=str(tmp_path / 'nope.weights.h5'))
  other = tmp_path / 'other.txt'
  other.write_text('x')
  with pytest.raises(ValueError, match='.weights.h5 or .h5'):
    encoder.build_encoder(32, weights=str(other))
  wrong = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
  wrong_path = str(tmp_path / 'wrong.weights.h5')
  wrong.save_weights(wrong_path)
  with pytest.raises(ValueError, match='cannot load'):
    encoder.build_encoder(32, weights=wrong_path)


def test_imagenet_offline_names_the_flag(tmp_path, monkeypatch):
  # Simulate a machine without internet and with an empty Keras cache.
  from keras.src.backend import config as keras_config  # pylint: disable=g-import-not-at-top
  from keras.src.utils import file_utils  # pylint: disable=g-import-not-at-top

  def offline(*args, **kwargs):
    raise urllib.error.URLError('network is unreachable')

  monkeypatch.setattr(file_utils, 'urlretrieve', offline)
  monkeypatch.setattr(keras_config, 'keras_home', lambda: str(tmp_path))
  with pytest.raises(RuntimeError) as info:
    encoder.build_encoder(32, weights='imagenet')
  message = str(info.value)
  assert '--encoder_weights=imagenet' in message
  assert '--encoder_weights=/path/to/' in message
  assert 'notop.h5' in message


def test_legacy_h5_weights_file(tmp_path):
  # The file Keras downloads for 'imagenet' is in the legacy HDF5 layout
  # (one group per layer name); bringing it by path must work.
  import h5py  # pylint: disable=g-import-not-at-top
  from keras.src.legacy.saving import legacy_h5_format  # pylint: disable=g-import-not-at-top
  first = encoder.build_encoder(32)
  path = str(tmp_path / 'resnet50v2_notop.h5')
  with h5py.File(path, 'w') as f:
    legacy_h5_format.save_weights_to_hdf5_group(f, first)
  second = encoder.build_encoder(32, weights=path)
  x = _images(32, seed=1)
  np.testing.assert_array_equal(second(x).numpy(), first(x).numpy())
