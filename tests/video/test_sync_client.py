"""The blocking client against every service running in a background thread."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from mediacheck import decode
from vo.client import VideoClient, VoClientError
from vo.events import ProgressEvent


def test_sync_reframe_probe_and_deadline(embedded_mesh, landscape_clip, tmp_path: Path) -> None:
    out = tmp_path / "o.mp4"
    with VideoClient.connect(embedded_mesh.target, timeout=120) as client:
        info = client.probe(landscape_clip.path)
        assert (info.video.width, info.video.height) == (1280, 720) and info.audio.codec == "aac"
        events = list(
            client.reframe(
                landscape_clip.path,
                output_uri=str(out),
                mode="center",
                width=180,
                height=320,
                preset="ultrafast",
            )
        )
    assert all(isinstance(e, ProgressEvent) for e in events[:-1])
    assert events[-1].frames == 120 and decode(out).frames == 120
    with (
        VideoClient.connect(embedded_mesh.target, timeout=0.05) as client,
        pytest.raises(VoClientError) as info,
    ):
        list(
            client.reframe(landscape_clip.path, output_uri=str(tmp_path / "slow.mp4"), mode="smart")
        )
    assert info.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "deadline exceeded" in info.value.message
