"""Fixtures for the TtsService tests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from tts.tts_helpers import TtsServer, start, tts_settings
from vo.tts.v1 import tts_service_pb2_grpc


@pytest.fixture
async def tts(tmp_path: Path) -> AsyncIterator[TtsServer]:
    """The TtsService with default settings (eSpeak behind a lock, memory and disk cache)."""
    settings = tts_settings(tmp_path, max_text_chars=2000)
    server, port = await start(settings)
    address = f"127.0.0.1:{port}"
    async with grpc.aio.insecure_channel(address) as channel:
        yield TtsServer(tts_service_pb2_grpc.TtsServiceStub(channel), settings, address)
    await server.stop(grace=None)
