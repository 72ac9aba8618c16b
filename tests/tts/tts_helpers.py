"""Helpers of the TtsService tests: a real grpc.aio server on port 0 with the real servicer."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from vo.tts.v1 import tts_service_pb2_grpc
from vo_core.config import ServerSettings
from vo_core.server import add_standard_services, bind, create_server, mark_serving
from vo_tts.config import Settings
from vo_tts.server import register


@dataclass
class TtsServer:
    """A running server and a stub connected to it."""

    stub: tts_service_pb2_grpc.TtsServiceStub
    settings: Settings
    address: str


def tts_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Settings with every folder under ``tmp_path``."""
    server = ServerSettings(host="127.0.0.1", port=0, data_dir=tmp_path)
    return Settings(server=server, **overrides)


async def start(settings: Settings) -> tuple[grpc.aio.Server, int]:
    """A started server for ``settings``; the caller stops it with grace=None."""
    server = create_server()
    names = [register(server, settings)]
    health = add_standard_services(server, names)
    port = bind(server, settings.server.host, 0)
    await server.start()
    await mark_serving(health, names)
    return server, port
