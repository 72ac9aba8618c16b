"""ScriptService wiring: the servicer on a vo server with health, reflection and graceful stop."""

from __future__ import annotations

import grpc
from vo.script.v1 import script_service_pb2, script_service_pb2_grpc
from vo_core.logs import configure_logging
from vo_core.server import add_standard_services, bind, create_server, serve_until_signalled

from vo_script.config import Settings
from vo_script.servicer import ScriptServicer

SERVICE_NAME = script_service_pb2.DESCRIPTOR.services_by_name["ScriptService"].full_name


def register(server: grpc.aio.Server, settings: Settings) -> str:
    """Add the ScriptService to ``server``; return its full name for health and reflection."""
    script_service_pb2_grpc.add_ScriptServiceServicer_to_server(ScriptServicer(settings), server)
    return SERVICE_NAME


async def serve(settings: Settings) -> None:
    """Serve the ScriptService alone until SIGINT/SIGTERM."""
    configure_logging()
    server = create_server()
    names = [register(server, settings)]
    health = add_standard_services(server, names)
    bind(server, settings.server.host, settings.server.port)
    await serve_until_signalled(server, health, names, grace_seconds=settings.server.grace_seconds)
