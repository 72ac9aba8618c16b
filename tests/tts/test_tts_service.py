"""TtsService over real gRPC: timings checked against PocketSphinx, bad input, cache, formats."""

from __future__ import annotations

import io
import wave
from pathlib import Path
from typing import Any

import grpc
import pytest
from tts import sphinx_align
from tts.tts_helpers import TtsServer, start, tts_settings
from vo.tts.v1 import tts_service_pb2 as pb
from vo.tts.v1 import tts_service_pb2_grpc
from vo_core.progress import duration_to_seconds

PROSE = (
    "The history of the city begins on a small island in the middle of the river. "
    "Traders came from the north and the south, and they built a market near the water."
)


async def synthesize(
    stub: Any, **fields: Any
) -> tuple[list[pb.SynthesizeResponse], pb.SynthesizeResult]:
    # Any: grpc-stubs types the stub as synchronous even on an aio channel.
    responses = [r async for r in stub.Synthesize(pb.SynthesizeRequest(**fields))]
    assert responses[-1].WhichOneof("event") == "result"
    assert all(r.WhichOneof("event") == "progress" for r in responses[:-1])
    return responses, responses[-1].result


def words_of(result: pb.SynthesizeResult) -> list[tuple[str, float, float]]:
    return [
        (w.text, duration_to_seconds(w.start_offset), duration_to_seconds(w.end_offset))
        for w in result.words
    ]


def wav_duration(data: bytes) -> float:
    with wave.open(io.BytesIO(data)) as w:
        return w.getnframes() / w.getframerate()


async def test_word_timings_match_an_independent_aligner(tts: TtsServer) -> None:
    responses, result = await synthesize(tts.stub, text=PROSE)
    words = words_of(result)
    duration = duration_to_seconds(result.duration)
    assert [w for w, _, _ in words] == PROSE.split()
    assert abs(wav_duration(result.audio_content) - duration) < 1e-3
    previous_end = 0.0
    for text, word_start, word_end in words:
        assert previous_end <= word_start < word_end <= duration, text
        previous_end = word_end
    samples, rate = sphinx_align.read_wav(result.audio_content)
    median, placed = sphinx_align.median_start_error(samples, rate, words)
    assert placed >= 0.8, f"PocketSphinx placed only {placed:.0%} of the words"
    assert median < 0.030, f"median word-start error {median * 1000:.1f} ms"
    # One progress event per sentence, counted as steps.
    steps = [r.progress for r in responses[:-1] if r.progress.stage == "synthesise"]
    assert [p.steps_done for p in steps][:3] == [0, 1, 2] and steps[-1].steps_total == 2
    fractions = [r.progress.fraction for r in responses[:-1]]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert result.voice.name == "en-us" and result.voice.engine == "espeak"
    assert result.sample_rate == 22050 and not result.cached
    assert result.audio.size_bytes == len(result.audio_content)
    assert result.audio.media_type == "audio/wav"
    stored = Path(result.audio.uri.removeprefix("file://"))
    assert stored.stat().st_size == len(result.audio_content)


async def test_second_request_is_served_from_the_cache(tts: TtsServer) -> None:
    text = PROSE + " " + PROSE
    _, first = await synthesize(tts.stub, text=text, rate=200)
    responses, second = await synthesize(tts.stub, text=text, rate=200)
    assert not first.cached and second.cached
    assert len(responses) == 1  # no sentence was spoken again
    assert second.audio_content == first.audio_content
    assert words_of(second) == words_of(first)
    # A different parameter is a different entry.
    _, third = await synthesize(tts.stub, text=text, rate=201)
    assert not third.cached


async def test_cache_survives_a_restart(tmp_path: Path) -> None:
    settings = tts_settings(tmp_path)
    for expect_cached in (False, True):
        server, port = await start(settings)
        try:
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                stub = tts_service_pb2_grpc.TtsServiceStub(channel)
                _, result = await synthesize(stub, text="Hello again.")
                assert result.cached is expect_cached
        finally:
            await server.stop(grace=None)


async def test_rate_pitch_and_sample_rate_are_honoured(tts: TtsServer) -> None:
    _, slow = await synthesize(tts.stub, text=PROSE, rate=100)
    _, fast = await synthesize(tts.stub, text=PROSE, rate=300, pitch=80, sample_rate=16000)
    assert duration_to_seconds(slow.duration) > 2 * duration_to_seconds(fast.duration)
    assert fast.sample_rate == 16000
    with wave.open(io.BytesIO(fast.audio_content)) as w:
        assert w.getframerate() == 16000


@pytest.mark.parametrize(
    ("fmt", "media_type", "magic"),
    [
        (pb.AUDIO_FORMAT_FLAC, "audio/flac", b"fLaC"),
        (pb.AUDIO_FORMAT_AAC, "audio/mp4", b"ftyp"),
        (pb.AUDIO_FORMAT_OPUS, "audio/ogg", b"OggS"),
    ],
)
async def test_formats(tts: TtsServer, fmt: int, media_type: str, magic: bytes) -> None:
    pytest.importorskip("av")
    _, result = await synthesize(tts.stub, text="Formats are easy.", format=fmt)
    assert result.audio.media_type == media_type
    assert magic in result.audio_content[:16]
    assert len(result.words) == 3


async def test_list_voices(tts: TtsServer) -> None:
    everything = await tts.stub.ListVoices(pb.ListVoicesRequest())
    english = await tts.stub.ListVoices(pb.ListVoicesRequest(language="en", engine="espeak"))
    assert len(everything.voices) > 50
    names = {v.name for v in english.voices}
    assert {"en-us", "en-gb"} <= names
    assert all(v.language.lower().startswith("en") for v in english.voices)
    us = next(v for v in english.voices if v.name == "en-us")
    assert (us.language, us.engine, us.description) == ("en-US", "espeak", "English (America)")


async def test_other_languages_speak(tts: TtsServer) -> None:
    _, result = await synthesize(tts.stub, text="Guten Tag, wie geht es Ihnen?", voice="de")
    assert [w for w, _, _ in words_of(result)] == ["Guten", "Tag,", "wie", "geht", "es", "Ihnen?"]
    assert result.voice.language == "de"


@pytest.mark.parametrize(
    ("fields", "code", "needle"),
    [
        ({"text": ""}, grpc.StatusCode.INVALID_ARGUMENT, "text is empty"),
        ({"text": "   \n "}, grpc.StatusCode.INVALID_ARGUMENT, "text is empty"),
        ({"text": "x" * 2001}, grpc.StatusCode.INVALID_ARGUMENT, "over the limit of 2,000"),
        ({"text": "hi", "voice": "klingon"}, grpc.StatusCode.INVALID_ARGUMENT, "valid voices: "),
        ({"text": "hi", "rate": 79}, grpc.StatusCode.INVALID_ARGUMENT, "rate 79 is outside 80-450"),
        ({"text": "hi", "rate": 451}, grpc.StatusCode.INVALID_ARGUMENT, "rate 451 is outside"),
        ({"text": "hi", "rate": -5}, grpc.StatusCode.INVALID_ARGUMENT, "rate -5 is outside"),
        (
            {"text": "hi", "pitch": 101},
            grpc.StatusCode.INVALID_ARGUMENT,
            "pitch 101 is outside 0-100",
        ),
        ({"text": "hi", "pitch": -1}, grpc.StatusCode.INVALID_ARGUMENT, "pitch -1 is outside"),
        (
            {"text": "hi", "engine": "nope"},
            grpc.StatusCode.INVALID_ARGUMENT,
            "engine 'nope' is not configured",
        ),
        (
            {"text": "hi", "sample_rate": 4000},
            grpc.StatusCode.INVALID_ARGUMENT,
            "sample rate 4000 Hz",
        ),
        (
            {"text": "hi", "format": 99},
            grpc.StatusCode.INVALID_ARGUMENT,
            "audio format 99 is unknown",
        ),
        ({"text": "... !!! —"}, grpc.StatusCode.INVALID_ARGUMENT, "no words to speak"),
    ],
)
async def test_bad_input_is_rejected(
    tts: TtsServer, fields: dict[str, object], code: grpc.StatusCode, needle: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await synthesize(tts.stub, **fields)
    assert err.value.code() == code
    assert needle in (err.value.details() or "")


async def test_unknown_voice_message_lists_close_voices_first(tts: TtsServer) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await synthesize(tts.stub, text="hi", voice="en-zz")
    details = err.value.details() or ""
    assert "voice 'en-zz' is unknown" in details
    listed = details.split("valid voices: ")[1].split(" and ")[0].split(", ")
    assert len(listed) == 20 and "en-us" in listed
    assert "more (see ListVoices)" in details


async def test_list_voices_of_unknown_engine(tts: TtsServer) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await tts.stub.ListVoices(pb.ListVoicesRequest(engine="nope"))
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_worker_processes_give_the_same_speech(tmp_path: Path, tts: TtsServer) -> None:
    settings = tts_settings(
        tmp_path / "workers", workers=2, cache_memory_bytes=0, cache_disk_bytes=0
    )
    server, port = await start(settings)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = tts_service_pb2_grpc.TtsServiceStub(channel)
            _, pooled = await synthesize(stub, text=PROSE)
    finally:
        await server.stop(grace=None)
    _, local = await synthesize(tts.stub, text=PROSE)
    # eSpeak NG's output varies by a few samples from call to call (its wave generator keeps
    # state between calls), so the two are compared loosely.
    assert abs(duration_to_seconds(pooled.duration) - duration_to_seconds(local.duration)) < 0.05
    pairs = zip(words_of(pooled), words_of(local), strict=True)
    assert all(a[0] == b[0] and abs(a[1] - b[1]) < 0.03 for a, b in pairs)
