"""personpose.losses."""
