"""Typed Python clients for vo's services, sync and asyncio.

>>> from vo.client import VideoClient
>>> with VideoClient.connect("127.0.0.1:4545") as video:
...     for event in video.reframe("in.mp4", output_uri="/data/out.mp4"):
...         print(event)
"""

from vo.client.errors import VoClientError
from vo.client.video import AsyncVideoClient, VideoClient

__all__ = ["AsyncVideoClient", "VideoClient", "VoClientError"]
