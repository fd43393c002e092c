"""TFRecord schema, decoding, parsing and the tf.data input pipeline."""
