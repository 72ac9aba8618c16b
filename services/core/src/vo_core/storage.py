"""Artifacts (content-addressed, written atomically) and input resolution.

The local folder implementation lives here; an S3 implementation drops in behind the same
methods later. Everything a server writes goes to a temporary name in the same folder and
is renamed into place, so a crash or a failure never leaves a half-written file behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import mimetypes
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from vo.common.v1 import common_pb2

from vo_core.errors import InvalidInput, NotFound, PermissionDenied, ResourceExhausted

CHUNK_SIZE = 1 << 20  # 1 MiB: well under gRPC's default 4 MiB message limit.


class CarriesChunk(Protocol):
    """An upload request message (``UploadMediaRequest``, ``UploadInputRequest``)."""

    @property
    def chunk(self) -> common_pb2.UploadChunk:
        """The next piece of the file."""
        ...


@dataclass(frozen=True, slots=True)
class Artifact:
    """A stored file."""

    sha256: str
    size_bytes: int
    media_type: str
    path: Path

    def to_proto(self) -> common_pb2.Artifact:
        """The wire form."""
        return common_pb2.Artifact(
            sha256=self.sha256,
            size_bytes=self.size_bytes,
            media_type=self.media_type,
            uri=self.path.as_uri(),
        )


def media_type_for(name: str) -> str:
    """A MIME type from a file name, ``application/octet-stream`` when unknown."""
    guessed, _ = mimetypes.guess_type(name)
    return guessed or "application/octet-stream"


def sha256_file(path: Path) -> str:
    """The lowercase hex sha256 of a file, read in chunks."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(CHUNK_SIZE):
            h.update(block)
    return h.hexdigest()


@contextlib.contextmanager
def atomic_output(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; rename it into place only on success.

    The temporary name keeps ``final``'s suffix, since muxers pick the container from it.
    On any exception the temporary file is removed and ``final`` is untouched.
    """
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.stem}.{uuid.uuid4().hex[:12]}.partial{final.suffix}")
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


class ArtifactStore:
    """A local folder of content-addressed files: ``<root>/<sha[:2]>/<sha><suffix>``."""

    def __init__(self, root: Path, *, max_upload_bytes: int = 8 << 30) -> None:
        self.root = root
        self.max_upload_bytes = max_upload_bytes
        self.tmp_dir = root / "tmp"
        self.tmp_dir.mkdir(parents=True, exist_ok=True)

    def _final_path(self, sha256: str, suffix: str) -> Path:
        return self.root / sha256[:2] / f"{sha256}{suffix}"

    def scratch_path(self, suffix: str) -> Path:
        """A unique temporary path inside the store, for outputs that will be ``put`` later."""
        return self.tmp_dir / f"{uuid.uuid4().hex}{suffix}"

    def put_file(self, src: Path, *, media_type: str | None = None, move: bool = False) -> Artifact:
        """Store a finished file (moved when ``move``), return its artifact."""
        sha = sha256_file(src)
        final = self._final_path(sha, src.suffix.lower())
        if not final.exists():
            final.parent.mkdir(parents=True, exist_ok=True)
            tmp = final.with_name(f".{uuid.uuid4().hex}.partial")
            if move:
                shutil.move(src, tmp)
            else:
                shutil.copyfile(src, tmp)
            os.replace(tmp, final)
        elif move:
            src.unlink(missing_ok=True)
        return Artifact(sha, final.stat().st_size, media_type or media_type_for(final.name), final)

    def get(self, sha256: str) -> Artifact:
        """The artifact with this sha256, or NotFound."""
        sha = sha256.strip().lower()
        if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            raise InvalidInput(f"sha256 {sha256!r} is not 64 lowercase hex characters")
        folder = self.root / sha[:2]
        for path in folder.glob(f"{sha}*") if folder.is_dir() else []:
            return Artifact(sha, path.stat().st_size, media_type_for(path.name), path)
        raise NotFound(f"no artifact with sha256 {sha}; upload it first")

    async def receive_upload(self, requests: AsyncIterator[CarriesChunk]) -> Artifact:
        """Store a client-streamed upload (any request messages with a ``chunk`` field).

        Checks the announced size against the limit up front and the sha256 at the end.
        """
        h = hashlib.sha256()
        size = 0
        filename = ""
        expected = ""
        tmp = self.scratch_path(".upload")
        try:
            with tmp.open("wb") as f:
                first = True
                async for request in requests:
                    chunk = request.chunk
                    if first:
                        filename, expected = chunk.filename, chunk.expected_sha256.lower()
                        if chunk.total_bytes > self.max_upload_bytes:
                            raise ResourceExhausted(
                                f"upload of {chunk.total_bytes} bytes exceeds the limit of "
                                f"{self.max_upload_bytes} bytes; send a smaller file"
                            )
                        first = False
                    size += len(chunk.data)
                    if size > self.max_upload_bytes:
                        raise ResourceExhausted(
                            f"upload exceeds the limit of {self.max_upload_bytes} bytes"
                        )
                    h.update(chunk.data)
                    f.write(chunk.data)
            if size == 0:
                raise InvalidInput("the upload is empty (0 bytes); send a media file")
            sha = h.hexdigest()
            if expected and expected != sha:
                raise InvalidInput(
                    f"upload sha256 mismatch: client said {expected}, server got {sha}"
                )
            suffix = Path(filename).suffix.lower() if filename else ""
            named = tmp.with_suffix(suffix) if suffix else tmp
            tmp.rename(named)
            tmp = named
            return self.put_file(tmp, media_type=media_type_for(filename or ""), move=True)
        finally:
            tmp.unlink(missing_ok=True)

    def iter_download(self, sha256: str) -> Iterator[common_pb2.DownloadChunk]:
        """Stream an artifact as chunks; the first carries the artifact's description."""
        art = self.get(sha256)
        with art.path.open("rb") as f:
            first = True
            while True:
                block = f.read(CHUNK_SIZE)
                if not block and not first:
                    break
                chunk = common_pb2.DownloadChunk(data=block)
                if first:
                    chunk.artifact.CopyFrom(art.to_proto())
                    first = False
                yield chunk
                if not block:
                    break


class PathPolicy:
    """Which local paths a server may read inputs from and write outputs to.

    In embedded mode (the CLI without ``--server``) the user's own files are fair game, so the
    roots are ``/``; a server started with ``vo serve`` limits them to configured folders.
    """

    def __init__(self, input_roots: list[Path], output_roots: list[Path]) -> None:
        self.input_roots = [r.resolve() for r in input_roots]
        self.output_roots = [r.resolve() for r in output_roots]

    @staticmethod
    def _as_path(uri: str) -> Path:
        if uri.startswith("file://"):
            uri = uri[len("file://") :]
        elif "://" in uri:
            scheme = uri.split("://", 1)[0]
            raise InvalidInput(f"URI scheme {scheme!r} is not supported here; use a file path")
        return Path(uri).expanduser().resolve()

    def input_path(self, uri: str) -> Path:
        """Resolve an input URI to an existing readable file under an input root."""
        if not uri:
            raise InvalidInput("input is empty; give a file path or an upload sha256")
        path = self._as_path(uri)
        if not any(path.is_relative_to(root) for root in self.input_roots):
            raise PermissionDenied(
                f"{path} is outside the allowed input folders "
                f"({', '.join(map(str, self.input_roots))}); upload the file instead"
            )
        if not path.exists():
            raise InvalidInput(f"input file {path} does not exist")
        if not path.is_file():
            raise InvalidInput(f"input {path} is not a regular file")
        if not os.access(path, os.R_OK):
            raise InvalidInput(f"input file {path} is not readable")
        return path

    def output_path(self, uri: str) -> Path:
        """Resolve an output URI under an output root whose folder exists and is writable."""
        path = self._as_path(uri)
        if not any(path.is_relative_to(root) for root in self.output_roots):
            raise PermissionDenied(
                f"{path} is outside the allowed output folders "
                f"({', '.join(map(str, self.output_roots))})"
            )
        if path.is_dir():
            raise InvalidInput(f"output {path} is a folder; give a file name ending in .mp4")
        parent = path.parent
        if not parent.is_dir():
            raise InvalidInput(f"output folder {parent} does not exist; create it first")
        if not os.access(parent, os.W_OK | os.X_OK):
            raise InvalidInput(f"output folder {parent} is not writable")
        if path.exists() and not os.access(path, os.W_OK):
            raise InvalidInput(f"output file {path} exists and is not writable")
        return path


def resolve_source(
    source: common_pb2.MediaSource, policy: PathPolicy, store: ArtifactStore, what: str = "input"
) -> Path:
    """The local path of a MediaSource (a path under the allowed roots or an upload)."""
    kind = source.WhichOneof("kind")
    if kind == "uri":
        return policy.input_path(source.uri)
    if kind == "upload_sha256":
        return store.get(source.upload_sha256).path
    raise InvalidInput(f"{what} is missing; set {what}.uri or {what}.upload_sha256")


def make_temp_dir(prefix: str = "vo-") -> Path:
    """A fresh private temporary folder (one per job, so concurrent jobs never share files)."""
    return Path(tempfile.mkdtemp(prefix=prefix))
