"""The ``vo`` command: reframe, render and serve from the command line.

Each subcommand lives in its own module with ``add_parser(subparsers)``; handlers return the
exit status. Any error a user can fix ends as one line on stderr and exit status 2.
"""

from __future__ import annotations

import os

# gRPC's C core logs connection events (GOAWAY on shutdown) at INFO to stderr; a command line
# tool's stderr is for the user. Set before grpc is imported; an explicit setting wins.
os.environ.setdefault("GRPC_VERBOSITY", "ERROR")

import argparse
import sys
from collections.abc import Sequence

from vo.cli import demo, effects, jobs, reframe, render, script, serve, subtitles, tts
from vo.cli.common import UsageError, stderr
from vo.cli.render import JobFailed
from vo.client.errors import VoClientError

COMMANDS = [render, jobs, reframe, effects, script, tts, subtitles, serve, demo]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand."""
    parser = argparse.ArgumentParser(
        prog="vo",
        description="vo, the video orchestrator: long landscape footage in, vertical shorts out.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


def _error(message: str) -> int:
    # One line, no markup surprises (file names may contain brackets).
    print(f"error: {message}", file=sys.stderr)
    return 2


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; the return value is the exit status."""
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
        return code
    except UsageError as exc:
        return _error(str(exc))
    except JobFailed as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except VoClientError as exc:
        return _error(exc.message)
    except KeyboardInterrupt:
        stderr.print("interrupted")
        return 130
    except OSError as exc:
        return _error(f"{exc.strerror or exc}: {exc.filename or ''}".rstrip(": "))


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())


if __name__ == "__main__":
    entry()
