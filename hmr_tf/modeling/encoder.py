"""Image encoder: ResNet-50 v2, global-average pooled to φ [B, 2048].

The original HMR used TF-Slim's resnet_v2_50; Keras' `ResNet50V2` is the same
architecture (pre-activation bottlenecks, final batch norm + ReLU before the
pooling). Images come in as float32 in [-1, 1], the preprocessing both
expect.
"""

import os

import keras

NUM_FEATURES = 2048

# The file Keras downloads for `weights='imagenet'` without the classifier
# (named in the offline error message so users can fetch it by hand).
_IMAGENET_NOTOP_FILE = 'resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5'
_IMAGENET_URL = ('https://storage.googleapis.com/tensorflow/'
                 f'keras-applications/resnet/{_IMAGENET_NOTOP_FILE}')


def _resnet(img_size, weights):
  return keras.applications.ResNet50V2(
      include_top=False, weights=weights, input_shape=(img_size, img_size, 3),
      pooling='avg', name='encoder')


def build_encoder(img_size: int = 224,
                  weights: str = 'none') -> keras.Model:
  """Builds the ResNet50V2 encoder.

  Args:
    img_size: side S of the square input crops; anything >= 32 works.
    weights: 'none' (random initialisation), 'imagenet' (downloaded through
      Keras into ~/.keras/models, needs internet the first time) or the path
      of a local Keras weights file (`.weights.h5`, or the legacy `.h5` that
      Keras downloads for 'imagenet').

  Returns:
    A functional keras.Model mapping [B, S, S, 3] images in [-1, 1] to
    φ [B, 2048].

  Raises:
    ValueError: an unknown option, or a weights file that does not exist or
      does not fit the network.
    RuntimeError: 'imagenet' when the download fails (offline).
  """
  if img_size < 32:
    raise ValueError(f'encoder img_size must be >= 32, got {img_size}')
  choice = (weights or 'none').strip()
  if choice.lower() == 'none':
    return _resnet(img_size, None)
  if choice.lower() == 'imagenet':
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
  model = _resnet(img_size, None)
  try:
    model.load_weights(path)
  except (ValueError, KeyError, OSError) as e:
    raise ValueError(f'--encoder_weights={weights}: cannot load these weights '
                     f'into ResNet50V2 without the classifier ({e})') from e
  return model
