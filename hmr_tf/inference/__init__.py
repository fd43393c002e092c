"""Inference: the demo library, the SavedModel export, the original model's import."""
