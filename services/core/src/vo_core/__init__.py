"""vo core service."""
