"""The subtitle domain: timed words, cues and readability rules, with their wire forms.

Times are float seconds from the start of the audio. Engines work on these types only; the
servicer converts at the edge with the ``to_proto``/``from_proto`` pairs here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from vo.common.v1 import common_pb2
from vo.subtitle.v1 import subtitle_service_pb2 as pb
from vo_core.errors import InvalidInput
from vo_core.progress import duration_to_seconds, seconds_to_duration


@dataclass(frozen=True, slots=True)
class Word:
    """One spoken word: its text as written (punctuation attached) and when it is said."""

    text: str
    start: float
    end: float
    confidence: float = 1.0

    def to_proto(self) -> common_pb2.Word:
        """The wire form."""
        msg = common_pb2.Word(text=self.text, confidence=self.confidence)
        msg.start_offset.CopyFrom(seconds_to_duration(self.start))
        msg.end_offset.CopyFrom(seconds_to_duration(self.end))
        return msg

    @classmethod
    def from_proto(cls, msg: common_pb2.Word) -> Word:
        """The domain form of a wire word."""
        return cls(
            text=msg.text,
            start=duration_to_seconds(msg.start_offset),
            end=duration_to_seconds(msg.end_offset),
            confidence=msg.confidence,
        )


@dataclass(frozen=True, slots=True)
class Cue:
    """One caption: up to a few lines shown from ``start`` to ``end``, with its words if known."""

    lines: tuple[str, ...]
    start: float
    end: float
    words: tuple[Word, ...] = ()

    @property
    def text(self) -> str:
        """The cue's lines joined with spaces, as a reader reads it."""
        return " ".join(self.lines)

    def to_proto(self) -> common_pb2.Cue:
        """The wire form."""
        msg = common_pb2.Cue(lines=list(self.lines), words=[w.to_proto() for w in self.words])
        msg.start_offset.CopyFrom(seconds_to_duration(self.start))
        msg.end_offset.CopyFrom(seconds_to_duration(self.end))
        return msg

    @classmethod
    def from_proto(cls, msg: common_pb2.Cue) -> Cue:
        """The domain form of a wire cue."""
        return cls(
            lines=tuple(msg.lines),
            start=duration_to_seconds(msg.start_offset),
            end=duration_to_seconds(msg.end_offset),
            words=tuple(Word.from_proto(w) for w in msg.words),
        )


@dataclass(frozen=True, slots=True)
class SegmentationRules:
    """Readability rules for cues; the defaults follow common broadcast caption guidelines."""

    max_chars_per_line: int = 42
    max_lines: int = 2
    max_chars_per_second: float = 17.0
    min_duration: float = 0.8
    max_duration: float = 7.0
    min_gap: float = 0.08

    def __post_init__(self) -> None:
        # Checked here so a bad rule fails at the edge with a message, not deep in the DP.
        if self.max_chars_per_line < 5:
            raise InvalidInput(
                f"max_chars_per_line is {self.max_chars_per_line}; use at least 5 (default 42)"
            )
        if not 1 <= self.max_lines <= 5:
            raise InvalidInput(f"max_lines is {self.max_lines}; use 1 to 5 (default 2)")
        if not (self.max_chars_per_second > 0 and math.isfinite(self.max_chars_per_second)):
            raise InvalidInput(
                f"max_chars_per_second is {self.max_chars_per_second}; use a positive number "
                "(default 17)"
            )
        if self.min_duration < 0 or self.min_gap < 0:
            raise InvalidInput("min_duration and min_gap must not be negative")
        if self.max_duration <= self.min_duration:
            raise InvalidInput(
                f"max_duration ({self.max_duration:g} s) must be longer than min_duration "
                f"({self.min_duration:g} s)"
            )

    def to_proto(self) -> pb.SegmentationRules:
        """The wire form."""
        msg = pb.SegmentationRules(
            max_chars_per_line=self.max_chars_per_line,
            max_lines=self.max_lines,
            max_chars_per_second=self.max_chars_per_second,
        )
        msg.min_duration.CopyFrom(seconds_to_duration(self.min_duration))
        msg.max_duration.CopyFrom(seconds_to_duration(self.max_duration))
        msg.min_gap.CopyFrom(seconds_to_duration(self.min_gap))
        return msg

    @classmethod
    def from_proto(cls, msg: pb.SegmentationRules) -> SegmentationRules:
        """Rules from the wire; zero (unset) fields take the defaults, negative ones are refused."""
        d = cls()
        if msg.max_chars_per_line < 0 or msg.max_lines < 0 or msg.max_chars_per_second < 0:
            raise InvalidInput(
                "segmentation rules must not be negative; leave a field 0 for its default"
            )

        def secs(
            field_name: Literal["min_duration", "max_duration", "min_gap"], default: float
        ) -> float:
            if not msg.HasField(field_name):
                return default
            value = duration_to_seconds(getattr(msg, field_name))
            if value < 0:
                raise InvalidInput(f"rules.{field_name} is negative; use a positive duration")
            return value or default

        return cls(
            max_chars_per_line=msg.max_chars_per_line or d.max_chars_per_line,
            max_lines=msg.max_lines or d.max_lines,
            max_chars_per_second=msg.max_chars_per_second or d.max_chars_per_second,
            min_duration=secs("min_duration", d.min_duration),
            max_duration=secs("max_duration", d.max_duration),
            min_gap=secs("min_gap", d.min_gap),
        )


def validate_words(words: Sequence[Word]) -> None:
    """Refuse word timings that cannot be captioned, saying which word and what to fix."""
    if not words:
        raise InvalidInput("no words given; send at least one word with start and end times")
    prev_start = -math.inf
    for i, w in enumerate(words):
        label = f"word {i} ({w.text!r})"
        if not w.text.strip():
            raise InvalidInput(f"{label} has no text; drop empty words")
        if any(c in w.text for c in "\r\n"):
            raise InvalidInput(f"{label} contains a line break; send one word per entry")
        if not (math.isfinite(w.start) and math.isfinite(w.end)):
            raise InvalidInput(f"{label} has a time that is not a finite number")
        if w.start < 0:
            raise InvalidInput(f"{label} starts at {w.start:g} s; times must not be negative")
        if w.end < w.start:
            raise InvalidInput(
                f"{label} ends at {w.end:g} s, before it starts at {w.start:g} s; "
                "swap or fix its times"
            )
        if w.start < prev_start:
            raise InvalidInput(
                f"{label} starts at {w.start:g} s, before the previous word "
                f"({prev_start:g} s); words must be in time order"
            )
        prev_start = w.start
