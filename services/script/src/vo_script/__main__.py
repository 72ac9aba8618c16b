"""Run the ScriptService alone: ``python -m vo_script``."""

import asyncio

from vo_script.config import Settings
from vo_script.server import serve

asyncio.run(serve(Settings.from_env()))
