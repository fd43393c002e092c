"""Image geometry: the crop window and the cameras."""
