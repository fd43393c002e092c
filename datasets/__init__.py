"""Dataset converters to TFRecords.

Run as `python -m datasets.NAME --input_dir=... --output_dir=...`.
"""
