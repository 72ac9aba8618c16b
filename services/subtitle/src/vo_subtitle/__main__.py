"""Run the SubtitleService alone: ``python -m vo_subtitle``."""

import asyncio

from vo_subtitle.config import Settings
from vo_subtitle.server import serve

asyncio.run(serve(Settings.from_env()))
