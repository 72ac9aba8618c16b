"""The local artifact store: content-addressed, size-limited uploads that leave nothing behind."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from vo.common.v1 import common_pb2
from vo_core.errors import InvalidInput, ResourceExhausted
from vo_core.storage import ArtifactStore


@dataclass
class Request:
    """What an upload RPC's request messages look like to the store."""

    chunk: common_pb2.UploadChunk


async def chunks(
    data: bytes, *, size: int = 1000, announced: int | None = None, sha: str = ""
) -> AsyncIterator[Request]:
    for i in range(0, max(len(data), 1), size):
        c = common_pb2.UploadChunk(data=data[i : i + size])
        if i == 0:
            c.filename, c.expected_sha256 = "clip.mp4", sha
            c.total_bytes = len(data) if announced is None else announced
        yield Request(c)


def files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


async def test_upload_is_stored_once_under_its_sha256(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "a", max_upload_bytes=10_000)
    data = bytes(range(256)) * 20
    sha = hashlib.sha256(data).hexdigest()
    first = await store.receive_upload(chunks(data, sha=sha))
    second = await store.receive_upload(chunks(data))
    assert first.sha256 == second.sha256 == sha and first.size_bytes == len(data)
    assert first.path == tmp_path / "a" / sha[:2] / f"{sha}.mp4"
    assert files(tmp_path / "a") == [first.path], "the same content is kept once"
    assert store.get(sha).path.read_bytes() == data


@pytest.mark.parametrize(
    ("announced", "needle"),
    [(20_000, "upload of 20000 bytes exceeds the limit"), (0, "upload exceeds the limit")],
)
async def test_upload_over_the_limit_is_refused_and_leaves_nothing(
    tmp_path: Path, announced: int, needle: str
) -> None:
    # Announced too large: refused before any byte is kept; announced small (a lying or
    # careless client): refused as soon as the bytes pass the limit.
    store = ArtifactStore(tmp_path / "a", max_upload_bytes=10_000)
    with pytest.raises(ResourceExhausted, match=needle):
        await store.receive_upload(chunks(b"x" * 20_000, announced=announced))
    assert files(tmp_path / "a") == []


async def test_a_corrupted_upload_is_refused_and_leaves_nothing(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "a")
    with pytest.raises(InvalidInput, match="sha256 mismatch"):
        await store.receive_upload(chunks(b"video bytes", sha="0" * 64))
    with pytest.raises(InvalidInput, match="empty"):
        await store.receive_upload(chunks(b""))
    assert files(tmp_path / "a") == []


def test_scratch_paths_never_collide(tmp_path: Path) -> None:
    # Two jobs on the same input each write to a scratch file of their own.
    store = ArtifactStore(tmp_path / "a")
    paths = {store.scratch_path(".mp4") for _ in range(1000)}
    assert len(paths) == 1000 and all(p.parent == store.tmp_dir for p in paths)
