"""VideoService wiring: the servicer on a vo server with health, reflection and graceful stop."""

from __future__ import annotations

import grpc
from vo.video.v1 import video_service_pb2, video_service_pb2_grpc
from vo_core.server import run_server

from vo_video.config import Settings
from vo_video.servicer import VideoServicer

SERVICE_NAME = video_service_pb2.DESCRIPTOR.services_by_name["VideoService"].full_name


def register(server: grpc.aio.Server, settings: Settings) -> str:
    """Add the VideoService to ``server``; return its full name for health and reflection."""
    video_service_pb2_grpc.add_VideoServiceServicer_to_server(VideoServicer(settings), server)
    return SERVICE_NAME


async def serve(settings: Settings) -> None:
    """Serve the VideoService alone until SIGINT/SIGTERM."""
    await run_server(
        lambda server: [register(server, settings)], settings.server, service_name="vo-video"
    )
