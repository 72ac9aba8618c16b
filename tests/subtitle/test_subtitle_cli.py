"""``vo subtitles`` against a real server: timings, audio, video with a script; bad input."""

from __future__ import annotations

import argparse
import asyncio
import json
from pathlib import Path

import pysubs2
import pytest
import srt
import webvtt
from subtitle.subtitle_helpers import SPEECH, SubtitleServer, speech_words
from vo.cli import subtitles as cli
from vo.cli.common import UsageError
from vo.client.errors import VoClientError


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="vo")
    cli.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["subtitles", *argv])


async def _run(argv: list[str], server: SubtitleServer) -> int:
    args = _parse([*argv, "--server", server.address, "--quiet"])
    # The CLI blocks; run it off the loop the test server lives on.
    return await asyncio.to_thread(args.handler, args)


@pytest.fixture
def timings(tmp_path: Path) -> Path:
    path = tmp_path / "words.json"
    words = [{"text": w.text, "start": w.start, "end": w.end} for w in speech_words(count=80)]
    path.write_text(json.dumps(words))
    return path


async def test_timings_to_srt(subtitles: SubtitleServer, timings: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.srt"
    assert await _run(["--timings", str(timings), "-o", str(out)], subtitles) == 0
    cues = list(srt.parse(out.read_text()))
    assert len(cues) > 4 and all(len(line) <= 42 for c in cues for line in c.content.split("\n"))


async def test_timings_to_vtt_with_rules(
    subtitles: SubtitleServer, timings: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.vtt"
    argv = ["--timings", str(timings), "-o", str(out), "--max-chars", "30", "--max-lines", "1"]
    assert await _run(argv, subtitles) == 0
    captions = webvtt.read(str(out)).captions
    assert captions and all(len(c.lines) == 1 and len(c.lines[0]) <= 30 for c in captions)


async def test_audio_to_karaoke_ass(subtitles: SubtitleServer, tmp_path: Path) -> None:
    out, words = tmp_path / "out.ass", tmp_path / "words.json"
    argv = ["--audio", str(SPEECH), "-o", str(out), "--style", "karaoke", "--words-out", str(words)]
    assert await _run(argv, subtitles) == 0
    events = pysubs2.load(str(out)).events
    assert events and all("\\k" in e.text for e in events)
    assert len(json.loads(words.read_text())) > 40


async def test_video_with_script_to_srt(
    subtitles: SubtitleServer, speech_video: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.srt"
    script = SPEECH.with_suffix(".txt")
    argv = ["--video", str(speech_video), "--script", str(script), "-o", str(out)]
    assert await _run(argv, subtitles) == 0
    text = " ".join(c.content.replace("\n", " ") for c in srt.parse(out.read_text()))
    assert text.split() == script.read_text().split()


async def test_bad_timings_name_the_word(subtitles: SubtitleServer, tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"text": "a", "start": 2, "end": 1}]))
    with pytest.raises(VoClientError, match="before it starts"):
        await _run(["--timings", str(bad), "-o", str(tmp_path / "o.srt")], subtitles)
    bad.write_text(json.dumps([{"text": "a", "start": 0}]))
    with pytest.raises(UsageError, match="word 0 has no 'end'"):
        await _run(["--timings", str(bad), "-o", str(tmp_path / "o.srt")], subtitles)
    bad.write_text("[{")
    with pytest.raises(UsageError, match="line 1"):
        await _run(["--timings", str(bad), "-o", str(tmp_path / "o.srt")], subtitles)


async def test_bad_output_and_style(
    subtitles: SubtitleServer, timings: Path, tmp_path: Path
) -> None:
    with pytest.raises(UsageError, match=r"\.srt or \.vtt or \.ass"):
        await _run(["--timings", str(timings), "-o", str(tmp_path / "o.txt")], subtitles)
    with pytest.raises(UsageError, match=r"karaoke needs an \.ass"):
        argv = ["--timings", str(timings), "-o", str(tmp_path / "o.srt"), "--style", "karaoke"]
        await _run(argv, subtitles)


async def test_text_file_as_audio(subtitles: SubtitleServer, tmp_path: Path) -> None:
    fake = tmp_path / "speech.wav"
    fake.write_text("hello")
    with pytest.raises(VoClientError, match="not an audio or video file"):
        await _run(["--audio", str(fake), "-o", str(tmp_path / "o.srt")], subtitles)
