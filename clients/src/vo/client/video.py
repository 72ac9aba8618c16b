"""Typed clients for vo.video.v1.VideoService.

Long calls return an iterator of :class:`~vo.events.ProgressEvent` ending with exactly one
``RenderResult``; every gRPC error becomes :class:`~vo.client.errors.VoClientError`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import TracebackType
from typing import Literal

import grpc

from vo.client.channel import (
    media_source,
    open_aio_channel,
    open_channel,
    upload_chunks,
    write_download,
    write_download_async,
)
from vo.client.errors import VoClientError
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


def _event(
    msg: pb.ReframeResponse | pb.RenderResponse,
) -> RenderEvent:
    if msg.HasField("progress"):
        return ProgressEvent.from_proto(msg.progress)
    return msg.result


class VideoClient:
    """Blocking client for the VideoService."""

    def __init__(self, channel: grpc.Channel, *, timeout: float | None = None) -> None:
        self._channel = channel
        self._stub = video_service_pb2_grpc.VideoServiceStub(channel)
        self.timeout = timeout

    @classmethod
    def connect(cls, target: str, *, timeout: float | None = None) -> VideoClient:
        """A client with its own channel to ``target``."""
        return cls(open_channel(target), timeout=timeout)

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def __enter__(self) -> VideoClient:
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def upload(self, path: Path) -> common_pb2.Artifact:
        """Upload a local file; use ``MediaSource(upload_sha256=artifact.sha256)`` afterwards."""
        requests = (pb.UploadMediaRequest(chunk=c) for c in upload_chunks(path))
        try:
            return self._stub.UploadMedia(requests, timeout=self.timeout).artifact
        except grpc.RpcError as exc:
            raise VoClientError.from_rpc_error(exc) from None

    def download(self, sha256: str, dest: Path) -> common_pb2.Artifact:
        """Download an artifact to ``dest`` atomically."""
        try:
            responses = self._stub.DownloadMedia(
                pb.DownloadMediaRequest(sha256=sha256), timeout=self.timeout
            )
            return write_download((r.chunk for r in responses), dest)
        except grpc.RpcError as exc:
            raise VoClientError.from_rpc_error(exc) from None

    def probe(self, source: Source) -> common_pb2.MediaInfo:
        """Container and stream information of a media file."""
        try:
            request = pb.ProbeRequest(input=media_source(source))
            return self._stub.Probe(request, timeout=self.timeout).info
        except grpc.RpcError as exc:
            raise VoClientError.from_rpc_error(exc) from None

    def reframe_request(self, request: pb.ReframeRequest) -> Iterator[RenderEvent]:
        """Stream a Reframe call: progress events, then one RenderResult."""
        try:
            for msg in self._stub.Reframe(request, timeout=self.timeout):
                yield _event(msg)
        except grpc.RpcError as exc:
            raise VoClientError.from_rpc_error(exc) from None

    def reframe(self, source: Source, **options: object) -> Iterator[RenderEvent]:
        """Reframe ``source``; options as :func:`reframe_request`."""
        return self.reframe_request(reframe_request(source, **options))  # type: ignore[arg-type]

    def render(self, request: pb.RenderRequest) -> Iterator[RenderEvent]:
        """Stream a Render call: progress events, then one RenderResult."""
        try:
            for msg in self._stub.Render(request, timeout=self.timeout):
                yield _event(msg)
        except grpc.RpcError as exc:
            raise VoClientError.from_rpc_error(exc) from None


class AsyncVideoClient:
    """Asyncio client for the VideoService."""

    def __init__(self, channel: grpc.aio.Channel, *, timeout: float | None = None) -> None:
        self._channel = channel
        self._stub = video_service_pb2_grpc.VideoServiceStub(channel)
        self.timeout = timeout

    @classmethod
    def connect(cls, target: str, *, timeout: float | None = None) -> AsyncVideoClient:
        """A client with its own channel to ``target``."""
        return cls(open_aio_channel(target), timeout=timeout)

    async def close(self) -> None:
        """Close the channel."""
        await self._channel.close(None)

    async def __aenter__(self) -> AsyncVideoClient:
        return self

    async def __aexit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def upload(self, path: Path) -> common_pb2.Artifact:
        """Upload a local file."""

        async def requests() -> AsyncIterator[pb.UploadMediaRequest]:
            for chunk in upload_chunks(path):
                yield pb.UploadMediaRequest(chunk=chunk)

        try:
            response = await self._stub.UploadMedia(requests(), timeout=self.timeout)
            return response.artifact
        except grpc.RpcError as exc:
            raise VoClientError.from_rpc_error(exc) from None

    async def download(self, sha256: str, dest: Path) -> common_pb2.Artifact:
        """Download an artifact to ``dest`` atomically."""

        async def chunks() -> AsyncIterator[common_pb2.DownloadChunk]:
            call = self._stub.DownloadMedia(
                pb.DownloadMediaRequest(sha256=sha256), timeout=self.timeout
            )
            async for msg in call:
                yield msg.chunk

        try:
            return await write_download_async(chunks(), dest)
        except grpc.RpcError as exc:
            raise VoClientError.from_rpc_error(exc) from None

    async def probe(self, source: Source) -> common_pb2.MediaInfo:
        """Container and stream information of a media file."""
        try:
            response = await self._stub.Probe(
                pb.ProbeRequest(input=media_source(source)), timeout=self.timeout
            )
            return response.info
        except grpc.RpcError as exc:
            raise VoClientError.from_rpc_error(exc) from None

    async def reframe_request(self, request: pb.ReframeRequest) -> AsyncIterator[RenderEvent]:
        """Stream a Reframe call: progress events, then one RenderResult."""
        try:
            async for msg in self._stub.Reframe(request, timeout=self.timeout):
                yield _event(msg)
        except grpc.RpcError as exc:
            raise VoClientError.from_rpc_error(exc) from None

    def reframe(self, source: Source, **options: object) -> AsyncIterator[RenderEvent]:
        """Reframe ``source``; options as :func:`reframe_request`."""
        return self.reframe_request(reframe_request(source, **options))  # type: ignore[arg-type]

    async def render(self, request: pb.RenderRequest) -> AsyncIterator[RenderEvent]:
        """Stream a Render call: progress events, then one RenderResult."""
        try:
            async for msg in self._stub.Render(request, timeout=self.timeout):
                yield _event(msg)
        except grpc.RpcError as exc:
            raise VoClientError.from_rpc_error(exc) from None
