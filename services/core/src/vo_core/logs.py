"""Logging set-up, once for every service and the CLI."""

from __future__ import annotations

import logging
import os


def configure_logging(level: str | None = None) -> None:
    """Log to stderr as ``time level logger: message``; ``VO_LOG_LEVEL`` sets the level."""
    logging.basicConfig(
        level=(level or os.environ.get("VO_LOG_LEVEL", "INFO")).upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
