"""HMR's networks: encoder, IEF regressor, camera, discriminator, the model."""
