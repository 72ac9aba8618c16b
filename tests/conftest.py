"""Shared fixtures: generated media and a real gRPC server with every service on a free port."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from serverutil import mesh_server
from vo_core.config import ServerSettings
from vo_pipeline.config import Settings as PipelineSettings
from vo_pipeline.mesh import EmbeddedMesh
from vo_video.samples import SubjectPath, write_sample


@dataclass(frozen=True)
class Clip:
    """A generated test clip and the path its subject follows."""

    path: Path
    subject: SubjectPath
    fps: int


@pytest.fixture(scope="session")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session-wide folder of generated media."""
    return tmp_path_factory.mktemp("media")


@pytest.fixture(scope="session")
def landscape_clip(media_dir: Path) -> Clip:
    """4 s of 1280x720 30 fps H.264 + AAC with a subject moving across the frame."""
    path = media_dir / "landscape.mp4"
    subject = write_sample(path, duration=4.0, width=1280, height=720, fps=30)
    return Clip(path, subject, 30)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A fresh server data folder."""
    d = tmp_path / "data"
    d.mkdir()
    return d


@pytest.fixture
async def server_target(data_dir: Path, tmp_path: Path) -> AsyncIterator[str]:
    """A real grpc.aio server on 127.0.0.1:<free port> with every service; stopped with grace=None.

    Inputs may be read from the test's tmp folder and the session media folder; outputs go to tmp.
    """
    settings = ServerSettings(
        host="127.0.0.1",
        port=0,
        data_dir=data_dir,
        input_roots=(tmp_path, tmp_path.parent.parent),
        output_roots=(tmp_path,),
    )
    pipeline = PipelineSettings(
        worker_mode="thread", min_workers=1, max_workers=2, max_queue_size=8
    )
    async with mesh_server(settings, pipeline) as target:
        yield target


@pytest.fixture
def embedded_mesh() -> Iterator[EmbeddedMesh]:
    """Every service in a background thread (for the blocking client and the CLI)."""
    with EmbeddedMesh() as mesh:
        yield mesh


@pytest.fixture
async def aio_channel(server_target: str) -> AsyncIterator[grpc.aio.Channel]:
    """An asyncio channel to the test server."""
    async with grpc.aio.insecure_channel(server_target) as channel:
        yield channel
