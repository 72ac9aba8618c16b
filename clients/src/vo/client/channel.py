"""Channels with vo's message limits, plus upload/download helpers shared by the clients."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from pathlib import Path

import grpc

from vo.common.v1 import common_pb2

MAX_MESSAGE_BYTES = 64 << 20
CHUNK_SIZE = 1 << 20
CHANNEL_OPTIONS = [
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
]


def open_channel(target: str) -> grpc.Channel:
    """A blocking channel to ``target`` ("host:port" or "unix:/path")."""
    return grpc.insecure_channel(target, options=CHANNEL_OPTIONS)


def open_aio_channel(target: str) -> grpc.aio.Channel:
    """An asyncio channel to ``target``."""
    return grpc.aio.insecure_channel(target, options=CHANNEL_OPTIONS)


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
