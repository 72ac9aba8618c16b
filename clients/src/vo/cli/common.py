"""What every ``vo`` subcommand shares: where the services are, progress bars, errors.

Errors a user can fix are printed as one line ``error: ...`` on stderr with exit status 2,
never a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from rich.console import Console
from rich.progress import BarColumn, Progress, ProgressColumn, Task, TaskID, TextColumn
from rich.text import Text

from vo.events import ProgressEvent

if TYPE_CHECKING:
    from types import TracebackType

stderr = Console(stderr=True)
T = TypeVar("T")


class UsageError(Exception):
    """A mistake in the command line or its files; printed as one line, exit status 2."""


def add_server_option(parser: argparse.ArgumentParser) -> None:
    """``--server HOST:PORT``; without it the services run in this process."""
    parser.add_argument(
        "--server",
        metavar="HOST:PORT",
        default=os.environ.get("VO_SERVER", ""),
        help="talk to a running `vo serve` (default: run the services in this process)",
    )


@dataclass
class Services:
    """Where to send calls, and whether the services run in this process."""

    target: str
    embedded: bool


@contextlib.contextmanager
def services(server: str, *, video_only: bool = False) -> Iterator[Services]:
    """The remote server when given, else the services started in this process.

    ``video_only`` starts just the VideoService (what reframe, ramp, captions and mix need):
    a second less to start than the whole mesh.
    """
    if server:
        yield Services(server, embedded=False)
        return
    try:
        if video_only:
            from vo_core.embedded import EmbeddedServer, Plain
            from vo_video.config import Settings
            from vo_video.server import register

            def setup(grpc_server: Any, shared: Any) -> Plain:
                return Plain([register(grpc_server, Settings(server=shared))])

            embedded: Any = EmbeddedServer(setup)
        else:
            from vo_pipeline.mesh import EmbeddedMesh

            embedded = EmbeddedMesh()
    except ImportError as exc:  # the client distribution was installed without [embedded]
        raise UsageError(
            f"the services are not installed here ({exc.name}); install vo[embedded] "
            "or pass --server HOST:PORT"
        ) from None
    with embedded:
        yield Services(embedded.target, embedded=True)


def existing_file(text: str, what: str = "input") -> Path:
    """A path that must be an existing file; a clear error otherwise."""
    path = Path(text).expanduser()
    if not path.exists():
        raise UsageError(f"{what} file {text} does not exist")
    if not path.is_file():
        raise UsageError(f"{what} {text} is not a file")
    return path.resolve()


def writable_output(text: str, suffixes: tuple[str, ...] = ()) -> Path:
    """An output path whose folder exists and is writable."""
    path = Path(text).expanduser().resolve()
    if suffixes and path.suffix.lower() not in suffixes:
        raise UsageError(f"output {text} must end in {' or '.join(suffixes)}")
    if path.is_dir():
        raise UsageError(f"output {text} is a folder; give a file name")
    if not path.parent.is_dir():
        raise UsageError(f"output folder {path.parent} does not exist; create it first")
    if not os.access(path.parent, os.W_OK):
        raise UsageError(f"output folder {path.parent} is not writable")
    return path


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        fps = task.fields.get("fps", 0.0)
        unit = task.fields.get("unit", "fps")
        return Text(f"{fps:6.1f} {unit}" if fps else "", style="progress.data.speed")


class _EtaColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        eta = task.fields.get("eta")
        if eta is None:
            return Text("eta --:--", style="progress.remaining")
        minutes, seconds = divmod(int(eta + 0.5), 60)
        return Text(f"eta {minutes:02d}:{seconds:02d}", style="progress.remaining")


class _CountColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        label = task.fields.get("label", "frames")
        total = int(task.total) if task.total else 0
        return Text(f"{int(task.completed)}/{total or '?'} {label}", style="progress.download")


class ProgressBars:
    """One rich progress bar per stage, fed by :class:`ProgressEvent` s."""

    def __init__(self, *, quiet: bool = False) -> None:
        self.progress = Progress(
            TextColumn("[bold]{task.description:<12}"),
            BarColumn(),
            _CountColumn(),
            _RateColumn(),
            _EtaColumn(),
            console=stderr,
            disable=quiet,
        )
        self.tasks: dict[str, TaskID] = {}
        self.frame_stages: set[str] = set()
        self.started = False

    def __enter__(self) -> ProgressBars:
        # The display starts with the first event: a live display stopped before any bar
        # still prints an empty line, which would stand above a one-line error.
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.started:
            self.progress.__exit__(t, e, tb)

    def update(self, event: ProgressEvent) -> None:
        """Show an event: frames when the stage counts frames, else steps."""
        counts_frames = event.frames_total > 0 or event.frames_done > 0
        if counts_frames:
            self.frame_stages.add(event.stage)
        elif event.stage in self.frame_stages:
            return  # the step's own end on a bar that counts frames: they have said it all
        done = event.frames_done if counts_frames else event.steps_done
        total = event.frames_total if counts_frames else event.steps_total
        # Extra task fields, read by the custom columns above.
        fields: dict[str, Any] = {
            "fps": event.fps,
            "eta": event.eta_seconds,
            "label": "frames" if counts_frames else "steps",
            "unit": "fps" if counts_frames else "/s",
        }
        if not self.started:
            self.progress.start()
            self.started = True
        task = self.tasks.get(event.stage)
        if task is None:
            task = self.progress.add_task(event.stage, total=total or None, **fields)
            self.tasks[event.stage] = task
        self.progress.update(task, completed=done, total=total or None, **fields)


def run_with_bars(events: Iterable[object], kind: type[T], what: str, *, quiet: bool = False) -> T:
    """Show a call's progress events as bars; return its last event of ``kind`` (the result)."""
    result: T | None = None
    with ProgressBars(quiet=quiet) as bars:
        for event in events:
            if isinstance(event, ProgressEvent):
                bars.update(event)
            elif isinstance(event, kind):
                result = event
    if result is None:
        raise UsageError(f"the server ended the call without {what}")
    return result


def parse_size(text: str) -> tuple[int, int]:
    """``--size 1080x1920`` as (width, height); empty means (0, 0): the server's default."""
    if not text:
        return 0, 0
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"--size {text!r} is not WIDTHxHEIGHT, such as 1080x1920") from None
    return w, h
