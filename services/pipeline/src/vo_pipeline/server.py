"""PipelineService wiring: the pipeline with its job store and workers, on a vo server.

The pipeline's workers run the Video, TTS, Subtitle and Script services in-process, so
serving the pipeline alone is serving all of them: see :func:`vo_pipeline.mesh.serve`.
"""

from __future__ import annotations

from vo_pipeline.config import Settings
from vo_pipeline.mesh import serve as serve_mesh


async def serve(settings: Settings) -> None:
    """Serve the PipelineService (and the services its workers call) until SIGINT/SIGTERM."""
    await serve_mesh(settings.server, settings)
