"""``vo render``: the whole pipeline, video and topic in, finished vertical short out.

Runs as a durable job of the PipelineService: script (from a topic) → speech → captions →
one-pass render, each stage with its own progress bar.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterable
from pathlib import Path

from vo.cli.common import (
    Services,
    UsageError,
    add_server_option,
    existing_file,
    parse_size,
    run_with_bars,
    services,
    stderr,
    writable_output,
)
from vo.cli.effects import parse_curve
from vo.client.pipeline import PipelineClient, state_name
from vo.common.v1 import common_pb2
from vo.events import seconds_to_duration
from vo.pipeline.v1 import pipeline_service_pb2 as pb
from vo.video.v1 import video_service_pb2 as vpb


class JobFailed(Exception):
    """The job ended FAILED or CANCELLED; exit status 1 with the reason."""


def add_render_options(p: argparse.ArgumentParser) -> None:
    """The options that describe a job (shared by ``vo render`` and ``vo jobs submit``)."""
    text = p.add_mutually_exclusive_group()
    text.add_argument("--topic", default="", help="write a script about this (with --source)")
    text.add_argument("--script", default="", metavar="FILE", help="a ready voice-over script")
    p.add_argument(
        "--source", default="", metavar="FILE", help="an article or notes to draw the script from"
    )
    p.add_argument("--duration", type=float, default=0, help="voice-over length to aim for (s)")
    p.add_argument(
        "--engine", choices=["extractive", "openai"], default="extractive", help="script engine"
    )
    p.add_argument(
        "--reframe", choices=["smart", "center", "none"], default="smart", help="crop placement"
    )
    p.add_argument("--aspect", default="9:16", help="target aspect W:H (default 9:16)")
    p.add_argument(
        "--size", default="", help="output WIDTHxHEIGHT (default 1080 on the short side)"
    )
    p.add_argument(
        "--ramp", default="", metavar="CURVE", help='speed curve, e.g. "0:1,10:0.5,15:2"'
    )
    p.add_argument("--captions", choices=["karaoke", "plain", "none"], default="karaoke")
    p.add_argument("--voice", default="", help="TTS voice (see `vo tts --list-voices`)")
    p.add_argument(
        "--music", default="", metavar="FILE", help="background music, looped and ducked"
    )
    p.add_argument("--preset", default="veryfast", help="libx264 preset")
    p.add_argument("--crf", type=int, default=23, help="libx264 quality 0-51")
    p.add_argument("--project", default="", help="project id (groups jobs)")
    p.add_argument(
        "--request-id", default="", help="idempotency key: resubmitting it returns the same job"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_server_option(p)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``vo render``."""
    p = subparsers.add_parser(
        "render",
        help="the whole pipeline: script, voice-over, captions, reframe, mix",
        description="Turn a landscape video (and a topic, or a script) into a finished vertical short.",
    )
    p.add_argument("input", help="the landscape video")
    p.add_argument("-o", "--output", required=True, help="where to write the .mp4")
    add_render_options(p)
    p.set_defaults(handler=run)


def _read_text(path: str, what: str) -> str:
    try:
        return existing_file(path, what).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"{what} file {path} is not UTF-8 text") from None


def source_for(svc: Services, client: PipelineClient, path: Path) -> common_pb2.MediaSource:
    """By path in-process; uploaded to a remote server."""
    if svc.embedded:
        return common_pb2.MediaSource(uri=str(path))
    return common_pb2.MediaSource(upload_sha256=client.upload(path).sha256)


def build_spec(args: argparse.Namespace, svc: Services, client: PipelineClient) -> pb.JobSpec:
    """A JobSpec from the command line (files uploaded when the server is remote)."""
    video = existing_file(args.input)
    width, height = parse_size(args.size)
    mode = {
        "smart": vpb.ReframeSpec.MODE_SMART,
        "center": vpb.ReframeSpec.MODE_CENTER,
        "none": vpb.ReframeSpec.MODE_NONE,
    }[args.reframe]
    render = vpb.RenderSpec(
        reframe=vpb.ReframeSpec(mode=mode, aspect=args.aspect, width=width, height=height),
        encoder=vpb.EncoderSpec(preset=args.preset, crf=args.crf),
    )
    if args.ramp:
        render.ramp.CopyFrom(parse_curve(args.ramp))
    if args.captions != "none":
        style = (
            vpb.CaptionSpec.STYLE_PLAIN
            if args.captions == "plain"
            else vpb.CaptionSpec.STYLE_KARAOKE
        )
        render.captions.CopyFrom(vpb.CaptionSpec(style=style))
    if args.music:
        render.audio.music.CopyFrom(source_for(svc, client, existing_file(args.music, "music")))
    spec = pb.JobSpec(
        input=source_for(svc, client, video),
        topic=args.topic,
        script_text=_read_text(args.script, "script") if args.script else "",
        source_text=_read_text(args.source, "source") if args.source else "",
        voice=args.voice,
        script_engine=args.engine,
        render=render,
    )
    if args.duration:
        spec.target_duration.CopyFrom(seconds_to_duration(args.duration))
    return spec


def follow(events: Iterable[object], quiet: bool) -> pb.Job:
    """Show a job's events as progress bars; return its final snapshot."""
    return run_with_bars(events, pb.Job, "the job", quiet=quiet)


def check_succeeded(job: pb.Job) -> None:
    """Raise :class:`JobFailed` with the reason unless the job succeeded."""
    if job.state == pb.Job.STATE_SUCCEEDED:
        return
    if job.state == pb.Job.STATE_FAILED:
        e = job.error
        raise JobFailed(f"job {job.id} failed in step {e.step or '?'} ({e.code}): {e.message}")
    raise JobFailed(f"job {job.id} ended {state_name(job.state)}")


def run(args: argparse.Namespace) -> int:
    """Handle ``vo render``."""
    output = writable_output(args.output, (".mp4", ".m4v", ".mov"))
    with services(args.server) as svc, PipelineClient.connect(svc.target) as client:
        spec = build_spec(args, svc, client)
        job = follow(
            client.render(spec, project_id=args.project, request_id=args.request_id), args.quiet
        )
        check_succeeded(job)
        client.download(job.output.sha256, output)
    steps = ", ".join(
        f"{s.name} {s.elapsed.seconds + s.elapsed.nanos / 1e9:.1f}s" for s in job.steps
    )
    stderr.print(f"wrote {output} (job {job.id}: {steps})")
    return 0
