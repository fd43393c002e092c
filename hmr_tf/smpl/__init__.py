"""SMPL body models: file I/O, the skinning math, the Keras layer, stand-ins."""

from hmr_tf.smpl.layer import SMPL
from hmr_tf.smpl.layer import SMPLOutput
from hmr_tf.smpl.model_io import BodyModel
from hmr_tf.smpl.model_io import load_model
from hmr_tf.smpl.model_io import save_model

__all__ = ['BodyModel', 'SMPL', 'SMPLOutput', 'load_model', 'save_model']
