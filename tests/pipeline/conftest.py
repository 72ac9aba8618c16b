"""Fixtures of the pipeline tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from vo_video.samples import write_sample


@pytest.fixture(scope="session")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """10 s of 640x360 with a moving subject and a tone: long enough for a voice-over."""
    path = tmp_path_factory.mktemp("pipeline") / "clip.mp4"
    write_sample(path, duration=10.0, width=640, height=360)
    return path
