"""Run the PipelineService alone: ``python -m vo_pipeline``."""

import asyncio

from vo_pipeline.config import Settings
from vo_pipeline.server import serve

asyncio.run(serve(Settings.from_env()))
