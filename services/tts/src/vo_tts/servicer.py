"""TtsService servicer: proto to domain and back; :mod:`vo_tts.engine` does the work."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
from vo.common.v1 import common_pb2
from vo.tts.v1 import tts_service_pb2 as pb
from vo.tts.v1 import tts_service_pb2_grpc
from vo_core.cache import Cache
from vo_core.errors import InvalidInput
from vo_core.progress import ProgressEvent, seconds_to_duration
from vo_core.storage import Artifact
from vo_core.threads import stream_in_thread

from vo_tts import audio
from vo_tts.config import Settings
from vo_tts.engine import AudioFormat, Engine, Speech, SynthesisRequest, Synthesizer, VoiceInfo
from vo_tts.espeak import EspeakEngine
from vo_tts.piper import PiperEngine

_FORMATS = {
    pb.AUDIO_FORMAT_UNSPECIFIED: AudioFormat.WAV,
    pb.AUDIO_FORMAT_WAV: AudioFormat.WAV,
    pb.AUDIO_FORMAT_FLAC: AudioFormat.FLAC,
    pb.AUDIO_FORMAT_AAC: AudioFormat.AAC,
    pb.AUDIO_FORMAT_OPUS: AudioFormat.OPUS,
}


def build_synthesizer(settings: Settings) -> Synthesizer:
    """The engines, limits and cache the settings ask for."""
    engines: list[Engine] = [
        EspeakEngine(workers=settings.workers, default_voice=settings.default_voice)
    ]
    if settings.piper_models:
        engines.append(PiperEngine(settings.piper_models))
    cache = Cache.memory_and_disk(
        settings.cache_memory_bytes, settings.cache_path, settings.cache_disk_bytes
    )
    return Synthesizer(engines, max_text_chars=settings.max_text_chars, cache=cache)


def voice_to_proto(voice: VoiceInfo) -> pb.Voice:
    """The wire form of a voice."""
    return pb.Voice(
        name=voice.name,
        language=voice.language,
        engine=voice.engine,
        description=voice.description,
    )


def request_from_proto(request: pb.SynthesizeRequest) -> SynthesisRequest:
    """The domain form of a request (ranges are checked by the synthesizer)."""
    fmt = _FORMATS.get(request.format)
    if fmt is None:
        raise InvalidInput(f"audio format {request.format} is unknown; use WAV, FLAC, AAC or OPUS")
    return SynthesisRequest(
        text=request.text,
        voice=request.voice,
        engine=request.engine,
        rate=request.rate,
        pitch=request.pitch,
        format=fmt,
        sample_rate=request.sample_rate,
    )


class TtsServicer(tts_service_pb2_grpc.TtsServiceServicer):
    """Implements vo.tts.v1.TtsService."""

    def __init__(self, settings: Settings, synthesizer: Synthesizer | None = None) -> None:
        self.settings = settings
        self.store = settings.server.artifact_store()
        self.synthesizer = synthesizer or build_synthesizer(settings)

    async def ListVoices(
        self, request: pb.ListVoicesRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListVoicesResponse:
        voices = self.synthesizer.list_voices(request.language, request.engine)
        return pb.ListVoicesResponse(voices=[voice_to_proto(v) for v in voices])

    async def Synthesize(
        self, request: pb.SynthesizeRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.SynthesizeResponse]:
        req = request_from_proto(request)
        speech: Speech | None = None
        async for item in stream_in_thread(lambda token: self.synthesizer.synthesize(req, token)):
            if isinstance(item, ProgressEvent):
                yield pb.SynthesizeResponse(progress=item.to_proto())
            else:
                speech = item
        if speech is None:  # the engine always ends with speech; this guards a broken promise
            raise RuntimeError("synthesis ended without a result")
        artifact = await asyncio.to_thread(self._store, speech)
        yield pb.SynthesizeResponse(result=result_to_proto(speech, artifact))

    def _store(self, speech: Speech) -> Artifact:
        tmp = self.store.scratch_path(audio.SUFFIXES[speech.format.value])
        tmp.write_bytes(speech.audio)
        return self.store.put_file(tmp, media_type=speech.media_type, move=True)


def result_to_proto(speech: Speech, artifact: Artifact) -> pb.SynthesizeResult:
    """The wire form of a finished synthesis."""
    result = pb.SynthesizeResult(
        audio=artifact.to_proto(),
        audio_content=speech.audio,
        sample_rate=speech.sample_rate,
        voice=voice_to_proto(speech.voice),
        cached=speech.cached,
    )
    result.duration.CopyFrom(seconds_to_duration(speech.duration))
    for w in speech.words:
        word = common_pb2.Word(text=w.text, confidence=1.0)
        word.start_offset.CopyFrom(seconds_to_duration(w.start))
        word.end_offset.CopyFrom(seconds_to_duration(w.end))
        result.words.append(word)
    return result
