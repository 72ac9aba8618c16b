"""Services inside the calling process: the CLI's embedded mode (no server to start).

The services run on a grpc.aio server in a background thread, listening on a private Unix
socket, so the CLI still talks gRPC through the typed clients: one code path whether the
services run in this process or across a cluster. Which services run is the caller's choice
(``vo reframe`` needs only the VideoService and starts in a fraction of the time).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Protocol

import grpc

from vo_core.config import ServerSettings
from vo_core.server import add_standard_services, create_server, mark_serving


class Registered(Protocol):
    """What a set of services needs after registration: their names, a start and a stop."""

    names: list[str]

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


@dataclass
class Plain:
    """Services with nothing to start or stop beyond the server itself."""

    names: list[str] = field(default_factory=list)

    async def start(self) -> None:
        """Nothing to start."""

    async def stop(self) -> None:
        """Nothing to stop."""


Setup = Callable[[grpc.aio.Server, ServerSettings], Registered]


class EmbeddedServer:
    """``setup``'s services in a background thread of this process, on a private Unix socket.

    Inputs and outputs may be any path the user can reach (it is their own process); uploads
    and artifacts go to a temporary data folder removed on exit unless ``data_dir`` is given.
    """

    def __init__(self, setup: Setup, data_dir: Path | None = None) -> None:
        self._setup = setup
        self._own_dir = data_dir is None
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="vo-embedded-"))
        self.socket = self.data_dir / "vo.sock"
        self.target = f"unix:{self.socket}"
        self._loop = asyncio.new_event_loop()
        self._server: grpc.aio.Server | None = None
        self._registered: Registered | None = None
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="vo-embedded", daemon=True
        )

    def start(self) -> EmbeddedServer:
        """Start serving; returns once the server accepts calls."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=60)
        return self

    async def _start(self) -> None:
        shared = ServerSettings(
            data_dir=self.data_dir, input_roots=(Path("/"),), output_roots=(Path("/"),)
        )
        server = create_server()
        registered = self._setup(server, shared)
        health = add_standard_services(server, registered.names)
        server.add_insecure_port(self.target)
        await server.start()
        await registered.start()
        await mark_serving(health, registered.names)
        self._server, self._registered = server, registered

    async def _stop(self) -> None:
        if self._registered is not None:
            await self._registered.stop()
        if self._server is not None:
            await self._server.stop(None)

    def stop(self) -> None:
        """Stop the server and the thread; remove the temporary data folder."""
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=60)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedServer:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
