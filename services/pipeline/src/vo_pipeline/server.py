"""PipelineService wiring. Durable jobs are not built yet: every RPC answers UNIMPLEMENTED."""

from __future__ import annotations

import grpc
from vo.pipeline.v1 import pipeline_service_pb2, pipeline_service_pb2_grpc
from vo_core.logs import configure_logging
from vo_core.server import add_standard_services, bind, create_server, serve_until_signalled
from vo_core.unimplemented import unimplemented_servicer

from vo_pipeline.config import Settings

SERVICE_NAME = pipeline_service_pb2.DESCRIPTOR.services_by_name["PipelineService"].full_name


def register(server: grpc.aio.Server, settings: Settings) -> str:
    """Add the PipelineService to ``server``; return its full name."""
    servicer = unimplemented_servicer(
        pipeline_service_pb2_grpc.PipelineServiceServicer,
        SERVICE_NAME,
        "durable render jobs (job store, queue, workers, WatchJob) are built by the issue "
        "'PipelineService: durable render jobs end to end'; use VideoService.Reframe/Render meanwhile",
    )
    pipeline_service_pb2_grpc.add_PipelineServiceServicer_to_server(servicer, server)
    return SERVICE_NAME


async def serve(settings: Settings) -> None:
    """Serve the PipelineService alone until SIGINT/SIGTERM."""
    configure_logging()
    server = create_server()
    names = [register(server, settings)]
    health = add_standard_services(server, names)
    bind(server, settings.server.host, settings.server.port)
    await serve_until_signalled(server, health, names, grace_seconds=settings.server.grace_seconds)
