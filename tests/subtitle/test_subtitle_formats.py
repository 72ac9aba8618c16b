"""SRT, WebVTT and ASS: our files read by independent libraries, and our readers' errors."""

from __future__ import annotations

import html
import re

import pysubs2
import pytest
import srt
import webvtt
from subtitle.subtitle_helpers import speech_words
from vo_core.errors import InvalidInput
from vo_subtitle import formats
from vo_subtitle.formats import SubtitleFormat
from vo_subtitle.model import Cue, Word
from vo_subtitle.segment import segment


@pytest.fixture(scope="module")
def cues() -> list[Cue]:
    """Segmented cues of natural speech, with odd-millisecond times and characters to escape."""
    words = speech_words(count=120)
    words[3] = Word("R&D", words[3].start, words[3].end)
    words[16] = Word("x<y", words[16].start, words[16].end)
    words[10] = Word("{curly}", words[10].start, words[10].end)
    return segment(words)


def test_srt_parsed_by_srt_library(cues: list[Cue]) -> None:
    parsed = list(srt.parse(formats.write_srt(cues)))
    assert len(parsed) == len(cues)
    for ours, theirs in zip(cues, parsed, strict=True):
        assert theirs.start.total_seconds() == pytest.approx(ours.start, abs=0.0005)
        assert theirs.end.total_seconds() == pytest.approx(ours.end, abs=0.0005)
        assert theirs.content.split("\n") == list(ours.lines)


def test_vtt_parsed_by_webvtt_py(cues: list[Cue]) -> None:
    parsed = webvtt.from_string(formats.write_vtt(cues)).captions
    assert len(parsed) == len(cues)
    for ours, theirs in zip(cues, parsed, strict=True):
        # webvtt-py's *_in_seconds truncate to whole seconds; its Timestamp keeps milliseconds.
        assert _seconds(theirs.start_time) == pytest.approx(ours.start, abs=0.0005)
        assert _seconds(theirs.end_time) == pytest.approx(ours.end, abs=0.0005)
        assert theirs.lines == [html.escape(line, quote=False) for line in ours.lines]
    assert "R&amp;D" in parsed[0].raw_text and "x&lt;y" in parsed[1].raw_text


def _seconds(ts: webvtt.models.Timestamp) -> float:
    return ts.hours * 3600 + ts.minutes * 60 + ts.seconds + ts.milliseconds / 1000


def test_ass_parsed_by_pysubs2(cues: list[Cue]) -> None:
    subs = pysubs2.SSAFile.from_string(formats.write_ass(cues))
    assert (subs.info["PlayResX"], subs.info["PlayResY"]) == ("1080", "1920")
    style = subs.styles["Default"]
    assert style.alignment == 2 and style.marginv > 0 and style.outline > 0
    events = [e for e in subs.events if e.type == "Dialogue"]
    assert len(events) == len(cues)
    for ours, theirs in zip(cues, events, strict=True):
        assert theirs.start == pytest.approx(ours.start * 1000, abs=5)
        assert theirs.end == pytest.approx(ours.end * 1000, abs=5)
        assert theirs.plaintext.split("\n") == [
            line.replace("{", "(").replace("}", ")") for line in ours.lines
        ]


def test_ass_karaoke_tags_carry_word_timings(cues: list[Cue]) -> None:
    subs = pysubs2.SSAFile.from_string(formats.write_ass(cues, karaoke=True))
    assert subs.styles["Default"].primarycolor != subs.styles["Default"].secondarycolor
    for cue, event in zip(cues, subs.events, strict=True):
        durations = [int(d) for d in re.findall(r"\\k(\d+)", event.text)]
        lead = round(cue.words[0].start * 100) - round(cue.start * 100)
        expected = ([lead] if lead > 0 else []) + [
            round(b.start * 100) - round(a.start * 100)
            for a, b in zip(cue.words, cue.words[1:], strict=False)
        ]
        expected.append(round(cue.words[-1].end * 100) - round(cue.words[-1].start * 100))
        assert durations == expected


def test_ass_karaoke_round_trips_word_starts(cues: list[Cue]) -> None:
    back = formats.read_ass(formats.write_ass(cues, karaoke=True))
    for ours, theirs in zip(cues, back, strict=True):
        assert [w.text for w in theirs.words] == [
            w.text.replace("{", "(").replace("}", ")") for w in ours.words
        ]
        for a, b in zip(ours.words, theirs.words, strict=True):
            assert b.start == pytest.approx(a.start, abs=0.0051)


@pytest.mark.parametrize("fmt", list(SubtitleFormat))
def test_our_reader_round_trips_our_writer(cues: list[Cue], fmt: SubtitleFormat) -> None:
    precision = 0.0051 if fmt is SubtitleFormat.ASS else 0.00051
    back, detected = formats.read(formats.write(cues, fmt))
    assert detected is fmt
    assert len(back) == len(cues)
    for ours, theirs in zip(cues, back, strict=True):
        assert theirs.start == pytest.approx(ours.start, abs=precision)
        assert theirs.end == pytest.approx(ours.end, abs=precision)
        if fmt is not SubtitleFormat.ASS:
            assert theirs.lines == ours.lines


def test_reads_files_other_tools_write(cues: list[Cue]) -> None:
    subs = [
        srt.Subtitle(1, srt.timedelta(seconds=1.5), srt.timedelta(seconds=3), "Hello <i>there</i>")
    ]
    (cue,), fmt = formats.read(srt.compose(subs))
    assert fmt is SubtitleFormat.SRT and cue.lines == ("Hello there",) and cue.end == 3.0
    ass = pysubs2.SSAFile()
    ass.append(pysubs2.SSAEvent(start=500, end=2500, text=r"{\i1}One{\i0}\Ntwo"))
    (cue,), fmt = formats.read(ass.to_string("ass"))
    assert fmt is SubtitleFormat.ASS and cue.lines == ("One", "two") and cue.start == 0.5
    vtt = "WEBVTT\n\nNOTE a comment\n\n00:01.000 --> 00:02.500 align:start\n<v Bob>Hi &amp; bye\n"
    (cue,), fmt = formats.read(vtt)
    assert fmt is SubtitleFormat.VTT and cue.lines == ("Hi & bye",) and cue.end == 2.5


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "1\n00:00:01,000 --> 00:00:02,000\nok\n\n2\n00:00:03,000 --> 00:00:0x,000\nbad\n",
            "line 6: bad timestamp '00:00:0x,000'",
        ),
        (
            "1\n00:00:01,000 --> 00:00:02,000\nok\n\nhello\n00:00:03,000 --> 00:00:04,000\n",
            "line 5: expected a cue number, got 'hello'",
        ),
        ("1\n00:00:05,000 --> 00:00:02,000\nbackwards\n", "line 2: cue ends"),
        ("1\n00:00:01,000 00:00:02,000\nno arrow\n", "line 2: expected 'start --> end'"),
        ("WEBVTT\n\n00:00:01.000 --> 00:00:02.00\nshort millis\n", "line 3: bad timestamp"),
        (
            "[Script Info]\n[Events]\nDialogue: 0,0:00:01.00,0:00:02.00,Default,,0,0,0,,x\n",
            "line 3: a Dialogue line comes before the [Events] Format line",
        ),
        (
            "[Script Info]\n[Events]\nFormat: Start, End, Text\nDialogue: 0:00:01.00,0:0x:02.00,x\n",
            "line 4: bad timestamp '0:0x:02.00'",
        ),
        ("Hello there\nthis is not subtitles\n", "line 1: cannot tell the subtitle format"),
        ("", "the subtitle file is empty"),
    ],
)
def test_bad_files_name_the_line(content: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(message)):
        formats.read(content)


def test_format_from_extension() -> None:
    assert SubtitleFormat.from_extension("out.VTT") is SubtitleFormat.VTT
    with pytest.raises(InvalidInput, match=r"\.srt, \.vtt or \.ass"):
        SubtitleFormat.from_extension("out.txt")


def test_writers_refuse_backwards_cues() -> None:
    with pytest.raises(InvalidInput, match="before it starts"):
        formats.write_srt([Cue(("x",), 2.0, 1.0)])
