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


def test_small_encoder_is_a_preactivation_resnet_with_512_features():
  model = encoder.build_encoder(64, name=encoder.RESNET_V2_SMALL)
  out = model(_images(64), training=False)
  assert out.shape == (2, 512)
  assert np.all(out.numpy() >= 0)  # pooled after the final BN + ReLU
  # 2 bottlenecks in each of 4 stages; every block starts with BN + ReLU.
  blocks = {l.name.split('_')[0] + '_' + l.name.split('_')[1]
            for l in model.layers if l.name.endswith('_preact_bn')}
  assert len(blocks) == 8, sorted(blocks)
  assert 0.5e6 < model.count_params() < 1.5e6, model.count_params()
  # 64 px in, stride 32 out: the last stage works on a 2 x 2 map.
  assert model.get_layer('post_relu').output.shape[1:3] == (2, 2)


def test_small_encoder_weights_round_trip_and_no_imagenet(tmp_path):
  first = encoder.build_encoder(32, name=encoder.RESNET_V2_SMALL)
  path = str(tmp_path / 'small.weights.h5')
  first.save_weights(path)
  second = encoder.build_encoder(32, weights=path,
                                 name=encoder.RESNET_V2_SMALL)
  x = _images(32, seed=2)
  np.testing.assert_array_equal(second(x).numpy(), first(x).numpy())
  with pytest.raises(ValueError, match='only --encoder=resnet50v2'):
    encoder.build_encoder(32, weights='imagenet',
                          name=encoder.RESNET_V2_SMALL)
  with pytest.raises(ValueError, match='--encoder=nope'):
    encoder.build_encoder(32, name='nope')
  # ResNet50V2 weights do not fit the small encoder: a clear error.
  big = str(tmp_path / 'big.weights.h5')
  encoder.build_encoder(32).save_weights(big)
  with pytest.raises(ValueError, match='cannot load'):
    encoder.build_encoder(32, weights=big, name=encoder.RESNET_V2_SMALL)


def test_flag_choices_match_the_encoders():
  from absl import flags as absl_flags  # pylint: disable=g-import-not-at-top
  from hmr_tf import flags as _  # pylint: disable=g-import-not-at-top,unused-import
  assert tuple(absl_flags.FLAGS['encoder'].parser.enum_values) == (
      encoder.ENCODERS)


@pytest.mark.parametrize('kernel,stride,size', [
    (1, 1, 8), (1, 2, 8), (1, 2, 5), (3, 1, 8), (3, 2, 8), (3, 2, 5),
    (3, 2, 2), (3, 1, 2), (7, 2, 8)])
def test_matmul_conv_equals_conv2d_with_gradients(kernel, stride, size):
  # The same layer twice (same weights): Keras' convolution, and the matrix
  # products MatmulConv2D uses for 1x1 and 3x3 SAME (7x7 falls back to
  # Keras'), outputs and gradients, eager and under XLA.
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  padding = 'valid' if kernel == 1 else 'same'
  plain = keras.layers.Conv2D(6, kernel, strides=stride, padding=padding)
  matmul = encoder.MatmulConv2D(6, kernel, strides=stride, padding=padding)
  shape = (3, size, size, 5)
  plain.build(shape)
  matmul.build(shape)
  matmul.set_weights(plain.get_weights())
  x = tf.constant(np.random.default_rng(kernel * 10 + size).normal(
      size=shape).astype(np.float32))

  def run(layer):
    with tf.GradientTape() as tape:
      tape.watch(x)
      y = layer(x)
      loss = tf.reduce_sum(tf.sin(y))
    return [y] + tape.gradient(loss, [x] + layer.trainable_variables)

  reference = run(plain)
  for fn in (run, tf.function(run, jit_compile=True)):
    for got, want in zip(fn(matmul), reference):
      assert got.shape == want.shape
      np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-4,
                                 rtol=1e-4)


def test_matmul_conv_keeps_keras_convolution_outside_its_form():
  # Dilated, VALID 3x3 and unknown-size inputs are not products' form: the
  # layer falls back to Keras' convolution, same outputs.
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  x = tf.constant(np.random.default_rng(4).normal(
      size=(2, 9, 9, 4)).astype(np.float32))
  for kwargs in (dict(padding='same', dilation_rate=2),
                 dict(padding='valid')):
    plain = keras.layers.Conv2D(3, 3, **kwargs)
    matmul = encoder.MatmulConv2D(3, 3, **kwargs)
    plain.build(x.shape)
    matmul.build(x.shape)
    matmul.set_weights(plain.get_weights())
    np.testing.assert_allclose(matmul(x).numpy(), plain(x).numpy(),
                               atol=1e-5, err_msg=str(kwargs))
  matmul = encoder.MatmulConv2D(3, 3, padding='same')
  matmul.build((None, None, None, 4))
  unknown = tf.function(matmul, input_signature=[
      tf.TensorSpec([None, None, None, 4], tf.float32)])
  assert unknown(x).shape == (2, 9, 9, 3)


def test_small_encoder_with_xla_layers_has_the_same_weights_and_output():
  import tensorflow as tf  # pylint: disable=g-import-not-at-top
  from hmr_tf.modeling import batch_norm  # pylint: disable=g-import-not-at-top
  keras.utils.set_random_seed(0)
  plain = encoder.build_encoder(64, name=encoder.RESNET_V2_SMALL)
  matmul = encoder.build_encoder(64, name=encoder.RESNET_V2_SMALL,
                                 xla_layers=True)
  assert [(w.path, w.shape) for w in plain.weights] == [
      (w.path, w.shape) for w in matmul.weights]
  assert sum(isinstance(l, encoder.MatmulConv2D) for l in matmul.layers) > 20
  norms = [isinstance(l, batch_norm.OwnGradientBatchNormalization)
           for l in matmul.layers
           if isinstance(l, keras.layers.BatchNormalization)]
  assert len(norms) == 25 and all(norms)
  matmul.set_weights(plain.get_weights())
  x = tf.random.stateless_uniform((4, 64, 64, 3), (3, 4), -1.0, 1.0)
  np.testing.assert_allclose(matmul(x, training=True).numpy(),
                             plain(x, training=True).numpy(), atol=1e-4)
  # The moving statistics after a training call: the same too.
  for got, want in zip(matmul.non_trainable_weights,
                       plain.non_trainable_weights):
    np.testing.assert_allclose(got.numpy(), want.numpy(), atol=1e-5,
                               err_msg=got.path)
  # resnet50v2 ignores the option.
  assert not any(
      isinstance(l, (encoder.MatmulConv2D,
                     batch_norm.OwnGradientBatchNormalization))
      for l in encoder.build_encoder(32, xla_layers=True).layers)
