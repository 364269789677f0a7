"""personpose.metrics."""
