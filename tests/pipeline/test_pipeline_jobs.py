"""PipelineService through a real server: the whole DAG, watching, cancelling, idempotency."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import av
import grpc
import numpy as np
import pytest
from mediacheck import decode, luma_frames
from pipeline.pipeline_helpers import TERMINAL, download, job_spec, stub, watch
from vo.common.v1 import common_pb2
from vo.events import seconds_to_duration
from vo.pipeline.v1 import pipeline_service_pb2 as pb
from vo.video.v1 import video_service_pb2 as vpb


async def test_full_render_streams_every_stage_in_order(
    aio_channel, clip: Path, tmp_path: Path
) -> None:
    created = await stub(aio_channel).CreateJob(
        pb.CreateJobRequest(spec=job_spec(clip), request_id="full-1")
    )
    job = created.job
    assert job.state == pb.Job.STATE_QUEUED and [s.name for s in job.steps] == [
        "script",
        "tts",
        "cues",
        "render",
    ]
    events = await watch(aio_channel, job.id)
    final = events[-1].job
    assert final.state == pb.Job.STATE_SUCCEEDED, final.error
    # Steps finish in DAG order, each seen running before it succeeded.
    order = []
    for e in events:
        if e.HasField("job"):
            for s in e.job.steps:
                if s.state == pb.Step.STATE_RUNNING and s.name not in order:
                    order.append(s.name)
    assert order == ["script", "tts", "cues", "render"]
    stages = [e.progress.stage for e in events if e.HasField("progress")]
    assert any(s.startswith("render") for s in stages) and any(s.startswith("tts") for s in stages)
    fractions = [e.progress.fraction for e in events if e.HasField("progress")]
    assert fractions == sorted(fractions), "the overall fraction went backwards"
    frames = [e.progress for e in events if e.HasField("progress") and e.progress.frames_total]
    assert frames and frames[-1].frames_done == frames[-1].frames_total
    out = await download(aio_channel, final.output.sha256, tmp_path / "short.mp4")
    d = decode(out)
    assert (d.width, d.height) == (360, 640) and d.audio_codec == "aac"
    assert abs(d.video_seconds - 10.0) < 0.1

    # The same request again is the same job; a repeat with a new id is served from cache.
    again = await stub(aio_channel).CreateJob(
        pb.CreateJobRequest(spec=job_spec(clip), request_id="full-1")
    )
    assert again.job.id == job.id
    started = time.monotonic()
    repeat = await stub(aio_channel).CreateJob(
        pb.CreateJobRequest(spec=job_spec(clip), request_id="full-2")
    )
    repeated = (await watch(aio_channel, repeat.job.id))[-1].job
    assert repeated.state == pb.Job.STATE_SUCCEEDED
    assert repeated.output.sha256 == final.output.sha256
    assert {s.name: s.state for s in repeated.steps}["render"] == pb.Step.STATE_CACHED
    assert time.monotonic() - started < 5


async def test_late_watcher_gets_the_current_state_then_the_rest(aio_channel, clip: Path) -> None:
    job = (
        await stub(aio_channel).CreateJob(
            pb.CreateJobRequest(spec=job_spec(clip, topic="late bees"))
        )
    ).job
    early = asyncio.create_task(watch(aio_channel, job.id))
    # Join once the render has started.
    async for e in stub(aio_channel).WatchJob(pb.WatchJobRequest(id=job.id)):
        if e.HasField("progress") and e.progress.stage.startswith("render"):
            break
    late = await watch(aio_channel, job.id)
    assert late[0].HasField("job") and late[0].job.state == pb.Job.STATE_RUNNING
    assert late[0].job.progress.fraction > 0, "the snapshot carries the last progress"
    assert late[-1].job.state == pb.Job.STATE_SUCCEEDED
    assert (await early)[-1].job.state == pb.Job.STATE_SUCCEEDED


async def test_cancel_stops_within_a_second_and_frees_the_worker(
    aio_channel, clip: Path, data_dir: Path
) -> None:
    slow = job_spec(clip, topic="cancel me", encoder=vpb.EncoderSpec(preset="veryslow"))
    job = (await stub(aio_channel).CreateJob(pb.CreateJobRequest(spec=slow))).job
    async for e in stub(aio_channel).WatchJob(pb.WatchJobRequest(id=job.id)):
        if (
            e.HasField("progress")
            and e.progress.stage.startswith("render")
            and e.progress.frames_done
        ):
            break
    started = time.monotonic()
    cancelled = (await stub(aio_channel).CancelJob(pb.CancelJobRequest(id=job.id))).job
    assert cancelled.state == pb.Job.STATE_CANCELLED
    final = (await watch(aio_channel, job.id))[-1].job
    assert final.state == pb.Job.STATE_CANCELLED
    # The render really stopped: its scratch output and soundtrack folder go only when the
    # engine's thread has ended.
    scratch = data_dir / "artifacts" / "tmp"
    while list(scratch.iterdir()):
        assert time.monotonic() - started < 1.0, list(scratch.iterdir())
        await asyncio.sleep(0.02)
    # The worker is free again: a small job completes.
    quick = job_spec(clip, topic="after cancel")
    quick.render.ClearField("captions")
    nxt = (await stub(aio_channel).CreateJob(pb.CreateJobRequest(spec=quick))).job
    assert (await watch(aio_channel, nxt.id))[-1].job.state == pb.Job.STATE_SUCCEEDED


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (lambda s: setattr(s, "voice", "klingon"), "spec.voice 'klingon' is unknown"),
        (lambda s: setattr(s, "script_text", "Hello."), "conflict"),
        (
            lambda s: s.render.ramp.points.add(source_offset=seconds_to_duration(1), speed=9),
            "speed 9",
        ),
        (lambda s: setattr(s.input, "uri", s.input.uri + ".missing"), "does not exist"),
    ],
)
async def test_bad_specs_are_rejected_before_any_work(
    aio_channel, clip: Path, change, needle: str
) -> None:
    spec = job_spec(clip)
    change(spec)
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await stub(aio_channel).CreateJob(pb.CreateJobRequest(spec=spec))
    assert info.value.code() in (
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.PERMISSION_DENIED,
    )
    assert needle in info.value.details()
    listed = await stub(aio_channel).ListJobs(pb.ListJobsRequest())
    assert listed.jobs == [], "a rejected spec never becomes a job"


async def test_failed_step_says_why(aio_channel, clip: Path) -> None:
    spec = job_spec(clip)
    spec.script_engine = "openai"  # not configured in the tests
    job = (await stub(aio_channel).CreateJob(pb.CreateJobRequest(spec=spec))).job
    final = (await watch(aio_channel, job.id))[-1].job
    assert final.state == pb.Job.STATE_FAILED
    assert final.error.step == "script" and final.error.code == "FAILED_PRECONDITION"
    assert "VO_SCRIPT_OPENAI" in final.error.message


async def test_bounded_queue_rejects_with_resource_exhausted(aio_channel, clip: Path) -> None:
    ids = []
    with pytest.raises(grpc.aio.AioRpcError) as info:
        for i in range(30):
            spec = job_spec(clip, topic=f"flood {i}", encoder=vpb.EncoderSpec(preset="veryslow"))
            ids.append((await stub(aio_channel).CreateJob(pb.CreateJobRequest(spec=spec))).job.id)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "queue is full" in info.value.details() and "retry in" in info.value.details()
    assert ("retry-after", "5") in tuple(info.value.trailing_metadata() or ())
    for job_id in ids:
        await stub(aio_channel).CancelJob(pb.CancelJobRequest(id=job_id))
    listed = await stub(aio_channel).ListJobs(
        pb.ListJobsRequest(state=pb.Job.STATE_CANCELLED, page_size=5)
    )
    assert len(listed.jobs) == 5 and listed.next_page_token
    assert all(j.state in TERMINAL for j in listed.jobs)


def _talking_clip(path: Path, seconds: float) -> None:
    """A dark 320x180 video whose soundtrack is real read speech (the LibriVox sample)."""
    speech = (
        Path(__file__).parent.parent / "subtitle" / "data" / "librivox_sense_and_sensibility.flac"
    )
    with av.open(str(speech)) as src, av.open(str(path), "w") as dst:
        v = dst.add_stream("libx264", rate=30)
        v.width, v.height, v.pix_fmt = 320, 180, "yuv420p"
        a = dst.add_stream("aac", rate=48000)
        resampler = av.AudioResampler(format="fltp", layout="mono", rate=48000)
        written = 0
        for frame in src.decode(audio=0):
            for out in resampler.resample(frame):
                if written >= seconds * 48000:
                    break
                out.pts = written
                written += out.samples
                for p in a.encode(out):
                    dst.mux(p)
        for p in a.encode(None):
            dst.mux(p)
        for i in range(round(seconds * 30)):
            img = np.full((180, 320, 3), 20, np.uint8)
            f = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
            f.pts = i
            for p in v.encode(f):
                dst.mux(p)
        for p in v.encode(None):
            dst.mux(p)


async def test_without_a_script_the_video_is_captioned_from_its_own_speech(
    aio_channel, tmp_path: Path
) -> None:
    clip = tmp_path / "talk.mp4"
    _talking_clip(clip, 6.0)
    spec = pb.JobSpec(
        input=common_pb2.MediaSource(uri=str(clip)),
        render=vpb.RenderSpec(
            reframe=vpb.ReframeSpec(mode=vpb.ReframeSpec.MODE_CENTER, width=360, height=640),
            captions=vpb.CaptionSpec(style=vpb.CaptionSpec.STYLE_PLAIN),
            encoder=vpb.EncoderSpec(preset="ultrafast"),
        ),
    )
    job = (await stub(aio_channel).CreateJob(pb.CreateJobRequest(spec=spec))).job
    assert [s.name for s in job.steps] == ["transcribe", "render"]
    final = (await watch(aio_channel, job.id))[-1].job
    assert final.state == pb.Job.STATE_SUCCEEDED, final.error
    assert all(s.state == pb.Step.STATE_SUCCEEDED for s in final.steps)

    out = await download(aio_channel, final.output.sha256, tmp_path / "short.mp4")
    frames = luma_frames(out, every=15)
    # The picture is flat and dark: anything bright is a caption made from the recognised
    # words, and captions sit in the lower part of the frame, never at the top.
    lit = [t for t, y in frames if y[320:].max() > 200]
    assert len(lit) >= len(frames) // 2, f"captions on too few frames: {lit}"
    assert all(y[:200].max() < 60 for _, y in frames)
