"""ScriptService wiring: the servicer on a vo server with health, reflection and graceful stop."""

from __future__ import annotations

import grpc
from vo.script.v1 import script_service_pb2, script_service_pb2_grpc
from vo_core.server import run_server

from vo_script.config import Settings
from vo_script.servicer import ScriptServicer

SERVICE_NAME = script_service_pb2.DESCRIPTOR.services_by_name["ScriptService"].full_name


def register(server: grpc.aio.Server, settings: Settings) -> str:
    """Add the ScriptService to ``server``; return its full name for health and reflection."""
    script_service_pb2_grpc.add_ScriptServiceServicer_to_server(ScriptServicer(settings), server)
    return SERVICE_NAME


async def serve(settings: Settings) -> None:
    """Serve the ScriptService alone until SIGINT/SIGTERM."""
    await run_server(
        lambda server: [register(server, settings)], settings.server, service_name="vo-script"
    )
