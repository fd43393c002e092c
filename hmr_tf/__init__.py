"""hmr_tf: a TensorFlow 2 / Keras reproduction of HMR (Kanazawa et al. 2018)."""
