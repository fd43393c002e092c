"""Inference: the demo's flow (sources, people, detectors, crops, demo_lib,
tracking, smoothing, video, writers, gltf), the SavedModel export, the
original model's import."""
