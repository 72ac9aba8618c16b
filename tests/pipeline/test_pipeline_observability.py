"""One job's metrics (scraped over HTTP) and its trace across every service it called."""

from __future__ import annotations

import asyncio
import re
import urllib.request
from pathlib import Path

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from pipeline.pipeline_helpers import job_spec, stub, watch
from vo.pipeline.v1 import pipeline_service_pb2 as pb
from vo_core.server import start_metrics_server
from vo_core.telemetry import configure_tracing, flush_tracing


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the Prometheus text format (0 when absent)."""
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.split("}")[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def test_a_job_leaves_metrics_and_one_trace_over_all_services(
    aio_channel, clip: Path
) -> None:
    exporter = InMemorySpanExporter()
    configure_tracing("vo-test", exporter=exporter)
    port = start_metrics_server(0, host="127.0.0.1")

    job = (
        await stub(aio_channel).CreateJob(
            pb.CreateJobRequest(spec=job_spec(clip, topic="observed bees"))
        )
    ).job
    final = (await watch(aio_channel, job.id))[-1].job
    assert final.state == pb.Job.STATE_SUCCEEDED, final.error

    flush_tracing()
    spans = exporter.get_finished_spans()
    roots = [
        s for s in spans if s.name == "pipeline job" and s.attributes.get("vo.job_id") == job.id
    ]
    assert len(roots) == 1
    trace = [s for s in spans if s.context.trace_id == roots[0].context.trace_id]
    names = {s.name for s in trace}
    for method in (
        "/vo.script.v1.ScriptService/WriteScript",
        "/vo.tts.v1.TtsService/Synthesize",
        "/vo.subtitle.v1.SubtitleService/BuildCues",
        "/vo.video.v1.VideoService/Render",
    ):
        assert method in names, f"{method} missing from the job's trace: {sorted(names)}"
    assert {"step script", "step tts", "step cues", "step render"} <= names

    url = f"http://127.0.0.1:{port}/metrics"
    text = await asyncio.to_thread(lambda: urllib.request.urlopen(url, timeout=10).read().decode())
    assert (
        metric(
            text,
            "grpc_server_handled_total",
            grpc_service="vo.pipeline.v1.PipelineService",
            grpc_method="CreateJob",
            grpc_code="OK",
        )
        >= 1
    )
    assert (
        metric(
            text,
            "grpc_server_handled_total",
            grpc_service="vo.video.v1.VideoService",
            grpc_method="Render",
            grpc_code="OK",
        )
        >= 1
    )
    assert (
        metric(
            text,
            "grpc_server_handling_seconds_count",
            grpc_service="vo.tts.v1.TtsService",
            grpc_method="Synthesize",
        )
        >= 1
    )
    assert metric(text, "video_processing_duration_seconds_count", operation="pipeline") >= 1
    assert metric(text, "video_processing_duration_seconds_count", operation="render") >= 1
    assert metric(text, "jobs", state="succeeded") >= 1
    assert "queue_depth{" in text
    assert metric(text, "cache_requests_total", result="miss") >= 1
