"""PipelineService settings: the only code of this service that reads the environment."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from vo_core.config import ServerSettings


@dataclass(frozen=True)
class Settings:
    """Settings of the pipeline service (the job store, queue and workers arrive with issue 5)."""

    server: ServerSettings = field(default_factory=ServerSettings)
    """Listening address, data folder and path roots (``VO_*``)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from the environment."""
        return cls(server=ServerSettings.from_env(env))
