"""Segmentation: each readability rule checked on its own, on natural word timings."""

from __future__ import annotations

import itertools
import random
import re

import pytest
from subtitle.subtitle_helpers import PROSE, speech_words
from vo_core.errors import InvalidInput
from vo_subtitle.model import Cue, SegmentationRules, Word
from vo_subtitle.segment import break_kind, segment, split_lines

RULES = SegmentationRules()
EPS = 1e-6


@pytest.fixture(scope="module")
def cues() -> list[Cue]:
    """Cues of three minutes of natural speech (the prose repeated) with default rules."""
    return segment(speech_words(count=450))


def test_every_word_kept_once_in_order(cues: list[Cue]) -> None:
    assert [w for c in cues for w in c.words] == speech_words(count=450)
    for c in cues:
        assert " ".join(c.lines) == " ".join(w.text for w in c.words)


def test_chars_per_line(cues: list[Cue]) -> None:
    assert max(len(line) for c in cues for line in c.lines) <= RULES.max_chars_per_line


def test_lines_per_cue(cues: list[Cue]) -> None:
    assert max(len(c.lines) for c in cues) <= RULES.max_lines


def test_reading_speed(cues: list[Cue]) -> None:
    for c in cues:
        assert len(c.text) / (c.end - c.start) <= RULES.max_chars_per_second + EPS, c


def test_min_duration(cues: list[Cue]) -> None:
    assert min(c.end - c.start for c in cues) >= RULES.min_duration - EPS


def test_max_duration(cues: list[Cue]) -> None:
    assert max(c.end - c.start for c in cues) <= RULES.max_duration + EPS


def test_no_overlap(cues: list[Cue]) -> None:
    for a, b in itertools.pairwise(cues):
        assert a.end <= b.start, (a, b)


def test_min_gap(cues: list[Cue]) -> None:
    for a, b in itertools.pairwise(cues):
        assert b.start - a.end >= RULES.min_gap - EPS, (a, b)


def test_cues_cover_their_words(cues: list[Cue]) -> None:
    # A cue appears no later than its first word and stays until (about) its last word ends.
    for c in cues:
        assert c.start <= c.words[0].start + EPS
        assert c.end >= c.words[-1].end - RULES.min_gap - EPS


def test_no_orphan_word_on_a_line(cues: list[Cue]) -> None:
    for c in cues:
        if len(c.lines) > 1:
            assert all(len(line.split()) > 1 for line in c.lines), c.lines


def test_cue_breaks_prefer_punctuation(cues: list[Cue]) -> None:
    ends = [c.words[-1].text for c in cues]
    at_punctuation = [e for e in ends if re.search(r"[.,;:!?]$", e)]
    # The prose has a punctuation mark every 7 words on average; most cues end on one.
    assert len(at_punctuation) / len(ends) >= 0.75, ends


def test_sentence_end_and_comma_beat_other_breaks() -> None:
    # 85 characters: too long for one cue. Breaks fall at the full stop (between lines) and
    # at the comma (between cues), not where the lines happen to fill up.
    text = "The rain stopped at noon. Then the wind came up from the west, and it was cold again."
    cues = segment(speech_words(text))
    assert cues[0].lines == ("The rain stopped at noon.", "Then the wind came up from the west,")
    assert cues[1].lines == ("and it was cold again.",)


def test_line_break_at_clause_boundary() -> None:
    text = "When the train finally arrived, nobody was waiting on the platform"
    (cue,) = segment(speech_words(text))
    assert cue.lines == ("When the train finally arrived,", "nobody was waiting on the platform")


def test_line_break_before_conjunction_or_preposition() -> None:
    text = "We walked slowly along the river bank and talked about the old days"
    (cue,) = segment(speech_words(text))
    assert cue.lines[1].split()[0] in {"and", "about"}, cue.lines


def test_lines_balanced_when_no_punctuation() -> None:
    lines = split_lines(
        tuple(
            [
                "one",
                "two",
                "three",
                "four",
                "five",
                "six",
                "seven",
                "eight",
                "nine",
                "ten",
                "eleven",
            ]
        )
        * 1,
        (14.0,) * 10,
        42,
        2,
    )
    assert len(lines) == 2 or len(" ".join(lines)) <= 42
    words = tuple(
        [
            "alpha",
            "beta",
            "gamma",
            "delta",
            "epsilon",
            "zeta",
            "eta",
            "theta",
            "iota",
            "kappa",
            "lambda",
        ]
    )
    lines = split_lines(words, (14.0,) * (len(words) - 1), 42, 2)
    assert len(lines) == 2
    assert abs(len(lines[0]) - len(lines[1])) <= 12, lines


def test_orphan_avoided_even_when_greedy_fill_would_leave_one() -> None:
    # Greedy filling puts 41 characters on line 1 and leaves "end." alone on line 2.
    words = tuple(["aaaa", "bbbb", "cccc", "dddd", "eeee", "ffff", "gggg", "hhhh", "end."])
    lines = split_lines(words, (14.0,) * (len(words) - 1), 40, 2)
    assert all(len(line.split()) > 1 for line in lines), lines


def test_short_word_held_for_min_duration() -> None:
    (cue,) = segment([Word("Yes.", 1.0, 1.2)])
    assert cue.end - cue.start == pytest.approx(RULES.min_duration)


def test_long_silence_splits_cues_at_max_duration() -> None:
    words = [Word("Slowly", 0.0, 3.0), Word("spoken", 3.5, 6.5), Word("words.", 7.0, 10.0)]
    cues = segment(words)
    assert len(cues) >= 2
    assert max(c.end - c.start for c in cues) <= RULES.max_duration + EPS


def test_configured_rules_are_obeyed() -> None:
    rules = SegmentationRules(max_chars_per_line=20, max_lines=1, min_gap=0.2)
    cues = segment(speech_words(count=200), rules)
    assert max(len(line) for c in cues for line in c.lines) <= 20
    assert max(len(c.lines) for c in cues) == 1
    assert min(b.start - a.end for a, b in itertools.pairwise(cues)) >= 0.2 - EPS


def test_break_kinds() -> None:
    assert break_kind("end.", "Next") == "sentence"
    assert break_kind("Mr.", "Smith") == "word"
    assert break_kind("however,", "we") == "clause"
    assert break_kind("house", "and") == "phrase"
    assert break_kind("house", "garden") == "word"
    assert break_kind("said.”", "Then") == "sentence"


def test_a_ten_minute_transcript_is_cut_whole_and_readable() -> None:
    """Its speed (32 ms here) is measured by bench/subtitles.py, not asserted."""
    words = speech_words(count=1600)
    assert words[-1].end > 600  # ten minutes and more of speech
    cues = segment(words)
    rules = SegmentationRules()
    assert [w for cue in cues for w in cue.words] == list(words), "every word once, in order"
    for a, b in itertools.pairwise(cues):
        assert a.end <= b.start, "cues overlap"
    for cue in cues:
        assert len(cue.lines) <= rules.max_lines
        assert all(len(line) <= rules.max_chars_per_line for line in cue.lines)
        assert cue.end - cue.start <= rules.max_duration + 1e-6


@pytest.mark.parametrize(
    ("words", "message"),
    [
        ([], "no words given"),
        ([Word("late", 2.0, 1.0)], "before it starts"),
        ([Word("b", 2.0, 2.5), Word("a", 1.0, 1.5)], "in time order"),
        ([Word("", 0.0, 1.0)], "has no text"),
        ([Word("x", -1.0, 1.0)], "must not be negative"),
    ],
)
def test_bad_words_are_refused(words: list[Word], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        segment(words)


def test_bad_rules_are_refused() -> None:
    with pytest.raises(InvalidInput, match="max_lines"):
        SegmentationRules(max_lines=0)
    with pytest.raises(InvalidInput, match="max_duration"):
        SegmentationRules(min_duration=3.0, max_duration=2.0)


def test_prose_is_real() -> None:
    assert len(PROSE.split()) > 100


@pytest.mark.parametrize("seed", range(20))
def test_hard_rules_hold_on_random_timings(seed: int) -> None:
    # Fast and slow speech, long words, zero gaps, odd rules: the hard limits always hold.
    rnd = random.Random(seed)
    vocab = [*PROSE.split(), "a", "I", "x" * 45, "incomprehensibilities,"]
    words, t = [], rnd.uniform(0, 2)
    for _ in range(rnd.randint(1, 300)):
        dur = rnd.uniform(0.0, 1.2)
        words.append(Word(rnd.choice(vocab), round(t, 3), round(t + dur, 3)))
        t += dur + rnd.choice([0.0, 0.0, 0.02, 0.3, 2.5])
    rules = SegmentationRules(
        max_chars_per_line=rnd.choice([20, 32, 42]), max_lines=rnd.choice([1, 2, 3])
    )
    cues = segment(words, rules)
    assert [w for c in cues for w in c.words] == words
    for c in cues:
        assert len(c.lines) <= rules.max_lines
        assert rules.min_duration - EPS <= c.end - c.start <= rules.max_duration + EPS
        for line in c.lines:
            assert len(line) <= rules.max_chars_per_line or " " not in line
    for a, b in itertools.pairwise(cues):
        assert b.start - a.end >= rules.min_gap - EPS
