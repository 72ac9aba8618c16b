"""The one way vo builds, starts and stops a gRPC server.

Every service's ``server.py`` calls :func:`create_server`, registers its servicer, then
:func:`add_standard_services` (health and reflection for every registered service name), and
runs :func:`serve_until_signalled`. ``vo serve`` registers all services on one server.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
from collections.abc import Awaitable, Callable, Iterable, Sequence

import grpc
import prometheus_client
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from grpc_reflection.v1alpha import reflection

from vo_core.config import ServerSettings
from vo_core.interceptors import ErrorInterceptor
from vo_core.telemetry import server_interceptors

log = logging.getLogger(__name__)

# Large enough for upload/download chunks and TTS audio returned inline.
MAX_MESSAGE_BYTES = 64 << 20


def create_server(extra_interceptors: Sequence[grpc.aio.ServerInterceptor] = ()) -> grpc.aio.Server:
    """A ``grpc.aio`` server with vo's interceptors and message limits.

    grpc.aio runs the first interceptor outermost. ErrorInterceptor is the first to handle a
    handler's exception (innermost of vo's own), so tracing and metrics, outside it, record
    the status code it produced (INVALID_ARGUMENT, INTERNAL) rather than a raw exception.
    ``extra_interceptors`` run inside all of them, so their errors are mapped and counted too.
    """
    return grpc.aio.server(
        interceptors=[*server_interceptors(), ErrorInterceptor(), *extra_interceptors],
        options=[
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 0),
        ],
    )


_metrics_lock = threading.Lock()
_metrics_port: int | None = None


def start_metrics_server(port: int, host: str = "0.0.0.0") -> int:
    """Serve Prometheus ``/metrics`` over HTTP on ``host:port``; return the port bound.

    Port 0 picks a free port. The metrics live in one process-wide registry, so one endpoint
    per process covers every service in it: a second call returns the first call's port
    instead of starting another server. The server runs in a daemon thread and ends with
    the process. ``host`` defaults to every interface so a scraper in another pod can reach it.
    """
    global _metrics_port
    with _metrics_lock:
        if _metrics_port is None:
            registry = prometheus_client.REGISTRY
            if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
                # Worker processes write their samples to files there; add them all up.
                from prometheus_client import multiprocess

                registry = prometheus_client.CollectorRegistry()
                multiprocess.MultiProcessCollector(registry)
            http_server, _thread = prometheus_client.start_http_server(
                port, addr=host, registry=registry
            )
            _metrics_port = int(http_server.server_port)
            log.info("serving Prometheus metrics on http://%s:%d/metrics", host, _metrics_port)
        elif port not in (0, _metrics_port):
            log.warning("metrics already served on port %d; not on %d", _metrics_port, port)
        return _metrics_port


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
    on_started: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Start, report SERVING, wait for SIGINT/SIGTERM, then drain for ``grace_seconds``.

    ``on_started`` runs once the server listens and before it reports SERVING (the pipeline
    opens its store and starts its workers there).
    """
    await server.start()
    if on_started is not None:
        await on_started()
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


async def run_server(
    register: Callable[[grpc.aio.Server], list[str]],
    settings: ServerSettings,
    *,
    service_name: str,
    on_started: Callable[[], Awaitable[None]] | None = None,
    on_stopped: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """The one way a vo server process runs, whichever services it carries.

    Logging, tracing (OTLP when configured), the services ``register`` adds with health and
    reflection, Prometheus ``/metrics`` when ``settings.metrics_port`` >= 0, a line on stdout
    once serving, and a graceful stop on SIGINT/SIGTERM.
    """
    from vo_core.logs import configure_logging
    from vo_core.telemetry import configure_tracing

    configure_logging()
    configure_tracing(service_name)
    server = create_server()
    names = register(server)
    health = add_standard_services(server, names)
    port = bind(server, settings.host, settings.port)
    metrics = ""
    if settings.metrics_port >= 0:
        metrics = f", metrics on :{start_metrics_server(settings.metrics_port)}/metrics"

    async def started() -> None:
        if on_started is not None:
            await on_started()
        print(f"vo serving {len(names)} services on {settings.host}:{port}{metrics}", flush=True)

    try:
        await serve_until_signalled(
            server, health, names, grace_seconds=settings.grace_seconds, on_started=started
        )
    finally:
        if on_stopped is not None:
            await on_stopped()
