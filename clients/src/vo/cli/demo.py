"""``vo demo``: generate a landscape sample and turn it into a finished vertical short."""

from __future__ import annotations

import argparse
from pathlib import Path

from vo.cli.common import UsageError, services, stderr
from vo.cli.render import check_succeeded, follow
from vo.client.pipeline import PipelineClient
from vo.common.v1 import common_pb2
from vo.pipeline.v1 import pipeline_service_pb2 as pb
from vo.video.v1 import video_service_pb2 as vpb

TOPIC = "Why cities are good for bees"
SOURCE_TEXT = """\
Honeybees are thriving on city rooftops. Beekeepers in several European cities report that
urban hives produce more honey than rural ones. The reason is diversity: parks, gardens and
balconies flower from early spring to late autumn, while farmland often offers a single crop
that blooms for a few weeks. Pesticide use is also lower in cities than on intensive farms.
Still, too many hives can crowd out wild bees, which pollinate many plants that honeybees
ignore. Some cities now count flowers as well as hives before they approve new apiaries.
A city that plants native species helps both kinds of bee, and its residents get greener
streets, cooler summers and better gardens in return.
"""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``vo demo``."""
    p = subparsers.add_parser(
        "demo",
        help="make a sample clip and run the whole pipeline on it",
        description="Generate a 1280x720 clip with a moving subject, then turn it into a 1080x1920 "
        "short: a script from built-in source text, an eSpeak voice-over, karaoke captions, "
        "subject-tracked reframing and a ducked, loudness-normalised mix.",
    )
    p.add_argument("--out-dir", default="vo-demo", help="where to write the sample and result")
    p.add_argument("--duration", type=float, default=15.0, help="sample length in seconds (8-120)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--server", default="", help="use a running `vo serve` instead of in-process")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Handle ``vo demo``."""
    try:
        from vo_video.samples import write_sample
    except ImportError:
        raise UsageError("the video service is not installed here; install vo[embedded]") from None
    if not 8 <= args.duration <= 120:
        raise UsageError(f"--duration {args.duration} is outside 8..120 seconds")
    out_dir = Path(args.out_dir).expanduser().resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    sample = out_dir / "sample_landscape.mp4"
    output = out_dir / "short_vertical.mp4"
    stderr.print(f"generating {sample} ({args.duration:.0f} s, 1280x720, moving subject, tone)")
    write_sample(sample, duration=args.duration)
    with services(args.server) as svc, PipelineClient.connect(svc.target) as client:
        source = (
            common_pb2.MediaSource(uri=str(sample))
            if svc.embedded
            else common_pb2.MediaSource(upload_sha256=client.upload(sample).sha256)
        )
        spec = pb.JobSpec(
            input=source,
            topic=TOPIC,
            source_text=SOURCE_TEXT,
            render=vpb.RenderSpec(
                reframe=vpb.ReframeSpec(mode=vpb.ReframeSpec.MODE_SMART, aspect="9:16"),
                captions=vpb.CaptionSpec(style=vpb.CaptionSpec.STYLE_KARAOKE),
            ),
        )
        job = follow(client.render(spec), args.quiet)
        check_succeeded(job)
        client.download(job.output.sha256, output)
    stderr.print(f"job {job.id} succeeded: script, voice-over, captions, reframe, mix")
    print(output)
    return 0
