"""Typed clients for vo.subtitle.v1.SubtitleService.

``transcribe`` returns an iterator of :class:`~vo.events.ProgressEvent` (one per chunk of
audio) and exactly one ``TranscribeResult`` at the end; every gRPC error becomes
:class:`~vo.client.errors.VoClientError`.

>>> from vo.client.subtitle import SubtitleClient, final_result, words_from_dicts
>>> with SubtitleClient.connect("127.0.0.1:4545") as subs:
...     cues = subs.build_cues(words_from_dicts([{"text": "Hi.", "start": 0.1, "end": 0.4}]))
...     srt = subs.format_cues(cues, "srt")
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from vo.client.base import AsyncServiceClient, ServiceClient, last_of, stream_event
from vo.client.channel import media_source
from vo.common.v1 import common_pb2
from vo.events import ProgressEvent, duration_to_seconds, seconds_to_duration
from vo.subtitle.v1 import subtitle_service_pb2 as pb
from vo.subtitle.v1 import subtitle_service_pb2_grpc

Source = str | Path | common_pb2.MediaSource
TranscribeEvent = ProgressEvent | pb.TranscribeResult

FORMATS = {
    "srt": pb.SUBTITLE_FORMAT_SRT,
    "vtt": pb.SUBTITLE_FORMAT_VTT,
    "webvtt": pb.SUBTITLE_FORMAT_VTT,
    "ass": pb.SUBTITLE_FORMAT_ASS,
    "ssa": pb.SUBTITLE_FORMAT_ASS,
    "": pb.SUBTITLE_FORMAT_UNSPECIFIED,
}
"""Subtitle formats by name or by file suffix (without the dot)."""


def subtitle_format(name: str) -> pb.SubtitleFormat.ValueType:
    """The wire format for ``srt``/``vtt``/``ass`` or a file name or suffix ending in one."""
    key = name.lower().rsplit(".", 1)[-1]
    if key not in FORMATS:
        raise ValueError(f"subtitle format {name!r} is unknown; use srt, vtt or ass")
    return FORMATS[key]


def words_from_dicts(items: Iterable[Mapping[str, Any]]) -> list[common_pb2.Word]:
    """Wire words from ``{"text", "start", "end"}`` dicts in seconds (as ``vo tts --timings``
    writes them); a malformed item raises ValueError naming its index."""
    words = []
    for k, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise ValueError(f"word {k} is not an object with text, start and end")
        try:
            text = str(item["text"])
            start, end = float(item["start"]), float(item["end"])
        except KeyError as exc:
            raise ValueError(f"word {k} has no {exc.args[0]!r}; give text, start and end") from None
        except (TypeError, ValueError):
            raise ValueError(f"word {k}: start and end must be numbers of seconds") from None
        if not (math.isfinite(start) and math.isfinite(end)):
            raise ValueError(f"word {k}: start and end must be finite numbers of seconds")
        word = common_pb2.Word(text=text, confidence=float(item.get("confidence", 1.0)))
        word.start_offset.CopyFrom(seconds_to_duration(start))
        word.end_offset.CopyFrom(seconds_to_duration(end))
        words.append(word)
    return words


def words_to_dicts(words: Sequence[common_pb2.Word]) -> list[dict[str, Any]]:
    """Timed words as ``{"text", "start", "end"}`` in seconds (rounded to 0.1 ms), for JSON."""
    return [
        {
            "text": w.text,
            "start": round(duration_to_seconds(w.start_offset), 4),
            "end": round(duration_to_seconds(w.end_offset), 4),
        }
        for w in words
    ]


def rules(
    *,
    max_chars_per_line: int = 0,
    max_lines: int = 0,
    max_chars_per_second: float = 0.0,
    min_duration: float = 0.0,
    max_duration: float = 0.0,
    min_gap: float = 0.0,
) -> pb.SegmentationRules:
    """SegmentationRules; zero values take the server's defaults (42, 2, 17, 0.8 s, 7 s, 80 ms)."""
    msg = pb.SegmentationRules(
        max_chars_per_line=max_chars_per_line,
        max_lines=max_lines,
        max_chars_per_second=max_chars_per_second,
    )
    for name, value in (
        ("min_duration", min_duration),
        ("max_duration", max_duration),
        ("min_gap", min_gap),
    ):
        if value:
            getattr(msg, name).CopyFrom(seconds_to_duration(value))
    return msg


def transcribe_request(
    source: Source,
    *,
    script: str = "",
    language: str = "",
    segmentation: pb.SegmentationRules | None = None,
) -> pb.TranscribeRequest:
    """Build a TranscribeRequest: recognise the speech, or align ``script`` to it."""
    return pb.TranscribeRequest(
        input=media_source(source), script=script, language=language, rules=segmentation
    )


def final_result(events: Iterable[TranscribeEvent]) -> pb.TranscribeResult:
    """Drain ``events`` and return the one result at the end."""
    return last_of(events, pb.TranscribeResult, "words")


class SubtitleClient(ServiceClient[subtitle_service_pb2_grpc.SubtitleServiceStub]):
    """Blocking client for the SubtitleService."""

    stub_type = subtitle_service_pb2_grpc.SubtitleServiceStub

    def build_cues(
        self, words: Sequence[common_pb2.Word], segmentation: pb.SegmentationRules | None = None
    ) -> list[common_pb2.Cue]:
        """Readable cues from timed words."""
        request = pb.BuildCuesRequest(words=words, rules=segmentation)
        return list(self._unary(self._stub.BuildCues, request).cues)

    def format_cues(
        self, cues: Sequence[common_pb2.Cue], fmt: str = "srt", *, karaoke: bool = False
    ) -> str:
        """The text of a subtitle file (``srt``, ``vtt`` or ``ass``) holding ``cues``."""
        request = pb.FormatCuesRequest(cues=cues, format=subtitle_format(fmt), karaoke=karaoke)
        return self._unary(self._stub.FormatCues, request).content

    def parse_subtitles(self, content: str, fmt: str = "") -> pb.ParseSubtitlesResponse:
        """Cues of a subtitle file; the format is detected when ``fmt`` is empty."""
        request = pb.ParseSubtitlesRequest(content=content, format=subtitle_format(fmt))
        return self._unary(self._stub.ParseSubtitles, request)

    def transcribe_request(self, request: pb.TranscribeRequest) -> Iterator[TranscribeEvent]:
        """Stream a Transcribe call: progress per chunk of audio, then one result."""
        for msg in self._stream(self._stub.Transcribe, request):
            yield stream_event(msg)

    def transcribe(self, source: Source, **options: Any) -> Iterator[TranscribeEvent]:
        """Recognise (or, with ``script=``, align) speech; options as :func:`transcribe_request`."""
        return self.transcribe_request(transcribe_request(source, **options))


class AsyncSubtitleClient(AsyncServiceClient["subtitle_service_pb2_grpc.SubtitleServiceAsyncStub"]):
    """Asyncio client for the SubtitleService."""

    stub_type = subtitle_service_pb2_grpc.SubtitleServiceStub

    async def build_cues(
        self, words: Sequence[common_pb2.Word], segmentation: pb.SegmentationRules | None = None
    ) -> list[common_pb2.Cue]:
        """Readable cues from timed words."""
        request = pb.BuildCuesRequest(words=words, rules=segmentation)
        reply: pb.BuildCuesResponse = await self._unary(self._stub.BuildCues, request)
        return list(reply.cues)

    async def format_cues(
        self, cues: Sequence[common_pb2.Cue], fmt: str = "srt", *, karaoke: bool = False
    ) -> str:
        """The text of a subtitle file (``srt``, ``vtt`` or ``ass``) holding ``cues``."""
        request = pb.FormatCuesRequest(cues=cues, format=subtitle_format(fmt), karaoke=karaoke)
        reply: pb.FormatCuesResponse = await self._unary(self._stub.FormatCues, request)
        return reply.content

    async def parse_subtitles(self, content: str, fmt: str = "") -> pb.ParseSubtitlesResponse:
        """Cues of a subtitle file; the format is detected when ``fmt`` is empty."""
        request = pb.ParseSubtitlesRequest(content=content, format=subtitle_format(fmt))
        reply: pb.ParseSubtitlesResponse = await self._unary(self._stub.ParseSubtitles, request)
        return reply

    async def transcribe_request(
        self, request: pb.TranscribeRequest
    ) -> AsyncIterator[TranscribeEvent]:
        """Stream a Transcribe call: progress per chunk of audio, then one result."""
        async for msg in self._stream(self._stub.Transcribe, request):
            yield stream_event(msg)

    def transcribe(self, source: Source, **options: Any) -> AsyncIterator[TranscribeEvent]:
        """Recognise (or, with ``script=``, align) speech; options as :func:`transcribe_request`."""
        return self.transcribe_request(transcribe_request(source, **options))
