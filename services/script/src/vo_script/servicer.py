"""ScriptService servicer: proto to domain and back; the engines do the work."""

from __future__ import annotations

from collections.abc import AsyncIterator

import grpc
from vo.script.v1 import script_service_pb2 as pb
from vo.script.v1 import script_service_pb2_grpc
from vo_core.progress import ProgressEvent, duration_to_seconds, seconds_to_duration
from vo_core.threads import stream_in_thread

from vo_script.config import Settings
from vo_script.engine import (
    DEFAULT_SECONDS,
    DEFAULT_WPM,
    Engine,
    Script,
    ScriptCache,
    ScriptRequest,
    Token,
    validate_request,
    write_script,
)
from vo_script.extractive import ExtractiveEngine
from vo_script.openai_engine import OpenAIEngine


def request_from_proto(msg: pb.WriteScriptRequest, default_engine: str) -> ScriptRequest:
    """The domain request, with the contract's defaults for unset fields."""
    return ScriptRequest(
        topic=msg.topic.strip(),
        source_text=msg.source_text,
        target_seconds=(
            duration_to_seconds(msg.target_duration)
            if msg.HasField("target_duration")
            else DEFAULT_SECONDS
        ),
        tone=msg.tone.strip(),
        language=msg.language.strip() or "en",
        engine=(msg.engine.strip().lower() or default_engine),
        # 0 is proto3's "unset"; a negative rate is left for validation to reject.
        words_per_minute=msg.words_per_minute or DEFAULT_WPM,
    )


def script_to_proto(script: Script) -> pb.Script:
    """The wire form of a script."""
    return pb.Script(
        title=script.title,
        hook=script.hook,
        segments=[pb.Segment(text=s.text, visual_hint=s.visual_hint) for s in script.segments],
        call_to_action=script.call_to_action,
        hashtags=list(script.hashtags),
        estimated_duration=seconds_to_duration(script.estimated_seconds),
        text=script.text,
        engine=script.engine,
    )


class ScriptServicer(script_service_pb2_grpc.ScriptServiceServicer):
    """Implements vo.script.v1.ScriptService."""

    def __init__(
        self,
        settings: Settings,
        *,
        cache: ScriptCache | None = None,
        engines: dict[str, Engine] | None = None,
    ) -> None:
        self.settings = settings
        self.cache = cache if cache is not None else settings.cache()
        self.engines: dict[str, Engine] = engines or {
            "extractive": ExtractiveEngine(),
            "openai": OpenAIEngine(settings.openai),
        }

    async def WriteScript(
        self, request: pb.WriteScriptRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.WriteScriptResponse]:
        req = request_from_proto(request, self.settings.default_engine)
        validate_request(req, max_source_chars=self.settings.max_source_chars)
        engine = self.engines[req.engine]
        cache = self.cache
        async for event in stream_in_thread(lambda token: write_script(engine, req, token, cache)):
            if isinstance(event, ProgressEvent):
                yield pb.WriteScriptResponse(progress=event.to_proto())
            elif isinstance(event, Token):
                yield pb.WriteScriptResponse(token=event.text)
            else:
                yield pb.WriteScriptResponse(result=script_to_proto(event))
