"""Evaluation: metrics, the benchmark protocols, the eval run."""
