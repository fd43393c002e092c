"""File safety: atomic writes and the allow-list unpickler."""
