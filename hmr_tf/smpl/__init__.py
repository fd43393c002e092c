"""SMPL body models: file I/O, the skinning math, the Keras layer, stand-ins.

`SMPL` and `SMPLOutput` are imported lazily, so that code needing only the
joint orders or the file loader (converters, the renderer) does not pay for
importing TensorFlow.
"""

from hmr_tf.smpl.model_io import BodyModel
from hmr_tf.smpl.model_io import load_model
from hmr_tf.smpl.model_io import save_model

__all__ = ['BodyModel', 'SMPL', 'SMPLOutput', 'load_model', 'save_model']


def __getattr__(name):
  if name in ('SMPL', 'SMPLOutput'):
    from hmr_tf.smpl import layer  # pylint: disable=g-import-not-at-top
    return getattr(layer, name)
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
