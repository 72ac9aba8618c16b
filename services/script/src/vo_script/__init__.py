"""vo script service."""
