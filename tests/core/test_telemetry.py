"""Metrics and traces from a real server: what Prometheus scrapes, what a trace exporter gets."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import grpc
import pytest
import vo_video.config
import vo_video.server
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_health.v1._async import HealthServicer
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client.parser import text_string_to_metric_families
from vo.client.channel import open_aio_channel, open_channel
from vo.common.v1 import common_pb2
from vo.video.v1 import video_service_pb2 as vpb
from vo.video.v1 import video_service_pb2_grpc
from vo_core import metrics, telemetry
from vo_core.cache import Cache
from vo_core.config import ServerSettings
from vo_core.server import (
    add_standard_services,
    bind,
    create_server,
    mark_serving,
    start_metrics_server,
)

VIDEO = "vo.video.v1.VideoService"
HEALTH = "grpc.health.v1.Health"


@pytest.fixture(scope="module")
def exporter() -> Iterator[InMemorySpanExporter]:
    """Every span of this process, from the first test here on (a process-wide provider)."""
    exporter = InMemorySpanExporter()
    telemetry.configure_tracing("vo-test", exporter=exporter)
    yield exporter
    exporter.shutdown()  # it stays attached to the provider; stop it keeping later spans


@pytest.fixture
def spans(exporter: InMemorySpanExporter) -> InMemorySpanExporter:
    exporter.clear()
    return exporter


@pytest.fixture
async def target(tmp_path: Path) -> AsyncIterator[str]:
    """The real VideoService, health and reflection on 127.0.0.1:<free port>."""
    settings = vo_video.config.Settings(
        server=ServerSettings(data_dir=tmp_path, input_roots=(tmp_path,), output_roots=(tmp_path,))
    )
    server = create_server()
    names = [vo_video.server.register(server, settings)]
    health = add_standard_services(server, names)
    port = bind(server, "127.0.0.1", 0)
    await server.start()
    await mark_serving(health, names)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(None)


def _probe_missing(tmp_path: Path) -> vpb.ProbeRequest:
    return vpb.ProbeRequest(input=common_pb2.MediaSource(uri=str(tmp_path / "missing.mp4")))


def _scrape(port: int) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample served on /metrics, by name and labels."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _sample(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def _eventually(check: Callable[[], bool], what: str, seconds: float = 5.0) -> None:
    """Server-side ends of cancelled calls are recorded asynchronously; wait for them."""
    for _ in range(int(seconds / 0.05)):
        if check():
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


# --- metrics ---------------------------------------------------------------------------------


async def test_metrics_endpoint_counts_rpcs_by_method_and_code(target: str, tmp_path: Path) -> None:
    port = start_metrics_server(0)
    assert start_metrics_server(0) == port, "one endpoint per process"
    before = await asyncio.to_thread(_scrape, port)

    async with open_aio_channel(target) as channel:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await video_service_pb2_grpc.VideoServiceStub(channel).Probe(_probe_missing(tmp_path))
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        health = health_pb2_grpc.HealthStub(channel)
        assert (await health.Check(health_pb2.HealthCheckRequest())).status == 1

    after = await asyncio.to_thread(_scrape, port)

    def delta(name: str, **labels: str) -> float:
        return _sample(after, name, **labels) - _sample(before, name, **labels)

    probe = {"grpc_service": VIDEO, "grpc_method": "Probe"}
    check = {"grpc_service": HEALTH, "grpc_method": "Check"}
    assert delta("grpc_server_handled_total", **probe, grpc_code="INVALID_ARGUMENT") == 1
    assert delta("grpc_server_handled_total", **probe, grpc_code="OK") == 0
    assert delta("grpc_server_handled_total", **check, grpc_code="OK") == 1
    assert delta("grpc_server_handling_seconds_count", **probe) == 1
    assert delta("grpc_server_handling_seconds_count", **check) == 1
    assert _sample(after, "grpc_server_handling_seconds_sum", **check) > 0
    # The slowest bucket holds every call: the histogram is cumulative.
    assert delta("grpc_server_handling_seconds_bucket", **check, le="600.0") == 1


async def test_streaming_rpc_is_counted_once_with_its_final_code(
    target: str, tmp_path: Path
) -> None:
    labels = {"grpc_service": VIDEO, "grpc_method": "Reframe"}
    counter = metrics.GRPC_SERVER_HANDLED
    before = counter.labels(**labels, grpc_code="INVALID_ARGUMENT")._value.get()
    async with open_aio_channel(target) as channel:
        stub = video_service_pb2_grpc.VideoServiceStub(channel)
        request = vpb.ReframeRequest(
            input=common_pb2.MediaSource(uri=str(tmp_path / "missing.mp4")),
            output_uri=str(tmp_path / "out.mp4"),
        )
        with pytest.raises(grpc.aio.AioRpcError) as info:
            async for _ in stub.Reframe(request):
                pass
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    await _eventually(
        lambda: counter.labels(**labels, grpc_code="INVALID_ARGUMENT")._value.get() == before + 1,
        "Reframe counted as INVALID_ARGUMENT",
    )
    assert counter.labels(**labels, grpc_code="OK")._value.get() == 0


async def _ticks(request: bytes, context: grpc.aio.ServicerContext) -> AsyncIterator[bytes]:
    """A streaming handler written as an async generator that outlives its client."""
    yield b"tick"
    await asyncio.sleep(30)
    yield b"late"


async def test_client_going_away_counts_cancelled(target: str) -> None:
    """Both kinds of streaming handler: context.write (Health.Watch) and async generator."""
    counter = metrics.GRPC_SERVER_HANDLED
    watch = counter.labels(HEALTH, "Watch", "CANCELLED")
    ticks = counter.labels("test.Clock", "Ticks", "CANCELLED")
    watch_before, ticks_before = watch._value.get(), ticks._value.get()

    server = create_server()
    server.add_generic_rpc_handlers(
        [
            grpc.method_handlers_generic_handler(
                "test.Clock", {"Ticks": grpc.unary_stream_rpc_method_handler(_ticks)}
            )
        ]
    )
    port = bind(server, "127.0.0.1", 0)
    await server.start()
    try:
        async with open_aio_channel(target) as channel:
            call = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())
            assert (await call.read()).status == 1
            call.cancel()
            await _eventually(lambda: watch._value.get() == watch_before + 1, "Watch CANCELLED")
        async with open_aio_channel(f"127.0.0.1:{port}") as channel:
            stream = channel.unary_stream("/test.Clock/Ticks")(b"")
            assert await stream.read() == b"tick"
            stream.cancel()
            await _eventually(lambda: ticks._value.get() == ticks_before + 1, "Ticks CANCELLED")
    finally:
        await server.stop(None)


def test_cache_operation_queue_and_job_metrics(tmp_path: Path) -> None:
    from prometheus_client import REGISTRY

    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    cache = Cache.memory_and_disk(1 << 20, tmp_path / "cache", 1 << 20, name="telemetry-test")
    assert cache.get("ab" * 32) is None  # a miss in both tiers
    cache.put("ab" * 32, b"x")
    assert cache.get("ab" * 32) == b"x"  # a hit in memory; disk is not asked
    assert [(s.name, s.hits, s.misses) for s in cache.stats()] == [
        ("memory", 1, 1),
        ("disk", 0, 1),
    ]
    requests = "cache_requests_total"
    assert value(requests, cache="telemetry-test", tier="memory", result="miss") == 1
    assert value(requests, cache="telemetry-test", tier="memory", result="hit") == 1
    assert value(requests, cache="telemetry-test", tier="disk", result="miss") == 1
    assert value(requests, cache="telemetry-test", tier="disk", result="hit") == 0

    count_before = value("video_processing_duration_seconds_count", operation="mix")
    with pytest.raises(RuntimeError), metrics.observe_operation("mix"):
        raise RuntimeError("a failed mix still took time")
    assert value("video_processing_duration_seconds_count", operation="mix") == count_before + 1
    with pytest.raises(ValueError, match="unknown operation"), metrics.observe_operation("mixx"):
        pass

    metrics.set_queue_depth("jobs", 7)
    assert value("queue_depth", queue_name="jobs") == 7
    metrics.set_job_counts({"RUNNING": 2, "QUEUED": 5})
    metrics.set_job_counts({"QUEUED": 4, "SUCCEEDED": 1})
    assert value("jobs", state="RUNNING") == 0, "a state that emptied reads 0, not its last count"
    assert value("jobs", state="QUEUED") == 4
    assert value("jobs", state="SUCCEEDED") == 1


# --- traces ----------------------------------------------------------------------------------


def _one(spans: list[ReadableSpan], name: str, kind: SpanKind) -> ReadableSpan:
    found = [s for s in spans if s.name == name and s.kind == kind]
    assert len(found) == 1, (name, kind, [(s.name, s.kind) for s in spans])
    return found[0]


def _assert_child(child: ReadableSpan, parent: ReadableSpan) -> None:
    assert child.context is not None and parent.context is not None
    assert child.context.trace_id == parent.context.trace_id
    assert child.parent is not None and child.parent.span_id == parent.context.span_id


async def test_trace_follows_a_call_from_client_to_server(
    target: str, tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    check = f"/{HEALTH}/Check"
    probe = f"/{VIDEO}/Probe"
    async with open_aio_channel(target, telemetry.aio_client_interceptors()) as channel:
        with telemetry.traced("job", attributes={"vo.job_id": "j1"}) as job:
            await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
            with pytest.raises(grpc.aio.AioRpcError):
                await video_service_pb2_grpc.VideoServiceStub(channel).Probe(
                    _probe_missing(tmp_path)
                )
    assert job.get_span_context().trace_id != 0

    await _eventually(lambda: len(spans.get_finished_spans()) >= 5, "five spans")
    finished = list(spans.get_finished_spans())
    root = _one(finished, "job", SpanKind.INTERNAL)
    assert root.attributes == {"vo.job_id": "j1"}
    for method in (check, probe):
        client = _one(finished, method, SpanKind.CLIENT)
        server = _one(finished, method, SpanKind.SERVER)
        _assert_child(client, root)
        _assert_child(server, client)
        service, _, name = method[1:].partition("/")
        assert server.attributes is not None
        assert server.attributes["rpc.system"] == "grpc"
        assert server.attributes["rpc.service"] == service
        assert server.attributes["rpc.method"] == name

    probe_server = _one(finished, probe, SpanKind.SERVER)
    probe_client = _one(finished, probe, SpanKind.CLIENT)
    assert probe_server.attributes is not None and probe_client.attributes is not None
    assert probe_server.attributes["rpc.grpc.status_code"] == 3
    # INVALID_ARGUMENT is the caller's mistake: the server did not fail, the call did.
    assert probe_server.status.status_code == StatusCode.UNSET
    assert probe_client.status.status_code == StatusCode.ERROR
    assert "does not exist" in (probe_client.status.description or "")
    assert _one(finished, check, SpanKind.SERVER).attributes["rpc.grpc.status_code"] == 0  # type: ignore[index]


async def test_streaming_calls_get_spans_aio_and_blocking(
    target: str, tmp_path: Path, spans: InMemorySpanExporter
) -> None:
    reframe = f"/{VIDEO}/Reframe"
    request = vpb.ReframeRequest(
        input=common_pb2.MediaSource(uri=str(tmp_path / "missing.mp4")),
        output_uri=str(tmp_path / "out.mp4"),
    )
    async with open_aio_channel(target, telemetry.aio_client_interceptors()) as channel:
        with telemetry.traced("aio"):
            call = video_service_pb2_grpc.VideoServiceStub(channel).Reframe(request)
            with pytest.raises(grpc.aio.AioRpcError):
                async for _ in call:
                    pass
            assert await call.code() == grpc.StatusCode.INVALID_ARGUMENT

    def blocking() -> None:
        channel = open_channel(target, telemetry.client_interceptors())
        try:
            with telemetry.traced("blocking"):
                responses = video_service_pb2_grpc.VideoServiceStub(channel).Reframe(request)
                with pytest.raises(grpc.RpcError):
                    list(responses)
                health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
        finally:
            channel.close()

    await asyncio.to_thread(blocking)
    await _eventually(lambda: len(spans.get_finished_spans()) >= 8, "eight spans")
    finished = list(spans.get_finished_spans())
    for parent_name in ("aio", "blocking"):
        parent = _one(finished, parent_name, SpanKind.INTERNAL)
        clients = [
            s
            for s in finished
            if s.name == reframe
            and s.kind == SpanKind.CLIENT
            and s.parent
            and s.parent.span_id == parent.context.span_id  # type: ignore[union-attr]
        ]
        assert len(clients) == 1, parent_name
        servers = [
            s
            for s in finished
            if s.kind == SpanKind.SERVER
            and s.parent
            and s.parent.span_id == clients[0].context.span_id  # type: ignore[union-attr]
        ]
        assert [s.name for s in servers] == [reframe]
        for span in (clients[0], servers[0]):
            assert span.attributes is not None and span.attributes["rpc.grpc.status_code"] == 3
    blocking_check = _one(finished, f"/{HEALTH}/Check", SpanKind.SERVER)
    _assert_child(blocking_check, _one(finished, f"/{HEALTH}/Check", SpanKind.CLIENT))


class _Relay(HealthServicer):
    """A service that calls another while handling a call, as the pipeline calls TTS."""

    def __init__(self, downstream: str) -> None:
        super().__init__()
        self.downstream = downstream

    async def Check(
        self, request: health_pb2.HealthCheckRequest, context: grpc.aio.ServicerContext
    ) -> health_pb2.HealthCheckResponse:
        with telemetry.traced("relay step"):
            async with open_aio_channel(
                self.downstream, telemetry.aio_client_interceptors()
            ) as channel:
                return await health_pb2_grpc.HealthStub(channel).Check(request)


async def test_trace_spans_a_chain_of_services(target: str, spans: InMemorySpanExporter) -> None:
    relay = create_server()
    health_pb2_grpc.add_HealthServicer_to_server(_Relay(target), relay)
    port = bind(relay, "127.0.0.1", 0)
    await relay.start()
    try:
        async with open_aio_channel(
            f"127.0.0.1:{port}", telemetry.aio_client_interceptors()
        ) as channel:
            with telemetry.traced("job"):
                await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest())
    finally:
        await relay.stop(None)
    await _eventually(lambda: len(spans.get_finished_spans()) >= 6, "six spans")
    finished = list(spans.get_finished_spans())
    check = f"/{HEALTH}/Check"
    chain = sorted(
        (s for s in finished if s.name in (check, "job", "relay step")),
        key=lambda s: s.start_time or 0,
    )
    assert [(s.name, s.kind) for s in chain] == [
        ("job", SpanKind.INTERNAL),
        (check, SpanKind.CLIENT),
        (check, SpanKind.SERVER),
        ("relay step", SpanKind.INTERNAL),
        (check, SpanKind.CLIENT),
        (check, SpanKind.SERVER),
    ]
    for child, parent in zip(chain[1:], chain, strict=False):
        _assert_child(child, parent)


def test_trace_carrier_resumes_a_trace_later(spans: InMemorySpanExporter) -> None:
    with telemetry.traced("submit") as submit:
        carrier = telemetry.trace_carrier()
    assert carrier["traceparent"].split("-")[1] == f"{submit.get_span_context().trace_id:032x}"
    with telemetry.traced("run", carrier=carrier):
        pass
    run = _one(list(spans.get_finished_spans()), "run", SpanKind.INTERNAL)
    _assert_child(run, _one(list(spans.get_finished_spans()), "submit", SpanKind.INTERNAL))


# --- set-up, in fresh processes (the tracer provider is process-wide) ------------------------


def _run_python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_")}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_without_exporter_or_endpoint_tracing_is_silent() -> None:
    result = _run_python(
        """
        import json
        from opentelemetry import trace
        from vo_core import telemetry

        assert telemetry.configure_tracing("vo-silent") is None
        with telemetry.traced("nothing") as span:
            recording = span.is_recording()
        # An incoming trace still passes through a silent service to the calls it makes.
        incoming = {"traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
        with telemetry.traced("passing", carrier=incoming):
            onward = telemetry.trace_carrier()
        print(json.dumps({
            "provider": type(trace.get_tracer_provider()).__name__,
            "recording": recording,
            "onward": onward.get("traceparent", ""),
        }))
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    out = json.loads(result.stdout)
    assert out["provider"] == "ProxyTracerProvider", "no SDK installed"
    assert out["recording"] is False
    assert out["onward"].startswith("00-0af7651916cd43dd8448eb211c80319c-")


def test_otlp_endpoint_sends_spans_to_a_collector() -> None:
    """A stand-in OTLP/gRPC collector receives the spans when the standard variable names it."""
    result = _run_python(
        """
        import json
        from concurrent import futures

        import grpc
        from opentelemetry.proto.collector.trace.v1 import (
            trace_service_pb2,
            trace_service_pb2_grpc,
        )

        received = []

        class Collector(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(self, request, context):
                received.append(request)
                return trace_service_pb2.ExportTraceServiceResponse()

        server = grpc.server(futures.ThreadPoolExecutor(2))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Collector(), server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()

        from vo_core import telemetry

        env = {"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}"}
        provider = telemetry.configure_tracing("vo-otlp-test", env=env)
        assert telemetry.configure_tracing("again", env=env) is provider
        with telemetry.traced("exported", attributes={"k": "v"}):
            pass
        assert telemetry.flush_tracing()
        names, services = [], []
        for request in received:
            for resource_spans in request.resource_spans:
                services += [
                    a.value.string_value
                    for a in resource_spans.resource.attributes
                    if a.key == "service.name"
                ]
                for scope in resource_spans.scope_spans:
                    names += [s.name for s in scope.spans]
        server.stop(None)
        print(json.dumps({"names": names, "services": services}))
        """
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["names"] == ["exported"]
    assert out["services"] == ["vo-otlp-test"]
