"""Fixtures for the SubtitleService tests: real speech, generated media, a real server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from subtitle.subtitle_helpers import SPEECH, SubtitleServer, write_video
from vo.subtitle.v1 import subtitle_service_pb2_grpc
from vo_core.config import ServerSettings
from vo_core.server import add_standard_services, bind, create_server, mark_serving
from vo_subtitle.config import Settings
from vo_subtitle.server import register
from vo_video.config import Settings as VideoSettings
from vo_video.server import register as register_video


@pytest.fixture(scope="session")
def speech_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small MP4 (H.264 + AAC) whose soundtrack is the real LibriVox speech."""
    path = tmp_path_factory.mktemp("subtitle-media") / "speech.mp4"
    write_video(path, SPEECH, with_audio=True)
    return path


@pytest.fixture(scope="session")
def silent_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small MP4 with a video stream and no audio stream."""
    path = tmp_path_factory.mktemp("subtitle-media") / "silent.mp4"
    write_video(path, None, with_audio=False)
    return path


@pytest.fixture
async def subtitles(tmp_path: Path) -> AsyncIterator[SubtitleServer]:
    """The SubtitleService on a real grpc.aio server on a free port; stopped with grace=None.

    The VideoService rides along because it takes the uploads a remote ``vo subtitles`` sends.
    Inputs may be read from the test's tmp folder, the session media folders and the test data.
    """
    settings = Settings(
        server=ServerSettings(
            host="127.0.0.1",
            port=0,
            data_dir=tmp_path / "data",
            input_roots=(tmp_path, tmp_path.parent.parent, SPEECH.parent),
            output_roots=(tmp_path,),
        )
    )
    server = create_server()
    names = [
        register(server, settings),
        register_video(server, VideoSettings(server=settings.server)),
    ]
    health = add_standard_services(server, names)
    port = bind(server, "127.0.0.1", 0)
    await server.start()
    await mark_serving(health, names)
    address = f"127.0.0.1:{port}"
    try:
        async with grpc.aio.insecure_channel(address) as channel:
            yield SubtitleServer(
                subtitle_service_pb2_grpc.SubtitleServiceStub(channel), address, settings
            )
    finally:
        await server.stop(None)
