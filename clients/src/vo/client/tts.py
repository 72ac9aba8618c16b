"""Typed clients for vo.tts.v1.TtsService.

``synthesize`` returns an iterator of :class:`~vo.events.ProgressEvent` (one per sentence)
and exactly one ``SynthesizeResult`` at the end; every gRPC error becomes
:class:`~vo.client.errors.VoClientError`.

>>> from vo.client.tts import TtsClient, final_result, words_to_dicts
>>> with TtsClient.connect("127.0.0.1:4545") as tts:
...     result = final_result(tts.synthesize("Hello there.", voice="en-us"))
...     open("speech.wav", "wb").write(result.audio_content)
...     words = words_to_dicts(result.words)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from typing import Any

from vo.client.base import AsyncServiceClient, ServiceClient, last_of, stream_event
from vo.common.v1 import common_pb2
from vo.events import ProgressEvent, duration_to_seconds
from vo.tts.v1 import tts_service_pb2 as pb
from vo.tts.v1 import tts_service_pb2_grpc

TtsEvent = ProgressEvent | pb.SynthesizeResult

FORMATS = {
    "wav": pb.AUDIO_FORMAT_WAV,
    "flac": pb.AUDIO_FORMAT_FLAC,
    "aac": pb.AUDIO_FORMAT_AAC,
    "m4a": pb.AUDIO_FORMAT_AAC,
    "opus": pb.AUDIO_FORMAT_OPUS,
    "ogg": pb.AUDIO_FORMAT_OPUS,
}
"""Audio formats by name or by file suffix (without the dot)."""


def synthesize_request(
    text: str,
    *,
    voice: str = "",
    engine: str = "",
    rate: int = 0,
    pitch: int = 0,
    audio_format: str = "wav",
    sample_rate: int = 0,
) -> pb.SynthesizeRequest:
    """Build a SynthesizeRequest; zero values take the server's defaults (en-us, 165 wpm)."""
    fmt = FORMATS.get(audio_format.lower().lstrip("."))
    if fmt is None:
        raise ValueError(f"audio format {audio_format!r} is unknown; use wav, flac, aac or opus")
    return pb.SynthesizeRequest(
        text=text,
        voice=voice,
        engine=engine,
        rate=rate,
        pitch=pitch,
        format=fmt,
        sample_rate=sample_rate,
    )


def final_result(events: Iterable[TtsEvent]) -> pb.SynthesizeResult:
    """Drain ``events`` and return the one result at the end."""
    return last_of(events, pb.SynthesizeResult, "speech")


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


class TtsClient(ServiceClient[tts_service_pb2_grpc.TtsServiceStub]):
    """Blocking client for the TtsService."""

    stub_type = tts_service_pb2_grpc.TtsServiceStub

    def list_voices(self, language: str = "", engine: str = "") -> list[pb.Voice]:
        """Voices whose language starts with ``language``, of ``engine`` (empty: all)."""
        request = pb.ListVoicesRequest(language=language, engine=engine)
        return list(self._unary(self._stub.ListVoices, request).voices)

    def synthesize_request(self, request: pb.SynthesizeRequest) -> Iterator[TtsEvent]:
        """Stream a Synthesize call: progress per sentence, then one result."""
        for msg in self._stream(self._stub.Synthesize, request):
            yield stream_event(msg)

    def synthesize(self, text: str, **options: Any) -> Iterator[TtsEvent]:
        """Speak ``text``; options as :func:`synthesize_request`."""
        return self.synthesize_request(synthesize_request(text, **options))


class AsyncTtsClient(AsyncServiceClient["tts_service_pb2_grpc.TtsServiceAsyncStub"]):
    """Asyncio client for the TtsService."""

    stub_type = tts_service_pb2_grpc.TtsServiceStub

    async def list_voices(self, language: str = "", engine: str = "") -> list[pb.Voice]:
        """Voices whose language starts with ``language``, of ``engine`` (empty: all)."""
        request = pb.ListVoicesRequest(language=language, engine=engine)
        reply: pb.ListVoicesResponse = await self._unary(self._stub.ListVoices, request)
        return list(reply.voices)

    async def synthesize_request(self, request: pb.SynthesizeRequest) -> AsyncIterator[TtsEvent]:
        """Stream a Synthesize call: progress per sentence, then one result."""
        async for msg in self._stream(self._stub.Synthesize, request):
            yield stream_event(msg)

    def synthesize(self, text: str, **options: Any) -> AsyncIterator[TtsEvent]:
        """Speak ``text``; options as :func:`synthesize_request`."""
        return self.synthesize_request(synthesize_request(text, **options))
