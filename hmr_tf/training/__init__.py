"""Training: the loop, checkpoints, callbacks, distribution."""
