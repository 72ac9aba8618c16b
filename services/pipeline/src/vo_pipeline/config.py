"""PipelineService settings: the only code of this service that reads the environment.

Every setting is an environment variable (``VO_PIPELINE_*``); ``VO_PIPELINE_CONFIG`` may name
a file of ``NAME=value`` lines read first, so a deployment keeps them in one place.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, cast

from vo_core.config import ServerSettings, env_float, env_int, env_str
from vo_core.errors import InvalidInput

WorkerMode = Literal["process", "thread"]
SERVICES = ("script", "tts", "subtitle", "video")
"""The services a job's steps call, as named in ``Settings.service_targets``."""


def _with_file(env: Mapping[str, str] | None) -> dict[str, str]:
    values = dict(env if env is not None else os.environ)
    path = values.get("VO_PIPELINE_CONFIG")
    if path:
        try:
            lines = Path(path).read_text().splitlines()
        except OSError as exc:
            raise InvalidInput(f"VO_PIPELINE_CONFIG={path}: {exc.strerror}") from None
        for n, line in enumerate(lines, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            name, sep, value = line.partition("=")
            if not sep:
                raise InvalidInput(f"{path} line {n}: expected NAME=value, got {line!r}")
            values.setdefault(name.strip(), value.strip())  # the environment wins over the file
    return values


@dataclass(frozen=True)
class Settings:
    """Settings of the pipeline service and its worker pool."""

    server: ServerSettings = field(default_factory=ServerSettings)
    """Listening address, data folder and path roots (``VO_*``)."""
    db_path: Path | None = None
    """SQLite job store (``VO_PIPELINE_DB``); default ``<data_dir>/jobs.sqlite3``."""
    min_workers: int = 1
    """Worker processes kept alive when idle (``VO_PIPELINE_MIN_WORKERS``)."""
    max_workers: int = field(default_factory=lambda: min(16, 2 * (os.cpu_count() or 1)))
    """Most worker processes (``VO_PIPELINE_MAX_WORKERS``); default 2x cores, at most 16."""
    idle_timeout: float = 60.0
    """Seconds an idle worker above ``min_workers`` lives (``VO_PIPELINE_IDLE_TIMEOUT``)."""
    max_queue_size: int = 1000
    """Most queued jobs; more gets RESOURCE_EXHAUSTED (``VO_PIPELINE_MAX_QUEUE_SIZE``)."""
    max_attempts: int = 3
    """Tries per job before it fails for good (``VO_PIPELINE_MAX_ATTEMPTS``)."""
    lease_seconds: float = 30.0
    """How long a worker's claim on a job lasts without renewal (``VO_PIPELINE_LEASE_SECONDS``)."""
    worker_mode: WorkerMode = "process"
    """``process`` (renders never share a GIL) or ``thread`` (one process; for the CLI and tests)
    (``VO_PIPELINE_WORKER_MODE``)."""
    cache_memory_bytes: int = 16 << 20
    """In-memory render-result cache (``VO_PIPELINE_CACHE_MEMORY_BYTES``)."""
    cache_disk_bytes: int = 64 << 20
    """On-disk render-result cache (``VO_PIPELINE_CACHE_DISK_BYTES``)."""
    service_targets: Mapping[str, str] = field(default_factory=dict)
    """Where each step's service runs, by service (``script``, ``tts``, ``subtitle``,
    ``video``): a gRPC target such as ``tts.internal:4545`` from ``VO_PIPELINE_TTS_TARGET``
    and its siblings. A service without one runs inside each worker (a private Unix
    socket). Remote services must share this server's artifact folder (``VO_DATA_DIR``),
    since steps hand each other files by sha256."""

    @property
    def store_path(self) -> Path:
        """Where the job store lives."""
        return self.db_path or self.server.data_dir / "jobs.sqlite3"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from the environment (and the optional config file)."""
        values = _with_file(env)
        mode = env_str("VO_PIPELINE_WORKER_MODE", "process", values)
        if mode not in ("process", "thread"):
            raise InvalidInput(f"VO_PIPELINE_WORKER_MODE={mode!r}: use process or thread")
        db = values.get("VO_PIPELINE_DB")
        settings = cls(
            server=ServerSettings.from_env(values),
            db_path=Path(db) if db else None,
            min_workers=env_int("VO_PIPELINE_MIN_WORKERS", 1, values),
            max_workers=env_int(
                "VO_PIPELINE_MAX_WORKERS", min(16, 2 * (os.cpu_count() or 1)), values
            ),
            idle_timeout=env_float("VO_PIPELINE_IDLE_TIMEOUT", 60.0, values),
            max_queue_size=env_int("VO_PIPELINE_MAX_QUEUE_SIZE", 1000, values),
            max_attempts=env_int("VO_PIPELINE_MAX_ATTEMPTS", 3, values),
            lease_seconds=env_float("VO_PIPELINE_LEASE_SECONDS", 30.0, values),
            worker_mode=cast(WorkerMode, mode),
            cache_memory_bytes=env_int("VO_PIPELINE_CACHE_MEMORY_BYTES", 16 << 20, values),
            cache_disk_bytes=env_int("VO_PIPELINE_CACHE_DISK_BYTES", 64 << 20, values),
            service_targets={
                name: target
                for name in SERVICES
                if (target := env_str(f"VO_PIPELINE_{name.upper()}_TARGET", "", values))
            },
        )
        settings.check()
        return settings

    def check(self) -> None:
        """Reject settings that cannot work, naming the variable."""
        if not 0 <= self.min_workers <= self.max_workers <= 64 or self.max_workers < 1:
            raise InvalidInput(
                f"VO_PIPELINE_MIN_WORKERS={self.min_workers} / MAX_WORKERS={self.max_workers}: "
                "need 0 <= min <= max, 1 <= max <= 64"
            )
        if self.max_queue_size < 1:
            raise InvalidInput(f"VO_PIPELINE_MAX_QUEUE_SIZE={self.max_queue_size} must be >= 1")
        for name in self.service_targets:
            if name not in SERVICES:
                raise InvalidInput(f"service_targets: unknown service {name!r}; use {SERVICES}")
        if self.max_attempts < 1:
            raise InvalidInput(f"VO_PIPELINE_MAX_ATTEMPTS={self.max_attempts} must be >= 1")
