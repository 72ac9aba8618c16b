"""``vo ramp``, ``vo captions`` and ``vo mix`` as a user runs them."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
from cliutil import vo
from mediacheck import decode


def test_ramp_captions_and_mix(landscape_clip, tmp_path: Path) -> None:
    ramped = tmp_path / "ramped.mp4"
    r = vo(
        "ramp",
        str(landscape_clip.path),
        "-o",
        str(ramped),
        "--curve",
        "0:1,1:0.5",
        "--preset",
        "ultrafast",
        "--quiet",
    )
    assert r.returncode == 0, r.stderr
    assert decode(ramped).frames > 200  # 1 s at 1x + 3 s at 0.5x: about 7 s

    srt = tmp_path / "c.srt"
    srt.write_text(
        "1\n00:00:00,500 --> 00:00:02,000\nHello there\n\n2\n00:00:02,200 --> 00:00:03,500\nBye now\n"
    )
    captioned = tmp_path / "captioned.mp4"
    r = vo(
        "captions",
        str(landscape_clip.path),
        "-o",
        str(captioned),
        "--subtitles",
        str(srt),
        "--style",
        "plain",
        "--preset",
        "ultrafast",
        "--quiet",
    )
    assert r.returncode == 0, r.stderr
    assert decode(captioned).frames == 120

    voice = tmp_path / "voice.wav"
    with wave.open(str(voice), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(48000)
        t = np.arange(2 * 48000) / 48000
        w.writeframes((0.3 * np.sin(2 * np.pi * 1000 * t) * 32767).astype("<i2").tobytes())
    mixed = tmp_path / "mixed.mp4"
    r = vo(
        "mix",
        str(landscape_clip.path),
        "-o",
        str(mixed),
        "--voice",
        str(voice),
        "--quiet",
        "--preset",
        "ultrafast",
    )
    assert r.returncode == 0, r.stderr
    assert "LUFS" in r.stderr and decode(mixed).audio_codec == "aac"


def test_effect_errors_are_one_line(landscape_clip, tmp_path: Path) -> None:
    bad_srt = tmp_path / "bad.srt"
    bad_srt.write_text("1\nnot a timing line\nhello\n")
    cases = [
        (
            ["ramp", str(landscape_clip.path), "-o", str(tmp_path / "o.mp4"), "--curve", "0:1,x"],
            "--curve point 1",
        ),
        (
            ["ramp", str(landscape_clip.path), "-o", str(tmp_path / "o.mp4"), "--curve", "0:1,2:9"],
            "speed 9",
        ),
        (
            [
                "captions",
                str(landscape_clip.path),
                "-o",
                str(tmp_path / "o.mp4"),
                "--subtitles",
                str(bad_srt),
            ],
            "line 2",
        ),
        (
            [
                "mix",
                str(landscape_clip.path),
                "-o",
                str(tmp_path / "o.mp4"),
                "--music",
                str(bad_srt),
            ],
            "audio.music",
        ),
    ]
    for args, needle in cases:
        r = vo(*args)
        lines = [line for line in r.stderr.splitlines() if line.strip()]
        assert r.returncode == 2 and len(lines) == 1, r.stderr
        assert lines[0].startswith("error: ") and needle in lines[0], lines[0]
        assert not (tmp_path / "o.mp4").exists()
