"""Every server: health SERVING, reflection listing all five services, UNIMPLEMENTED with a reason."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

SERVICES = {
    "vo.video.v1.VideoService",
    "vo.tts.v1.TtsService",
    "vo.subtitle.v1.SubtitleService",
    "vo.script.v1.ScriptService",
    "vo.pipeline.v1.PipelineService",
}


async def test_health_is_serving_for_every_service(aio_channel: grpc.aio.Channel) -> None:
    stub = health_pb2_grpc.HealthStub(aio_channel)
    for name in ["", *SERVICES]:
        response = await stub.Check(health_pb2.HealthCheckRequest(service=name))
        assert response.status == health_pb2.HealthCheckResponse.SERVING, name


async def test_reflection_lists_all_five_services(aio_channel: grpc.aio.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(aio_channel)

    async def requests():  # type: ignore[no-untyped-def]
        yield reflection_pb2.ServerReflectionRequest(list_services="")

    names = set()
    async for response in stub.ServerReflectionInfo(requests()):
        names |= {s.name for s in response.list_services_response.service}
    assert names >= SERVICES | {"grpc.health.v1.Health"}


def test_grpcurl_lists_services_and_describes_reframe(embedded_mesh) -> None:
    """An independent client (grpcurl) sees the same services through reflection."""
    grpcurl = Path(sys.executable).parent / "grpcurl"
    out = subprocess.run(
        [str(grpcurl), "-plaintext", "-unix", embedded_mesh.target.removeprefix("unix:"), "list"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.split()
    assert set(out) >= SERVICES
    described = subprocess.run(
        [
            str(grpcurl),
            "-plaintext",
            "-unix",
            embedded_mesh.target.removeprefix("unix:"),
            "describe",
            "vo.video.v1.VideoService",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    assert (
        "rpc Reframe ( .vo.video.v1.ReframeRequest ) returns ( stream .vo.video.v1.ReframeResponse )"
        in described
    )


def test_vo_serve_starts_reports_health_and_stops_gracefully(tmp_path: Path) -> None:
    """``vo serve`` as a real process: serving, then SIGTERM drains and exits 0."""
    import signal
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    vo = Path(sys.executable).parent / "vo"
    proc = subprocess.Popen(
        [str(vo), "serve", "--port", str(port), "--data-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert f"127.0.0.1:{port}" in line
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            response = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="vo.video.v1.VideoService"), timeout=10
            )
        assert response.status == health_pb2.HealthCheckResponse.SERVING
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
