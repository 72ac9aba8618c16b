"""Reading settings from the environment, written once for every service's ``config.py``.

Each service's ``config.py`` is a frozen dataclass built by ``Settings.from_env()`` and is the
only code that reads ``os.environ``; these helpers parse values and name the variable in the
error when a value is wrong.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from vo_core.errors import InvalidInput
from vo_core.storage import ArtifactStore, PathPolicy


def env_str(name: str, default: str, env: Mapping[str, str] | None = None) -> str:
    """A string setting."""
    return (env if env is not None else os.environ).get(name, default)


def env_int(name: str, default: int, env: Mapping[str, str] | None = None) -> int:
    """An integer setting; a malformed value names the variable."""
    raw = (env if env is not None else os.environ).get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise InvalidInput(f"{name}={raw!r} is not an integer") from None


def env_float(name: str, default: float, env: Mapping[str, str] | None = None) -> float:
    """A float setting; a malformed value names the variable."""
    raw = (env if env is not None else os.environ).get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise InvalidInput(f"{name}={raw!r} is not a number") from None


def env_paths(name: str, default: list[Path], env: Mapping[str, str] | None = None) -> list[Path]:
    """A list of paths separated by ``os.pathsep``."""
    raw = (env if env is not None else os.environ).get(name)
    if not raw:
        return default
    return [Path(p).expanduser().resolve() for p in raw.split(os.pathsep) if p]


def default_data_dir(env: Mapping[str, str] | None = None) -> Path:
    """Where servers keep uploads, artifacts and state unless told otherwise (``VO_DATA_DIR``)."""
    raw = (env if env is not None else os.environ).get("VO_DATA_DIR")
    if raw:
        return Path(raw).expanduser().resolve()
    return (Path.home() / ".local" / "share" / "vo").resolve()


@dataclass(frozen=True)
class ServerSettings:
    """What every vo server needs, read from ``VO_*`` variables; each service embeds one."""

    host: str = "127.0.0.1"
    """Interface to listen on (``VO_HOST``)."""
    port: int = 4545
    """Port to listen on; 0 picks a free one (``VO_PORT``)."""
    data_dir: Path = field(default_factory=default_data_dir)
    """Folder for uploads, artifacts and state (``VO_DATA_DIR``)."""
    input_roots: tuple[Path, ...] = ()
    """Folders inputs may be read from by path (``VO_INPUT_ROOTS``, ``:``-separated); empty: data_dir."""
    output_roots: tuple[Path, ...] = ()
    """Folders outputs may be written to by path (``VO_OUTPUT_ROOTS``); empty: data_dir."""
    max_upload_bytes: int = 8 << 30
    """Largest accepted upload (``VO_MAX_UPLOAD_BYTES``), 8 GiB by default."""
    grace_seconds: float = 10.0
    """How long a stopping server lets running calls finish (``VO_GRACE_SECONDS``)."""
    metrics_port: int = -1
    """Port of the Prometheus ``/metrics`` endpoint (``VO_METRICS_PORT``); -1: none, 0: any free."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServerSettings:
        """Settings from the environment, defaults for what is unset."""
        data_dir = default_data_dir(env)
        return cls(
            host=env_str("VO_HOST", "127.0.0.1", env),
            port=env_int("VO_PORT", 4545, env),
            data_dir=data_dir,
            input_roots=tuple(env_paths("VO_INPUT_ROOTS", [], env)),
            output_roots=tuple(env_paths("VO_OUTPUT_ROOTS", [], env)),
            max_upload_bytes=env_int("VO_MAX_UPLOAD_BYTES", 8 << 30, env),
            grace_seconds=env_float("VO_GRACE_SECONDS", 10.0, env),
            metrics_port=env_int("VO_METRICS_PORT", -1, env),
        )

    def artifact_store(self) -> ArtifactStore:
        """The artifact store under ``data_dir/artifacts``."""
        return ArtifactStore(self.data_dir / "artifacts", max_upload_bytes=self.max_upload_bytes)

    def path_policy(self) -> PathPolicy:
        """Which paths inputs and outputs may use."""
        return PathPolicy(
            list(self.input_roots or (self.data_dir,)), list(self.output_roots or (self.data_dir,))
        )
