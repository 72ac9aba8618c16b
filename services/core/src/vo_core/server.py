"""The one way vo builds, starts and stops a gRPC server.

Every service's ``server.py`` calls :func:`create_server`, registers its servicer, then
:func:`add_standard_services` (health and reflection for every registered service name), and
runs :func:`serve_until_signalled`. ``vo serve`` registers all services on one server.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Iterable, Sequence

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from vo_core.interceptors import ErrorInterceptor

log = logging.getLogger(__name__)

# Large enough for upload/download chunks and TTS audio returned inline.
MAX_MESSAGE_BYTES = 64 << 20


def create_server(extra_interceptors: Sequence[grpc.aio.ServerInterceptor] = ()) -> grpc.aio.Server:
    """A ``grpc.aio`` server with vo's interceptors and message limits."""
    return grpc.aio.server(
        interceptors=[ErrorInterceptor(), *extra_interceptors],
        options=[
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
        ],
    )


def add_standard_services(server: grpc.aio.Server, service_names: Iterable[str]) -> HealthServicer:
    """Add grpc.health.v1.Health (every service SERVING) and server reflection."""
    names = list(service_names)
    health_servicer = HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [
            *names,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ],
        server,
    )
    return health_servicer


async def mark_serving(health_servicer: HealthServicer, names: Iterable[str]) -> None:
    """Report every named service, and the server as a whole (""), as SERVING."""
    for name in ["", *names]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)


async def mark_not_serving(health_servicer: HealthServicer) -> None:
    """Tell load balancers to stop sending new calls before the server drains."""
    await health_servicer.enter_graceful_shutdown()


def bind(server: grpc.aio.Server, host: str, port: int) -> int:
    """Bind an insecure port; return the port actually bound (useful with port 0)."""
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"could not listen on {host}:{port}; is the port in use?")
    return bound


async def serve_until_signalled(
    server: grpc.aio.Server,
    health_servicer: HealthServicer,
    names: Iterable[str],
    *,
    grace_seconds: float = 10.0,
) -> None:
    """Start, report SERVING, wait for SIGINT/SIGTERM, then drain for ``grace_seconds``."""
    await server.start()
    await mark_serving(health_servicer, names)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    waiter = asyncio.create_task(server.wait_for_termination())
    stopper = asyncio.create_task(stop.wait())
    await asyncio.wait({waiter, stopper}, return_when=asyncio.FIRST_COMPLETED)
    log.info("shutting down: draining calls for up to %.0f s", grace_seconds)
    await mark_not_serving(health_servicer)
    await server.stop(grace_seconds)
    for task in (waiter, stopper):
        task.cancel()
