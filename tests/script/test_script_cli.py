"""``vo script`` and the typed client against a real server."""

from __future__ import annotations

import argparse
import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from script.script_helpers import ARTICLE, DATA, settings_for
from vo.cli import script as script_cli
from vo.cli.common import UsageError
from vo.client.errors import VoClientError
from vo.client.script import AsyncScriptClient, ScriptClient, TokenEvent, final_script
from vo.events import ProgressEvent
from vo_core.server import add_standard_services, bind, create_server
from vo_script.server import register


@pytest.fixture
async def target(tmp_path: Path) -> AsyncIterator[str]:
    server = create_server()
    add_standard_services(server, [register(server, settings_for(tmp_path))])
    port = bind(server, "127.0.0.1", 0)
    await server.start()
    try:
        yield f"127.0.0.1:{port}"
    finally:
        await server.stop(grace=None)


def cli(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="vo")
    script_cli.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["script", *argv])
    code: int = args.handler(args)
    return code


async def test_cli_prints_a_readable_script(
    target: str, capsys: pytest.CaptureFixture[str]
) -> None:
    source = str(DATA / "article_urban_bees.txt")
    code = await asyncio.to_thread(
        cli, "--topic", "urban beekeeping", "--source", source, "--quiet", "--server", target
    )
    assert code == 0
    out = capsys.readouterr().out
    assert out.startswith("Urban beekeeping\n================")
    assert "HOOK  Urban beekeeping: " in out
    assert " 1.  " in out and "[visual] B-roll of " in out
    assert "CTA   Follow for more on urban beekeeping." in out
    assert "#UrbanBeekeeping" in out
    assert "written by the extractive engine" in out


async def test_cli_json_output(target: str, capsys: pytest.CaptureFixture[str]) -> None:
    source = str(DATA / "article_urban_bees.txt")
    args = ["--topic", "bees", "--source", source, "--duration", "60", "--json", "--quiet"]
    assert await asyncio.to_thread(cli, *args, "--server", target) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {
        "title",
        "hook",
        "segments",
        "call_to_action",
        "hashtags",
        "estimated_seconds",
        "text",
        "engine",
    }
    assert abs(data["estimated_seconds"] - 60) <= 9


async def test_cli_errors_say_what_to_fix(target: str, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="does not exist"):
        await asyncio.to_thread(cli, "--source", str(tmp_path / "missing.txt"), "--server", target)
    with pytest.raises(UsageError, match="give --topic, --source FILE, or both"):
        await asyncio.to_thread(cli, "--server", target)
    binary = tmp_path / "notes.txt"
    binary.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(UsageError, match="not UTF-8"):
        await asyncio.to_thread(cli, "--source", str(binary), "--server", target)
    with pytest.raises(VoClientError) as info:
        await asyncio.to_thread(cli, "--topic", "bees", "--engine", "openai", "--server", target)
    assert info.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "VO_SCRIPT_OPENAI_BASE_URL" in info.value.message
    with pytest.raises(VoClientError, match="between 5 and 600 seconds"):
        await asyncio.to_thread(
            cli,
            "--topic",
            "bees",
            "--source",
            str(DATA / "article_urban_bees.txt"),
            "--duration",
            "900",
            "--server",
            target,
        )


async def test_typed_clients(target: str) -> None:
    def sync_write() -> list[object]:
        with ScriptClient.connect(target) as client:
            return list(client.write("bees", source_text=ARTICLE, duration=20))

    events = await asyncio.to_thread(sync_write)
    assert isinstance(events[0], ProgressEvent)
    assert not any(isinstance(e, TokenEvent) for e in events)
    script = final_script(events)  # type: ignore[arg-type]
    assert script.engine == "extractive"

    async with AsyncScriptClient.connect(target) as aclient:
        again = [e async for e in aclient.write("bees", source_text=ARTICLE, duration=20)]
        assert final_script(again) == script
        with pytest.raises(VoClientError) as info:
            _ = [e async for e in aclient.write("", source_text="")]
        assert info.value.code == grpc.StatusCode.INVALID_ARGUMENT
