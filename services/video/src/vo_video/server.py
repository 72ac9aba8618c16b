"""VideoService wiring: the servicer on a vo server with health, reflection and graceful stop."""

from __future__ import annotations

import grpc
from vo.video.v1 import video_service_pb2, video_service_pb2_grpc
from vo_core.logs import configure_logging
from vo_core.server import add_standard_services, bind, create_server, serve_until_signalled

from vo_video.config import Settings
from vo_video.servicer import VideoServicer

SERVICE_NAME = video_service_pb2.DESCRIPTOR.services_by_name["VideoService"].full_name


def register(server: grpc.aio.Server, settings: Settings) -> str:
    """Add the VideoService to ``server``; return its full name for health and reflection."""
    video_service_pb2_grpc.add_VideoServiceServicer_to_server(VideoServicer(settings), server)
    return SERVICE_NAME


async def serve(settings: Settings) -> None:
    """Serve the VideoService alone until SIGINT/SIGTERM."""
    configure_logging()
    server = create_server()
    names = [register(server, settings)]
    health = add_standard_services(server, names)
    bind(server, settings.server.host, settings.server.port)
    await serve_until_signalled(server, health, names, grace_seconds=settings.server.grace_seconds)
