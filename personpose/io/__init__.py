"""Small file utilities shared by the entry points: atomic writes, provenance, secret scrubbing."""
