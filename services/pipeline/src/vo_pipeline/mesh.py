"""Every vo service on one gRPC server: ``vo serve``, and the CLI's embedded mode.

Embedded mode (the CLI without ``--server``) starts the same server in a background thread on
a private Unix socket, so the CLI always talks gRPC through the typed clients: one code path
whether the services run in this process or across a cluster.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import tempfile
import threading
from pathlib import Path
from types import TracebackType

import grpc
import vo_script.config
import vo_script.server
import vo_subtitle.config
import vo_subtitle.server
import vo_tts.config
import vo_tts.server
import vo_video.config
import vo_video.server
from vo_core.config import ServerSettings
from vo_core.logs import configure_logging
from vo_core.server import (
    add_standard_services,
    bind,
    create_server,
    mark_serving,
    serve_until_signalled,
)

import vo_pipeline.config
import vo_pipeline.server


def register_all(server: grpc.aio.Server, shared: ServerSettings) -> list[str]:
    """Add every service to ``server`` with ``shared`` server settings; return their names."""
    video = dataclasses.replace(vo_video.config.Settings.from_env(), server=shared)
    pipeline = dataclasses.replace(vo_pipeline.config.Settings.from_env(), server=shared)
    script = dataclasses.replace(vo_script.config.Settings.from_env(), server=shared)
    names = [vo_video.server.register(server, video)]
    names.append(vo_script.server.register(server, script))
    tts = dataclasses.replace(vo_tts.config.Settings.from_env(), server=shared)
    names.append(vo_tts.server.register(server, tts))
    subtitle = dataclasses.replace(vo_subtitle.config.Settings.from_env(), server=shared)
    names.append(vo_subtitle.server.register(server, subtitle))
    names.append(vo_pipeline.server.register(server, pipeline))
    return names


async def serve(settings: ServerSettings) -> None:
    """``vo serve``: every service on ``settings.host:settings.port`` until SIGINT/SIGTERM."""
    configure_logging()
    server = create_server()
    names = register_all(server, settings)
    health = add_standard_services(server, names)
    port = bind(server, settings.host, settings.port)
    print(f"vo serving {len(names)} services on {settings.host}:{port}", flush=True)
    await serve_until_signalled(server, health, names, grace_seconds=settings.grace_seconds)


class EmbeddedMesh:
    """Every service in a background thread of this process, on a private Unix socket.

    Inputs and outputs may be any path the user can reach (it is their own process); uploads and
    artifacts go to a temporary data folder removed on exit unless ``data_dir`` is given.
    """

    def __init__(self, data_dir: Path | None = None) -> None:
        self._own_dir = data_dir is None
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="vo-embedded-"))
        self.socket = self.data_dir / "vo.sock"
        self.target = f"unix:{self.socket}"
        self._loop = asyncio.new_event_loop()
        self._server: grpc.aio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="vo-mesh", daemon=True)

    def start(self) -> EmbeddedMesh:
        """Start serving; returns once the server accepts calls."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=30)
        return self

    async def _start(self) -> None:
        shared = ServerSettings(
            data_dir=self.data_dir, input_roots=(Path("/"),), output_roots=(Path("/"),)
        )
        server = create_server()
        names = register_all(server, shared)
        health = add_standard_services(server, names)
        server.add_insecure_port(self.target)
        await server.start()
        await mark_serving(health, names)
        self._server = server

    def stop(self) -> None:
        """Stop the server and the thread; remove the temporary data folder."""
        if self._server is not None:
            asyncio.run_coroutine_threadsafe(self._server.stop(None), self._loop).result(timeout=30)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> EmbeddedMesh:
        return self.start()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def serve_forever(settings: ServerSettings) -> None:
    """Blocking entry point used by ``vo serve``."""
    asyncio.run(serve(settings))


__all__ = ["EmbeddedMesh", "bind", "register_all", "serve", "serve_forever"]
