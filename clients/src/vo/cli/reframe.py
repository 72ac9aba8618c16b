"""``vo reframe``: a landscape video to vertical (or any aspect), centre or subject-tracked."""

from __future__ import annotations

import argparse
from pathlib import Path

from vo.cli.common import (
    Services,
    add_server_option,
    existing_file,
    parse_size,
    run_with_bars,
    services,
    stderr,
    writable_output,
)
from vo.client import VideoClient
from vo.common.v1 import common_pb2
from vo.video.v1 import video_service_pb2 as pb


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``vo reframe``."""
    p = subparsers.add_parser(
        "reframe",
        help="reframe a video to 9:16 (or any aspect), following the subject",
        description="Crop and scale a video to a new aspect ratio in one pass.",
    )
    p.add_argument("input", help="the landscape video")
    p.add_argument("-o", "--output", required=True, help="where to write the .mp4")
    p.add_argument("--aspect", default="9:16", help="target aspect W:H (default 9:16; 4:5, 1:1...)")
    p.add_argument(
        "--size",
        default="",
        help="output size WIDTHxHEIGHT (default: 1080 on the short side, e.g. 1080x1920)",
    )
    p.add_argument("--mode", choices=["smart", "center"], default="smart", help="crop placement")
    p.add_argument("--preset", default="veryfast", help="libx264 preset (default veryfast)")
    p.add_argument("--crf", type=int, default=23, help="libx264 quality, 0-51 (default 23)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_server_option(p)
    p.set_defaults(handler=run)


def _stream(
    client: VideoClient, request: pb.ReframeRequest | pb.RenderRequest, quiet: bool
) -> pb.RenderResult:
    """Stream a reframe or render with progress bars; return the one result."""
    calls = (
        client.reframe_request(request)
        if isinstance(request, pb.ReframeRequest)
        else client.render(request)
    )
    return run_with_bars(calls, pb.RenderResult, "a result", quiet=quiet)


def source_for(svc: Services, client: VideoClient, path: Path) -> common_pb2.MediaSource:
    """Name a local file to the services: by path in-process, by upload to a server."""
    if svc.embedded:
        return common_pb2.MediaSource(uri=str(path))
    return common_pb2.MediaSource(upload_sha256=client.upload(path).sha256)


def render_file(
    svc: Services,
    source: Path,
    output: Path,
    request: pb.ReframeRequest | pb.RenderRequest,
    quiet: bool,
    extra_files: dict[str, Path] | None = None,
) -> pb.RenderResult:
    """Render a local file to a local output; uploads and downloads when the server is remote.

    ``extra_files`` maps a field path of ``request`` (such as ``"spec.audio.voice"``) to a local
    file that must be named the same way as the input.
    """
    with VideoClient.connect(svc.target) as client:
        request.input.CopyFrom(source_for(svc, client, source))
        for field_path, path in (extra_files or {}).items():
            target: object = request
            for name in field_path.split("."):
                target = getattr(target, name)
            target.CopyFrom(source_for(svc, client, path))  # type: ignore[attr-defined]
        if svc.embedded:
            request.output_uri = str(output)
            return _stream(client, request, quiet)
        result = _stream(client, request, quiet)
        client.download(result.artifact.sha256, output)
        return result


def report(output: Path, result: pb.RenderResult) -> None:
    """One summary line, plus any notes (such as a hardware fallback)."""
    v = result.info.video
    seconds = result.elapsed.seconds + result.elapsed.nanos / 1e9
    loudness = (
        f", {result.loudness_lufs:.1f} LUFS, {result.true_peak_dbtp:.1f} dBTP"
        if result.loudness_lufs or result.true_peak_dbtp
        else ""
    )
    stderr.print(
        f"wrote {output} ({v.width}x{v.height}, {result.frames} frames, "
        f"{seconds:.1f} s, {result.hardware_path}{loudness})"
    )
    for note in result.notes:
        stderr.print(f"note: {note}")


def run(args: argparse.Namespace) -> int:
    """Handle ``vo reframe``."""
    source = existing_file(args.input)
    output = writable_output(args.output, (".mp4", ".m4v", ".mov"))
    width, height = parse_size(args.size)
    request = pb.ReframeRequest(
        reframe=pb.ReframeSpec(
            mode=pb.ReframeSpec.MODE_SMART if args.mode == "smart" else pb.ReframeSpec.MODE_CENTER,
            aspect=args.aspect,
            width=width,
            height=height,
        ),
        encoder=pb.EncoderSpec(preset=args.preset, crf=args.crf),
    )
    with services(args.server, video_only=True) as svc:
        result = render_file(svc, source, output, request, args.quiet)
    report(output, result)
    return 0
