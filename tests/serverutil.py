"""A real gRPC server with every service, as the tests start it."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from vo_core.config import ServerSettings
from vo_core.server import add_standard_services, bind, create_server, mark_serving
from vo_pipeline.config import Settings as PipelineSettings
from vo_pipeline.mesh import register_all


@contextlib.asynccontextmanager
async def mesh_server(shared: ServerSettings, pipeline: PipelineSettings) -> AsyncIterator[str]:
    """Every service (the pipeline's workers started) on 127.0.0.1:<free port>; its target.

    Stopped with ``grace=None`` after the pipeline's workers.
    """
    server = create_server()
    mesh = register_all(server, shared, pipeline)
    health = add_standard_services(server, mesh.names)
    port = bind(server, "127.0.0.1", 0)
    await server.start()
    await mesh.start()
    await mark_serving(health, mesh.names)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await mesh.stop()
        await server.stop(None)
