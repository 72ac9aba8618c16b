"""The LLM engine: any OpenAI-compatible chat completions endpoint (OpenAI, Ollama, vLLM, llama.cpp).

One POST to ``{base_url}/chat/completions`` with ``stream: true``; the reply is Server-Sent
Events (``data: {...}`` lines ending with ``data: [DONE]``), whose content deltas are passed on
as :class:`~vo_script.engine.Token` items while they arrive. The request asks for a JSON object
through ``response_format`` (a JSON schema), but many local servers ignore that, so the reply
is checked by hand against the same schema; a malformed reply gets exactly one repair turn
(the bad output sent back with what is wrong) before the call fails with a clear error.
"""

from __future__ import annotations

import json
import re
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
from vo_core.errors import FailedPrecondition, ResourceExhausted, Unavailable
from vo_core.progress import ProgressEvent, ProgressMeter
from vo_core.threads import CancelToken

from vo_script.engine import (
    EngineEvent,
    Script,
    ScriptRequest,
    Segment,
    Token,
    join_script,
    spoken_seconds,
)

VERSION = "openai-1"

SETUP_HINT = (
    "set VO_SCRIPT_OPENAI_BASE_URL (e.g. https://api.openai.com/v1, or http://localhost:11434/v1 "
    "for Ollama) and VO_SCRIPT_OPENAI_MODEL, plus VO_SCRIPT_OPENAI_API_KEY if the endpoint needs one"
)

SCRIPT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "title": {"type": "string"},
        "hook": {"type": "string"},
        "segments": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"text": {"type": "string"}, "visual_hint": {"type": "string"}},
                "required": ["text", "visual_hint"],
                "additionalProperties": False,
            },
        },
        "call_to_action": {"type": "string"},
        "hashtags": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["title", "hook", "segments", "call_to_action", "hashtags"],
    "additionalProperties": False,
}
"""What the model must return; sent as ``response_format`` and checked by :func:`parse_script`."""


@dataclass(frozen=True)
class OpenAIConfig:
    """Where the endpoint is and how long to wait for it."""

    base_url: str = ""
    """Endpoint root including the version path, e.g. ``https://api.openai.com/v1``."""
    model: str = ""
    """Model name as the endpoint knows it, e.g. ``gpt-4o-mini`` or ``llama3.2``."""
    api_key: str = ""
    """Bearer token; empty for local servers that need none."""
    timeout_seconds: float = 120.0
    """Longest wait for the next bytes of a reply."""
    connect_timeout_seconds: float = 5.0
    """Longest wait to connect, kept short so an unreachable endpoint fails fast."""
    temperature: float = 0.7
    """Sampling temperature passed to the model."""

    @property
    def configured(self) -> bool:
        """True when an endpoint and a model are set."""
        return bool(self.base_url.strip() and self.model.strip())

    @property
    def completions_url(self) -> str:
        """The chat completions URL."""
        return self.base_url.rstrip("/") + "/chat/completions"


class ModelOutputError(ValueError):
    """The model's reply is not a script matching :data:`SCRIPT_SCHEMA`; the message says why."""


class OpenAIEngine:
    """Writes scripts with an OpenAI-compatible model, streaming its tokens."""

    name = "openai"
    version = VERSION

    def __init__(self, config: OpenAIConfig, transport: httpx.BaseTransport | None = None) -> None:
        self.config = config
        self._transport = transport

    @property
    def model(self) -> str:
        """The configured model name; part of the cache key."""
        return self.config.model

    def write(self, request: ScriptRequest, token: CancelToken) -> Iterator[EngineEvent]:
        """Ask the model, stream its tokens, validate, repair once if needed, yield the Script."""
        cfg = self.config
        if not cfg.configured:
            raise FailedPrecondition(f"the openai engine is not configured: {SETUP_HINT}")
        messages = build_messages(request)
        yield ProgressEvent(
            stage="generate", fraction=0.0, message=f"asking {cfg.model} at {cfg.base_url}"
        )
        timeout = httpx.Timeout(cfg.timeout_seconds, connect=cfg.connect_timeout_seconds)
        headers = {"Accept": "text/event-stream"}
        if cfg.api_key:
            headers["Authorization"] = f"Bearer {cfg.api_key}"
        # Roughly two tokens per spoken word once JSON keys and hints are counted.
        expected = max(50, int(request.target_words * 2.2))
        with httpx.Client(timeout=timeout, headers=headers, transport=self._transport) as client:
            reply = yield from self._complete(
                client,
                messages,
                token,
                ProgressMeter("generate", expected, counts_frames=False, fraction_span=(0.0, 0.9)),
            )
            try:
                script = parse_script(reply, request, self.name)
            except ModelOutputError as first:
                yield ProgressEvent(
                    stage="generate",
                    fraction=0.9,
                    message=f"the reply was not a valid script ({first}); asking for a repair",
                )
                messages = [
                    *messages,
                    {"role": "assistant", "content": reply},
                    {"role": "user", "content": repair_prompt(str(first))},
                ]
                reply = yield from self._complete(
                    client,
                    messages,
                    token,
                    ProgressMeter(
                        "generate", expected, counts_frames=False, fraction_span=(0.9, 0.99)
                    ),
                )
                try:
                    script = parse_script(reply, request, self.name)
                except ModelOutputError as second:
                    raise Unavailable(
                        f"{cfg.model} at {cfg.base_url} returned malformed script JSON twice "
                        f"(first: {first}; after repair: {second}); try again, or use a model "
                        "that follows JSON instructions better"
                    ) from None
        yield ProgressEvent(
            stage="generate",
            fraction=1.0,
            steps_done=len(script.segments),
            steps_total=len(script.segments),
            message=f"{len(script.segments)} segments, {script.estimated_seconds:.1f} s "
            f"at {request.words_per_minute} wpm",
        )
        yield script

    def _complete(
        self,
        client: httpx.Client,
        messages: list[dict[str, str]],
        token: CancelToken,
        meter: ProgressMeter,
    ) -> Generator[EngineEvent, None, str]:
        """Stream one chat completion; yields tokens and progress, returns the whole reply."""
        body: dict[str, Any] = {
            "model": self.config.model,
            "messages": messages,
            "stream": True,
            "temperature": self.config.temperature,
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "script", "strict": True, "schema": SCRIPT_SCHEMA},
            },
        }
        try:
            parts = yield from self._stream(client, body, token, meter)
        except _RejectedResponseFormat:
            # Older llama.cpp and vLLM builds reject json_schema outright; the prompt alone
            # still asks for JSON, and parse_script checks it either way.
            body.pop("response_format")
            parts = yield from self._stream(client, body, token, meter)
        return "".join(parts)

    def _stream(
        self,
        client: httpx.Client,
        body: dict[str, Any],
        token: CancelToken,
        meter: ProgressMeter,
    ) -> Generator[EngineEvent, None, list[str]]:
        url = self.config.completions_url
        parts: list[str] = []
        try:
            with client.stream("POST", url, json=body) as response:
                if response.status_code >= 400:
                    response.read()
                    raise self._http_error(response, "response_format" in body)
                if not response.headers.get("content-type", "").startswith("text/event-stream"):
                    # A server that ignores stream=true answers with one JSON body.
                    response.read()
                    text = _message_content(_json_or_error(response.text, url))
                    parts.append(text)
                    yield Token(text)
                    return parts
                for line in response.iter_lines():
                    token.check()
                    delta = _sse_delta(line, url)
                    if delta is None:
                        break
                    if delta:
                        parts.append(delta)
                        yield Token(delta)
                        event = meter.advance(1)
                        if event is not None:
                            yield event
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            raise Unavailable(
                f"cannot reach the openai engine at {url} ({exc}); is the server running? "
                "check VO_SCRIPT_OPENAI_BASE_URL"
            ) from None
        except httpx.TimeoutException:
            raise Unavailable(
                f"the openai engine at {url} sent nothing for {self.config.timeout_seconds:g} s; "
                "raise VO_SCRIPT_OPENAI_TIMEOUT_SECONDS for slow local models"
            ) from None
        except httpx.HTTPError as exc:
            raise Unavailable(f"the connection to {url} failed: {exc}") from None
        return parts

    def _http_error(self, response: httpx.Response, sent_schema: bool) -> Exception:
        url = self.config.completions_url
        detail = _error_detail(response.text)
        status = response.status_code
        if status in (400, 422) and sent_schema and "response_format" in response.text:
            return _RejectedResponseFormat()
        if status in (401, 403):
            return FailedPrecondition(
                f"{url} refused the request (HTTP {status}: {detail}); "
                "set VO_SCRIPT_OPENAI_API_KEY to a valid key"
            )
        if status == 404:
            return FailedPrecondition(
                f"{url} answered HTTP 404 ({detail}); check VO_SCRIPT_OPENAI_BASE_URL (it usually "
                f"ends in /v1) and that VO_SCRIPT_OPENAI_MODEL={self.config.model!r} exists there"
            )
        if status == 429:
            return ResourceExhausted(f"{url} is rate limiting (HTTP 429: {detail}); retry later")
        if status >= 500:
            return Unavailable(f"{url} failed (HTTP {status}: {detail}); retry later")
        return FailedPrecondition(f"{url} rejected the request (HTTP {status}: {detail})")


class _RejectedResponseFormat(Exception):
    """The endpoint does not support ``response_format``; retry without it."""


def _sse_delta(line: str, url: str) -> str | None:
    """The content delta of one SSE line: "" for nothing, None at ``[DONE]``."""
    line = line.strip()
    if not line.startswith("data:"):
        return ""  # comments (": keep-alive"), event names and blank separators
    payload = line[5:].strip()
    if payload == "[DONE]":
        return None
    obj = _json_or_error(payload, url)
    choices = obj.get("choices") or []
    if not choices or not isinstance(choices[0], dict):
        return ""
    delta = choices[0].get("delta") or {}
    content = delta.get("content") if isinstance(delta, dict) else None
    return content if isinstance(content, str) else ""


def _json_or_error(payload: str, url: str) -> dict[str, Any]:
    try:
        obj = json.loads(payload)
    except json.JSONDecodeError:
        raise Unavailable(
            f"{url} sent something that is not JSON: {payload[:200]!r}; "
            "is VO_SCRIPT_OPENAI_BASE_URL an OpenAI-compatible endpoint?"
        ) from None
    if not isinstance(obj, dict):
        raise Unavailable(f"{url} sent unexpected JSON: {payload[:200]!r}")
    if obj.get("error"):
        raise Unavailable(f"{url} reported an error: {_error_detail(payload)}")
    return obj


def _message_content(obj: dict[str, Any]) -> str:
    try:
        content = obj["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        return ""
    return content if isinstance(content, str) else ""


def _error_detail(text: str) -> str:
    """The endpoint's own error message when it sent one, else the start of the body."""
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        return text.strip()[:300] or "no body"
    if isinstance(obj, dict):
        err = obj.get("error")
        if isinstance(err, dict) and isinstance(err.get("message"), str):
            return err["message"][:300]
        if isinstance(err, str):
            return err[:300]
    return text.strip()[:300]


# ---------------------------------------------------------------------------------------------
# Prompting and parsing


def build_messages(request: ScriptRequest) -> list[dict[str, str]]:
    """The system and user messages for ``request``."""
    words = round(request.target_words)
    rules = [
        "You write voice-over scripts for short vertical videos (TikTok, Reels, Shorts).",
        "Reply with one JSON object and nothing else: no prose, no code fences.",
        f"It must match this JSON schema: {json.dumps(SCRIPT_SCHEMA, separators=(',', ':'))}",
        "hook: one punchy opening sentence that makes the viewer stay.",
        "segments: the body beats in order; text is what the narrator says, visual_hint "
        "describes what is on screen meanwhile.",
        "call_to_action: one closing sentence.",
        "hashtags: 3 to 6 tags without '#', CamelCase, no spaces.",
        f"The spoken text (hook, segments and call to action together) must be about {words} "
        f"words, which is {request.target_seconds:g} seconds at {request.words_per_minute} "
        "words per minute.",
        f"Write in the language with BCP 47 tag {request.language!r}.",
    ]
    if request.tone.strip():
        rules.append(f"Tone: {request.tone.strip()}.")
    if request.source_text.strip():
        rules.append("Use only facts from the source text; do not invent figures, names or quotes.")
    user = f"Topic: {request.topic.strip() or '(take it from the source text)'}"
    if request.source_text.strip():
        user += f"\n\nSource text:\n<<<\n{request.source_text.strip()}\n>>>"
    return [
        {"role": "system", "content": "\n".join(rules)},
        {"role": "user", "content": user},
    ]


def repair_prompt(problem: str) -> str:
    """The one follow-up turn sent after a malformed reply."""
    return (
        f"Your reply was not valid: {problem}. Reply again with only the JSON object, "
        "matching the schema exactly, with no other text."
    )


_FENCE = re.compile(r"^```[a-zA-Z]*\s*|\s*```$")


def parse_script(reply: str, request: ScriptRequest, engine: str) -> Script:
    """The Script in a model reply, checked against :data:`SCRIPT_SCHEMA`.

    Tolerates what models commonly wrap JSON in (code fences, a sentence before it) but
    nothing missing or mistyped; raises :class:`ModelOutputError` naming every problem found.
    """
    text = _FENCE.sub("", reply.strip())
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        raise ModelOutputError("no JSON object found in the reply")
    try:
        obj = json.loads(text[start : end + 1])
    except json.JSONDecodeError as exc:
        raise ModelOutputError(f"invalid JSON: {exc.msg} at character {exc.pos}") from None
    if not isinstance(obj, dict):
        raise ModelOutputError("the reply is not a JSON object")

    problems: list[str] = []

    def string(value: object, where: str, *, required: bool = True) -> str:
        if not isinstance(value, str):
            problems.append(f"{where} must be a string")
            return ""
        if required and not value.strip():
            problems.append(f"{where} must not be empty")
        return value.strip()

    for key in SCRIPT_SCHEMA["required"]:
        if key not in obj:
            problems.append(f"missing {key!r}")
    title = string(obj.get("title", ""), "title")
    hook = string(obj.get("hook", ""), "hook")
    cta = string(obj.get("call_to_action", ""), "call_to_action", required=False)
    segments: list[Segment] = []
    raw_segments = obj.get("segments", [])
    if not isinstance(raw_segments, list) or not raw_segments:
        problems.append("segments must be a non-empty array")
        raw_segments = []
    for i, seg in enumerate(raw_segments):
        if not isinstance(seg, dict):
            problems.append(f"segments[{i}] must be an object with text and visual_hint")
            continue
        seg_text = string(seg.get("text"), f"segments[{i}].text")
        hint = string(seg.get("visual_hint", ""), f"segments[{i}].visual_hint", required=False)
        segments.append(Segment(seg_text, hint))
    raw_tags = obj.get("hashtags", [])
    if not isinstance(raw_tags, list) or not all(isinstance(t, str) for t in raw_tags):
        problems.append("hashtags must be an array of strings")
        raw_tags = []
    if problems:
        raise ModelOutputError("; ".join(problems[:6]))

    tags: list[str] = []
    seen: set[str] = set()
    for raw in raw_tags:
        # Models write "#Urban Bees" or "urban-bees"; the contract wants "UrbanBees".
        words = re.findall(r"[^\W_]+", raw)
        tag = "".join(w if len(words) == 1 else w[:1].upper() + w[1:] for w in words)
        if tag and tag.lower() not in seen:
            seen.add(tag.lower())
            tags.append(tag)
    full = join_script(hook, segments, cta)
    return Script(
        title=title,
        hook=hook,
        segments=tuple(segments),
        call_to_action=cta,
        hashtags=tuple(tags),
        estimated_seconds=spoken_seconds(full, request.words_per_minute),
        text=full,
        engine=engine,
    )
