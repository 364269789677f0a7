"""personpose.training."""
