"""``vo demo``: generate a landscape sample and turn it into a vertical short."""

from __future__ import annotations

import argparse
from pathlib import Path

from vo.cli.common import UsageError, services, stderr
from vo.cli.reframe import render_file
from vo.video.v1 import video_service_pb2 as pb


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``vo demo``."""
    p = subparsers.add_parser(
        "demo",
        help="make a sample landscape clip and reframe it to 9:16",
        description="Generate a 1280x720 clip with a moving subject and a tone, then reframe it "
        "to 1080x1920 following the subject.",
    )
    p.add_argument("--out-dir", default="vo-demo", help="where to write the sample and result")
    p.add_argument("--duration", type=float, default=8.0, help="sample length in seconds")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--server", default="", help="use a running `vo serve` instead of in-process")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Handle ``vo demo``."""
    try:
        from vo_video.samples import write_sample
    except ImportError:
        raise UsageError("the video service is not installed here; install vo[embedded]") from None
    if not 1 <= args.duration <= 120:
        raise UsageError(f"--duration {args.duration} is outside 1..120 seconds")
    out_dir = Path(args.out_dir).expanduser().resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    sample = out_dir / "sample_landscape.mp4"
    output = out_dir / "sample_vertical.mp4"
    stderr.print(f"generating {sample} ({args.duration:.0f} s, 1280x720, moving subject, tone)")
    write_sample(sample, duration=args.duration)
    request = pb.ReframeRequest(
        reframe=pb.ReframeSpec(mode=pb.ReframeSpec.MODE_SMART, aspect="9:16")
    )
    with services(args.server) as svc:
        result = render_file(svc, sample, output, request, args.quiet)
    v = result.info.video
    stderr.print(
        f"reframed to {v.width}x{v.height}, {result.frames} frames ({result.hardware_path})"
    )
    print(output)
    return 0
