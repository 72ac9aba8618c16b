"""vo video service."""
