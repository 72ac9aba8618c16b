"""The Prometheus metrics every vo service exports, each defined once in the default registry.

Names follow the conventions scrapers and dashboards already know: the RPC metrics use
go-grpc-prometheus's names and labels (``grpc_server_handled_total{grpc_service, grpc_method,
grpc_code}``, ``grpc_server_handling_seconds``), so stock gRPC dashboards work unchanged. The
RPC metrics are filled in by :class:`vo_core.telemetry.MetricsServerInterceptor`; the others by
the code that knows the numbers, through the helpers here:

- :func:`observe_operation` around a media or text operation (reframe, render, tts, ...);
- :func:`set_queue_depth` by a queue after it changes;
- :func:`set_job_counts` by whoever counts jobs by state (the pipeline's store);
- :func:`record_cache` by :class:`vo_core.cache.Cache` for every tier it asks.

Every service in a process (``vo serve`` runs all five) shares these objects, so one
``/metrics`` endpoint per process covers them all; see :func:`vo_core.server.start_metrics_server`.
When the pipeline runs its workers as processes, ``vo serve`` sets prometheus_client's
multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``) before any metric exists, so the one endpoint
also reports what the workers' services recorded.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from prometheus_client import Counter, Gauge, Histogram

# From 1 ms (a health check) to 10 min (a long streaming render): roughly 1-2.5-5 per decade.
RPC_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
)

# Media operations run from a fraction of a second (a short TTS line) to an hour (a long render).
OPERATION_BUCKETS = (
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1800.0,
    3600.0,
)

OPERATIONS = frozenset(
    {"reframe", "render", "ramp", "captions", "mix", "tts", "transcribe", "script", "pipeline"}
)
"""The operation label values; a fixed set keeps the metric's cardinality bounded."""

GRPC_SERVER_HANDLED = Counter(
    "grpc_server_handled_total",
    "RPCs completed on the server, by method and final status code.",
    ["grpc_service", "grpc_method", "grpc_code"],
)
GRPC_SERVER_HANDLING_SECONDS = Histogram(
    "grpc_server_handling_seconds",
    "Time from the start of an RPC to its final status (a whole stream for streaming RPCs).",
    ["grpc_service", "grpc_method"],
    buckets=RPC_BUCKETS,
)
VIDEO_PROCESSING_SECONDS = Histogram(
    "video_processing_duration_seconds",
    "Wall time of one media or text operation (reframe, render, tts, ...), failed ones included.",
    ["operation"],
    buckets=OPERATION_BUCKETS,
)
# Only the server process sets these; with worker processes (multiprocess mode) the most
# recent value is the one to report, not one series per process.
QUEUE_DEPTH = Gauge(
    "queue_depth",
    "Items waiting in a queue.",
    ["queue_name"],
    multiprocess_mode="mostrecent",
)
JOBS = Gauge(
    "jobs",
    "Jobs by state, as last counted by the job store.",
    ["state"],
    multiprocess_mode="mostrecent",
)
CACHE_REQUESTS = Counter(
    "cache_requests_total",
    "Cache look-ups by cache, tier and result (hit or miss).",
    ["cache", "tier", "result"],
)

_job_states_lock = threading.Lock()
_job_states_seen: set[str] = set()


def split_method(full_method: str) -> tuple[str, str]:
    """``"/pkg.Service/Method"`` as ``("pkg.Service", "Method")``; unknown shapes as ``("", m)``."""
    service, sep, method = full_method.lstrip("/").rpartition("/")
    if not sep:
        return "", full_method
    return service, method


def record_rpc(full_method: str, code_name: str, seconds: float) -> None:
    """Count one finished RPC with its final status code name (``"OK"``, ``"CANCELLED"``, ...)."""
    service, method = split_method(full_method)
    GRPC_SERVER_HANDLED.labels(service, method, code_name).inc()
    GRPC_SERVER_HANDLING_SECONDS.labels(service, method).observe(seconds)


@contextmanager
def observe_operation(operation: str) -> Iterator[None]:
    """Time the enclosed block into ``video_processing_duration_seconds{operation}``.

    The time is recorded whether the block succeeds or raises: a failed render still took that
    long, and dropping it would make slow failures invisible.
    """
    if operation not in OPERATIONS:
        raise ValueError(f"unknown operation {operation!r}; use one of {sorted(OPERATIONS)}")
    start = time.perf_counter()
    try:
        yield
    finally:
        VIDEO_PROCESSING_SECONDS.labels(operation).observe(time.perf_counter() - start)


def set_queue_depth(queue_name: str, depth: int) -> None:
    """Publish the number of items waiting in ``queue_name``."""
    QUEUE_DEPTH.labels(queue_name).set(depth)


def set_job_counts(counts: Mapping[str, int]) -> None:
    """Publish jobs by state; a state reported before but absent now drops to 0.

    Without the reset, a state that emptied (the last RUNNING job finished) would keep
    reporting its last non-zero count forever.
    """
    with _job_states_lock:
        for state in _job_states_seen - counts.keys():
            JOBS.labels(state).set(0)
        for state, count in counts.items():
            JOBS.labels(state).set(count)
        _job_states_seen.update(counts.keys())


def record_cache(cache_name: str, tier: str, hit: bool) -> None:
    """Count one look-up in ``tier`` of ``cache_name`` as a hit or a miss."""
    CACHE_REQUESTS.labels(cache_name, tier, "hit" if hit else "miss").inc()
