"""``vo ramp``, ``vo captions``, ``vo mix``: one part of a render each, through ``Render``.

Each is the same one-pass render as a full ``vo render`` with a partial spec, so they share
every behaviour: progress bars, atomic output, one-line errors.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vo.cli.common import UsageError, add_server_option, existing_file, services, writable_output
from vo.cli.reframe import render_file, report
from vo.events import seconds_to_duration
from vo.video.v1 import video_service_pb2 as pb

VIDEO_SUFFIXES = (".mp4", ".m4v", ".mov")


def parse_curve(text: str) -> pb.SpeedRamp:
    """``"0:1,10:0.5,15:2"`` (source seconds : speed) as a SpeedRamp; the server checks values."""
    ramp = pb.SpeedRamp()
    for i, item in enumerate(text.split(",")):
        try:
            seconds, speed = (float(v) for v in item.split(":"))
        except ValueError:
            raise UsageError(
                f"--curve point {i} {item.strip()!r} is not SECONDS:SPEED; write e.g. 0:1,10:0.5,15:2"
            ) from None
        ramp.points.append(pb.SpeedPoint(source_offset=seconds_to_duration(seconds), speed=speed))
    return ramp


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="the video")
    p.add_argument("-o", "--output", required=True, help="where to write the .mp4")
    p.add_argument("--preset", default="veryfast", help="libx264 preset (default veryfast)")
    p.add_argument("--crf", type=int, default=23, help="libx264 quality, 0-51 (default 23)")
    p.add_argument(
        "--hardware",
        choices=["cpu", "auto", "nvidia", "vaapi"],
        default="cpu",
        help="encoder: cpu (libx264), auto (a GPU encoder when one works), nvidia, vaapi",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    add_server_option(p)


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``vo ramp``, ``vo captions`` and ``vo mix``."""
    ramp = subparsers.add_parser(
        "ramp", help="speed ramp: retime video and audio (pitch kept) along a speed curve"
    )
    _common(ramp)
    ramp.add_argument(
        "--curve", required=True, help='source seconds:speed points, e.g. "0:1,10:0.5,15:2"'
    )
    ramp.add_argument(
        "--ease", type=float, default=0.3, help="seconds each speed change takes (0: hard cuts)"
    )
    ramp.add_argument(
        "--blend", action="store_true", help="blend neighbouring frames in slow motion"
    )
    ramp.set_defaults(handler=run_ramp)

    captions = subparsers.add_parser(
        "captions", help="burn in captions from an SRT, WebVTT or ASS file"
    )
    _common(captions)
    captions.add_argument("--subtitles", required=True, help="the .srt, .vtt or .ass file")
    captions.add_argument("--style", choices=["karaoke", "plain"], default="karaoke")
    captions.add_argument(
        "--font", default="", help="a TTF/OTF font file (default: a bold system font)"
    )
    captions.set_defaults(handler=run_captions)

    mix = subparsers.add_parser(
        "mix", help="voice-over with ducking, music, loudness normalisation"
    )
    _common(mix)
    mix.add_argument("--voice", help="a voice-over (audio file), no longer than the video")
    mix.add_argument("--music", help="background music, looped to length with fades")
    mix.add_argument(
        "--duck-db", type=float, default=12.0, help="how far the rest drops under the voice"
    )
    mix.add_argument("--music-db", type=float, default=-18.0, help="music gain in dB")
    mix.add_argument(
        "--loudness", type=float, default=-14.0, help="target integrated loudness (LUFS)"
    )
    mix.add_argument("--drop-original", action="store_true", help="remove the video's own audio")
    mix.set_defaults(handler=run_mix)


def _encoder(args: argparse.Namespace) -> pb.EncoderSpec:
    hardware = {
        "cpu": pb.EncoderSpec.HARDWARE_CPU,
        "auto": pb.EncoderSpec.HARDWARE_AUTO,
        "nvidia": pb.EncoderSpec.HARDWARE_NVIDIA,
        "vaapi": pb.EncoderSpec.HARDWARE_VAAPI,
    }[args.hardware]
    return pb.EncoderSpec(preset=args.preset, crf=args.crf, hardware=hardware)


def _run(args: argparse.Namespace, spec: pb.RenderSpec, extra: dict[str, Path]) -> int:
    source = existing_file(args.input)
    output = writable_output(args.output, VIDEO_SUFFIXES)
    spec.encoder.CopyFrom(_encoder(args))
    with services(args.server, video_only=True) as svc:
        result = render_file(svc, source, output, pb.RenderRequest(spec=spec), args.quiet, extra)
    report(output, result)
    return 0


def run_ramp(args: argparse.Namespace) -> int:
    """Handle ``vo ramp``."""
    ramp = parse_curve(args.curve)
    ramp.ease_duration.CopyFrom(seconds_to_duration(args.ease))
    ramp.blend_frames = args.blend
    return _run(args, pb.RenderSpec(ramp=ramp), {})


def run_captions(args: argparse.Namespace) -> int:
    """Handle ``vo captions``."""
    subtitles = existing_file(args.subtitles, "subtitles")
    style = pb.CaptionSpec.STYLE_PLAIN if args.style == "plain" else pb.CaptionSpec.STYLE_KARAOKE
    spec = pb.RenderSpec(captions=pb.CaptionSpec(style=style, font_path=args.font))
    return _run(args, spec, {"spec.captions.subtitles": subtitles})


def run_mix(args: argparse.Namespace) -> int:
    """Handle ``vo mix``."""
    if not args.voice and not args.music and not args.drop_original:
        pass  # normalising the original alone is a valid use: loudness to the platform target
    audio = pb.AudioMixSpec(
        duck_db=args.duck_db,
        music_gain_db=args.music_db,
        target_lufs=args.loudness,
        drop_original=args.drop_original,
        normalize=True,
    )
    extra: dict[str, Path] = {}
    if args.voice:
        extra["spec.audio.voice"] = existing_file(args.voice, "voice")
    if args.music:
        extra["spec.audio.music"] = existing_file(args.music, "music")
    return _run(args, pb.RenderSpec(audio=audio), extra)
