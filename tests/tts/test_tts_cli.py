"""``vo tts`` against a running TtsService (``--server``)."""

from __future__ import annotations

import argparse
import asyncio
import json
import wave
from pathlib import Path

import pytest
from tts.tts_helpers import TtsServer
from vo.cli import tts as tts_cli
from vo.cli.common import UsageError


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="vo")
    tts_cli.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(["tts", *argv])


async def run(*argv: str) -> int:
    args = parse(*argv)
    # The blocking client must not run on the loop that serves it.
    return await asyncio.to_thread(args.handler, args)


async def test_writes_audio_and_timings(tts: TtsServer, tmp_path: Path) -> None:
    out, words = tmp_path / "speech.wav", tmp_path / "words.json"
    code = await run(
        "Hello there, general reader.",
        "-o", str(out), "--timings", str(words), "--rate", "180", "--server", tts.address, "--quiet",
    )  # fmt: skip
    assert code == 0
    with wave.open(str(out)) as w:
        duration = w.getnframes() / w.getframerate()
    timed = json.loads(words.read_text())
    assert [w["text"] for w in timed] == ["Hello", "there,", "general", "reader."]
    assert all(0 <= w["start"] < w["end"] <= duration + 1e-4 for w in timed)
    assert set(timed[0]) == {"text", "start", "end"}


async def test_text_file_and_flac_by_suffix(tts: TtsServer, tmp_path: Path) -> None:
    source = tmp_path / "script.txt"
    source.write_text("One sentence. Another one.", encoding="utf-8")
    out = tmp_path / "speech.flac"
    assert (
        await run("--text-file", str(source), "-o", str(out), "--server", tts.address, "--quiet")
        == 0
    )
    assert out.read_bytes()[:4] == b"fLaC"


async def test_list_voices(tts: TtsServer, capsys: pytest.CaptureFixture[str]) -> None:
    assert await run("--list-voices", "en-g", "--server", tts.address) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines and all(line.split()[1].lower().startswith("en-g") for line in lines)


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["-o", "x.wav"], "give the TEXT"),
        (["hi", "-o", "x.mp3"], "must end in"),
        (["hi", "--text-file", "missing.txt"], "give TEXT or --text-file, not both"),
        (["--text-file", "/nonexistent/t.txt"], "does not exist"),
    ],
)
async def test_usage_errors(argv: list[str], needle: str) -> None:
    with pytest.raises(UsageError, match=needle):
        await run(*argv, "--server", "127.0.0.1:1")


async def test_server_errors_reach_the_user(tts: TtsServer, tmp_path: Path) -> None:
    from vo.client.errors import VoClientError

    with pytest.raises(VoClientError, match="rate 500 is outside 80-450"):
        await run("hi", "-o", str(tmp_path / "x.wav"), "--rate", "500", "--server", tts.address)
