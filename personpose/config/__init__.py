"""personpose.config."""
