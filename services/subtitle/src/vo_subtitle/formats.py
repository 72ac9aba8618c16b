"""Subtitle files: writers and readers for SRT, WebVTT and ASS, with format detection.

Writers round times to the format's precision (milliseconds for SRT and WebVTT, centiseconds
for ASS) so a file read back gives the same times to that precision. The ASS output is styled
for a vertical 1080x1920 frame; with ``karaoke`` every word carries a ``\\k`` tag with its
duration in centiseconds, so players highlight each word as it is spoken.

Readers are small hand-written parsers: a malformed file is refused with
:class:`~vo_core.errors.InvalidInput` naming the line, e.g. ``line 7: bad timestamp
'00:00:0x,000'``, rather than silently dropping cues.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from enum import Enum

from vo_core.errors import InvalidInput

from vo_subtitle.model import Cue, Word


class SubtitleFormat(Enum):
    """A subtitle file format, named by its usual file extension."""

    SRT = "srt"
    VTT = "vtt"
    ASS = "ass"

    @classmethod
    def from_extension(cls, name: str) -> SubtitleFormat:
        """The format of a file name such as ``out.vtt``; InvalidInput for anything else."""
        ext = name.rsplit(".", 1)[-1].lower() if "." in name else ""
        aliases = {
            "srt": cls.SRT,
            "vtt": cls.VTT,
            "webvtt": cls.VTT,
            "ass": cls.ASS,
            "ssa": cls.ASS,
        }
        if ext not in aliases:
            raise InvalidInput(
                f"cannot tell the subtitle format of {name!r}; end the name in .srt, .vtt or .ass"
            )
        return aliases[ext]


# ---------------------------------------------------------------------------------------------
# Writing


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))


def _clock(ms: int, sep: str) -> str:
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _ass_clock(cs: int) -> str:
    h, rest = divmod(cs, 360_000)
    m, rest = divmod(rest, 6000)
    s, cs = divmod(rest, 100)
    return f"{h:d}:{m:02d}:{s:02d}.{cs:02d}"


def _cs(seconds: float) -> int:
    return max(0, round(seconds * 100))


def _check_cues(cues: Sequence[Cue]) -> None:
    for n, cue in enumerate(cues):
        if cue.end < cue.start:
            raise InvalidInput(
                f"cue {n} ends at {cue.end:g} s, before it starts at {cue.start:g} s; fix its times"
            )
        if not any(line.strip() for line in cue.lines):
            raise InvalidInput(f"cue {n} has no text; drop it or give it lines")


def _clean_lines(cue: Cue) -> list[str]:
    # A blank line inside a cue would end the cue in SRT and WebVTT, so drop it.
    return [line.strip() for line in cue.lines if line.strip()]


def write_srt(cues: Sequence[Cue]) -> str:
    """SubRip text: numbered cues, ``HH:MM:SS,mmm`` times."""
    _check_cues(cues)
    blocks = []
    for n, cue in enumerate(cues, start=1):
        start, end = _ms(cue.start), _ms(cue.end)
        text = "\n".join(_clean_lines(cue))
        blocks.append(f"{n}\n{_clock(start, ',')} --> {_clock(end, ',')}\n{text}\n")
    return "\n".join(blocks)


def write_vtt(cues: Sequence[Cue]) -> str:
    """WebVTT text: ``HH:MM:SS.mmm`` times, ``&``, ``<`` and ``>`` escaped."""
    _check_cues(cues)
    blocks = ["WEBVTT\n"]
    for n, cue in enumerate(cues, start=1):
        start, end = _ms(cue.start), _ms(cue.end)
        text = "\n".join(html.escape(line, quote=False) for line in _clean_lines(cue))
        blocks.append(f"{n}\n{_clock(start, '.')} --> {_clock(end, '.')}\n{text}\n")
    return "\n".join(blocks)


ASS_PLAY_RES = (1080, 1920)
# Colours are &HAABBGGRR. With \k, text is drawn in SecondaryColour until its word is reached
# and in PrimaryColour after, so the highlight (yellow) is primary and the rest (white) is
# secondary. MarginV lifts captions above the caption/UI band short-form apps draw at the bottom.
_ASS_HEADER = """[Script Info]
; Written by vo
ScriptType: v4.00+
PlayResX: {w}
PlayResY: {h}
WrapStyle: 2
ScaledBorderAndShadow: yes
YCbCr Matrix: TV.709

[V4+ Styles]
Format: Name, Fontname, Fontsize, PrimaryColour, SecondaryColour, OutlineColour, BackColour, Bold, Italic, Underline, StrikeOut, ScaleX, ScaleY, Spacing, Angle, BorderStyle, Outline, Shadow, Alignment, MarginL, MarginR, MarginV, Encoding
Style: Default,Arial,72,{primary},&H00FFFFFF,&H00000000,&H80000000,-1,0,0,0,100,100,0,0,1,5,2,2,60,60,420,1

[Events]
Format: Layer, Start, End, Style, Name, MarginL, MarginR, MarginV, Effect, Text
"""


def _ass_escape(text: str) -> str:
    # Braces open override blocks and backslashes start tags; neither has a portable escape.
    return text.replace("\\", "\u29f5").replace("{", "(").replace("}", ")")


def _karaoke_text(cue: Cue) -> str | None:
    """The cue's lines with a ``{\\kNN}`` before each word, or None when words do not match.

    Durations are differences of rounded cumulative times, so rounding never drifts: word k
    starts exactly at round(start_k) centiseconds into the cue when read back.
    """
    words = list(cue.words)
    tokens = [tok for line in cue.lines for tok in line.split()]
    if not words or [w.text.strip() for w in words] != tokens:
        return None
    t0 = _cs(cue.start)
    # Each word's highlight runs from its start to the next word's start (the last: its end).
    marks = [_cs(w.start) - t0 for w in words] + [_cs(words[-1].end) - t0]
    marks = [max(0, m) for m in marks]
    for k in range(1, len(marks)):
        marks[k] = max(marks[k], marks[k - 1])
    parts: list[str] = []
    if marks[0] > 0:
        parts.append(f"{{\\k{marks[0]}}}")
    k = 0
    lines_out: list[str] = []
    for line in cue.lines:
        segs = []
        for _tok in line.split():
            segs.append(f"{{\\k{marks[k + 1] - marks[k]}}}{_ass_escape(words[k].text.strip())}")
            k += 1
        lines_out.append(" ".join(segs))
    return "".join(parts) + "\\N".join(lines_out)


def write_ass(cues: Sequence[Cue], *, karaoke: bool = False) -> str:
    """Advanced SubStation Alpha for a 1080x1920 frame; ``karaoke`` adds per-word ``\\k`` tags."""
    _check_cues(cues)
    primary = "&H0000FFFF" if karaoke else "&H00FFFFFF"
    out = [_ASS_HEADER.format(w=ASS_PLAY_RES[0], h=ASS_PLAY_RES[1], primary=primary)]
    for cue in cues:
        text = _karaoke_text(cue) if karaoke else None
        if text is None:
            text = "\\N".join(_ass_escape(line) for line in _clean_lines(cue))
        start, end = _cs(cue.start), _cs(cue.end)
        out.append(f"Dialogue: 0,{_ass_clock(start)},{_ass_clock(end)},Default,,0,0,0,,{text}\n")
    return "".join(out)


def write(cues: Sequence[Cue], fmt: SubtitleFormat, *, karaoke: bool = False) -> str:
    """The file text of ``cues`` in ``fmt``."""
    if fmt is SubtitleFormat.SRT:
        return write_srt(cues)
    if fmt is SubtitleFormat.VTT:
        return write_vtt(cues)
    return write_ass(cues, karaoke=karaoke)


# ---------------------------------------------------------------------------------------------
# Reading

_SRT_TIME = re.compile(r"^(\d+):([0-5]\d):([0-5]\d)[,.](\d{1,3})$")
_VTT_TIME = re.compile(r"^(?:(\d+):)?([0-5]\d):([0-5]\d)\.(\d{3})$")
_ASS_TIME = re.compile(r"^(\d+):([0-5]?\d):([0-5]?\d)(?:\.(\d{1,3}))?$")
_ARROW = re.compile(r"\s*-->\s*")
_TAG = re.compile(r"<[^>]*>")
_ASS_BLOCK = re.compile(r"\{([^}]*)\}")
_ASS_K = re.compile(r"\\(?:k|K|kf|ko)(\d+(?:\.\d+)?)")


def _bad(lineno: int, what: str) -> InvalidInput:
    return InvalidInput(f"line {lineno}: {what}")


def _parse_time(text: str, pattern: re.Pattern[str], lineno: int) -> float:
    m = pattern.match(text.strip())
    if not m:
        raise _bad(lineno, f"bad timestamp {text.strip()!r}")
    h, mi, s, frac = m.groups()
    frac = frac or "0"
    return int(h or 0) * 3600 + int(mi) * 60 + int(s) + int(frac) / 10 ** len(frac)


def _timing_line(line: str, pattern: re.Pattern[str], lineno: int) -> tuple[float, float]:
    parts = _ARROW.split(line.strip(), maxsplit=1)
    if len(parts) != 2:
        raise _bad(lineno, f"expected 'start --> end', got {line.strip()!r}")
    start = _parse_time(parts[0], pattern, lineno)
    # WebVTT cue settings follow the end time after whitespace.
    end = _parse_time(parts[1].split()[0] if parts[1].split() else "", pattern, lineno)
    if end < start:
        raise _bad(lineno, f"cue ends ({parts[1].split()[0]}) before it starts ({parts[0]})")
    return start, end


def _blocks(lines: Sequence[str], first: int = 0) -> list[tuple[int, list[str]]]:
    """Groups of non-blank lines with the 1-based number of each group's first line."""
    blocks: list[tuple[int, list[str]]] = []
    current: list[str] = []
    start = 0
    for k in range(first, len(lines)):
        if lines[k].strip():
            if not current:
                start = k + 1
            current.append(lines[k])
        elif current:
            blocks.append((start, current))
            current = []
    if current:
        blocks.append((start, current))
    return blocks


def _split_lines(content: str) -> list[str]:
    return content.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")


def read_srt(content: str) -> list[Cue]:
    """Cues of a SubRip file; tags such as ``<i>`` are removed from the text."""
    cues: list[Cue] = []
    for lineno, block in _blocks(_split_lines(content)):
        if "-->" in block[0]:
            timing_at = 0  # some writers leave the cue number out
        else:
            if not block[0].strip().isdigit():
                raise _bad(lineno, f"expected a cue number, got {block[0].strip()!r}")
            if len(block) < 2:
                raise _bad(lineno + 1, "expected a 'start --> end' line after the cue number")
            timing_at = 1
        start, end = _timing_line(block[timing_at], _SRT_TIME, lineno + timing_at)
        text = [_TAG.sub("", line).strip() for line in block[timing_at + 1 :]]
        cues.append(Cue(lines=tuple(t for t in text if t), start=start, end=end))
    if not cues:
        raise InvalidInput("line 1: the SRT file has no cues")
    return cues


def read_vtt(content: str) -> list[Cue]:
    """Cues of a WebVTT file; NOTE, STYLE and REGION blocks and inline tags are skipped."""
    lines = _split_lines(content)
    if not lines[0].startswith("WEBVTT"):
        raise _bad(1, f"a WebVTT file starts with 'WEBVTT', not {lines[0][:20]!r}")
    cues: list[Cue] = []
    blocks = _blocks(lines, first=1)
    for n, (lineno, block) in enumerate(blocks):
        head = block[0].strip()
        if n == 0 and "-->" not in head and lineno == 2:
            continue  # header metadata lines directly under WEBVTT
        if head.startswith(("NOTE", "STYLE", "REGION")) and "-->" not in head:
            continue
        timing_at = 0 if "-->" in block[0] else 1
        if timing_at >= len(block) or "-->" not in block[timing_at]:
            raise _bad(lineno + timing_at, f"expected 'start --> end', got {head!r}")
        start, end = _timing_line(block[timing_at], _VTT_TIME, lineno + timing_at)
        text = [html.unescape(_TAG.sub("", line)).strip() for line in block[timing_at + 1 :]]
        cues.append(Cue(lines=tuple(t for t in text if t), start=start, end=end))
    return cues


def _ass_text(raw: str, start: float) -> tuple[tuple[str, ...], tuple[Word, ...]]:
    """Lines and karaoke words of an ASS Dialogue text field."""
    words: list[Word] = []
    # Walk the text: override blocks advance the karaoke clock, plain text is collected.
    lines: list[str] = []
    current = ""
    clock = start
    pending: float | None = None  # duration of the \k that precedes the next syllable
    pos = 0
    plain = raw.replace("\\N", "\n").replace("\\n", "\n").replace("\\h", "\u00a0")
    for m in [*_ASS_BLOCK.finditer(plain), None]:
        chunk = plain[pos : m.start() if m else len(plain)]
        if chunk:
            if pending is not None:
                text = chunk.strip()
                if text:
                    words.append(Word(text=text, start=clock, end=clock + pending))
                clock += pending
                pending = None
            current += chunk
        if m is None:
            break
        pos = m.end()
        for k in _ASS_K.finditer(m.group(1)):
            if pending is not None:  # a \k with no text: a pause before the next word
                clock += pending
            pending = float(k.group(1)) / 100
    lines = [line.strip().replace("\u00a0", " ") for line in current.split("\n")]
    return tuple(line for line in lines if line), tuple(words)


def read_ass(content: str) -> list[Cue]:
    """Cues of an ASS/SSA file, with words from karaoke ``\\k`` tags when present."""
    lines = _split_lines(content)
    section = ""
    fields: list[str] | None = None
    cues: list[Cue] = []
    saw_events = False
    for k, line in enumerate(lines, start=1):
        s = line.strip()
        if not s or s.startswith(";"):
            continue
        if s.startswith("[") and s.endswith("]"):
            section = s.lower()
            saw_events = saw_events or section == "[events]"
            continue
        if section != "[events]":
            continue
        key, sep, value = s.partition(":")
        if not sep:
            raise _bad(k, f"expected 'Key: value' in [Events], got {s[:40]!r}")
        key = key.strip().lower()
        if key == "format":
            fields = [f.strip().lower() for f in value.split(",")]
            missing = {"start", "end", "text"} - set(fields)
            if missing:
                raise _bad(k, f"the Format line lacks {', '.join(sorted(missing))}")
            if fields[-1] != "text":
                raise _bad(k, "Text must be the last field of the Format line")
            continue
        if key != "dialogue":
            continue  # Comment, Picture, Sound, Movie, Command lines carry no cue
        if fields is None:
            raise _bad(k, "a Dialogue line comes before the [Events] Format line")
        values = value.lstrip().split(",", len(fields) - 1)
        if len(values) != len(fields):
            raise _bad(k, f"expected {len(fields)} comma-separated fields, got {len(values)}")
        row = dict(zip(fields, values, strict=True))
        start = _parse_time(row["start"], _ASS_TIME, k)
        end = _parse_time(row["end"], _ASS_TIME, k)
        if end < start:
            raise _bad(
                k, f"cue ends ({row['end'].strip()}) before it starts ({row['start'].strip()})"
            )
        text_lines, words = _ass_text(row["text"], start)
        cues.append(Cue(lines=text_lines, start=start, end=end, words=words))
    if not saw_events:
        raise InvalidInput(f"line {len(lines)}: the ASS file has no [Events] section")
    cues.sort(key=lambda c: (c.start, c.end))  # ASS allows events in any order
    return cues


def detect(content: str) -> SubtitleFormat:
    """The format of subtitle text, from its first meaningful line."""
    lines = _split_lines(content)
    for k, line in enumerate(lines, start=1):
        s = line.strip()
        if not s:
            continue
        if s.startswith("WEBVTT"):
            return SubtitleFormat.VTT
        if s.lower() in ("[script info]", "[v4+ styles]", "[v4 styles]", "[events]"):
            return SubtitleFormat.ASS
        if s.isdigit() or "-->" in s:
            return SubtitleFormat.SRT
        raise _bad(
            k,
            f"cannot tell the subtitle format from {s[:40]!r}; expected 'WEBVTT', "
            "'[Script Info]' or an SRT cue number",
        )
    raise InvalidInput("line 1: the subtitle file is empty")


def read(content: str, fmt: SubtitleFormat | None = None) -> tuple[list[Cue], SubtitleFormat]:
    """Cues of subtitle text in ``fmt``, detected from the content when None."""
    fmt = fmt or detect(content)
    if fmt is SubtitleFormat.SRT:
        return read_srt(content), fmt
    if fmt is SubtitleFormat.VTT:
        return read_vtt(content), fmt
    return read_ass(content), fmt
