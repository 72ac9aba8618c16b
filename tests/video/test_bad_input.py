"""Bad input gets a clear status and message, and leaves no partial output behind."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from vo.client import AsyncVideoClient, VoClientError
from vo_video.samples import write_sample


async def _reframe_error(target: str, **kwargs: object) -> VoClientError:
    async with AsyncVideoClient.connect(target) as client:
        with pytest.raises(VoClientError) as info:
            async for _ in client.reframe(**kwargs):  # type: ignore[arg-type]
                pass
    return info.value


def _assert_no_output(folder: Path) -> None:
    leftovers = [
        p.name for p in folder.iterdir() if p.suffix in (".mp4", ".partial") or "partial" in p.name
    ]
    assert leftovers == [], f"partial files left: {leftovers}"


async def test_missing_file(server_target: str, tmp_path: Path) -> None:
    err = await _reframe_error(
        server_target, source=tmp_path / "nope.mp4", output_uri=str(tmp_path / "o.mp4")
    )
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "does not exist" in err.message
    _assert_no_output(tmp_path)


async def test_text_file_named_mp4(server_target: str, tmp_path: Path) -> None:
    src = tmp_path / "notes.mp4"
    src.write_text("these are my notes, not a video\n" * 20)
    err = await _reframe_error(server_target, source=src, output_uri=str(tmp_path / "o.mp4"))
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "not a media file" in err.message
    assert not (tmp_path / "o.mp4").exists()


async def test_zero_byte_file(server_target: str, tmp_path: Path) -> None:
    src = tmp_path / "empty.mp4"
    src.touch()
    err = await _reframe_error(server_target, source=src, output_uri=str(tmp_path / "o.mp4"))
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "empty (0 bytes)" in err.message


async def test_truncated_mp4(server_target: str, landscape_clip, tmp_path: Path) -> None:
    src = tmp_path / "truncated.mp4"
    # Cut a non-faststart MP4 before its index (moov at the end): FFmpeg cannot open it.
    src.write_bytes(landscape_clip.path.read_bytes()[: landscape_clip.path.stat().st_size // 2])
    err = await _reframe_error(server_target, source=src, output_uri=str(tmp_path / "o.mp4"))
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "truncated.mp4" in err.message
    assert not (tmp_path / "o.mp4").exists()


async def test_truncated_faststart_mp4(server_target: str, landscape_clip, tmp_path: Path) -> None:
    src = tmp_path / "faststart.mp4"
    async with AsyncVideoClient.connect(server_target) as client:
        async for _ in client.reframe(
            landscape_clip.path, output_uri=str(src), mode="center", width=180, height=320
        ):
            pass
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(src.read_bytes()[: int(src.stat().st_size * 0.7)])  # index intact, data cut
    err = await _reframe_error(server_target, source=cut, output_uri=str(tmp_path / "o.mp4"))
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "is truncated" in err.message
    assert not (tmp_path / "o.mp4").exists()


async def test_audio_only_file(server_target: str, tmp_path: Path) -> None:
    import av
    import numpy as np

    src = tmp_path / "voice.m4a"
    with av.open(str(src), "w") as c:
        s = c.add_stream("aac", rate=48000, layout="mono")
        f = av.AudioFrame.from_ndarray(
            np.zeros((1, 48000), np.float32), format="fltp", layout="mono"
        )
        f.sample_rate = 48000
        for p in [*s.encode(f), *s.encode(None)]:
            c.mux(p)
    err = await _reframe_error(server_target, source=src, output_uri=str(tmp_path / "o.mp4"))
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "audio-only" in err.message and "video stream" in err.message


@pytest.mark.parametrize("aspect", ["tall", "9:0", "16", "1:9"])
async def test_unsupported_aspect(
    server_target: str, landscape_clip, tmp_path: Path, aspect: str
) -> None:
    err = await _reframe_error(
        server_target, source=landscape_clip.path, output_uri=str(tmp_path / "o.mp4"), aspect=aspect
    )
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "aspect" in err.message and aspect in err.message


async def test_output_folder_missing_and_unwritable(
    server_target: str, landscape_clip, tmp_path: Path
) -> None:
    err = await _reframe_error(
        server_target,
        source=landscape_clip.path,
        output_uri=str(tmp_path / "no" / "such" / "o.mp4"),
    )
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT and "does not exist" in err.message
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        if os.access(locked, os.W_OK):  # root ignores permission bits: use a read-only file instead
            target = locked / "o.mp4"
            locked.chmod(0o700)
            target.mkdir()
            err = await _reframe_error(
                server_target, source=landscape_clip.path, output_uri=str(target)
            )
            assert err.code == grpc.StatusCode.INVALID_ARGUMENT and "is a folder" in err.message
        else:
            err = await _reframe_error(
                server_target, source=landscape_clip.path, output_uri=str(locked / "o.mp4")
            )
            assert err.code == grpc.StatusCode.INVALID_ARGUMENT and "not writable" in err.message
    finally:
        locked.chmod(0o700)


async def test_output_outside_allowed_roots(server_target: str, landscape_clip) -> None:
    err = await _reframe_error(server_target, source=landscape_clip.path, output_uri="/etc/o.mp4")
    assert err.code == grpc.StatusCode.PERMISSION_DENIED
    assert "outside the allowed output folders" in err.message


async def test_bad_encoder_settings(server_target: str, landscape_clip, tmp_path: Path) -> None:
    err = await _reframe_error(
        server_target, source=landscape_clip.path, output_uri=str(tmp_path / "o.mp4"), crf=60
    )
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT and "encoder.crf 60" in err.message
    err = await _reframe_error(
        server_target, source=landscape_clip.path, output_uri=str(tmp_path / "o.mp4"), preset="warp"
    )
    assert "encoder.preset 'warp'" in err.message


async def test_cancelled_render_leaves_nothing(
    server_target: str, tmp_path: Path, data_dir: Path
) -> None:
    out = tmp_path / "o.mp4"
    # Leave after the first progress event: the call is cancelled.
    await _reframe_and_leave(server_target, tmp_path, out, "center", 6.0, lambda _stage: True)
    await _settle(lambda: not list((data_dir / "artifacts" / "tmp").iterdir()))
    assert list((data_dir / "artifacts" / "tmp").iterdir()) == []
    assert not out.exists()


async def _reframe_and_leave(
    server_target: str,
    tmp_path: Path,
    out: Path,
    mode: str,
    duration: float,
    leave_at: Callable[[str], bool],
) -> list[str]:
    """Reframe a generated clip and hang up at the first event whose stage ``leave_at``
    accepts (closing the stream cancels the call); returns the stages seen."""
    src = tmp_path / "long.mp4"
    write_sample(src, duration=duration, width=640, height=360, audio=False)
    stages: list[str] = []
    async with AsyncVideoClient.connect(server_target) as client:
        stream = client.reframe(src, output_uri=str(out), mode=mode, width=360, height=640)
        async for event in stream:
            stages.append(event.stage)  # type: ignore[union-attr]
            if leave_at(event.stage):  # type: ignore[union-attr]
                break
        await stream.aclose()  # type: ignore[attr-defined]
    return stages


async def _settle(done: Callable[[], bool]) -> None:
    """Wait up to 5 s for ``done()``: a cancelled engine notices within a frame, but its
    threads need a moment to clean up and end."""
    for _ in range(50):
        if done():
            return
        await asyncio.sleep(0.1)


def _engine_threads() -> list[str]:
    names = ("vo-analyse", "vo-producer", "vo-engine")
    return [t.name for t in threading.enumerate() if t.name in names and t.is_alive()]


async def test_cancelled_smart_render_stops_its_analysis_thread(
    server_target: str, tmp_path: Path, data_dir: Path
) -> None:
    out = tmp_path / "o.mp4"
    # Leave mid-render, the analysis still running beside it.
    stages = await _reframe_and_leave(
        server_target, tmp_path, out, "smart", 20.0, lambda stage: stage == "render"
    )
    assert stages[0] == "analyse"
    scratch = data_dir / "artifacts" / "tmp"
    await _settle(lambda: not _engine_threads() and not list(scratch.iterdir()))
    assert _engine_threads() == [], "a cancelled smart render left its threads running"
    assert list(scratch.iterdir()) == []
    assert not out.exists()
