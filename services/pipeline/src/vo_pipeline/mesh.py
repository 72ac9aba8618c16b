"""Every vo service on one gRPC server: ``vo serve``, the CLI's embedded mode, and the workers.

Embedded mode (the CLI without ``--server``) runs them in a background thread
(:class:`vo_core.embedded.EmbeddedServer`). Pipeline workers start the four media and text
services (not the pipeline) on a socket of their own: :func:`local_mesh`.
"""

from __future__ import annotations

import asyncio
import dataclasses
from dataclasses import dataclass
from pathlib import Path

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
from vo_core.embedded import EmbeddedServer
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


class EmbeddedMesh(EmbeddedServer):
    """Every service, the pipeline included, inside this process (the CLI's embedded mode).

    The pipeline runs its workers as threads here, started only when a job arrives.
    """

    def __init__(self, data_dir: Path | None = None) -> None:
        super().__init__(_embedded_setup, data_dir)


def _embedded_setup(server: grpc.aio.Server, shared: ServerSettings) -> Mesh:
    pipeline = dataclasses.replace(
        vo_pipeline.config.Settings.from_env(), worker_mode="thread", min_workers=0, max_workers=2
    )
    return register_all(server, shared, pipeline)


def serve_forever(
    settings: ServerSettings, pipeline_settings: vo_pipeline.config.Settings | None = None
) -> None:
    """Blocking entry point used by ``vo serve``."""
    asyncio.run(serve(settings, pipeline_settings))
