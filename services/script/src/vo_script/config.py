"""ScriptService settings: the only code of this service that reads the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from vo_core.cache import Cache
from vo_core.config import ServerSettings, env_float, env_int, env_str

from vo_script.engine import ENGINE_NAMES
from vo_script.openai_engine import OpenAIConfig


@dataclass(frozen=True)
class Settings:
    """Settings of the script service."""

    server: ServerSettings = field(default_factory=ServerSettings)
    """Listening address and data folder (``VO_*``)."""
    default_engine: str = ENGINE_NAMES[0]
    """Engine used when a request names none (``VO_SCRIPT_ENGINE``): extractive or openai."""
    max_source_chars: int = 200_000
    """Longest accepted source text in characters (``VO_SCRIPT_MAX_SOURCE_CHARS``)."""
    openai: OpenAIConfig = field(default_factory=OpenAIConfig)
    """The OpenAI-compatible endpoint: ``VO_SCRIPT_OPENAI_BASE_URL``, ``VO_SCRIPT_OPENAI_MODEL``,
    ``VO_SCRIPT_OPENAI_API_KEY``, ``VO_SCRIPT_OPENAI_TIMEOUT_SECONDS`` (120),
    ``VO_SCRIPT_OPENAI_CONNECT_TIMEOUT_SECONDS`` (5) and ``VO_SCRIPT_OPENAI_TEMPERATURE`` (0.7)."""
    cache_memory_bytes: int = 16 << 20
    """In-memory script cache budget (``VO_SCRIPT_CACHE_MEMORY_BYTES``); 0 turns it off."""
    cache_disk_bytes: int = 256 << 20
    """On-disk script cache budget under ``data_dir/cache/script``
    (``VO_SCRIPT_CACHE_DISK_BYTES``); 0 turns it off."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from the environment."""
        return cls(
            server=ServerSettings.from_env(env),
            default_engine=env_str("VO_SCRIPT_ENGINE", ENGINE_NAMES[0], env),
            max_source_chars=env_int("VO_SCRIPT_MAX_SOURCE_CHARS", 200_000, env),
            openai=OpenAIConfig(
                base_url=env_str("VO_SCRIPT_OPENAI_BASE_URL", "", env),
                model=env_str("VO_SCRIPT_OPENAI_MODEL", "", env),
                api_key=env_str("VO_SCRIPT_OPENAI_API_KEY", "", env),
                timeout_seconds=env_float("VO_SCRIPT_OPENAI_TIMEOUT_SECONDS", 120.0, env),
                connect_timeout_seconds=env_float(
                    "VO_SCRIPT_OPENAI_CONNECT_TIMEOUT_SECONDS", 5.0, env
                ),
                temperature=env_float("VO_SCRIPT_OPENAI_TEMPERATURE", 0.7, env),
            ),
            cache_memory_bytes=env_int("VO_SCRIPT_CACHE_MEMORY_BYTES", 16 << 20, env),
            cache_disk_bytes=env_int("VO_SCRIPT_CACHE_DISK_BYTES", 256 << 20, env),
        )

    def cache(self) -> Cache:
        """The script cache: memory in front of disk, each tier present when its budget is set."""
        return Cache.memory_and_disk(
            self.cache_memory_bytes,
            self.server.data_dir / "cache" / "script",
            self.cache_disk_bytes,
        )
