"""A Keras model that builds itself in its constructor: no symbolic build.

Keras 3's TensorFlow trainer starts `fit` with `_maybe_symbolic_build`, which
under a tf.distribute strategy takes one batch from the training iterator and
reduces it across replicas to build unbuilt layers. HMRModel builds every
layer and both optimizers itself, so that batch is read for nothing, and the
reduction fails for nested batches under MultiWorkerMirroredStrategy.

Keras offers no public switch for this, so the one private hook the project
overrides lives here and nowhere else. tests/modeling/prebuilt_test.py checks
that Keras still calls it from `fit` with this signature: a Keras upgrade that
renames or drops it fails there, loudly, instead of silently re-enabling the
symbolic build.
"""

import keras

# The private Keras method overridden below (checked by the test).
KERAS_HOOK = '_maybe_symbolic_build'


class PrebuiltModel(keras.Model):
  """A keras.Model whose subclass builds all its layers in `__init__`."""

  def _maybe_symbolic_build(self, iterator=None, data_batch=None):
    # Keras' version only builds; nothing is left to build once every layer
    # is built, so skip it (and the batch it would take from the iterator).
    if all(layer.built for layer in self._flatten_layers()):
      return
    super()._maybe_symbolic_build(iterator, data_batch)
