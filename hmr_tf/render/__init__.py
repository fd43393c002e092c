"""The mesh renderer and its rasterizer."""
