"""Workers calling services that run on another server (VO_PIPELINE_*_TARGET)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import pytest
from pipeline.pipeline_helpers import job_spec, stub, watch
from serverutil import mesh_server
from vo.pipeline.v1 import pipeline_service_pb2 as pb
from vo_core.config import ServerSettings
from vo_core.server import add_standard_services, bind, create_server, mark_serving
from vo_pipeline.config import SERVICES
from vo_pipeline.config import Settings as PipelineSettings
from vo_pipeline.mesh import register_services


class Recorder(grpc.aio.ServerInterceptor):
    """Remembers every method the server was asked for."""

    def __init__(self) -> None:
        self.methods: list[str] = []

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        self.methods.append(handler_call_details.method)
        return await continuation(handler_call_details)


@dataclass
class Remote:
    """The four services on a server of their own."""

    target: str
    server: grpc.aio.Server
    recorder: Recorder = field(default_factory=Recorder)


@pytest.fixture
async def remote(data_dir: Path, tmp_path: Path) -> AsyncIterator[Remote]:
    recorder = Recorder()
    server = create_server([recorder])
    shared = ServerSettings(data_dir=data_dir, input_roots=(tmp_path, tmp_path.parent.parent))
    names, _ = register_services(server, shared)
    health = add_standard_services(server, names)
    port = bind(server, "127.0.0.1", 0)
    await server.start()
    await mark_serving(health, names)
    try:
        yield Remote(f"127.0.0.1:{port}", server, recorder)
    finally:
        await server.stop(None)


@pytest.fixture
async def pipeline_channel(
    remote: Remote, data_dir: Path, tmp_path: Path
) -> AsyncIterator[grpc.aio.Channel]:
    """A pipeline server whose workers send every step to ``remote`` (same artifact folder)."""
    shared = ServerSettings(data_dir=data_dir, input_roots=(tmp_path, tmp_path.parent.parent))
    settings = PipelineSettings(
        worker_mode="thread",
        min_workers=1,
        max_workers=1,
        service_targets=dict.fromkeys(SERVICES, remote.target),
    )
    async with (
        mesh_server(shared, settings) as target,
        grpc.aio.insecure_channel(target) as channel,
    ):
        yield channel


async def test_steps_run_on_the_remote_services(
    remote: Remote, pipeline_channel: grpc.aio.Channel, clip: Path
) -> None:
    job = (await stub(pipeline_channel).CreateJob(pb.CreateJobRequest(spec=job_spec(clip)))).job
    final = (await watch(pipeline_channel, job.id))[-1].job
    assert final.state == pb.Job.STATE_SUCCEEDED, final.error
    called = set(remote.recorder.methods)
    for method in (
        "/vo.script.v1.ScriptService/WriteScript",
        "/vo.tts.v1.TtsService/Synthesize",
        "/vo.subtitle.v1.SubtitleService/BuildCues",
        "/vo.video.v1.VideoService/Render",
    ):
        assert method in called, f"{method} did not reach the remote server: {sorted(called)}"

    # With the remote server gone, the job fails at its first step with UNAVAILABLE: the
    # worker really sends its calls there (nothing runs them in the worker instead).
    await remote.server.stop(None)
    job = (
        await stub(pipeline_channel).CreateJob(
            pb.CreateJobRequest(spec=job_spec(clip, topic="remote bees"))
        )
    ).job
    final = (await watch(pipeline_channel, job.id))[-1].job
    assert final.state == pb.Job.STATE_FAILED
    assert final.error.step == "script" and final.error.code == "UNAVAILABLE", final.error


def test_targets_come_from_the_environment() -> None:
    env: dict[str, Any] = {"VO_PIPELINE_TTS_TARGET": "tts:4545", "VO_PIPELINE_VIDEO_TARGET": ""}
    assert PipelineSettings.from_env(env).service_targets == {"tts": "tts:4545"}
