"""Every command's bad input, as a user meets it: exactly one line ``error: ...``, exit 2.

The reframe basics (missing file, text file, bad aspect, bad size, output folder) are in
test_cli_reframe.py; these are the rest of the media inputs and the speech/text commands.
"""

from __future__ import annotations

import json
from pathlib import Path

import av
import numpy as np
import pytest
from cliutil import vo


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory: pytest.TempPathFactory, landscape_clip) -> dict[str, str]:
    """Broken and unsuitable inputs, made once for the module."""
    d = tmp_path_factory.mktemp("bad")
    (d / "zero.mp4").write_bytes(b"")
    data = landscape_clip.path.read_bytes()
    (d / "truncated.mp4").write_bytes(data[: len(data) // 3])
    with av.open(str(d / "tone.m4a"), "w") as c:
        s = c.add_stream("aac", rate=48000)
        for i in range(40):
            f = av.AudioFrame.from_ndarray(
                np.zeros((1, 1024), np.float32), format="fltp", layout="mono"
            )
            f.sample_rate, f.pts = 48000, i * 1024
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    (d / "overlap.srt").write_text(
        "1\n00:00:01,000 --> 00:00:02,000\nhello\n\n2\n00:00:01,500 --> 00:00:03,000\nthere\n"
    )
    (d / "garbage.srt").write_text("garbage\nnot a subtitle\n")
    (d / "words.json").write_text(json.dumps({"words": 3}))
    return {"clip": str(landscape_clip.path), **{p.stem: str(p) for p in d.iterdir()}}


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["reframe", "{zero}", "-o", "{out}.mp4"], "is empty (0 bytes)"),
        (["reframe", "{truncated}", "-o", "{out}.mp4"], "not a media file"),
        (["reframe", "{tone}", "-o", "{out}.mp4"], "audio-only"),
        (["ramp", "{clip}", "-o", "{out}.mp4", "--curve", "2:1,1:2"], "is not after"),
        (["ramp", "{clip}", "-o", "{out}.mp4", "--curve", "0:9"], "0.25"),
        (["captions", "{clip}", "-o", "{out}.mp4", "--subtitles", "{overlap}"], "overlap"),
        (["captions", "{clip}", "-o", "{out}.mp4", "--subtitles", "{garbage}"], "line 1"),
        (["mix", "{clip}", "-o", "{out}.mp4", "--music", "{garbage}"], "garbage.srt"),
        (["tts", "", "-o", "{out}.wav"], "TEXT"),
        (["tts", "hello", "-o", "{out}.wav", "--voice", "klingon"], "valid voices"),
        (["tts", "hello", "-o", "{out}.wav", "--rate", "5000"], "80-450"),
        (["subtitles", "--timings", "{words}", "-o", "{out}.srt"], "JSON list"),
        (["subtitles", "--audio", "{garbage}", "-o", "{out}.srt"], "not an audio or video"),
        (["script", "--topic", "bees"], "needs source text"),
        (["script", "--topic", "bees", "--engine", "openai"], "VO_SCRIPT_OPENAI_BASE_URL"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    args: list[str], needle: str, bad_files: dict[str, str], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = vo(*[a.format(out=out, **bad_files) for a in args])
    assert result.returncode == 2, result.stderr
    assert result.stderr.count("\n") == 1, f"not one line: {result.stderr!r}"
    assert result.stderr.startswith("error: ") and needle in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
    assert list(tmp_path.iterdir()) == [], "a failed command left files behind"
