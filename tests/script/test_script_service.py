"""ScriptService over a real grpc.aio server: results, streaming, caching and every bad input."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import duration_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from script.script_helpers import (
    ARTICLE,
    GOOD_SCRIPT,
    Reply,
    closed_port,
    fake_llm,
    script_server,
    settings_for,
    write,
)
from vo.script.v1 import script_service_pb2_grpc
from vo_core.server import add_standard_services, bind, create_server, mark_serving
from vo_script.openai_engine import OpenAIConfig
from vo_script.server import SERVICE_NAME, register


def seconds(s: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromNanoseconds(int(s * 1e9))
    return d


@pytest.fixture
async def stub(tmp_path: Path) -> AsyncIterator[script_service_pb2_grpc.ScriptServiceStub]:
    async with script_server(settings_for(tmp_path)) as s:
        yield s


async def test_extractive_script_over_grpc(stub: script_service_pb2_grpc.ScriptServiceStub) -> None:
    responses = await write(
        stub, topic="urban beekeeping", source_text=ARTICLE, target_duration=seconds(45)
    )
    kinds = [r.WhichOneof("event") for r in responses]
    assert kinds[-1] == "result" and kinds.count("result") == 1
    assert "token" not in kinds, "the extractive engine streams no tokens"
    progress = [r.progress for r in responses if r.HasField("progress")]
    assert [p.stage for p in progress] == ["rank", "rank", "fit"]
    assert [p.fraction for p in progress] == sorted(p.fraction for p in progress)
    script = responses[-1].result
    assert script.engine == "extractive"
    assert script.hook and script.call_to_action and script.segments
    estimated = script.estimated_duration.seconds + script.estimated_duration.nanos / 1e9
    assert abs(estimated - 45) <= 0.15 * 45
    assert script.text.startswith(script.hook) and script.text.endswith(script.call_to_action)
    assert all(s.visual_hint for s in script.segments)
    assert all(" " not in t and not t.startswith("#") for t in script.hashtags)


async def test_defaults_are_30_seconds_at_165_wpm(
    stub: script_service_pb2_grpc.ScriptServiceStub,
) -> None:
    script = (await write(stub, topic="bees", source_text=ARTICLE))[-1].result
    words = len(script.text.split())
    estimated = script.estimated_duration.seconds + script.estimated_duration.nanos / 1e9
    assert 25.5 <= estimated <= 34.5
    assert abs(words * 60 / 165 - estimated) < 2  # whitespace split and word regex nearly agree


async def test_a_repeated_request_is_served_from_the_cache(tmp_path: Path) -> None:
    async with script_server(settings_for(tmp_path)) as stub:
        first = await write(stub, topic="bees", source_text=ARTICLE)
        second = await write(stub, topic="bees", source_text=ARTICLE)
    assert [r.progress.stage for r in second if r.HasField("progress")] == ["cache"]
    assert second[-1].result == first[-1].result
    # The disk tier survives a restart.
    async with script_server(settings_for(tmp_path)) as stub:
        third = await write(stub, topic="bees", source_text=ARTICLE)
    assert third[0].progress.stage == "cache"
    assert third[-1].result == first[-1].result


async def test_health_and_reflection_know_the_service(tmp_path: Path) -> None:
    server = create_server()
    names = [register(server, settings_for(tmp_path))]
    health_servicer = add_standard_services(server, names)
    port = bind(server, "127.0.0.1", 0)
    await server.start()
    await mark_serving(health_servicer, names)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            reply = await health.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
            stub = script_service_pb2_grpc.ScriptServiceStub(channel)
            result = (await write(stub, topic="bees", source_text=ARTICLE))[-1].result
            assert result.segments
    finally:
        await server.stop(grace=None)
    assert SERVICE_NAME == "vo.script.v1.ScriptService"


async def test_openai_engine_streams_tokens_over_grpc(tmp_path: Path) -> None:
    content = json.dumps(GOOD_SCRIPT)
    with fake_llm(Reply(content[:40]), Reply(content)) as llm:
        async with script_server(settings_for(tmp_path, llm.config())) as stub:
            responses = await write(stub, topic="urban bees", engine="openai", tone="upbeat")
    tokens = [r.token for r in responses if r.WhichOneof("event") == "token"]
    # Both attempts stream: the malformed one, then the repaired one.
    assert "".join(tokens) == content[:40] + content
    result = responses[-1].result
    assert result.engine == "openai"
    assert result.title == GOOD_SCRIPT["title"]
    assert list(result.hashtags) == ["UrbanBees", "RooftopHives", "Pollinators"]
    assert "Tone: upbeat." in llm.requests[0]["messages"][0]["content"]


async def test_openai_malformed_twice_is_unavailable(tmp_path: Path) -> None:
    with fake_llm(Reply("nope"), Reply("still nope")) as llm:
        async with script_server(settings_for(tmp_path, llm.config())) as stub:
            with pytest.raises(grpc.aio.AioRpcError) as info:
                await write(stub, topic="bees", engine="openai")
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "malformed script JSON twice" in (info.value.details() or "")


async def test_openai_unreachable_is_unavailable_and_fast(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    config = OpenAIConfig(base_url=url, model="m")
    async with script_server(settings_for(tmp_path, config)) as stub:
        start = time.monotonic()
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await write(stub, topic="bees", engine="openai")
        elapsed = time.monotonic() - start
    assert info.value.code() == grpc.StatusCode.UNAVAILABLE
    assert url in (info.value.details() or "")
    assert elapsed < 3


@pytest.mark.parametrize(
    ("fields", "code", "message"),
    [
        ({}, grpc.StatusCode.INVALID_ARGUMENT, "give a topic, source text"),
        ({"topic": "  ", "source_text": " \n"}, grpc.StatusCode.INVALID_ARGUMENT, "both are empty"),
        (
            {"topic": "x", "source_text": "word " * 40_001},
            grpc.StatusCode.INVALID_ARGUMENT,
            "source text is 200,005 characters; the limit is 200,000",
        ),
        (
            {"topic": "x", "source_text": ARTICLE, "target_duration": seconds(4)},
            grpc.StatusCode.INVALID_ARGUMENT,
            "target_duration must be between 5 and 600 seconds, got 4 s",
        ),
        (
            {"topic": "x", "source_text": ARTICLE, "target_duration": seconds(601)},
            grpc.StatusCode.INVALID_ARGUMENT,
            "between 5 and 600 seconds",
        ),
        (
            {"topic": "x", "source_text": ARTICLE, "engine": "claude"},
            grpc.StatusCode.INVALID_ARGUMENT,
            "unknown engine 'claude'; valid engines: extractive, openai",
        ),
        (
            {"topic": "x", "source_text": ARTICLE, "words_per_minute": -1},
            grpc.StatusCode.INVALID_ARGUMENT,
            "words_per_minute must be between",
        ),
        (
            {"topic": "x", "source_text": ARTICLE, "language": "en_US!"},
            grpc.StatusCode.INVALID_ARGUMENT,
            "not a BCP 47 tag",
        ),
        (
            {"topic": "urban bees"},
            grpc.StatusCode.FAILED_PRECONDITION,
            "the extractive engine needs source text",
        ),
        (
            {"topic": "urban bees", "engine": "openai"},
            grpc.StatusCode.FAILED_PRECONDITION,
            "the openai engine is not configured: set VO_SCRIPT_OPENAI_BASE_URL",
        ),
    ],
)
async def test_bad_input_is_rejected_with_what_to_fix(
    stub: script_service_pb2_grpc.ScriptServiceStub,
    fields: dict[str, object],
    code: grpc.StatusCode,
    message: str,
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await write(stub, **fields)
    assert info.value.code() == code
    assert message in (info.value.details() or ""), info.value.details()


async def test_the_source_limit_is_configurable(tmp_path: Path) -> None:
    async with script_server(settings_for(tmp_path, max_source_chars=1000)) as stub:
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await write(stub, topic="bees", source_text=ARTICLE)
    assert "the limit is 1,000 (VO_SCRIPT_MAX_SOURCE_CHARS)" in (info.value.details() or "")


def test_settings_read_the_environment() -> None:
    from vo_script.config import Settings

    s = Settings.from_env(
        {
            "VO_SCRIPT_OPENAI_BASE_URL": "http://localhost:11434/v1",
            "VO_SCRIPT_OPENAI_MODEL": "llama3.2",
            "VO_SCRIPT_OPENAI_TIMEOUT_SECONDS": "30",
            "VO_SCRIPT_MAX_SOURCE_CHARS": "5000",
        }
    )
    assert s.openai.configured and s.openai.model == "llama3.2"
    assert s.openai.completions_url == "http://localhost:11434/v1/chat/completions"
    assert s.openai.timeout_seconds == 30
    assert s.max_source_chars == 5000
    assert not Settings.from_env({}).openai.configured
