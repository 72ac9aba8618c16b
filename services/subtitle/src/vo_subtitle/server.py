"""SubtitleService wiring: the servicer on a vo server with health, reflection and graceful stop."""

from __future__ import annotations

import grpc
from vo.subtitle.v1 import subtitle_service_pb2, subtitle_service_pb2_grpc
from vo_core.server import run_server

from vo_subtitle.config import Settings
from vo_subtitle.servicer import SubtitleServicer

SERVICE_NAME = subtitle_service_pb2.DESCRIPTOR.services_by_name["SubtitleService"].full_name


def register(server: grpc.aio.Server, settings: Settings) -> str:
    """Add the SubtitleService to ``server``; return its full name for health and reflection."""
    subtitle_service_pb2_grpc.add_SubtitleServiceServicer_to_server(
        SubtitleServicer(settings), server
    )
    return SERVICE_NAME


async def serve(settings: Settings) -> None:
    """Serve the SubtitleService alone until SIGINT/SIGTERM."""
    await run_server(
        lambda server: [register(server, settings)], settings.server, service_name="vo-subtitle"
    )
