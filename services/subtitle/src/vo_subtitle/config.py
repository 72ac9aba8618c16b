"""SubtitleService settings: the only code of this service that reads the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from vo_core.config import ServerSettings, env_int


@dataclass(frozen=True)
class Settings:
    """Settings of the subtitle service."""

    server: ServerSettings = field(default_factory=ServerSettings)
    """Listening address, data folder and path roots (``VO_*``)."""
    max_audio_seconds: int = 4 * 3600
    """Longest speech accepted for recognition (``VO_MAX_AUDIO_SECONDS``); 4 hours by default."""
    max_words: int = 200_000
    """Most words one BuildCues call accepts (``VO_MAX_WORDS``), about 20 hours of speech."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from the environment."""
        return cls(
            server=ServerSettings.from_env(env),
            max_audio_seconds=env_int("VO_MAX_AUDIO_SECONDS", 4 * 3600, env),
            max_words=env_int("VO_MAX_WORDS", 200_000, env),
        )
