"""Typed clients for vo.video.v1.VideoService.

Long calls return an iterator of :class:`~vo.events.ProgressEvent` ending with exactly one
``RenderResult``; every gRPC error becomes :class:`~vo.client.errors.VoClientError`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Literal

from vo.client.base import AsyncServiceClient, ServiceClient, stream_event
from vo.client.channel import media_source, upload_chunks, write_download, write_download_async
from vo.common.v1 import common_pb2
from vo.events import ProgressEvent
from vo.video.v1 import video_service_pb2 as pb
from vo.video.v1 import video_service_pb2_grpc

Source = str | Path | common_pb2.MediaSource
RenderEvent = ProgressEvent | pb.RenderResult
Mode = Literal["smart", "center", "none"]

_MODES = {
    "smart": pb.ReframeSpec.MODE_SMART,
    "center": pb.ReframeSpec.MODE_CENTER,
    "none": pb.ReframeSpec.MODE_NONE,
}


def reframe_request(
    source: Source,
    *,
    output_uri: str = "",
    aspect: str = "9:16",
    width: int = 0,
    height: int = 0,
    mode: Mode = "smart",
    preset: str = "",
    crf: int | None = None,
) -> pb.ReframeRequest:
    """Build a ReframeRequest from plain arguments."""
    encoder = pb.EncoderSpec(preset=preset)
    if crf is not None:
        encoder.crf = crf
    return pb.ReframeRequest(
        input=media_source(source),
        output_uri=output_uri,
        reframe=pb.ReframeSpec(mode=_MODES[mode], aspect=aspect, width=width, height=height),
        encoder=encoder,
    )


class VideoClient(ServiceClient[video_service_pb2_grpc.VideoServiceStub]):
    """Blocking client for the VideoService."""

    stub_type = video_service_pb2_grpc.VideoServiceStub

    def upload(self, path: Path) -> common_pb2.Artifact:
        """Upload a local file; use ``MediaSource(upload_sha256=artifact.sha256)`` afterwards."""
        requests = (pb.UploadMediaRequest(chunk=c) for c in upload_chunks(path))
        return self._unary(self._stub.UploadMedia, requests).artifact

    def download(self, sha256: str, dest: Path) -> common_pb2.Artifact:
        """Download an artifact to ``dest`` atomically."""
        responses = self._stream(self._stub.DownloadMedia, pb.DownloadMediaRequest(sha256=sha256))
        return write_download((r.chunk for r in responses), dest)

    def probe(self, source: Source) -> common_pb2.MediaInfo:
        """Container and stream information of a media file."""
        return self._unary(self._stub.Probe, pb.ProbeRequest(input=media_source(source))).info

    def reframe_request(self, request: pb.ReframeRequest) -> Iterator[RenderEvent]:
        """Stream a Reframe call: progress events, then one RenderResult."""
        return (stream_event(msg) for msg in self._stream(self._stub.Reframe, request))

    def reframe(self, source: Source, **options: Any) -> Iterator[RenderEvent]:
        """Reframe ``source``; options as :func:`reframe_request`."""
        return self.reframe_request(reframe_request(source, **options))

    def render(self, request: pb.RenderRequest) -> Iterator[RenderEvent]:
        """Stream a Render call: progress events, then one RenderResult."""
        return (stream_event(msg) for msg in self._stream(self._stub.Render, request))


class AsyncVideoClient(AsyncServiceClient["video_service_pb2_grpc.VideoServiceAsyncStub"]):
    """Asyncio client for the VideoService."""

    stub_type = video_service_pb2_grpc.VideoServiceStub

    async def upload(self, path: Path) -> common_pb2.Artifact:
        """Upload a local file."""

        async def requests() -> AsyncIterator[pb.UploadMediaRequest]:
            for chunk in upload_chunks(path):
                yield pb.UploadMediaRequest(chunk=chunk)

        response: pb.UploadMediaResponse = await self._unary(self._stub.UploadMedia, requests())
        return response.artifact

    async def download(self, sha256: str, dest: Path) -> common_pb2.Artifact:
        """Download an artifact to ``dest`` atomically."""

        async def chunks() -> AsyncIterator[common_pb2.DownloadChunk]:
            request = pb.DownloadMediaRequest(sha256=sha256)
            async for msg in self._stream(self._stub.DownloadMedia, request):
                yield msg.chunk

        return await write_download_async(chunks(), dest)

    async def probe(self, source: Source) -> common_pb2.MediaInfo:
        """Container and stream information of a media file."""
        response: pb.ProbeResponse = await self._unary(
            self._stub.Probe, pb.ProbeRequest(input=media_source(source))
        )
        return response.info

    async def reframe_request(self, request: pb.ReframeRequest) -> AsyncIterator[RenderEvent]:
        """Stream a Reframe call: progress events, then one RenderResult."""
        async for msg in self._stream(self._stub.Reframe, request):
            yield stream_event(msg)

    def reframe(self, source: Source, **options: Any) -> AsyncIterator[RenderEvent]:
        """Reframe ``source``; options as :func:`reframe_request`."""
        return self.reframe_request(reframe_request(source, **options))

    async def render(self, request: pb.RenderRequest) -> AsyncIterator[RenderEvent]:
        """Stream a Render call: progress events, then one RenderResult."""
        async for msg in self._stream(self._stub.Render, request):
            yield stream_event(msg)
