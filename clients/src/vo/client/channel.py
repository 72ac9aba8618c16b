"""Channels with vo's message limits, plus upload/download helpers shared by the clients."""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias, cast

import grpc

from vo.common.v1 import common_pb2

MAX_MESSAGE_BYTES = 64 << 20
CHUNK_SIZE = 1 << 20
# Calls that never reached a server (UNAVAILABLE: a replica restarting, a connection being
# re-established) are retried a few times with backoff instead of failing a job. gRPC only
# retries before the first response arrives, so a half-streamed render is never replayed.
RETRY_SERVICE_CONFIG = json.dumps(
    {
        "methodConfig": [
            {
                "name": [{}],
                "retryPolicy": {
                    "maxAttempts": 4,
                    "initialBackoff": "0.2s",
                    "maxBackoff": "2s",
                    "backoffMultiplier": 2,
                    "retryableStatusCodes": ["UNAVAILABLE"],
                },
            }
        ]
    }
)
CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.enable_retries", 1),
    ("grpc.service_config", RETRY_SERVICE_CONFIG),
]


# What an interceptor may be; grpc.intercept_channel and grpc.aio channels accept any mix.
# grpc's classes are generic only in grpc-stubs, so the subscripted forms exist for mypy alone.
if TYPE_CHECKING:
    ClientInterceptor: TypeAlias = (
        grpc.UnaryUnaryClientInterceptor[Any, Any]
        | grpc.UnaryStreamClientInterceptor[Any, Any]
        | grpc.StreamUnaryClientInterceptor[Any, Any]
        | grpc.StreamStreamClientInterceptor[Any, Any]
    )
    AioClientInterceptor: TypeAlias = (
        grpc.aio.UnaryUnaryClientInterceptor[Any, Any]
        | grpc.aio.UnaryStreamClientInterceptor[Any, Any]
        | grpc.aio.StreamUnaryClientInterceptor[Any, Any]
        | grpc.aio.StreamStreamClientInterceptor[Any, Any]
    )
else:
    ClientInterceptor = (
        grpc.UnaryUnaryClientInterceptor
        | grpc.UnaryStreamClientInterceptor
        | grpc.StreamUnaryClientInterceptor
        | grpc.StreamStreamClientInterceptor
    )
    AioClientInterceptor = (
        grpc.aio.UnaryUnaryClientInterceptor
        | grpc.aio.UnaryStreamClientInterceptor
        | grpc.aio.StreamUnaryClientInterceptor
        | grpc.aio.StreamStreamClientInterceptor
    )


def open_channel(target: str, interceptors: Sequence[ClientInterceptor] = ()) -> grpc.Channel:
    """A blocking channel to ``target`` ("host:port" or "unix:/path").

    ``interceptors`` run on every call, first outermost; servers pass
    ``vo_core.telemetry.client_interceptors()`` so their outgoing calls join the caller's trace.
    """
    channel = grpc.insecure_channel(target, options=CHANNEL_OPTIONS)
    return grpc.intercept_channel(channel, *interceptors) if interceptors else channel


def open_aio_channel(
    target: str, interceptors: Sequence[AioClientInterceptor] = ()
) -> grpc.aio.Channel:
    """An asyncio channel to ``target``; ``interceptors`` as for :func:`open_channel`.

    For tracing pass ``vo_core.telemetry.aio_client_interceptors()``.
    """
    return grpc.aio.insecure_channel(
        target,
        options=CHANNEL_OPTIONS,
        # grpc-stubs leaves the aio interceptor type as a placeholder that needs a cast.
        interceptors=cast(list[grpc.aio.ClientInterceptor], list(interceptors)) or None,
    )


def sha256_of(path: Path) -> str:
    """The lowercase hex sha256 of a file."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(CHUNK_SIZE):
            h.update(block)
    return h.hexdigest()


def upload_chunks(path: Path) -> Iterator[common_pb2.UploadChunk]:
    """A file as upload chunks; the first announces name, size and sha256."""
    size = path.stat().st_size
    digest = sha256_of(path)
    with path.open("rb") as f:
        first = True
        while True:
            block = f.read(CHUNK_SIZE)
            if not block and not first:
                break
            if first:
                yield common_pb2.UploadChunk(
                    data=block, filename=path.name, expected_sha256=digest, total_bytes=size
                )
                first = False
            else:
                yield common_pb2.UploadChunk(data=block)
            if not block:
                break


def write_download(chunks: Iterable[common_pb2.DownloadChunk], dest: Path) -> common_pb2.Artifact:
    """Write downloaded chunks to ``dest`` atomically (temp file, then rename)."""
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.partial")
    artifact = common_pb2.Artifact()
    try:
        with tmp.open("wb") as f:
            for chunk in chunks:
                if chunk.HasField("artifact"):
                    artifact = chunk.artifact
                f.write(chunk.data)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return artifact


async def write_download_async(
    chunks: AsyncIterator[common_pb2.DownloadChunk], dest: Path
) -> common_pb2.Artifact:
    """Asyncio form of :func:`write_download`."""
    tmp = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.partial")
    artifact = common_pb2.Artifact()
    try:
        with tmp.open("wb") as f:
            async for chunk in chunks:
                if chunk.HasField("artifact"):
                    artifact = chunk.artifact
                f.write(chunk.data)
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return artifact


def media_source(source: str | Path | common_pb2.MediaSource) -> common_pb2.MediaSource:
    """A MediaSource from a path (read by the server) or an existing MediaSource."""
    if isinstance(source, common_pb2.MediaSource):
        return source
    return common_pb2.MediaSource(uri=str(Path(source).expanduser().resolve()))
