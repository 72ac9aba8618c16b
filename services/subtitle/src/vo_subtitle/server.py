"""SubtitleService wiring: the servicer on a vo server with health, reflection and graceful stop."""

from __future__ import annotations

import grpc
from vo.subtitle.v1 import subtitle_service_pb2, subtitle_service_pb2_grpc
from vo_core.logs import configure_logging
from vo_core.server import add_standard_services, bind, create_server, serve_until_signalled

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
    configure_logging()
    server = create_server()
    names = [register(server, settings)]
    health = add_standard_services(server, names)
    bind(server, settings.server.host, settings.server.port)
    await serve_until_signalled(server, health, names, grace_seconds=settings.server.grace_seconds)
