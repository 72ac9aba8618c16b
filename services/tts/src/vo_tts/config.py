"""TtsService settings: the only code of this service that reads the environment."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from vo_core.config import ServerSettings, env_int, env_paths, env_str


@dataclass(frozen=True)
class Settings:
    """Settings of the TTS service."""

    server: ServerSettings = field(default_factory=ServerSettings)
    """Listening address, data folder and path roots (``VO_*``)."""
    max_text_chars: int = 100_000
    """Longest accepted text in characters (``VO_TTS_MAX_TEXT_CHARS``)."""
    workers: int = 0
    """eSpeak NG worker processes (``VO_TTS_WORKERS``); 0 runs it in the server process
    behind a lock. Workers pay off when several requests arrive at once (see bench/tts.py)."""
    default_voice: str = "en-us"
    """Voice used when a request names none (``VO_TTS_DEFAULT_VOICE``)."""
    piper_models: tuple[Path, ...] = ()
    """Piper ``.onnx`` voice models to offer as engine "piper" (``VO_TTS_PIPER_MODELS``,
    ``:``-separated); needs the optional ``piper-tts`` package."""
    cache_memory_bytes: int = 64 << 20
    """Budget of the in-memory result cache (``VO_TTS_CACHE_MEMORY_BYTES``); 0 disables it."""
    cache_disk_bytes: int = 1 << 30
    """Budget of the on-disk result cache (``VO_TTS_CACHE_DISK_BYTES``); 0 disables it."""
    cache_dir: Path | None = None
    """Folder of the disk cache (``VO_TTS_CACHE_DIR``); default ``<data_dir>/cache/tts``."""

    @property
    def cache_path(self) -> Path:
        """Where the disk cache lives."""
        return self.cache_dir or self.server.data_dir / "cache" / "tts"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from the environment."""
        cache_dir = (env if env is not None else os.environ).get("VO_TTS_CACHE_DIR")
        return cls(
            server=ServerSettings.from_env(env),
            max_text_chars=env_int("VO_TTS_MAX_TEXT_CHARS", 100_000, env),
            workers=env_int("VO_TTS_WORKERS", 0, env),
            default_voice=env_str("VO_TTS_DEFAULT_VOICE", "en-us", env),
            piper_models=tuple(env_paths("VO_TTS_PIPER_MODELS", [], env)),
            cache_memory_bytes=env_int("VO_TTS_CACHE_MEMORY_BYTES", 64 << 20, env),
            cache_disk_bytes=env_int("VO_TTS_CACHE_DISK_BYTES", 1 << 30, env),
            cache_dir=Path(cache_dir).expanduser().resolve() if cache_dir else None,
        )
