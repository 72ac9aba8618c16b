"""Every vo service on one gRPC server: ``vo serve``, the CLI's embedded mode, and the workers.

Embedded mode (the CLI without ``--server``) starts the same server in a background thread on
a private Unix socket, so the CLI always talks gRPC through the typed clients: one code path
whether the services run in this process or across a cluster. Pipeline workers start the four
media and text services (not the pipeline) on a socket of their own: :func:`local_mesh`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import grpc
import vo_script.config
import vo_script.server
import vo_subtitle.config
import vo_subtitle.server
import vo_tts.config
import vo_video.config
import vo_video.server
from vo.pipeline.v1 import pipeline_service_pb2, pipeline_service_pb2_grpc
from vo.tts.v1 import tts_service_pb2, tts_service_pb2_grpc
from vo_core.config import ServerSettings
from vo_core.server import add_standard_services, create_server, mark_serving, run_server
from vo_tts.servicer import TtsServicer

import vo_pipeline.config
from vo_pipeline.servicer import PipelineServicer

PIPELINE = pipeline_service_pb2.DESCRIPTOR.services_by_name["PipelineService"].full_name
TTS = tts_service_pb2.DESCRIPTOR.services_by_name["TtsService"].full_name


def register_services(
    server: grpc.aio.Server, shared: ServerSettings
) -> tuple[list[str], TtsServicer]:
    """Add the Video, Script, TTS and Subtitle services; return their names and the TTS servicer."""
    video = dataclasses.replace(vo_video.config.Settings.from_env(), server=shared)
    script = dataclasses.replace(vo_script.config.Settings.from_env(), server=shared)
    tts = dataclasses.replace(vo_tts.config.Settings.from_env(), server=shared)
    subtitle = dataclasses.replace(vo_subtitle.config.Settings.from_env(), server=shared)
    tts_servicer = TtsServicer(tts)
    tts_service_pb2_grpc.add_TtsServiceServicer_to_server(tts_servicer, server)
    names = [
        vo_video.server.register(server, video),
        vo_script.server.register(server, script),
        TTS,
        vo_subtitle.server.register(server, subtitle),
    ]
    return names, tts_servicer


@dataclass
class Mesh:
    """Every service registered on one server, with the pipeline's lifecycle to run."""

    names: list[str]
    pipeline: PipelineServicer

    async def start(self) -> None:
        """Open the job store and start the workers."""
        await self.pipeline.start()

    async def stop(self) -> None:
        """Stop the workers and close the job store."""
        await self.pipeline.stop()


def register_all(
    server: grpc.aio.Server,
    shared: ServerSettings,
    pipeline_settings: vo_pipeline.config.Settings | None = None,
) -> Mesh:
    """Add every service, the pipeline included; call ``await mesh.start()`` after start."""
    names, tts = register_services(server, shared)
    settings = pipeline_settings or vo_pipeline.config.Settings.from_env()
    settings = dataclasses.replace(settings, server=shared)
    pipeline = PipelineServicer(
        settings, voice_names=lambda: [v.name for v in tts.synthesizer.list_voices()]
    )
    pipeline_service_pb2_grpc.add_PipelineServiceServicer_to_server(pipeline, server)
    return Mesh([*names, PIPELINE], pipeline)


async def local_mesh(shared: ServerSettings, socket: Path) -> tuple[grpc.aio.Server, str]:
    """The four services on a Unix socket in this event loop (a pipeline worker's services)."""
    server = create_server()
    names, _ = register_services(server, shared)
    health = add_standard_services(server, names)
    target = f"unix:{socket}"
    server.add_insecure_port(target)
    await server.start()
    await mark_serving(health, names)
    return server, target


async def serve(
    settings: ServerSettings, pipeline_settings: vo_pipeline.config.Settings | None = None
) -> None:
    """``vo serve``: every service on ``settings.host:settings.port`` until SIGINT/SIGTERM."""
    meshes: list[Mesh] = []

    def register(server: grpc.aio.Server) -> list[str]:
        meshes.append(register_all(server, settings, pipeline_settings))
        return meshes[0].names

    await run_server(
        register,
        settings,
        service_name="vo",
        on_started=lambda: meshes[0].start(),
        on_stopped=lambda: meshes[0].stop(),
    )


class EmbeddedMesh:
    """Every service in a background thread of this process, on a private Unix socket.

    Inputs and outputs may be any path the user can reach (it is their own process); uploads and
    artifacts go to a temporary data folder removed on exit unless ``data_dir`` is given. The
    pipeline runs its workers as threads here, started only when a job arrives.
    """

    def __init__(self, data_dir: Path | None = None) -> None:
        self._own_dir = data_dir is None
        self.data_dir = data_dir or Path(tempfile.mkdtemp(prefix="vo-embedded-"))
        self.socket = self.data_dir / "vo.sock"
        self.target = f"unix:{self.socket}"
        self._loop = asyncio.new_event_loop()
        self._server: grpc.aio.Server | None = None
        self._mesh: Mesh | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, name="vo-mesh", daemon=True)

    def start(self) -> EmbeddedMesh:
        """Start serving; returns once the server accepts calls."""
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(timeout=60)
        return self

    async def _start(self) -> None:
        shared = ServerSettings(
            data_dir=self.data_dir, input_roots=(Path("/"),), output_roots=(Path("/"),)
        )
        pipeline = dataclasses.replace(
            vo_pipeline.config.Settings.from_env(),
            worker_mode="thread",
            min_workers=1,
            max_workers=2,
        )
        server = create_server()
        mesh = register_all(server, shared, pipeline)
        health = add_standard_services(server, mesh.names)
        server.add_insecure_port(self.target)
        await server.start()
        await mesh.start()
        await mark_serving(health, mesh.names)
        self._server, self._mesh = server, mesh

    async def _stop(self) -> None:
        if self._mesh is not None:
            await self._mesh.stop()
        if self._server is not None:
            await self._server.stop(None)

    def stop(self) -> None:
        """Stop the server and the thread; remove the temporary data folder."""
        asyncio.run_coroutine_threadsafe(self._stop(), self._loop).result(timeout=60)
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


def serve_forever(
    settings: ServerSettings, pipeline_settings: vo_pipeline.config.Settings | None = None
) -> None:
    """Blocking entry point used by ``vo serve``."""
    asyncio.run(serve(settings, pipeline_settings))
