"""Run the VideoService alone: ``python -m vo_video``."""

import asyncio

from vo_video.config import Settings
from vo_video.server import serve

asyncio.run(serve(Settings.from_env()))
