"""VideoService.Reframe through a real gRPC server, with the outputs decoded and checked."""

from __future__ import annotations

import itertools
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from mediacheck import decode, luma_frames
from vo.client import AsyncVideoClient
from vo.common.v1 import common_pb2
from vo.events import ProgressEvent
from vo.video.v1 import video_service_pb2 as pb
from vo_video.samples import write_sample


async def reframe(target: str, **kwargs: object) -> tuple[list[ProgressEvent], pb.RenderResult]:
    events: list[ProgressEvent] = []
    result = None
    async with AsyncVideoClient.connect(target) as client:
        async for event in client.reframe(**kwargs):  # type: ignore[arg-type]
            if isinstance(event, ProgressEvent):
                events.append(event)
            else:
                assert result is None, "exactly one result"
                result = event
    assert result is not None
    return events, result


async def test_center_reframe_default_size(
    server_target: str, landscape_clip, tmp_path: Path
) -> None:
    out = tmp_path / "vertical.mp4"
    events, result = await reframe(
        server_target, source=landscape_clip.path, output_uri=str(out), mode="center"
    )
    d = decode(out)
    assert (d.width, d.height) == (1080, 1920)
    assert d.video_codec == "h264" and d.audio_codec == "aac"
    assert d.frames == 120 == result.frames
    assert abs(d.video_seconds - 4.0) < 1 / 30
    assert abs(d.video_seconds - d.audio_seconds) < 1 / 30, (
        "A/V durations differ by a frame or more"
    )
    assert d.faststart
    assert result.info.video.width == 1080 and result.hardware_path == "cpu:libx264"
    assert len(result.artifact.sha256) == 64
    # Progress: real frame counts, the render stage reaching its total, fraction never decreasing.
    render = [e for e in events if e.stage == "render"]
    assert render[-1].frames_done == render[-1].frames_total == 120
    fractions = [e.fraction for e in events]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    # Progress arrives at least every 30 frames.
    done = [e.frames_done for e in render]
    assert all(b - a <= 30 for a, b in itertools.pairwise(done))
    assert not list(tmp_path.glob(".*partial*")), "no temporary files left behind"


@pytest.mark.parametrize(
    ("aspect", "size"), [("4:5", (864, 1080)), ("1:1", (720, 720)), ("16:9", (640, 360))]
)
async def test_aspects(server_target: str, landscape_clip, tmp_path: Path, aspect, size) -> None:
    out = tmp_path / "out.mp4"
    await reframe(
        server_target,
        source=landscape_clip.path,
        output_uri=str(out),
        mode="center",
        aspect=aspect,
        height=size[1],
        preset="ultrafast",
    )
    d = decode(out)
    assert (d.width, d.height) == size
    assert d.frames == 120


def _subject_visible(luma: np.ndarray, min_pixels: int) -> bool:
    return int((luma > 200).sum()) >= min_pixels


async def test_smart_keeps_the_moving_subject_in_frame(
    server_target: str, landscape_clip, tmp_path: Path
) -> None:
    smart, center = tmp_path / "smart.mp4", tmp_path / "center.mp4"
    events, _ = await reframe(
        server_target,
        source=landscape_clip.path,
        output_uri=str(smart),
        mode="smart",
        width=360,
        height=640,
        preset="ultrafast",
    )
    await reframe(
        server_target,
        source=landscape_clip.path,
        output_uri=str(center),
        mode="center",
        width=360,
        height=640,
        preset="ultrafast",
    )
    assert next(e.stage for e in events) == "analyse" and events[-1].stage == "render"
    # The analysis runs alongside the render: both stages report to the end of their frames,
    # and the overall fraction, which counts both, never goes backwards.
    for stage in ("analyse", "render"):
        mine = [e for e in events if e.stage == stage]
        assert mine[-1].frames_done == mine[-1].frames_total > 0, stage
    fractions = [e.fraction for e in events]
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    # The subject's disc (radius 80 px at 720p) scaled by 640/720: most of it must be visible.
    r = landscape_clip.subject.radius * 640 / 720
    need = int(0.6 * np.pi * r * r)
    smart_seen = [_subject_visible(y, need) for _, y in luma_frames(smart, every=3)]
    center_seen = [_subject_visible(y, need) for _, y in luma_frames(center, every=3)]
    assert sum(smart_seen) / len(smart_seen) >= 0.95
    # The subject walks out of a centre crop: proves the check can fail.
    assert sum(center_seen) / len(center_seen) < 0.7


async def test_rotation_metadata_is_honoured(server_target: str, tmp_path: Path) -> None:
    src = tmp_path / "phone.mp4"
    write_sample(src, duration=1.0, width=640, height=360, rotation=90)  # shown as 360x640
    out = tmp_path / "out.mp4"
    async with AsyncVideoClient.connect(server_target) as client:
        info = await client.probe(src)
    assert info.video.rotation == 90 and (info.video.display_width, info.video.display_height) == (
        360,
        640,
    )
    await reframe(
        server_target, source=src, output_uri=str(out), mode="center", width=360, height=640
    )
    d = decode(out)
    assert (d.width, d.height) == (360, 640)
    # The portrait source already is 9:16: the crop is the whole picture, so the subject
    # (drawn at the left of the stored frame) appears at the top after a clockwise rotation.
    _, luma = luma_frames(out)[0]
    rows = np.nonzero((luma > 200).any(axis=1))[0]
    assert rows.mean() < 320


async def test_odd_size_vfr_input_without_audio(server_target: str, tmp_path: Path) -> None:
    src = tmp_path / "vfr.mp4"
    # 641x361 is odd-sized (4:4:4, since 4:2:0 needs even sides); frame durations alternate
    # 1/30 and 1/15 s (variable frame rate).
    with av.open(str(src), "w") as c:
        s = c.add_stream("libx264", rate=30)
        s.width, s.height, s.pix_fmt = 641, 361, "yuv444p"
        s.codec_context.time_base = Fraction(1, 90000)
        t = 0
        for i in range(40):
            img = np.full((361, 641, 3), (i * 6) % 255, np.uint8)
            f = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv444p")
            f.pts, f.time_base = t, Fraction(1, 90000)
            t += 3000 if i % 2 == 0 else 6000
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    out = tmp_path / "out.mp4"
    _, _result = await reframe(
        server_target, source=src, output_uri=str(out), mode="center", width=360, height=640
    )
    with av.open(str(src)) as c:
        assert (c.streams.video[0].width, c.streams.video[0].height) == (641, 361)
    d = decode(out)
    assert d.audio_codec is None, "no audio in, no audio out"
    assert (d.width, d.height) == (360, 640)
    # 20 frames of 1/30 s + 20 of 1/15 s = 2.0 s of video, rendered at a constant rate.
    assert abs(d.video_seconds - 2.0) < 2 / d.fps


async def test_upload_then_reframe_to_artifact_and_download(
    server_target: str, landscape_clip, tmp_path: Path
) -> None:
    async with AsyncVideoClient.connect(server_target) as client:
        uploaded = await client.upload(landscape_clip.path)
        source = common_pb2.MediaSource(upload_sha256=uploaded.sha256)
        result = None
        async for event in client.reframe(
            source, mode="center", width=180, height=320, preset="ultrafast"
        ):
            if not isinstance(event, ProgressEvent):
                result = event
        assert result is not None and not result.output_uri
        dest = tmp_path / "downloaded.mp4"
        art = await client.download(result.artifact.sha256, dest)
    assert art.sha256 == result.artifact.sha256 and dest.stat().st_size == art.size_bytes
    assert decode(dest).frames == 120
