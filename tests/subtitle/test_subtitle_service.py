"""The SubtitleService over real gRPC: every RPC, progress streaming, and every bad input."""

from __future__ import annotations

from pathlib import Path

import grpc
import pysubs2
import pytest
import srt
from subtitle.subtitle_helpers import SPEECH, SubtitleServer, reference_words, speech_words, wer
from vo.common.v1 import common_pb2
from vo.subtitle.v1 import subtitle_service_pb2 as pb
from vo_core.progress import duration_to_seconds, seconds_to_duration
from vo_subtitle.model import Cue, SegmentationRules, Word


def _words(n: int = 60) -> list[common_pb2.Word]:
    return [w.to_proto() for w in speech_words(count=n)]


def _word(text: str, start: float, end: float) -> common_pb2.Word:
    return Word(text, start, end).to_proto()


async def _expect_invalid(call: object, message: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call  # type: ignore[misc]
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in (info.value.details() or ""), info.value.details()


async def _transcribe(stub: object, request: pb.TranscribeRequest) -> list[pb.TranscribeResponse]:
    return [msg async for msg in stub.Transcribe(request)]  # type: ignore[attr-defined]


async def test_build_cues(subtitles: SubtitleServer) -> None:
    reply = await subtitles.stub.BuildCues(pb.BuildCuesRequest(words=_words()))
    cues = [Cue.from_proto(c) for c in reply.cues]
    assert len(cues) > 3
    assert sum(len(c.words) for c in cues) == 60
    assert all(len(line) <= 42 for c in cues for line in c.lines)


async def test_build_cues_with_rules(subtitles: SubtitleServer) -> None:
    rules = SegmentationRules(max_chars_per_line=24, max_lines=1).to_proto()
    reply = await subtitles.stub.BuildCues(pb.BuildCuesRequest(words=_words(), rules=rules))
    assert all(len(c.lines) == 1 and len(c.lines[0]) <= 24 for c in reply.cues)


async def test_format_and_parse_every_format(subtitles: SubtitleServer) -> None:
    cues = (await subtitles.stub.BuildCues(pb.BuildCuesRequest(words=_words()))).cues
    for fmt in (pb.SUBTITLE_FORMAT_SRT, pb.SUBTITLE_FORMAT_VTT, pb.SUBTITLE_FORMAT_ASS):
        content = (
            await subtitles.stub.FormatCues(
                pb.FormatCuesRequest(cues=cues, format=fmt, karaoke=True)
            )
        ).content
        parsed = await subtitles.stub.ParseSubtitles(pb.ParseSubtitlesRequest(content=content))
        assert parsed.format == fmt
        assert len(parsed.cues) == len(cues)
        for a, b in zip(cues, parsed.cues, strict=True):
            assert duration_to_seconds(b.start_offset) == pytest.approx(
                duration_to_seconds(a.start_offset), abs=0.0051
            )
    default = await subtitles.stub.FormatCues(pb.FormatCuesRequest(cues=cues))
    assert len(list(srt.parse(default.content))) == len(cues)  # unspecified means SRT


async def test_transcribe_recognises_speech_in_a_video(
    subtitles: SubtitleServer, speech_video: Path
) -> None:
    request = pb.TranscribeRequest(input=common_pb2.MediaSource(uri=str(speech_video)))
    messages = await _transcribe(subtitles.stub, request)
    progress = [m.progress for m in messages if m.WhichOneof("event") == "progress"]
    results = [m.result for m in messages if m.WhichOneof("event") == "result"]
    assert len(results) == 1 and messages[-1].WhichOneof("event") == "result"
    assert len(progress) >= 5 and progress[-1].steps_done == progress[-1].steps_total
    assert {p.stage for p in progress} == {"transcribe"}
    result = results[0]
    assert duration_to_seconds(result.audio_duration) == pytest.approx(25.98, abs=0.1)
    assert wer(reference_words(), result.text.lower().split()) < 0.5, result.text
    assert sum(len(c.words) for c in result.cues) == len(result.words)


async def test_transcribe_aligns_a_script(subtitles: SubtitleServer) -> None:
    script = SPEECH.with_suffix(".txt").read_text()
    request = pb.TranscribeRequest(input=common_pb2.MediaSource(uri=str(SPEECH)), script=script)
    messages = await _transcribe(subtitles.stub, request)
    result = messages[-1].result
    assert [w.text for w in result.words] == script.split()
    assert {m.progress.stage for m in messages[:-1]} == {"align"}
    ass = (
        await subtitles.stub.FormatCues(
            pb.FormatCuesRequest(cues=result.cues, format=pb.SUBTITLE_FORMAT_ASS, karaoke=True)
        )
    ).content
    assert len(pysubs2.SSAFile.from_string(ass).events) == len(result.cues)


@pytest.mark.parametrize(
    ("words", "message"),
    [
        ([], "no words given"),
        ([_word("late", 2.0, 1.0)], "ends at 1 s, before it starts at 2 s"),
        ([_word("b", 2.0, 2.5), _word("a", 1.0, 1.5)], "words must be in time order"),
    ],
)
async def test_bad_words(
    subtitles: SubtitleServer, words: list[common_pb2.Word], message: str
) -> None:
    await _expect_invalid(subtitles.stub.BuildCues(pb.BuildCuesRequest(words=words)), message)


async def test_bad_rules(subtitles: SubtitleServer) -> None:
    rules = pb.SegmentationRules(max_lines=-1)
    await _expect_invalid(
        subtitles.stub.BuildCues(pb.BuildCuesRequest(words=_words(5), rules=rules)),
        "must not be negative",
    )
    rules = pb.SegmentationRules(max_duration=seconds_to_duration(0.5))
    await _expect_invalid(
        subtitles.stub.BuildCues(pb.BuildCuesRequest(words=_words(5), rules=rules)),
        "max_duration",
    )


async def test_bad_subtitle_file(subtitles: SubtitleServer) -> None:
    content = "1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\n00:00:03,000 --> 00:00:0x,000\nbad\n"
    await _expect_invalid(
        subtitles.stub.ParseSubtitles(pb.ParseSubtitlesRequest(content=content)),
        "line 6: bad timestamp '00:00:0x,000'",
    )


async def test_wrong_declared_format(subtitles: SubtitleServer) -> None:
    await _expect_invalid(
        subtitles.stub.ParseSubtitles(
            pb.ParseSubtitlesRequest(
                content="1\n00:00:01,000 --> 00:00:02,000\nx\n", format=pb.SUBTITLE_FORMAT_VTT
            )
        ),
        "line 1: a WebVTT file starts with 'WEBVTT'",
    )


async def test_text_file_is_not_audio(subtitles: SubtitleServer, tmp_path: Path) -> None:
    path = tmp_path / "speech.mp3"
    path.write_text("not audio at all")
    request = pb.TranscribeRequest(input=common_pb2.MediaSource(uri=str(path)))
    await _expect_invalid(_transcribe(subtitles.stub, request), "not an audio or video file")


async def test_video_without_audio(subtitles: SubtitleServer, silent_video: Path) -> None:
    request = pb.TranscribeRequest(input=common_pb2.MediaSource(uri=str(silent_video)))
    await _expect_invalid(_transcribe(subtitles.stub, request), "has no audio stream")


async def test_missing_input_and_language(subtitles: SubtitleServer) -> None:
    await _expect_invalid(_transcribe(subtitles.stub, pb.TranscribeRequest()), "input is missing")
    request = pb.TranscribeRequest(input=common_pb2.MediaSource(uri=str(SPEECH)), language="fr-FR")
    await _expect_invalid(_transcribe(subtitles.stub, request), "only en-US ships offline")


async def test_input_outside_roots_is_denied(subtitles: SubtitleServer) -> None:
    request = pb.TranscribeRequest(input=common_pb2.MediaSource(uri="/etc/hostname"))
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await _transcribe(subtitles.stub, request)
    assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED


async def test_backwards_cue_cannot_be_formatted(subtitles: SubtitleServer) -> None:
    cue = Cue(("x",), 2.0, 1.0).to_proto()
    await _expect_invalid(
        subtitles.stub.FormatCues(pb.FormatCuesRequest(cues=[cue])), "before it starts"
    )
