"""Dataset converters: `python -m datasets.NAME --input_dir=... --output_dir=...`."""
