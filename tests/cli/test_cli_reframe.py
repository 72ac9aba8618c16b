"""The ``vo`` command as a user runs it: a real process, real files, one-line errors."""

from __future__ import annotations

import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cliutil import VO, vo
from mediacheck import decode


def test_reframe_in_process(landscape_clip, tmp_path: Path) -> None:
    out = tmp_path / "v.mp4"
    result = vo(
        "reframe",
        str(landscape_clip.path),
        "-o",
        str(out),
        "--mode",
        "center",
        "--size",
        "360x640",
        "--preset",
        "ultrafast",
    )
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stderr and "360x640" in result.stderr
    d = decode(out)
    assert (d.width, d.height, d.frames) == (360, 640, 120)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [VO, "serve", "--port", str(port), "--data-dir", str(tmp_path / "server")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    assert "serving" in proc.stdout.readline()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_reframe_against_a_server_uploads_and_downloads(
    served: str, landscape_clip, tmp_path: Path
) -> None:
    out = tmp_path / "remote.mp4"
    result = vo(
        "reframe",
        str(landscape_clip.path),
        "-o",
        str(out),
        "--server",
        served,
        "--mode",
        "smart",
        "--aspect",
        "1:1",
        "--size",
        "480x480",
        "--preset",
        "ultrafast",
    )
    assert result.returncode == 0, result.stderr
    d = decode(out)
    assert (d.width, d.height) == (480, 480) and d.frames == 120


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["reframe", "{missing}", "-o", "{out}"], "does not exist"),
        (["reframe", "{text}", "-o", "{out}"], "not a media file"),
        (["reframe", "{clip}", "-o", "{out}", "--aspect", "banana"], "aspect 'banana'"),
        (["reframe", "{clip}", "-o", "{tmp}/nope/o.mp4"], "does not exist"),
        (["reframe", "{clip}", "-o", "{tmp}/o.avi"], "must end in .mp4"),
        (["reframe", "{clip}", "-o", "{out}", "--size", "big"], "--size 'big'"),
    ],
)
def test_errors_are_one_line_and_exit_2(
    args: list[str], needle: str, landscape_clip, tmp_path: Path
) -> None:
    text = tmp_path / "text.mp4"
    text.write_text("not a video")
    values = {
        "missing": str(tmp_path / "missing.mp4"),
        "text": str(text),
        "clip": str(landscape_clip.path),
        "out": str(tmp_path / "o.mp4"),
        "tmp": str(tmp_path),
    }
    result = vo(*[a.format(**values) for a in args])
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and needle in lines[0]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "o.mp4").exists()


def test_server_unreachable_is_one_line(landscape_clip, tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket closes
    result = vo(
        "reframe",
        str(landscape_clip.path),
        "-o",
        str(tmp_path / "o.mp4"),
        "--server",
        f"127.0.0.1:{port}",
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: server unavailable") and result.stderr.count("\n") == 1


def test_demo_runs_the_whole_pipeline(tmp_path: Path) -> None:
    result = vo("demo", "--out-dir", str(tmp_path), "--duration", "8", "--quiet")
    assert result.returncode == 0, result.stderr
    out = Path(result.stdout.strip().splitlines()[-1])
    d = decode(out)
    assert (d.width, d.height) == (1080, 1920) and d.frames == 240 and d.audio_codec == "aac"


def test_render_in_process_with_topic_and_source(landscape_clip, tmp_path: Path) -> None:
    source = tmp_path / "notes.txt"
    source.write_text(
        "Bees visit flowers. Cities have many flowers. Rooftop hives make honey. "
        "Wild bees need native plants. Gardens help every kind of bee."
    )
    short = tmp_path / "short.mp4"
    r = vo(
        "render",
        str(landscape_clip.path),
        "-o",
        str(short),
        "--topic",
        "bees",
        "--source",
        str(source),
        "--size",
        "360x640",
        "--preset",
        "ultrafast",
        "--quiet",
    )
    # The 4 s clip is too short for a written voice-over: refused up front, one line, exit 2.
    assert r.returncode == 2 and "at least" in r.stderr and r.stderr.count("\n") == 1, r.stderr
    r = vo(
        "render",
        str(landscape_clip.path),
        "-o",
        str(short),
        "--captions",
        "none",
        "--size",
        "360x640",
        "--preset",
        "ultrafast",
        "--quiet",
    )
    assert r.returncode == 0, r.stderr
    assert decode(short).frames == 120
