"""``vo script``: a short-form script from a topic and an article, notes or a transcript."""

from __future__ import annotations

import argparse
import json
import sys

from vo.cli.common import (
    ProgressBars,
    UsageError,
    add_server_option,
    existing_file,
    services,
    stderr,
)
from vo.client.script import ScriptClient, TokenEvent, script_request, script_to_dict
from vo.events import ProgressEvent, duration_to_seconds
from vo.script.v1 import script_service_pb2 as pb

ENGINES = ("extractive", "openai")


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``vo script``."""
    p = subparsers.add_parser(
        "script",
        help="write a short-form script from a topic and source text",
        description="Write a voice-over script (hook, body, call to action, hashtags) fitted to "
        "a target duration. The default extractive engine works offline from --source; the "
        "openai engine uses any OpenAI-compatible endpoint set by VO_SCRIPT_OPENAI_BASE_URL "
        "and VO_SCRIPT_OPENAI_MODEL on the server.",
    )
    p.add_argument("--topic", default="", help="what the video is about")
    p.add_argument(
        "--source",
        default="",
        metavar="FILE",
        help="an article, notes or transcript to draw from (UTF-8 text; '-' reads stdin)",
    )
    p.add_argument(
        "--duration",
        type=float,
        default=30.0,
        help="target spoken length in seconds (5-600, default 30)",
    )
    p.add_argument("--engine", choices=ENGINES, default="", help="extractive (default) or openai")
    p.add_argument("--tone", default="", help="style hint such as upbeat or calm")
    p.add_argument("--language", default="", help="BCP 47 tag of the script (default en)")
    p.add_argument(
        "--wpm", type=int, default=0, help="speaking rate used to fit the duration (default 165)"
    )
    p.add_argument("--json", action="store_true", help="print the script as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress or streamed tokens on stderr")
    add_server_option(p)
    p.set_defaults(handler=run)


def _read_source(name: str) -> str:
    if not name:
        return ""
    if name == "-":
        return sys.stdin.read()
    path = existing_file(name, "source")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise UsageError(f"source file {name} is not UTF-8 text; convert it first") from None


def format_script(script: pb.Script) -> str:
    """A script as readable text: title, hook, numbered beats with visuals, call to action."""
    lines = [script.title, "=" * len(script.title), "", f"HOOK  {script.hook}", ""]
    for i, seg in enumerate(script.segments, 1):
        lines.append(f"{i:>2}.  {seg.text}")
        if seg.visual_hint:
            lines.append(f"     [visual] {seg.visual_hint}")
    lines += ["", f"CTA   {script.call_to_action}", ""]
    if script.hashtags:
        lines.append(" ".join(f"#{t}" for t in script.hashtags))
    seconds = duration_to_seconds(script.estimated_duration)
    lines.append(f"~{seconds:.1f} s spoken, written by the {script.engine} engine")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    """Handle ``vo script``."""
    source = _read_source(args.source)
    if not args.topic.strip() and not source.strip():
        raise UsageError("give --topic, --source FILE, or both")
    request = script_request(
        args.topic,
        source_text=source,
        duration=args.duration,
        tone=args.tone,
        language=args.language,
        engine=args.engine,
        words_per_minute=args.wpm,
    )
    script: pb.Script | None = None
    streamed = False
    with (
        services(args.server) as svc,
        ScriptClient.connect(svc.target) as client,
        ProgressBars(quiet=args.quiet) as bars,
    ):
        for event in client.write_request(request):
            if isinstance(event, ProgressEvent):
                bars.update(event)
            elif isinstance(event, TokenEvent):
                if not args.quiet:
                    # Raw model output as it arrives, so a slow local model shows life.
                    bars.progress.console.print(event.text, end="", style="dim", markup=False)
                    streamed = True
            else:
                script = event
    if streamed:
        stderr.print()
    if script is None:
        raise UsageError("the server ended the call without a script")
    if args.json:
        print(json.dumps(script_to_dict(script), indent=2, ensure_ascii=False))
    else:
        print(format_script(script))
    return 0
