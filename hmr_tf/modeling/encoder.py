"""Image encoder: ResNet-50 v2, global-average pooled to φ [B, 2048].

`resnet50v2` is TF-Slim's `resnet_v2_50` (under `resnet_arg_scope`), the
network the original HMR ran, layer for layer:
  * conv1: 7x7 / 2 with biases, no batch norm, padded 3 on every side;
  * pool1: 3x3 / 2 max pool with padding SAME (windows start at 2i; the only
    padding is after the last row/column). Keras' `ResNet50V2` zero-pads one
    pixel on every side and pools VALID instead (windows start at 2i - 1):
    with the same weights its features differ by ~40% of their range;
  * bottleneck units 3/4/6/3, the stride in the LAST unit of blocks 1-3
    (the identity shortcut then subsampled by a 1x1 / 2 max pool), a
    projection shortcut on the pre-activated input of each block's first
    unit, 3x3 convolutions padded symmetrically (slim's `conv2d_same`);
  * batch norm epsilon 1e-5 and decay 0.997 (slim's; Keras uses 1.001e-5 and
    0.99), scale on; a final `postnorm` batch norm + ReLU.
The layers carry Keras' ResNet50V2 names and are created in its order, so
Keras' ImageNet files load unchanged; TF-Slim checkpoints (the ImageNet
`resnet_v2_50.ckpt` the original trainer started from, or the released HMR
model) load by variable name through `slim_names`.

Images come in as float32 in [-1, 1], the preprocessing both expect.

`resnet_v2_small` is not in the paper: the same pre-activation bottleneck
design with two blocks per stage and a quarter of the width (0.9 M
parameters, φ [B, 512]), for training from scratch on a CPU, where
ResNet-50 is too slow to learn within minutes. It has no ImageNet weights.
It keeps the Keras conventions it was trained with (epsilon 1.001e-5,
TensorFlow SAME padding).
"""

import os

import keras
import tensorflow as tf

from hmr_tf import configs
from hmr_tf.modeling import batch_norm
from hmr_tf.modeling import slim_names

# Encoder names (--encoder): the paper's, and a small CPU-friendly variant.
RESNET50_V2 = configs.RESNET50_V2
RESNET_V2_SMALL = configs.RESNET_V2_SMALL
ENCODERS = configs.ENCODERS

# resnet_v2_small: bottleneck blocks per stage and the first stage's width.
_SMALL_BLOCKS = (2, 2, 2, 2)
_SMALL_WIDTH = 16
_KERAS_BN_EPSILON = 1.001e-5  # Keras' ResNet50V2 (resnet_v2_small keeps it).
_KERAS_BN_MOMENTUM = 0.99

# TF-Slim's resnet_arg_scope, what the original trained with.
SLIM_BN_EPSILON = 1e-5
SLIM_BN_DECAY = 0.997

# The file Keras downloads for `weights='imagenet'` without the classifier
# (named in the offline error message so users can fetch it by hand).
_IMAGENET_NOTOP_FILE = 'resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5'
_IMAGENET_URL = ('https://storage.googleapis.com/tensorflow/'
                 f'keras-applications/resnet/{_IMAGENET_NOTOP_FILE}')


def _batch_norm(name, slim_exact, xla_layers=False):
  # Under XLA, the same layer with its training gradient written out
  # (`batch_norm` says why).
  layer = (batch_norm.OwnGradientBatchNormalization if xla_layers else
           keras.layers.BatchNormalization)
  if slim_exact:
    return layer(epsilon=SLIM_BN_EPSILON, momentum=SLIM_BN_DECAY, name=name)
  return layer(epsilon=_KERAS_BN_EPSILON, momentum=_KERAS_BN_MOMENTUM,
               name=name)


class MatmulConv2D(keras.layers.Conv2D):
  """Conv2D whose 1x1 and 3x3 SAME convolutions are matrix products.

  The same variables and, up to the order of the sums, the same outputs as
  keras.layers.Conv2D. Why: under XLA on a CPU, convolution gradients at the
  small encoder's sizes (2x2 to 16x16 maps) are slow, while matrix products
  are fast: the small encoder's XLA train step ran 15-20% faster written
  this way (docs/quickstart_speed.md). Without XLA it is slower, so only
  training under --jit_compile uses it (`build_encoder(xla_layers=True)`).
  A 3x3 convolution becomes one product over its nine shifted views of the
  padded input (im2col: a few kilobytes per image at these sizes).
  """

  def _as_matmul(self, kernel_size, spatial) -> bool:
    """Whether this layer's convolution has the products' form.

    Square 1x1 (where SAME and VALID agree) or 3x3 SAME kernels, equal
    strides, no dilation or groups, channels last, and a known spatial size;
    anything else keeps Keras' convolution.
    """
    return (kernel_size in ((1, 1), (3, 3)) and
            (kernel_size == (1, 1) or self.padding == 'same') and
            self.strides[0] == self.strides[1] and
            tuple(self.dilation_rate) == (1, 1) and self.groups == 1 and
            self.data_format == 'channels_last' and None not in spatial)

  def convolution_op(self, inputs, kernel):
    kh, kw, cin, cout = (int(d) for d in kernel.shape)
    if not self._as_matmul((kh, kw), tuple(inputs.shape[1:3])):
      return super().convolution_op(inputs, kernel)
    stride = int(self.strides[0])
    height, width = int(inputs.shape[1]), int(inputs.shape[2])
    out_h, out_w = -(-height // stride), -(-width // stride)
    # TensorFlow's SAME: the extra padding row/column goes after (none for
    # a 1x1 kernel).
    pad_h = max((out_h - 1) * stride + kh - height, 0)
    pad_w = max((out_w - 1) * stride + kw - width, 0)
    padded = tf.pad(inputs, [[0, 0], [pad_h // 2, pad_h - pad_h // 2],
                             [pad_w // 2, pad_w - pad_w // 2], [0, 0]])
    # Tap (i, j) of every output pixel, in the kernel's (i, j, c) order.
    views = [padded[:, i:i + (out_h - 1) * stride + 1:stride,
                    j:j + (out_w - 1) * stride + 1:stride, :]
             for i in range(kh) for j in range(kw)]
    patches = views[0] if len(views) == 1 else tf.concat(views, axis=-1)
    y = tf.matmul(tf.reshape(patches, [-1, kh * kw * cin]),  # [B h w, k k cin]
                  tf.reshape(kernel, [kh * kw * cin, cout]))
    return tf.reshape(y, [-1, out_h, out_w, cout])


def _bottleneck_v2(x, filters: int, stride: int, name: str,
                   slim_exact: bool, xla_layers=False):
  """One pre-activation bottleneck: BN-ReLU, 1x1, 3x3 (stride), 1x1 (4x).

  The shortcut is a 1x1 projection of the pre-activated input where the
  channel count changes, else the input itself (subsampled by a 1x1 max
  pool when strided), as in TF-Slim's `bottleneck` and Keras' v2 blocks.
  `slim_exact` pads the 3x3 convolution symmetrically (slim's
  `conv2d_same`); otherwise TensorFlow's SAME padding (all the extra
  padding after, for stride 2), as resnet_v2_small was trained.
  `xla_layers`: `MatmulConv2D` and `OwnGradientBatchNormalization`
  (`build_encoder`).
  """
  conv = MatmulConv2D if xla_layers else keras.layers.Conv2D
  pre = _batch_norm(name + '_preact_bn', slim_exact, xla_layers)(x)
  pre = keras.layers.Activation('relu', name=name + '_preact_relu')(pre)
  if x.shape[-1] != 4 * filters:
    shortcut = conv(4 * filters, 1, strides=stride,
                    name=name + '_0_conv')(pre)
  elif stride > 1:
    shortcut = keras.layers.MaxPooling2D(1, strides=stride,
                                         name=name + '_0_pool')(x)
  else:
    shortcut = x
  y = conv(filters, 1, use_bias=False, name=name + '_1_conv')(pre)
  y = _batch_norm(name + '_1_bn', slim_exact, xla_layers)(y)
  y = keras.layers.Activation('relu', name=name + '_1_relu')(y)
  if slim_exact:
    y = keras.layers.ZeroPadding2D(1, name=name + '_2_pad')(y)
    y = keras.layers.Conv2D(filters, 3, strides=stride, use_bias=False,
                            name=name + '_2_conv')(y)
  else:
    y = conv(filters, 3, strides=stride, padding='same', use_bias=False,
             name=name + '_2_conv')(y)
  y = _batch_norm(name + '_2_bn', slim_exact, xla_layers)(y)
  y = keras.layers.Activation('relu', name=name + '_2_relu')(y)
  y = conv(4 * filters, 1, name=name + '_3_conv')(y)
  return keras.layers.Add(name=name + '_out')([shortcut, y])


def _head(x, slim_exact, xla_layers=False):
  x = _batch_norm('post_bn', slim_exact, xla_layers)(x)
  x = keras.layers.Activation('relu', name='post_relu')(x)
  return keras.layers.GlobalAveragePooling2D(name='avg_pool')(x)


def _resnet_v2_small(img_size, xla_layers=False):
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
                         f'conv{stage + 2}_block{block + 1}', slim_exact=False,
                         xla_layers=xla_layers)
  return keras.Model(inputs, _head(x, slim_exact=False, xla_layers=xla_layers),
                     name='encoder')


def _resnet50_v2(img_size):
  """TF-Slim's resnet_v2_50 with Keras' layer names (module docstring)."""
  inputs = keras.Input((img_size, img_size, 3), name='image')
  x = keras.layers.ZeroPadding2D(3, name='conv1_pad')(inputs)
  x = keras.layers.Conv2D(64, 7, strides=2, name='conv1_conv')(x)
  x = keras.layers.MaxPooling2D(3, strides=2, padding='same',
                                name='pool1_pool')(x)
  blocks = slim_names.RESNET_V2_50_UNITS
  for stage, units in enumerate(blocks):
    for unit in range(units):
      # The stride sits in the last unit of blocks 1-3 (slim and Keras v2).
      last = unit == units - 1 and stage < len(blocks) - 1
      x = _bottleneck_v2(x, 64 * 2**stage, 2 if last else 1,
                         f'conv{stage + 2}_block{unit + 1}', slim_exact=True)
  return keras.Model(inputs, _head(x, slim_exact=True), name='encoder')


def _resnet(img_size, name=RESNET50_V2, xla_layers=False):
  if name == RESNET_V2_SMALL:
    return _resnet_v2_small(img_size, xla_layers)
  return _resnet50_v2(img_size)


def _copy_weights_by_name(source: keras.Model, target: keras.Model):
  """Copies every weighted layer of `source` into `target`'s namesake."""
  for layer in source.layers:
    if layer.weights:
      target.get_layer(layer.name).set_weights(layer.get_weights())


def _imagenet(img_size):
  """resnet50v2 with Keras' ImageNet weights (downloaded through Keras)."""
  try:
    keras_model = keras.applications.ResNet50V2(
        include_top=False, weights='imagenet',
        input_shape=(img_size, img_size, 3), pooling='avg')
  except Exception as e:  # Keras raises a bare Exception on URL failures.
    raise RuntimeError(
        f'--encoder_weights=imagenet: could not fetch the ImageNet weights '
        f'through Keras ({e}). Offline, download {_IMAGENET_URL} on a '
        f'machine with internet, copy it here and pass '
        f'--encoder_weights=/path/to/{_IMAGENET_NOTOP_FILE} (or put it in '
        f'~/.keras/models/).') from e
  model = _resnet(img_size)
  _copy_weights_by_name(keras_model, model)
  return model


def is_slim_checkpoint(path: str) -> bool:
  """True for a TensorFlow checkpoint prefix (V2) or a V1 `.ckpt` file."""
  return os.path.isfile(path + '.index') or (
      path.endswith('.ckpt') and os.path.isfile(path))


def build_encoder(img_size: int = 224, weights: str = 'none',
                  name: str = RESNET50_V2,
                  xla_layers: bool = False) -> keras.Model:
  """Builds the encoder.

  Args:
    img_size: side S of the square input crops; anything >= 32 works.
    weights: 'none' (random initialisation), 'imagenet' (Keras' ImageNet
      weights, downloaded through Keras into ~/.keras/models, needs internet
      the first time), the path of a local Keras weights file
      (`.weights.h5`, or the legacy `.h5` that Keras downloads for
      'imagenet'), or a TF-Slim checkpoint with `resnet_v2_50/...` variables
      (the prefix of a `.index` file, or a V1 `.ckpt` file such as slim's
      ImageNet `resnet_v2_50.ckpt`); all but 'none' only for resnet50v2,
      except Keras files written from resnet_v2_small.
    name: one of ENCODERS.
    xla_layers: resnet_v2_small only: the layers written for training under
      XLA on a CPU (faster there, slower without XLA), with the same
      variables and, up to round-off, the same outputs and gradients: its
      1x1 and 3x3 convolutions as matrix products (`MatmulConv2D`) and its
      batch norms with their gradient written out
      (`batch_norm.OwnGradientBatchNormalization`). Ignored for resnet50v2.

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
    return _resnet(img_size, name, xla_layers)
  if choice.lower() == 'imagenet':
    if name != RESNET50_V2:
      raise ValueError(f'--encoder_weights=imagenet: only --encoder='
                       f'{RESNET50_V2} has ImageNet weights, not {name}')
    return _imagenet(img_size)
  path = os.path.expanduser(choice)
  if is_slim_checkpoint(path):
    if name != RESNET50_V2:
      raise ValueError(f'--encoder_weights={weights}: a TF-Slim checkpoint '
                       f'fits only --encoder={RESNET50_V2}, not {name}')
    model = _resnet(img_size, name)
    slim_names.load_encoder_from_checkpoint(model, path,
                                            flag='--encoder_weights')
    return model
  if not os.path.isfile(path):
    raise ValueError(
        f'--encoder_weights={weights}: no such file; expected "none", '
        '"imagenet", the path of a Keras weights file (.weights.h5 or .h5) '
        'or a TF-Slim checkpoint (.ckpt, or a prefix with a .index file)')
  if not path.endswith('.h5'):
    raise ValueError(f'--encoder_weights={weights}: expected a Keras weights '
                     'file ending in .weights.h5 or .h5, or a TF-Slim '
                     'checkpoint (.ckpt, or a prefix with a .index file)')
  model = _resnet(img_size, name, xla_layers)
  try:
    model.load_weights(path)
  except (ValueError, KeyError, OSError) as e:
    raise ValueError(f'--encoder_weights={weights}: cannot load these weights '
                     f'into the {name} encoder without the classifier '
                     f'({e})') from e
  return model
