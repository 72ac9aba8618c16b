"""The OpenAI-compatible engine against a local SSE endpoint started by the test."""

from __future__ import annotations

import json
import time

import pytest
from script.script_helpers import GOOD_SCRIPT, Reply, closed_port, fake_llm
from vo_core.errors import FailedPrecondition, ResourceExhausted, Unavailable
from vo_core.progress import ProgressEvent
from vo_core.threads import CancelToken
from vo_script.engine import Script, ScriptRequest, Token, count_words
from vo_script.openai_engine import (
    SCRIPT_SCHEMA,
    ModelOutputError,
    OpenAIConfig,
    OpenAIEngine,
    parse_script,
)

GOOD = json.dumps(GOOD_SCRIPT)
REQUEST = ScriptRequest(
    topic="urban bees", source_text="Hives doubled. Flowers did not.", engine="openai"
)


def run(config: OpenAIConfig, request: ScriptRequest = REQUEST) -> list[object]:
    return list(OpenAIEngine(config).write(request, CancelToken()))


def test_streams_tokens_and_returns_a_validated_script() -> None:
    with fake_llm(Reply(GOOD)) as llm:
        events = run(llm.config())
    tokens = [e.text for e in events if isinstance(e, Token)]
    assert len(tokens) > 10, "the reply arrives as many token events"
    assert "".join(tokens) == GOOD
    script = events[-1]
    assert isinstance(script, Script)
    assert script.engine == "openai"
    assert script.title == GOOD_SCRIPT["title"]
    assert [s.visual_hint for s in script.segments] == [
        "Aerial shot of rooftops with hives",
        "Close-up of a bee on lavender",
    ]
    # "#UrbanBees" and "urbanbees" are one tag; "rooftop hives" becomes CamelCase.
    assert script.hashtags == ("UrbanBees", "RooftopHives", "Pollinators")
    assert script.estimated_seconds == pytest.approx(count_words(script.text) * 60 / 165)
    stages = {e.stage for e in events if isinstance(e, ProgressEvent)}
    assert stages == {"generate"}

    body = llm.requests[0]
    assert body["model"] == "fake-model"
    assert body["stream"] is True
    assert body["response_format"]["type"] == "json_schema"
    assert body["response_format"]["json_schema"]["schema"] == SCRIPT_SCHEMA
    system, user = body["messages"]
    assert "about 82 words" in system["content"]  # 30 s at 165 wpm
    assert "Use only facts from the source text" in system["content"]
    assert "Hives doubled. Flowers did not." in user["content"]
    assert llm.headers[0]["Authorization"] == "Bearer sk-test"


def test_a_malformed_reply_gets_one_repair_turn() -> None:
    bad = GOOD[: len(GOOD) // 2]  # cut off mid-object, as a model hitting max_tokens does
    with fake_llm(Reply(bad), Reply(GOOD)) as llm:
        events = run(llm.config())
    assert isinstance(events[-1], Script)
    assert len(llm.requests) == 2
    repair = llm.requests[1]["messages"]
    assert repair[-2] == {"role": "assistant", "content": bad}
    assert repair[-1]["role"] == "user"
    assert "invalid JSON" in repair[-1]["content"] or "no JSON object" in repair[-1]["content"]
    messages = [e.message for e in events if isinstance(e, ProgressEvent)]
    assert any("asking for a repair" in m for m in messages)


def test_a_reply_missing_fields_is_repaired_too() -> None:
    partial = json.dumps({"title": "x", "hook": "y", "segments": []})
    with fake_llm(Reply(partial), Reply(GOOD)) as llm:
        events = run(llm.config())
    assert isinstance(events[-1], Script)
    assert "segments must be a non-empty array" in llm.requests[1]["messages"][-1]["content"]
    assert "missing 'call_to_action'" in llm.requests[1]["messages"][-1]["content"]


def test_malformed_twice_is_a_clear_error() -> None:
    with fake_llm(Reply("Sure! Here is your script: title = bees"), Reply("{not json")) as llm:
        with pytest.raises(Unavailable, match="malformed script JSON twice") as info:
            run(llm.config())
        assert len(llm.requests) == 2
    assert "fake-model" in str(info.value)
    assert llm.base_url in str(info.value)


def test_an_unreachable_endpoint_fails_fast_with_the_url() -> None:
    url = f"http://127.0.0.1:{closed_port()}/v1"
    start = time.monotonic()
    with pytest.raises(Unavailable, match="cannot reach the openai engine") as info:
        run(OpenAIConfig(base_url=url, model="m"))
    assert time.monotonic() - start < 3
    assert url in str(info.value)


def test_not_configured_names_the_variables() -> None:
    with pytest.raises(FailedPrecondition, match="not configured") as info:
        run(OpenAIConfig())
    for var in ("VO_SCRIPT_OPENAI_BASE_URL", "VO_SCRIPT_OPENAI_MODEL", "VO_SCRIPT_OPENAI_API_KEY"):
        assert var in str(info.value)


def test_a_server_that_ignores_stream_still_works() -> None:
    with fake_llm(Reply(GOOD, mode="json")) as llm:
        events = run(llm.config())
    assert isinstance(events[-1], Script)
    assert [e.text for e in events if isinstance(e, Token)] == [GOOD]


def test_a_server_that_rejects_response_format_is_asked_again_without_it() -> None:
    rejected = Reply(
        status=400, mode="raw", body='{"error": {"message": "unknown field response_format"}}'
    )
    with fake_llm(rejected, Reply(f"```json\n{GOOD}\n```")) as llm:
        events = run(llm.config())
    assert isinstance(events[-1], Script)
    assert "response_format" in llm.requests[0]
    assert "response_format" not in llm.requests[1]


@pytest.mark.parametrize(
    ("status", "error", "message"),
    [
        (401, FailedPrecondition, "set VO_SCRIPT_OPENAI_API_KEY"),
        (404, FailedPrecondition, "check VO_SCRIPT_OPENAI_BASE_URL"),
        (429, ResourceExhausted, "rate limiting"),
        (503, Unavailable, "HTTP 503: overloaded"),
    ],
)
def test_http_errors_say_what_to_fix(status: int, error: type[Exception], message: str) -> None:
    body = json.dumps({"error": {"message": "overloaded" if status == 503 else "nope"}})
    with (
        fake_llm(Reply(status=status, mode="raw", body=body)) as llm,
        pytest.raises(error, match=message),
    ):
        run(llm.config())


def test_a_wrong_base_url_path_is_a_404_with_advice() -> None:
    with fake_llm() as llm:
        config = OpenAIConfig(base_url=f"http://127.0.0.1:{llm.port}", model="m")
        with pytest.raises(FailedPrecondition, match="usually ends in /v1"):
            run(config)


def test_an_error_in_the_stream_or_body_is_reported() -> None:
    partial = {"choices": [{"delta": {"content": '{"title": '}}]}
    stream = f"data: {json.dumps(partial)}\n\ndata: {json.dumps({'error': {'message': 'model crashed'}})}\n\n"
    # A 200 JSON body that is an error object is what some proxies send.
    body = json.dumps({"error": {"message": "proxy says no"}})
    with fake_llm(Reply(mode="sse-raw", body=stream), Reply(mode="raw", body=body)) as llm:
        with pytest.raises(Unavailable, match="reported an error: model crashed"):
            run(llm.config())
        with pytest.raises(Unavailable, match="reported an error: proxy says no"):
            run(llm.config())


def test_a_stream_of_non_json_says_the_endpoint_is_wrong() -> None:
    with (
        fake_llm(Reply(mode="sse-raw", body="data: <html>\n\n")) as llm,
        pytest.raises(Unavailable, match=r"not JSON.*OpenAI-compatible"),
    ):
        run(llm.config())


def test_parse_script_accepts_fences_and_prose_around_the_object() -> None:
    script = parse_script(f"Here you go:\n```json\n{GOOD}\n```", REQUEST, "openai")
    assert script.hook == GOOD_SCRIPT["hook"]
    with pytest.raises(ModelOutputError, match=r"segments\[0\].text must be a string"):
        parse_script(json.dumps({**GOOD_SCRIPT, "segments": [{"text": 3}]}), REQUEST, "openai")
    with pytest.raises(ModelOutputError, match="hashtags must be an array of strings"):
        parse_script(json.dumps({**GOOD_SCRIPT, "hashtags": "bees"}), REQUEST, "openai")
