"""Benchmark helpers: timing whole commands, peak memory of a child, medians and ratios."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "bench" / "out"
VO = str(Path(sys.executable).parent / "vo")
# The ffmpeg CLI side's encoder settings: vo's defaults (libx264 veryfast crf 23, AAC 128k).
ENCODER_ARGS = [
    "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p",
    "-c:a", "aac", "-b:a", "128k",
]  # fmt: skip


def ffmpeg_binary() -> str:
    """Debian's ffmpeg CLI (``make bench`` installs it)."""
    path = shutil.which("ffmpeg")
    if path is None:
        raise SystemExit("ffmpeg is not installed: run `make bench`, which installs it with apt")
    return path


@dataclass
class Timing:
    """Wall times and peak memory of repeated runs of one contender."""

    name: str
    seconds: list[float] = field(default_factory=list)
    peak_rss_mb: list[float] = field(default_factory=list)

    @property
    def median(self) -> float:
        """Median wall time."""
        return statistics.median(self.seconds)


def run_child(argv: Sequence[str], *, env: dict[str, str] | None = None) -> tuple[float, float]:
    """Run a command; return (wall seconds, peak RSS in MB of the child and its children)."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        list(argv), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, text=True
    )
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - start
    stderr = proc.stderr.read() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{stderr[-2000:]}")
    return elapsed, usage.ru_maxrss / 1024


def alternate(
    contenders: dict[str, Callable[[], tuple[float, float]]], runs: dict[str, int]
) -> dict[str, Timing]:
    """Run the contenders in turn, round after round, so drift in machine load hits all alike."""
    timings = {name: Timing(name) for name in contenders}
    for round_no in range(max(runs.values())):
        for name, fn in contenders.items():
            if round_no >= runs[name]:
                continue
            seconds, rss = fn()
            timings[name].seconds.append(seconds)
            timings[name].peak_rss_mb.append(rss)
            print(f"  round {round_no + 1}: {name:<28} {seconds:7.2f} s  {rss:7.0f} MB", flush=True)
    return timings


def paired_ratios(a: Timing, b: Timing) -> list[float]:
    """a/b round by round: the two ran back to back, so slow drift in load cancels out."""
    return [x / y for x, y in zip(a.seconds, b.seconds, strict=False)]


def table(rows: Sequence[Sequence[str]]) -> str:
    """A plain-text table."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
