"""Image encoder: ResNet-50 v2, global-average pooled to φ [B, 2048].

The original HMR used TF-Slim's resnet_v2_50; Keras' `ResNet50V2` is the same
architecture (pre-activation bottlenecks, final batch norm + ReLU before the
pooling). Images come in as float32 in [-1, 1], the preprocessing both
expect.

`resnet_v2_small` is not in the paper: the same pre-activation bottleneck
design with two blocks per stage and a quarter of the width (0.9 M
parameters, φ [B, 512]), for training from scratch on a CPU, where
ResNet50V2 is too slow to learn within minutes. It has no ImageNet weights.
"""

import os

import keras

# Encoder names (--encoder): the paper's, and a small CPU-friendly variant.
RESNET50_V2 = 'resnet50v2'
RESNET_V2_SMALL = 'resnet_v2_small'
ENCODERS = (RESNET50_V2, RESNET_V2_SMALL)

# resnet_v2_small: bottleneck blocks per stage and the first stage's width.
_SMALL_BLOCKS = (2, 2, 2, 2)
_SMALL_WIDTH = 16
_BN_EPSILON = 1.001e-5  # As Keras' ResNet50V2.

# The file Keras downloads for `weights='imagenet'` without the classifier
# (named in the offline error message so users can fetch it by hand).
_IMAGENET_NOTOP_FILE = 'resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5'
_IMAGENET_URL = ('https://storage.googleapis.com/tensorflow/'
                 f'keras-applications/resnet/{_IMAGENET_NOTOP_FILE}')


def _bottleneck_v2(x, filters: int, stride: int, name: str):
  """One pre-activation bottleneck: BN-ReLU, 1x1, 3x3 (stride), 1x1 (4x)."""
  pre = keras.layers.BatchNormalization(epsilon=_BN_EPSILON,
                                        name=name + '_preact_bn')(x)
  pre = keras.layers.Activation('relu', name=name + '_preact_relu')(pre)
  if stride != 1 or x.shape[-1] != 4 * filters:
    # The projection shortcut reads the pre-activated input, as in v2.
    shortcut = keras.layers.Conv2D(4 * filters, 1, strides=stride,
                                   name=name + '_0_conv')(pre)
  else:
    shortcut = x
  y = keras.layers.Conv2D(filters, 1, use_bias=False, name=name + '_1_conv')(pre)
  y = keras.layers.BatchNormalization(epsilon=_BN_EPSILON,
                                      name=name + '_1_bn')(y)
  y = keras.layers.Activation('relu', name=name + '_1_relu')(y)
  y = keras.layers.Conv2D(filters, 3, strides=stride, padding='same',
                          use_bias=False, name=name + '_2_conv')(y)
  y = keras.layers.BatchNormalization(epsilon=_BN_EPSILON,
                                      name=name + '_2_bn')(y)
  y = keras.layers.Activation('relu', name=name + '_2_relu')(y)
  y = keras.layers.Conv2D(4 * filters, 1, name=name + '_3_conv')(y)
  return keras.layers.Add(name=name + '_out')([shortcut, y])


def _resnet_v2_small(img_size):
  """The small pre-activation ResNet (see the module docstring)."""
  inputs = keras.Input((img_size, img_size, 3), name='image')
  x = keras.layers.Conv2D(_SMALL_WIDTH, 7, strides=2, padding='same',
                          name='conv1_conv')(inputs)
  x = keras.layers.MaxPooling2D(3, strides=2, padding='same',
                                name='pool1_pool')(x)
  for stage, blocks in enumerate(_SMALL_BLOCKS):
    for block in range(blocks):
      # Each stage after the first halves the resolution in its first block.
      stride = 2 if (block == 0 and stage > 0) else 1
      x = _bottleneck_v2(x, _SMALL_WIDTH * 2**stage, stride,
                         f'conv{stage + 2}_block{block + 1}')
  x = keras.layers.BatchNormalization(epsilon=_BN_EPSILON, name='post_bn')(x)
  x = keras.layers.Activation('relu', name='post_relu')(x)
  x = keras.layers.GlobalAveragePooling2D(name='avg_pool')(x)
  return keras.Model(inputs, x, name='encoder')


def _resnet(img_size, weights, name=RESNET50_V2):
  if name == RESNET_V2_SMALL:
    return _resnet_v2_small(img_size)
  return keras.applications.ResNet50V2(
      include_top=False, weights=weights, input_shape=(img_size, img_size, 3),
      pooling='avg', name='encoder')


def build_encoder(img_size: int = 224, weights: str = 'none',
                  name: str = RESNET50_V2) -> keras.Model:
  """Builds the encoder.

  Args:
    img_size: side S of the square input crops; anything >= 32 works.
    weights: 'none' (random initialisation), 'imagenet' (downloaded through
      Keras into ~/.keras/models, needs internet the first time) or the path
      of a local Keras weights file (`.weights.h5`, or the legacy `.h5` that
      Keras downloads for 'imagenet'); 'imagenet' only for resnet50v2.
    name: one of ENCODERS.

  Returns:
    A functional keras.Model mapping [B, S, S, 3] images in [-1, 1] to
    φ [B, F] (F = 2048 for resnet50v2, 512 for resnet_v2_small).

  Raises:
    ValueError: an unknown option, or a weights file that does not exist or
      does not fit the network.
    RuntimeError: 'imagenet' when the download fails (offline).
  """
  if img_size < 32:
    raise ValueError(f'encoder img_size must be >= 32, got {img_size}')
  if name not in ENCODERS:
    raise ValueError(f'--encoder={name}: expected one of {ENCODERS}')
  choice = (weights or 'none').strip()
  if choice.lower() == 'none':
    return _resnet(img_size, None, name)
  if choice.lower() == 'imagenet':
    if name != RESNET50_V2:
      raise ValueError(f'--encoder_weights=imagenet: only --encoder='
                       f'{RESNET50_V2} has ImageNet weights, not {name}')
    try:
      return _resnet(img_size, 'imagenet')
    except Exception as e:  # Keras raises a bare Exception on URL failures.
      raise RuntimeError(
          f'--encoder_weights=imagenet: could not fetch the ImageNet weights '
          f'through Keras ({e}). Offline, download {_IMAGENET_URL} on a '
          f'machine with internet, copy it here and pass '
          f'--encoder_weights=/path/to/{_IMAGENET_NOTOP_FILE} (or put it in '
          f'~/.keras/models/).') from e
  path = os.path.expanduser(choice)
  if not os.path.isfile(path):
    raise ValueError(
        f'--encoder_weights={weights}: no such file; expected "none", '
        '"imagenet" or the path of a Keras weights file (.weights.h5 or .h5)')
  if not path.endswith('.h5'):
    raise ValueError(f'--encoder_weights={weights}: expected a Keras weights '
                     'file ending in .weights.h5 or .h5')
  model = _resnet(img_size, None, name)
  try:
    model.load_weights(path)
  except (ValueError, KeyError, OSError) as e:
    raise ValueError(f'--encoder_weights={weights}: cannot load these weights '
                     f'into the {name} encoder without the classifier '
                     f'({e})') from e
  return model
