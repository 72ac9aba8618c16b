"""SubtitleService servicer: proto to domain and back; the engines do the work.

Domain errors raised by the engines (:class:`~vo_core.errors.InvalidInput` and friends) are
turned into status codes by the server's error interceptor, so nothing is mapped here.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
from vo.subtitle.v1 import subtitle_service_pb2 as pb
from vo.subtitle.v1 import subtitle_service_pb2_grpc
from vo_core.errors import InvalidInput
from vo_core.progress import ProgressEvent, seconds_to_duration
from vo_core.storage import resolve_source
from vo_core.threads import stream_in_thread

from vo_subtitle import formats
from vo_subtitle.config import Settings
from vo_subtitle.model import Cue, SegmentationRules, Word
from vo_subtitle.recognize import TranscribeOutcome, transcribe
from vo_subtitle.segment import segment

_TO_FORMAT = {
    pb.SUBTITLE_FORMAT_SRT: formats.SubtitleFormat.SRT,
    pb.SUBTITLE_FORMAT_VTT: formats.SubtitleFormat.VTT,
    pb.SUBTITLE_FORMAT_ASS: formats.SubtitleFormat.ASS,
}
_FROM_FORMAT = {v: k for k, v in _TO_FORMAT.items()}
_LANGUAGES = ("", "en", "en-US", "en-us")


def format_from_proto(
    value: int, *, default: formats.SubtitleFormat | None
) -> formats.SubtitleFormat | None:
    """The domain format of a wire enum; ``default`` for UNSPECIFIED."""
    if value == pb.SUBTITLE_FORMAT_UNSPECIFIED:
        return default
    fmt = _TO_FORMAT.get(pb.SubtitleFormat.ValueType(value))
    if fmt is None:
        raise InvalidInput(f"format {value} is not a known SubtitleFormat; use SRT, VTT or ASS")
    return fmt


def format_to_proto(fmt: formats.SubtitleFormat) -> pb.SubtitleFormat.ValueType:
    """The wire enum of a domain format."""
    return _FROM_FORMAT[fmt]


class SubtitleServicer(subtitle_service_pb2_grpc.SubtitleServiceServicer):
    """Implements vo.subtitle.v1.SubtitleService."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = settings.server.artifact_store()
        self.policy = settings.server.path_policy()

    async def BuildCues(
        self, request: pb.BuildCuesRequest, context: grpc.aio.ServicerContext
    ) -> pb.BuildCuesResponse:
        if len(request.words) > self.settings.max_words:
            raise InvalidInput(
                f"{len(request.words)} words is more than the {self.settings.max_words} this "
                "server accepts in one call; split the transcript"
            )
        words = [Word.from_proto(w) for w in request.words]
        rules = SegmentationRules.from_proto(request.rules)
        # Fast (well under 100 ms for 10 minutes of speech), but still off the event loop.
        cues = await asyncio.to_thread(segment, words, rules)
        return pb.BuildCuesResponse(cues=[c.to_proto() for c in cues])

    async def FormatCues(
        self, request: pb.FormatCuesRequest, context: grpc.aio.ServicerContext
    ) -> pb.FormatCuesResponse:
        fmt = format_from_proto(request.format, default=formats.SubtitleFormat.SRT)
        assert fmt is not None
        cues = [Cue.from_proto(c) for c in request.cues]
        content = formats.write(cues, fmt, karaoke=request.karaoke)
        return pb.FormatCuesResponse(content=content)

    async def ParseSubtitles(
        self, request: pb.ParseSubtitlesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ParseSubtitlesResponse:
        fmt = format_from_proto(request.format, default=None)
        cues, found = await asyncio.to_thread(formats.read, request.content, fmt)
        return pb.ParseSubtitlesResponse(
            cues=[c.to_proto() for c in cues], format=format_to_proto(found)
        )

    async def Transcribe(
        self, request: pb.TranscribeRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.TranscribeResponse]:
        if request.language not in _LANGUAGES:
            raise InvalidInput(
                f"language {request.language!r} is not available; only en-US ships offline"
            )
        rules = SegmentationRules.from_proto(request.rules)
        path = await asyncio.to_thread(resolve_source, request.input, self.policy, self.store)
        script = request.script
        max_seconds = self.settings.max_audio_seconds
        async for item in stream_in_thread(
            lambda token: transcribe(path, script, rules, token, max_seconds=max_seconds)
        ):
            if isinstance(item, ProgressEvent):
                yield pb.TranscribeResponse(progress=item.to_proto())
            elif isinstance(item, TranscribeOutcome):
                t = item.transcript
                result = pb.TranscribeResult(
                    words=[w.to_proto() for w in t.words],
                    cues=[c.to_proto() for c in item.cues],
                    text=t.text,
                )
                result.audio_duration.CopyFrom(seconds_to_duration(t.audio_seconds))
                yield pb.TranscribeResponse(result=result)
