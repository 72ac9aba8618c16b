"""``vo subtitles``: a subtitle file from word timings, from speech, or from speech and a script.

The format follows the output's suffix (.srt, .vtt, .ass). Word timings come from a JSON list
of ``{"text", "start", "end"}`` in seconds (what ``vo tts --timings`` writes), or from speech
in an audio or video file, recognised by PocketSphinx or, with ``--script``, aligned to it.
"""

from __future__ import annotations

import argparse
import json
import os
import uuid
from pathlib import Path

from vo.cli.common import (
    UsageError,
    add_server_option,
    existing_file,
    run_with_bars,
    services,
    stderr,
    writable_output,
)
from vo.client.subtitle import (
    SubtitleClient,
    rules,
    transcribe_request,
    words_from_dicts,
    words_to_dicts,
)
from vo.common.v1 import common_pb2
from vo.subtitle.v1 import subtitle_service_pb2 as pb

SUFFIXES = (".srt", ".vtt", ".ass")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``vo subtitles``."""
    p = subparsers.add_parser(
        "subtitles",
        help="write SRT/WebVTT/ASS captions from word timings or speech",
        description="Cut timed words into readable cues (at most 2 lines of 42 characters, "
        "17 characters per second, 0.8-7 s each) and write them as SRT, WebVTT or ASS, chosen "
        "by the output's suffix. Words come from --timings (JSON), or from the speech in "
        "--audio/--video, recognised offline, or aligned to --script when the text is known.",
    )
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--timings", metavar="WORDS.json", help='JSON list of {"text","start","end"}'
    )
    source.add_argument("--audio", metavar="FILE", help="audio file with speech")
    source.add_argument("--video", metavar="FILE", help="video file with speech")
    p.add_argument("--script", metavar="FILE", default="", help="text of the speech, to align")
    p.add_argument("-o", "--output", required=True, help="subtitle file: .srt, .vtt or .ass")
    p.add_argument(
        "--style",
        choices=("plain", "karaoke"),
        default="plain",
        help="karaoke: per-word highlight tags (ASS)",
    )
    p.add_argument("--max-chars", type=int, default=0, metavar="N", help="per line (default 42)")
    p.add_argument("--max-lines", type=int, default=0, metavar="N", help="per cue (default 2)")
    p.add_argument(
        "--words-out", default="", metavar="FILE", help="also write the word timings as JSON"
    )
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    add_server_option(p)
    p.set_defaults(handler=run)


def _read_words(path: Path) -> list[common_pb2.Word]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise UsageError(f"timings file {path} is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"timings file {path}: line {exc.lineno}: {exc.msg}") from None
    if isinstance(data, dict) and isinstance(data.get("words"), list):
        data = data["words"]
    if not isinstance(data, list):
        raise UsageError(f'timings file {path} must hold a JSON list of {{"text","start","end"}}')
    try:
        return words_from_dicts(data)
    except ValueError as exc:
        raise UsageError(f"timings file {path}: {exc}") from None


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _transcribe(
    target: str, embedded: bool, media: Path, script: str, seg: pb.SegmentationRules, quiet: bool
) -> pb.TranscribeResult:
    source: common_pb2.MediaSource | Path = media
    if not embedded:
        # The subtitle service reads uploads from the shared artifact store; the video
        # service is the one that takes uploads.
        from vo.client.video import VideoClient

        with VideoClient.connect(target) as video:
            artifact = video.upload(media)
        source = common_pb2.MediaSource(upload_sha256=artifact.sha256)
    request = transcribe_request(source, script=script, segmentation=seg)
    with SubtitleClient.connect(target) as client:
        return run_with_bars(
            client.transcribe_request(request), pb.TranscribeResult, "words", quiet=quiet
        )


def run(args: argparse.Namespace) -> int:
    """Handle ``vo subtitles``."""
    output = writable_output(args.output, SUFFIXES)
    words_out = writable_output(args.words_out, (".json",)) if args.words_out else None
    fmt = output.suffix.lstrip(".").lower()
    if args.style == "karaoke" and fmt != "ass":
        raise UsageError("--style karaoke needs an .ass output (SRT and WebVTT cannot highlight)")
    if args.script and args.timings:
        raise UsageError("--script aligns speech; use it with --audio or --video, not --timings")
    script = ""
    if args.script:
        try:
            script = existing_file(args.script, "script").read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise UsageError(f"script {args.script} is not UTF-8 text") from None
        if not script.strip():
            raise UsageError(f"script {args.script} is empty")
    seg = rules(max_chars_per_line=args.max_chars, max_lines=args.max_lines)
    with services(args.server) as svc:
        if args.timings:
            words = _read_words(existing_file(args.timings, "timings"))
            with SubtitleClient.connect(svc.target) as client:
                cues = client.build_cues(words, seg)
        else:
            media = existing_file(args.audio or args.video, "audio" if args.audio else "video")
            result = _transcribe(svc.target, svc.embedded, media, script, seg, args.quiet)
            words, cues = list(result.words), list(result.cues)
            if not cues:
                raise UsageError(f"no speech was found in {media.name}")
        with SubtitleClient.connect(svc.target) as client:
            content = client.format_cues(cues, fmt, karaoke=args.style == "karaoke")
    _write_atomically(output, content)
    if words_out is not None:
        _write_atomically(words_out, json.dumps(words_to_dicts(words), indent=1) + "\n")
    if not args.quiet:
        stderr.print(
            f"wrote {output} ({len(cues)} cues, {len(words)} words)", markup=False, highlight=False
        )
    return 0
