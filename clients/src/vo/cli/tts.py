"""``vo tts``: speech and word timings from text, and ``vo tts --list-voices``."""

from __future__ import annotations

import argparse
import json
import os
import sys
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
from vo.client.tts import TtsClient, synthesize_request, words_to_dicts
from vo.events import duration_to_seconds
from vo.tts.v1 import tts_service_pb2 as pb

SUFFIXES = (".wav", ".flac", ".m4a", ".ogg", ".opus")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``vo tts``."""
    p = subparsers.add_parser(
        "tts",
        help="speak text to an audio file, with word timings",
        description="Speak TEXT (or --text-file) with eSpeak NG (or another configured engine) "
        "and write the audio; the format follows the output's suffix (.wav, .flac, .m4a, .ogg). "
        "--timings writes each word's start and end in seconds as JSON.",
    )
    p.add_argument("text", nargs="?", default="", help="what to say (or use --text-file)")
    p.add_argument("-o", "--output", default="speech.wav", help="audio file to write")
    p.add_argument("--text-file", default="", metavar="F", help="read the text from F ('-': stdin)")
    p.add_argument("--timings", default="", metavar="FILE", help="write word timings as JSON")
    p.add_argument("--voice", default="", help="voice name from --list-voices (default en-us)")
    p.add_argument("--engine", default="", help="espeak (default) or another configured engine")
    p.add_argument("--rate", type=int, default=0, help="words per minute, 80-450 (default 165)")
    p.add_argument("--pitch", type=int, default=0, help="base pitch, 0-100 (default 50)")
    p.add_argument("--sample-rate", type=int, default=0, help="output rate in Hz (default 22050)")
    p.add_argument(
        "--list-voices",
        nargs="?",
        const="",
        default=None,
        metavar="LANG",
        help="list voices (whose language starts with LANG) and exit",
    )
    p.add_argument("--quiet", action="store_true", help="no progress on stderr")
    add_server_option(p)
    p.set_defaults(handler=run)


def _read_text(args: argparse.Namespace) -> str:
    if args.text and args.text_file:
        raise UsageError("give TEXT or --text-file, not both")
    if args.text_file == "-":
        return sys.stdin.read()
    if args.text_file:
        path = existing_file(args.text_file, "text")
        try:
            return path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise UsageError(f"text file {args.text_file} is not UTF-8 text") from None
    if not args.text.strip():
        raise UsageError("give the TEXT to speak, or --text-file F")
    return str(args.text)


def _write_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.partial")
    try:
        tmp.write_bytes(data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _list_voices(args: argparse.Namespace) -> int:
    with services(args.server) as svc, TtsClient.connect(svc.target) as client:
        voices = client.list_voices(args.list_voices, args.engine)
    for v in voices:
        print(f"{v.name:<22} {v.language:<20} {v.engine:<8} {v.description}")
    return 0


def run(args: argparse.Namespace) -> int:
    """Handle ``vo tts``."""
    if args.list_voices is not None:
        return _list_voices(args)
    text = _read_text(args)
    output = writable_output(args.output, SUFFIXES)
    timings = writable_output(args.timings, (".json",)) if args.timings else None
    request = synthesize_request(
        text,
        voice=args.voice,
        engine=args.engine,
        rate=args.rate,
        pitch=args.pitch,
        audio_format=output.suffix,
        sample_rate=args.sample_rate,
    )
    with services(args.server) as svc, TtsClient.connect(svc.target) as client:
        result = run_with_bars(
            client.synthesize_request(request), pb.SynthesizeResult, "speech", quiet=args.quiet
        )
    _write_atomically(output, result.audio_content)
    if timings is not None:
        words = json.dumps(words_to_dicts(result.words), indent=1, ensure_ascii=False)
        _write_atomically(timings, (words + "\n").encode())
    if not args.quiet:
        seconds = duration_to_seconds(result.duration)
        cached = ", from the cache" if result.cached else ""
        stderr.print(
            f"wrote {output} ({seconds:.2f} s, {len(result.words)} words, "
            f"voice {result.voice.name}{cached})",
            markup=False,
            highlight=False,
        )
    return 0
