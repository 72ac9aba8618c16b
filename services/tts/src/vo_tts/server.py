"""TtsService wiring: the servicer on a vo server with health, reflection and graceful stop."""

from __future__ import annotations

import grpc
from vo.tts.v1 import tts_service_pb2, tts_service_pb2_grpc
from vo_core.server import run_server

from vo_tts.config import Settings
from vo_tts.servicer import TtsServicer

SERVICE_NAME = tts_service_pb2.DESCRIPTOR.services_by_name["TtsService"].full_name


def register(server: grpc.aio.Server, settings: Settings) -> str:
    """Add the TtsService to ``server``; return its full name for health and reflection."""
    tts_service_pb2_grpc.add_TtsServiceServicer_to_server(TtsServicer(settings), server)
    return SERVICE_NAME


async def serve(settings: Settings) -> None:
    """Serve the TtsService alone until SIGINT/SIGTERM."""
    await run_server(
        lambda server: [register(server, settings)], settings.server, service_name="vo-tts"
    )
