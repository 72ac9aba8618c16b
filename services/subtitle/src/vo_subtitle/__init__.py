"""vo subtitle service."""
