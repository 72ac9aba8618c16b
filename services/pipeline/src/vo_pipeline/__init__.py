"""vo pipeline service."""
