"""The synthetic scenes, pose prior and dataset generator."""
