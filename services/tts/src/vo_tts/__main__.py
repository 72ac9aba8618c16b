"""Run the TtsService alone: ``python -m vo_tts``."""

import asyncio

from vo_tts.config import Settings
from vo_tts.server import serve

asyncio.run(serve(Settings.from_env()))
