"""VideoService servicer: proto to domain and back; the engine does the work."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import vo_core.metrics as metrics
from vo.common.v1 import common_pb2
from vo.video.v1 import video_service_pb2 as pb
from vo.video.v1 import video_service_pb2_grpc
from vo_core.media import probe
from vo_core.progress import ProgressEvent
from vo_core.storage import resolve_source
from vo_core.threads import stream_in_thread

from vo_video.config import Settings
from vo_video.engine import RenderOutcome, render
from vo_video.spec import RenderJob, render_job_from_proto


class VideoServicer(video_service_pb2_grpc.VideoServiceServicer):
    """Implements vo.video.v1.VideoService."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = settings.server.artifact_store()
        self.policy = settings.server.path_policy()

    async def UploadMedia(
        self,
        request_iterator: AsyncIterator[pb.UploadMediaRequest],
        context: grpc.aio.ServicerContext,
    ) -> pb.UploadMediaResponse:
        artifact = await self.store.receive_upload(request_iterator)
        return pb.UploadMediaResponse(artifact=artifact.to_proto())

    async def DownloadMedia(
        self, request: pb.DownloadMediaRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.DownloadMediaResponse]:
        for chunk in self.store.iter_download(request.sha256):
            yield pb.DownloadMediaResponse(chunk=chunk)

    async def Probe(
        self, request: pb.ProbeRequest, context: grpc.aio.ServicerContext
    ) -> pb.ProbeResponse:
        path = resolve_source(request.input, self.policy, self.store)
        info = await asyncio.to_thread(probe, path)
        return pb.ProbeResponse(info=info.to_proto())

    async def Reframe(
        self, request: pb.ReframeRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.ReframeResponse]:
        spec = pb.RenderSpec(reframe=request.reframe, encoder=request.encoder)
        if not spec.reframe.mode:
            spec.reframe.mode = pb.ReframeSpec.MODE_SMART
        async for event in self._render(request.input, request.output_uri, spec):
            if isinstance(event, ProgressEvent):
                yield pb.ReframeResponse(progress=event.to_proto())
            else:
                yield pb.ReframeResponse(result=event)

    async def Render(
        self, request: pb.RenderRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.RenderResponse]:
        async for event in self._render(request.input, request.output_uri, request.spec):
            if isinstance(event, ProgressEvent):
                yield pb.RenderResponse(progress=event.to_proto())
            else:
                yield pb.RenderResponse(result=event)

    async def _render(
        self, source: common_pb2.MediaSource, output_uri: str, spec: pb.RenderSpec
    ) -> AsyncIterator[ProgressEvent | pb.RenderResult]:
        job = await asyncio.to_thread(
            render_job_from_proto, source, output_uri, spec, self.settings, self.policy, self.store
        )
        # A private scratch file per call: concurrent renders never share temp files.
        scratch = self.store.scratch_path(".mp4")
        with metrics.observe_operation(operation_name(spec)):
            async for item in self._run(job, scratch):
                yield item

    async def _run(
        self, job: RenderJob, scratch: Path
    ) -> AsyncIterator[ProgressEvent | pb.RenderResult]:
        try:
            outcome: RenderOutcome | None = None
            async for event in stream_in_thread(lambda token: render(job, scratch, token)):
                if isinstance(event, RenderOutcome):
                    outcome = event
                else:
                    yield event
            if outcome is None:  # the engine always ends with an outcome; this guards that promise
                raise RuntimeError("render ended without a result")
            result = await asyncio.to_thread(outcome.finish, job, self.store)
        finally:
            await asyncio.to_thread(scratch.unlink, missing_ok=True)
        yield result


def operation_name(spec: pb.RenderSpec) -> str:
    """The ``operation`` label of a render: the single effect it applies, or ``render``."""
    effects = [name for name in ("ramp", "captions", "audio") if spec.HasField(name)]
    if not effects:
        return "reframe"
    if len(effects) > 1:
        return "render"
    return {"ramp": "ramp", "captions": "captions", "audio": "mix"}[effects[0]]
