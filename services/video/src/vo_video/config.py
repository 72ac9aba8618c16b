"""VideoService settings: the only code of this service that reads the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from vo_core.config import ServerSettings, env_int


@dataclass(frozen=True)
class Settings:
    """Settings of the video service."""

    server: ServerSettings = field(default_factory=ServerSettings)
    """Listening address, data folder and path roots (``VO_*``)."""
    max_input_pixels: int = 4096 * 2304
    """Largest accepted input picture, width x height (``VO_MAX_INPUT_PIXELS``); 4K by default."""
    max_input_seconds: int = 4 * 3600
    """Longest accepted input (``VO_MAX_INPUT_SECONDS``); 4 hours by default."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from the environment."""
        return cls(
            server=ServerSettings.from_env(env),
            max_input_pixels=env_int("VO_MAX_INPUT_PIXELS", 4096 * 2304, env),
            max_input_seconds=env_int("VO_MAX_INPUT_SECONDS", 4 * 3600, env),
        )
