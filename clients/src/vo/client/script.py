"""Typed clients for vo.script.v1.ScriptService.

``write`` returns an iterator of :class:`~vo.events.ProgressEvent`, :class:`TokenEvent`
(streamed model output, LLM engines only) and exactly one ``Script`` at the end; every gRPC
error becomes :class:`~vo.client.errors.VoClientError`.

>>> from vo.client.script import ScriptClient, final_script
>>> with ScriptClient.connect("127.0.0.1:4545") as client:
...     script = final_script(client.write("urban bees", source_text=article))
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from vo.client.base import AsyncServiceClient, ServiceClient, last_of
from vo.events import ProgressEvent, duration_to_seconds, seconds_to_duration
from vo.script.v1 import script_service_pb2 as pb
from vo.script.v1 import script_service_pb2_grpc


@dataclass(frozen=True, slots=True)
class TokenEvent:
    """The next piece of streamed model output."""

    text: str


ScriptEvent = ProgressEvent | TokenEvent | pb.Script


def script_request(
    topic: str = "",
    *,
    source_text: str = "",
    duration: float | None = None,
    tone: str = "",
    language: str = "",
    engine: str = "",
    words_per_minute: int = 0,
) -> pb.WriteScriptRequest:
    """Build a WriteScriptRequest; unset values take the server's defaults (30 s, 165 wpm)."""
    request = pb.WriteScriptRequest(
        topic=topic,
        source_text=source_text,
        tone=tone,
        language=language,
        engine=engine,
        words_per_minute=words_per_minute,
    )
    if duration is not None:
        request.target_duration.CopyFrom(seconds_to_duration(duration))
    return request


def _event(msg: pb.WriteScriptResponse) -> ScriptEvent:
    kind = msg.WhichOneof("event")
    if kind == "progress":
        return ProgressEvent.from_proto(msg.progress)
    if kind == "token":
        return TokenEvent(msg.token)
    return msg.result


def final_script(events: Iterable[ScriptEvent]) -> pb.Script:
    """Drain ``events`` and return the one Script at the end."""
    return last_of(events, pb.Script, "a script")


def script_to_dict(script: pb.Script) -> dict[str, Any]:
    """A plain dict of a script, durations in seconds, for JSON output."""
    return {
        "title": script.title,
        "hook": script.hook,
        "segments": [{"text": s.text, "visual_hint": s.visual_hint} for s in script.segments],
        "call_to_action": script.call_to_action,
        "hashtags": list(script.hashtags),
        "estimated_seconds": round(duration_to_seconds(script.estimated_duration), 3),
        "text": script.text,
        "engine": script.engine,
    }


class ScriptClient(ServiceClient[script_service_pb2_grpc.ScriptServiceStub]):
    """Blocking client for the ScriptService."""

    stub_type = script_service_pb2_grpc.ScriptServiceStub

    def write_request(self, request: pb.WriteScriptRequest) -> Iterator[ScriptEvent]:
        """Stream a WriteScript call: progress and tokens, then one Script."""
        for msg in self._stream(self._stub.WriteScript, request):
            yield _event(msg)

    def write(self, topic: str = "", **options: Any) -> Iterator[ScriptEvent]:
        """Write a script about ``topic``; options as :func:`script_request`."""
        return self.write_request(script_request(topic, **options))


class AsyncScriptClient(AsyncServiceClient["script_service_pb2_grpc.ScriptServiceAsyncStub"]):
    """Asyncio client for the ScriptService."""

    stub_type = script_service_pb2_grpc.ScriptServiceStub

    async def write_request(self, request: pb.WriteScriptRequest) -> AsyncIterator[ScriptEvent]:
        """Stream a WriteScript call: progress and tokens, then one Script."""
        async for msg in self._stream(self._stub.WriteScript, request):
            yield _event(msg)

    def write(self, topic: str = "", **options: Any) -> AsyncIterator[ScriptEvent]:
        """Write a script about ``topic``; options as :func:`script_request`."""
        return self.write_request(script_request(topic, **options))
