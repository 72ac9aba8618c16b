"""Burned-in captions: cues drawn once with Pillow, blended into yuv420p frames with numpy.

PyAV's bundled FFmpeg has no drawtext/subtitles/ass filters, so captions are ours. The
renderer calls :meth:`CaptionTrack.apply` once per output frame, after crop and scale, with
the frame's output time in seconds::

    track = CaptionTrack(cues_from_proto(spec.cues), style_from_proto(spec), 1080, 1920)
    for frame in frames:                     # yuv420p, output size
        track.apply(frame, frame.time)       # in place, only over the caption's box
        stream.encode(frame)

How it stays cheap. Each distinct caption image (a cue, and in karaoke the word being
spoken) is drawn once as RGBA and converted once into what blending needs: its box in the
frame, and per pixel ``256 - alpha`` and the premultiplied Y, U and V of the caption, at luma
and at chroma (half) resolution, as uint16 arrays. A frame then costs three small
multiply-add-shift passes over the box, no per-pixel Python and no colour conversion.

Colour. Caption colours are converted to Y'CbCr with the BT.709 matrix, limited range
(Y 16-235, Cb/Cr 16-240): what an HD yuv420p frame from a camera or phone holds, and what
players assume for untagged HD H.264 such as libx264 writes by default. Pass
``matrix="bt601"`` for SD outputs. Full-range (``yuvj420p``) frames are refused.

Layout. Captions keep to the platforms' safe area (:meth:`CaptionTrack.safe_area`): clear of
the bottom UI band (caption, music, progress bar), the right-hand button column and a left
margin. A cue is wrapped to at most two balanced lines, centred in the safe area, its block
standing on the top of the bottom band, i.e. in the lower third of a 9:16 frame. White
bold text, a black outline and a soft drop shadow keep it legible on any background.
"""

from __future__ import annotations

import math
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont
from vo.common.v1 import common_pb2
from vo.events import duration_to_seconds
from vo_core.errors import InvalidInput, NotFound

if TYPE_CHECKING:
    import av
    from vo.video.v1 import video_service_pb2

Font = ImageFont.FreeTypeFont
Planes = tuple[np.ndarray, np.ndarray, np.ndarray]

# Safe area, as fractions of the frame. TikTok, Reels and Shorts put the caption, music and
# progress bar over about the bottom fifth and a like/comment/share column over about the
# right eighth; text there is hidden behind the UI.
SAFE_LEFT = 0.06
SAFE_RIGHT = 0.12
SAFE_TOP = 0.10
SAFE_BOTTOM = 0.20

# A cue that does not fit at the chosen size is drawn smaller, down to this fraction, before
# it is refused.
MIN_FONT_SCALE = 0.6

# Outline, shadow and line spacing, as fractions of the font size.
STROKE = 0.08
SHADOW_OFFSET = 0.05
SHADOW_BLUR = 0.06
SHADOW_OPACITY = 0.6
LINE_GAP = 0.05

# Bold system fonts tried, in order, when no font_path is given. DejaVu and Noto cover Latin,
# Greek and Cyrillic; Pillow's built-in font (the last resort) covers ASCII only.
SYSTEM_FONTS = (
    "DejaVuSans-Bold.ttf",
    "NotoSans-Bold.ttf",
    "LiberationSans-Bold.ttf",
)
FONT_DIRS = ("/usr/share/fonts", "/usr/local/share/fonts", "/Library/Fonts")

# Y'CbCr coefficients (Kr, Kb) of the matrices we write.
MATRICES = {"bt709": (0.2126, 0.0722), "bt601": (0.299, 0.114)}

_COLOR = re.compile(r"#([0-9a-fA-F]{6})")


@dataclass(frozen=True, slots=True)
class CaptionWord:
    """One timed word, in seconds of output time."""

    text: str
    start: float
    end: float


@dataclass(frozen=True, slots=True)
class CaptionCue:
    """One caption, in seconds of output time.

    ``lines`` are drawn as given; when ``None`` the words' text is wrapped to at most two
    lines. ``words`` drive the karaoke highlight and may be empty; when ``lines`` are given,
    each word must appear in them, in order.
    """

    lines: tuple[str, ...] | None
    start: float
    end: float
    words: tuple[CaptionWord, ...] = ()


@dataclass(frozen=True, slots=True)
class CaptionStyle:
    """How captions look; mirrors ``vo.video.v1.CaptionSpec``.

    ``font_size`` is in output pixels (the font's em size); 0 picks one from the output
    width. Colours are ``"#RRGGBB"``; a bad one raises :class:`InvalidInput` here.
    """

    style: Literal["plain", "karaoke"] = "karaoke"
    font_path: str | None = None
    font_size: int = 0
    text_color: str = "#FFFFFF"
    highlight_color: str = "#FFE000"

    def __post_init__(self) -> None:
        if self.style not in ("plain", "karaoke"):
            raise InvalidInput(
                f"captions.style: {self.style!r} is not a style; use 'plain' or 'karaoke'"
            )
        if self.font_size < 0:
            raise InvalidInput(
                f"captions.font_size: {self.font_size} is negative; use 0 for automatic"
            )
        parse_color(self.text_color, "captions.text_color")
        parse_color(self.highlight_color, "captions.highlight_color")


@dataclass(frozen=True, eq=False, slots=True)
class Overlay:
    """One caption image, ready to blend: a box in the frame and its uint16 planes.

    The box ``[y0:y1, x0:x1]`` is in luma pixels with even corners, so the chroma box is
    exactly half. ``inv_*`` hold ``256 - alpha`` (alpha scaled to 0..256), ``pre_*`` hold
    ``value * alpha + 128`` (premultiplied, with the rounding bias), so a plane blends as
    ``(plane * inv + pre) >> 8``: alpha 0 leaves the pixel unchanged, alpha 256 writes the
    caption's value exactly, and nothing overflows 16 bits.
    """

    key: tuple[int, int]  # (cue index, highlighted word index or -1)
    x0: int
    y0: int
    x1: int
    y1: int
    inv_y: np.ndarray
    pre_y: np.ndarray
    inv_c: np.ndarray
    pre_u: np.ndarray
    pre_v: np.ndarray


@dataclass(frozen=True, slots=True)
class _Layout:
    """A cue's text, its lines and its words, as character ranges of ``text``."""

    text: str
    lines: tuple[tuple[int, int], ...]
    spans: tuple[tuple[int, int], ...]  # one per timed word
    font_size: int


@dataclass(frozen=True, eq=False, slots=True)
class _CueImage:
    """A cue drawn once: its box, and what every highlight state of it shares.

    ``cover`` is how much of each pixel the fill colour covers, ``alpha`` how opaque the
    whole image is (fill, outline and shadow), both 0..1 over the box, and halved in
    ``*_c`` for chroma. ``pre`` holds the plain state's premultiplied Y, U and V.
    ``word_boxes`` are each timed word's glyph boxes, (row0, row1, col0, col1) in the box,
    even, one per line the word is on.
    """

    x0: int
    y0: int
    x1: int
    y1: int
    cover: np.ndarray
    alpha: np.ndarray
    cover_c: np.ndarray
    alpha_c: np.ndarray
    inv_y: np.ndarray
    inv_c: np.ndarray
    pre: tuple[np.ndarray, np.ndarray, np.ndarray]
    word_boxes: tuple[tuple[tuple[int, int, int, int], ...], ...]


@dataclass(frozen=True, slots=True)
class _Geometry:
    """Where a cue's lines go on its canvas, at one font size."""

    width: int  # canvas, even
    height: int  # canvas, even
    line_widths: tuple[float, ...]
    inner_width: float
    ascent: int
    line_height: int
    pad: int
    stroke: int
    shadow_offset: int
    shadow_blur: float


def parse_color(value: str, field_name: str) -> tuple[int, int, int]:
    """``"#RRGGBB"`` as an (r, g, b) tuple; anything else raises :class:`InvalidInput`."""
    m = _COLOR.fullmatch(value)
    if m is None:
        raise InvalidInput(f"{field_name}: {value!r} is not a color; use '#RRGGBB', e.g. '#FFE000'")
    h = m.group(1)
    return int(h[0:2], 16), int(h[2:4], 16), int(h[4:6], 16)


def _s(seconds: float) -> str:
    """Seconds as an error message shows them: '2.0 s', '1.234 s'."""
    return f"{round(seconds, 3)} s"


def cues_from_proto(cues: Iterable[common_pb2.Cue]) -> list[CaptionCue]:
    """Domain cues from ``vo.common.v1.Cue`` messages; empty ``lines`` become ``None``."""
    return [
        CaptionCue(
            lines=tuple(c.lines) or None,
            start=duration_to_seconds(c.start_offset),
            end=duration_to_seconds(c.end_offset),
            words=tuple(
                CaptionWord(
                    text=w.text,
                    start=duration_to_seconds(w.start_offset),
                    end=duration_to_seconds(w.end_offset),
                )
                for w in c.words
            ),
        )
        for c in cues
    ]


def style_from_proto(spec: video_service_pb2.CaptionSpec) -> CaptionStyle:
    """A :class:`CaptionStyle` from a ``CaptionSpec``; unset fields take the defaults."""
    defaults = CaptionStyle()
    return CaptionStyle(
        # 1 is CaptionSpec.STYLE_PLAIN; unspecified means karaoke.
        style="plain" if spec.style == 1 else "karaoke",
        font_path=spec.font_path or None,
        font_size=spec.font_size,
        text_color=spec.text_color or defaults.text_color,
        highlight_color=spec.highlight_color or defaults.highlight_color,
    )


def validate_cues(cues: Sequence[CaptionCue]) -> None:
    """Raise :class:`InvalidInput` naming the first bad cue, word or time.

    Cues must have text, times that are finite, not negative and end after they start, and
    be in order without overlapping. Words must have text and end no earlier than they
    start, in order of start.
    """
    prev_end = -math.inf
    for i, cue in enumerate(cues):
        name = f"captions.cues[{i}]"
        for label, value in (("start", cue.start), ("end", cue.end)):
            if not math.isfinite(value) or value < 0:
                raise InvalidInput(f"{name}: {label} {value} s is not a time from 0 on")
        if cue.end < cue.start:
            raise InvalidInput(f"{name}: end {_s(cue.end)} is before start {_s(cue.start)}")
        if cue.end == cue.start:
            raise InvalidInput(f"{name}: end {_s(cue.end)} equals start; a cue must last")
        if cue.start < prev_end:
            raise InvalidInput(
                f"{name} starts at {_s(cue.start)} before captions.cues[{i - 1}] ends at "
                f"{_s(prev_end)}; cues must be in order and must not overlap"
            )
        prev_end = cue.end
        has_lines = cue.lines is not None and any(line.strip() for line in cue.lines)
        if not has_lines and not any(w.text.strip() for w in cue.words):
            raise InvalidInput(f"{name}: has no text; give lines or words")
        prev_word_start = -math.inf
        for j, w in enumerate(cue.words):
            wname = f"{name}.words[{j}]"
            if not w.text.strip():
                raise InvalidInput(f"{wname}: text is empty")
            if not (math.isfinite(w.start) and math.isfinite(w.end)):
                raise InvalidInput(f"{wname}: times must be finite")
            if w.end < w.start:
                raise InvalidInput(f"{wname}: end {_s(w.end)} is before start {_s(w.start)}")
            if w.start < prev_word_start:
                raise InvalidInput(
                    f"{wname} starts at {_s(w.start)} before {name}.words[{j - 1}] starts "
                    f"at {_s(prev_word_start)}; words must be in order"
                )
            prev_word_start = w.start


@cache
def find_system_font() -> str | None:
    """The first bold system font of :data:`SYSTEM_FONTS` found under :data:`FONT_DIRS`."""
    for name in SYSTEM_FONTS:
        for root in FONT_DIRS:
            base = Path(root)
            if not base.is_dir():
                continue
            for path in sorted(base.rglob(name)):
                return str(path)
    return None


def _ycc(rgb: tuple[int, int, int], matrix: str) -> tuple[float, float, float]:
    """A colour's Y' (0..1) and Cb, Cr (-0.5..0.5) by the matrix's coefficients."""
    kr, kb = MATRICES[matrix]
    r, g, b = (c / 255.0 for c in rgb)
    luma = kr * r + (1.0 - kr - kb) * g + kb * b
    return luma, (b - luma) / (2.0 * (1.0 - kb)), (r - luma) / (2.0 * (1.0 - kr))


def _half(a: np.ndarray) -> np.ndarray:
    """2x2 box average; premultiplied values average correctly this way."""
    return 0.25 * (a[0::2, 0::2] + a[1::2, 0::2] + a[0::2, 1::2] + a[1::2, 1::2])


def _inverse(alpha: np.ndarray) -> np.ndarray:
    """``256 - alpha * 256`` as uint16: how much of the frame shows through."""
    return (256.0 - np.rint(alpha * 256.0)).astype(np.uint16)


def _fixed(pre: np.ndarray) -> np.ndarray:
    """``pre * 256 + 128`` as uint16: a premultiplied 8-bit value with the rounding bias."""
    return (np.rint(pre * 256.0).clip(0, 255 * 256) + 128.0).astype(np.uint16)


def plane_views(frame: av.VideoFrame) -> Planes:
    """Writable 2-D uint8 views of a yuv420p frame's Y, U and V planes, padding included.

    The views share the frame's memory: writing them writes the frame. Columns past the
    plane's width are line padding; slice ``[:, :plane.width]`` to ignore it.
    """
    y, u, v = (
        np.frombuffer(memoryview(p), np.uint8).reshape(p.height, p.line_size)
        for p in frame.planes[:3]
    )
    return y, u, v


def blend(planes: Planes, overlay: Overlay) -> None:
    """Blend ``overlay`` into yuv420p planes in place, touching only its box."""
    y, u, v = planes
    _blend_plane(y[overlay.y0 : overlay.y1, overlay.x0 : overlay.x1], overlay.inv_y, overlay.pre_y)
    cy0, cy1, cx0, cx1 = overlay.y0 // 2, overlay.y1 // 2, overlay.x0 // 2, overlay.x1 // 2
    _blend_plane(u[cy0:cy1, cx0:cx1], overlay.inv_c, overlay.pre_u)
    _blend_plane(v[cy0:cy1, cx0:cx1], overlay.inv_c, overlay.pre_v)


def _blend_plane(region: np.ndarray, inv: np.ndarray, pre: np.ndarray) -> None:
    # (plane * (256 - a) + value * a + 128) >> 8 in uint16; at most 255 * 256 + 128.
    acc = np.multiply(region, inv, dtype=np.uint16)
    acc += pre
    acc >>= 8
    np.copyto(region, acc, casting="unsafe")


def _wrap(text: str, font: Font, max_width: float) -> tuple[tuple[int, int], ...] | None:
    """``text`` as one line or two balanced lines no wider than ``max_width``, or None.

    Lines break at spaces; text without spaces (Chinese, Japanese) breaks between any two
    characters. Of the breaks that fit, the one with the narrowest longer line wins, and on a
    tie the shorter line goes on top, as subtitlers do.
    """
    if font.getlength(text) <= max_width:
        return ((0, len(text)),)
    breaks = [(m.start(), m.end()) for m in re.finditer(r"\s+", text)]
    if not breaks:
        breaks = [(k, k) for k in range(1, len(text))]
    best: tuple[float, bool, int, int] | None = None
    for a, b in breaks:
        w1, w2 = font.getlength(text[:a]), font.getlength(text[b:])
        if max(w1, w2) > max_width:
            continue
        cost = (max(w1, w2), w1 > w2, a, b)
        if best is None or cost < best:
            best = cost
    if best is None:
        return None
    return ((0, best[2]), (best[3], len(text)))


class CaptionTrack:
    """Every cue of a render, laid out up front and drawn on demand, for one output size.

    Construction checks everything that could fail mid-render (cue times, the font, that
    the font draws every character, that every cue fits the safe area) and raises
    :class:`InvalidInput` saying what to fix. :meth:`apply` is then cheap per frame.

    A cue is drawn with Pillow once (``draws`` counts them), on first use; each of its
    states (no word or one word highlighted) is built from that drawing once (``renders``
    counts them) by recolouring the word's box. Both are cached while their cue is current
    or just past, so a render whose time only moves forward makes each distinct image once
    and holds a few in memory (about 1 MB per state at 1080x1920). Not thread-safe: one
    track per render.

    ``use_system_font=False`` ignores system fonts when ``font_path`` is empty and uses
    Pillow's built-in font (for tests, or to get the same look on every machine).
    """

    def __init__(
        self,
        cues: Sequence[CaptionCue],
        style: CaptionStyle,
        width: int,
        height: int,
        *,
        matrix: Literal["bt709", "bt601"] = "bt709",
        use_system_font: bool = True,
    ) -> None:
        if width < 2 or height < 2:
            raise InvalidInput(f"captions: output size {width}x{height} is too small")
        if matrix not in MATRICES:
            raise ValueError(f"matrix {matrix!r} is not one of {sorted(MATRICES)}")
        validate_cues(cues)
        self.cues = tuple(cues)
        self.style = style
        self.width = width
        self.height = height
        self.matrix = matrix
        self.draws = 0  # cues drawn with Pillow so far
        self.renders = 0  # distinct overlays (cue x highlighted word) built so far
        self._ycc = (
            _ycc(parse_color(style.text_color, "captions.text_color"), matrix),
            _ycc(parse_color(style.highlight_color, "captions.highlight_color"), matrix),
        )
        self._font_path = style.font_path or (find_system_font() if use_system_font else None)
        self._fonts: dict[int, Font] = {}
        self.font_size = style.font_size or max(8, round(width / 16))
        self._check_font_covers(self.cues)
        self._layouts = [self._layout(i, cue) for i, cue in enumerate(self.cues)]
        self._starts = [cue.start for cue in self.cues]
        self._word_starts = [[w.start for w in cue.words] for cue in self.cues]
        self._images: dict[int, _CueImage] = {}
        self._cache: dict[tuple[int, int], Overlay] = {}

    # -- fonts -------------------------------------------------------------------------

    @property
    def font_name(self) -> str:
        """The font file used, or ``"Pillow built-in"``."""
        return self._font_path or "Pillow built-in"

    def _font(self, size: int) -> Font:
        font = self._fonts.get(size)
        if font is None:
            if self._font_path is None:
                # Pillow >= 10.1 with FreeType: a scalable font (Aileron) that covers ASCII.
                loaded = ImageFont.load_default(size=size)
                if not isinstance(loaded, ImageFont.FreeTypeFont):
                    raise InvalidInput(
                        "captions.font_path: Pillow here has no FreeType, so its built-in font "
                        "cannot be scaled; give a TTF/OTF font file"
                    )
                font = loaded
            else:
                path = Path(self._font_path)
                if not path.is_file():
                    raise NotFound(f"captions.font_path: {self._font_path!r} is not a file")
                try:
                    font = ImageFont.truetype(str(path), size)
                except OSError as e:
                    raise InvalidInput(
                        f"captions.font_path: {self._font_path!r} is not a TTF/OTF font ({e})"
                    ) from e
            self._fonts[size] = font
        return font

    def _check_font_covers(self, cues: Sequence[CaptionCue]) -> None:
        """Raise if the font lacks a glyph for any character of the cues.

        Pillow cannot ask a font whether it has a glyph, so each character's rendering is
        compared with that of a code point no font has, which draws the font's "missing"
        glyph (.notdef, usually an empty box).
        """
        font = self._font(self.font_size)
        chars: set[str] = set()
        for cue in cues:
            chars.update(*(cue.lines or ()), *(w.text for w in cue.words))

        def look(ch: str) -> tuple[tuple[int, int], bytes]:
            mask = font.getmask(ch)
            return mask.size, bytes(mask)

        missing_look = look("\U0010fffd")
        missing = sorted(
            ch
            for ch in chars
            # Spaces and format characters (joiners, marks of direction) draw nothing.
            if unicodedata.category(ch)[0] not in "ZC" and look(ch) == missing_look
        )
        if missing:
            shown = ", ".join(f"{ch!r} (U+{ord(ch):04X})" for ch in missing[:10])
            more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
            which = (
                "Pillow's built-in font, which covers ASCII only"
                if self._font_path is None
                else self._font_path
            )
            raise InvalidInput(
                f"captions: the font ({which}) cannot draw {shown}{more}; set "
                "captions.font_path to a TTF/OTF font that covers them (e.g. Noto Sans CJK "
                "for Chinese or Japanese)"
            )

    # -- layout ------------------------------------------------------------------------

    def safe_area(self) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of the region captions stay in, even coordinates, end exclusive."""

        def even(v: float) -> int:
            return int(v) // 2 * 2

        w, h = self.width, self.height
        return (
            even(math.ceil(w * SAFE_LEFT) + 1),
            even(math.ceil(h * SAFE_TOP) + 1),
            even(w * (1 - SAFE_RIGHT)),
            even(h * (1 - SAFE_BOTTOM)),
        )

    def _geometry(self, font: Font, text: str, lines: Sequence[tuple[int, int]]) -> _Geometry:
        size = font.size
        ascent, descent = font.getmetrics()
        stroke = max(2, round(size * STROKE))
        offset = max(1, round(size * SHADOW_OFFSET))
        blur = max(1.0, size * SHADOW_BLUR)
        # The outline, the shadow's offset and its blur's reach (3 sigma) stick out.
        pad = stroke + offset + math.ceil(3 * blur) + 2
        line_height = ascent + descent + round(size * LINE_GAP)
        widths = tuple(font.getlength(text[a:b]) for a, b in lines)
        inner = max(widths)
        width = math.ceil(inner) + 2 * pad
        height = line_height * len(lines) - round(size * LINE_GAP) + 2 * pad
        return _Geometry(
            width=width + width % 2,
            height=height + height % 2,
            line_widths=widths,
            inner_width=inner,
            ascent=ascent,
            line_height=line_height,
            pad=pad,
            stroke=stroke,
            shadow_offset=offset,
            shadow_blur=blur,
        )

    def _layout(self, index: int, cue: CaptionCue) -> _Layout:
        """Lines and word positions of a cue at the largest size, down to 60%, that fits."""
        name = f"captions.cues[{index}]"
        given = [line.strip() for line in cue.lines or () if line.strip()]
        if given:
            text = "\n".join(given)
            starts = [0]
            for line in given[:-1]:
                starts.append(starts[-1] + len(line) + 1)
            given_lines = tuple((s, s + len(line)) for s, line in zip(starts, given, strict=True))
            spans = []
            cursor = 0
            for j, w in enumerate(cue.words):
                word = w.text.strip()
                at = text.find(word, cursor)
                if at < 0:
                    raise InvalidInput(
                        f"{name}.words[{j}]: {word!r} is not in the cue's lines after "
                        f"{text[:cursor]!r}; words must be the lines' words, in order"
                    )
                spans.append((at, at + len(word)))
                cursor = at + len(word)
        else:
            words = [w.text.strip() for w in cue.words]
            text = " ".join(words)
            spans, cursor = [], 0
            for word in words:
                spans.append((cursor, cursor + len(word)))
                cursor += len(word) + 1

        sx0, sy0, sx1, sy1 = self.safe_area()
        low = max(8, math.ceil(self.font_size * MIN_FONT_SCALE))
        step = max(1, self.font_size // 20)
        for size in range(self.font_size, low - 1, -step):
            font = self._font(size)
            if given:
                lines: tuple[tuple[int, int], ...] | None = given_lines
            else:
                # Wrap against the width left once the outline and shadow are counted.
                pad = self._geometry(font, text, ((0, len(text)),)).pad
                lines = _wrap(text, font, sx1 - sx0 - 2 * pad - 2)
            if lines is None:
                continue
            geo = self._geometry(font, text, lines)
            if geo.width <= sx1 - sx0 and geo.height <= sy1 - sy0:
                return _Layout(text=text, lines=lines, spans=tuple(spans), font_size=size)
        shown = text.replace("\n", " / ")
        how = "its lines" if given else "two lines"
        raise InvalidInput(
            f"{name}: {shown!r} does not fit in {how} inside the {self.width}x{self.height} "
            f"safe area even at font size {low}; split it into shorter cues"
        )

    def lines_of(self, cue: int) -> tuple[str, ...]:
        """The lines cue ``cue`` is drawn as, after wrapping."""
        lay = self._layouts[cue]
        return tuple(lay.text[a:b] for a, b in lay.lines)

    def font_size_of(self, cue: int) -> int:
        """The font size cue ``cue`` is drawn at: the track's, or smaller to fit."""
        return self._layouts[cue].font_size

    # -- lookup and drawing ------------------------------------------------------------

    def overlay_at(self, t: float) -> Overlay | None:
        """The caption image to show at output time ``t`` seconds, or None."""
        i = bisect_right(self._starts, t) - 1
        if i < 0 or t >= self.cues[i].end:
            return None
        word = -1
        if self.style.style == "karaoke":
            j = bisect_right(self._word_starts[i], t) - 1
            if j >= 0 and t < self.cues[i].words[j].end:
                word = j
        key = (i, word)
        overlay = self._cache.get(key)
        if overlay is None:
            overlay = self._state(i, word)
            self._cache[key] = overlay
        return overlay

    def bbox_of(self, overlay: Overlay) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) of an overlay's box in the frame, end exclusive."""
        return overlay.x0, overlay.y0, overlay.x1, overlay.y1

    def word_bbox(self, overlay: Overlay, word: int) -> tuple[int, int, int, int]:
        """(x0, y0, x1, y1) in the frame around timed word ``word`` of the overlay's cue.

        The box holds the word's glyphs (not their outline) with a pixel or two to spare;
        a word broken across lines gives the box of its first line.
        """
        image = self._cue_image(overlay.key[0])
        r0, r1, c0, c1 = image.word_boxes[word][0]
        return image.x0 + c0, image.y0 + r0, image.x0 + c1, image.y0 + r1

    def apply(self, frame: av.VideoFrame, t: float) -> None:
        """Blend the caption shown at ``t`` seconds into a yuv420p frame, in place.

        The frame must own its pixels: a frame a filter graph passed through without
        copying (``crop`` alone, ``null``) shares the decoder's buffer, which the decoder
        may still read as a reference, so it is made writable (copied) first; frames that
        ``scale``/``reformat`` produced are already exclusive and cost nothing here.
        """
        overlay = self.overlay_at(t)
        if overlay is None:
            return
        if frame.format.name != "yuv420p":
            raise ValueError(f"captions blend into yuv420p frames, not {frame.format.name}")
        if (frame.width, frame.height) != (self.width, self.height):
            raise ValueError(
                f"frame is {frame.width}x{frame.height}, captions laid out for "
                f"{self.width}x{self.height}"
            )
        frame.make_writable()
        blend(plane_views(frame), overlay)

    def _canvas_origin(self, geo: _Geometry) -> tuple[int, int]:
        """Top-left of a cue's canvas: centred in the safe area, standing on its bottom."""
        sx0, _, sx1, sy1 = self.safe_area()
        x = ((sx0 + sx1) // 2 - geo.width // 2) // 2 * 2
        return max(sx0, min(x, sx1 - geo.width)), sy1 - geo.height

    def _cue_image(self, cue: int) -> _CueImage:
        """The cue drawn once, cached while it is current or just past."""
        image = self._images.get(cue)
        if image is None:
            # Keep the current cue and the last one, drop the rest with their states.
            keep = (*list(self._images)[-1:], cue)
            self._images = {k: v for k, v in self._images.items() if k in keep}
            self._cache = {k: v for k, v in self._cache.items() if k[0] in keep}
            image = self._images[cue] = self._draw(cue)
        return image

    def _draw(self, cue: int) -> _CueImage:
        """Draw a cue's outline, shadow and fill once, as coverage in the frame's box.

        Every word is drawn as its own piece, so each word's glyphs lie in a box no other
        piece reaches (words are apart by a space) and a highlight recolours just that
        box. Outline and fill are separate masks composited in numpy: drawing antialiased
        colour onto a transparent RGBA canvas with ImageDraw would darken the edges.
        """
        self.draws += 1
        lay = self._layouts[cue]
        font = self._font(lay.font_size)
        geo = self._geometry(font, lay.text, lay.lines)
        size = (geo.width, geo.height)
        outline, fill = Image.new("L", size), Image.new("L", size)
        d_outline, d_fill = ImageDraw.Draw(outline), ImageDraw.Draw(fill)
        boxes: list[list[tuple[int, int, int, int]]] = [[] for _ in lay.spans]
        cuts = sorted({c for span in lay.spans for c in span})
        for k, (s, e) in enumerate(lay.lines):
            x_line = geo.pad + (geo.inner_width - geo.line_widths[k]) / 2
            y = geo.pad + geo.ascent + k * geo.line_height
            edges = [s, *(c for c in cuts if s < c < e), e]
            for a, b in pairwise(edges):
                piece = lay.text[a:b]
                if not piece.strip():
                    continue
                x = x_line + font.getlength(lay.text[s:a])
                d_outline.text(
                    (x, y),
                    piece,
                    font=font,
                    anchor="ls",
                    fill=255,
                    stroke_width=geo.stroke,
                    stroke_fill=255,
                )
                d_fill.text((x, y), piece, font=font, anchor="ls", fill=255)
                left, top, right, bottom = font.getbbox(piece, anchor="ls")
                # Antialiasing may reach a pixel past the box; even corners for chroma.
                box = (
                    int(y + top) - 2,
                    math.ceil(y + bottom) + 2,
                    int(x + left) - 2,
                    math.ceil(x + right) + 2,
                )
                for j, (ws, we) in enumerate(lay.spans):
                    if ws <= a and b <= we:
                        boxes[j].append(box)

        shadow = Image.new("L", size)
        shadow.paste(outline, (geo.shadow_offset, geo.shadow_offset))
        shadow = shadow.filter(ImageFilter.GaussianBlur(geo.shadow_blur))

        def f32(im: Image.Image) -> np.ndarray:
            return np.asarray(im, dtype=np.float32) / 255.0

        # Black shadow under a black outline under the fill: "over", so the fill colour
        # weighs `cover` and the whole image `alpha`.
        cover = f32(fill)
        black = f32(outline)
        black += f32(shadow) * SHADOW_OPACITY * (1.0 - black)
        alpha = cover + black * (1.0 - cover)

        # Crop to the pixels the image touches, at even coordinates for the chroma planes.
        rows = np.flatnonzero(alpha.max(axis=1) >= 0.5 / 256)
        cols = np.flatnonzero(alpha.max(axis=0) >= 0.5 / 256)
        r0, r1 = int(rows[0]) // 2 * 2, min(alpha.shape[0], (int(rows[-1]) + 2) // 2 * 2)
        c0, c1 = int(cols[0]) // 2 * 2, min(alpha.shape[1], (int(cols[-1]) + 2) // 2 * 2)
        cover, alpha = cover[r0:r1, c0:c1], alpha[r0:r1, c0:c1]
        cover_c, alpha_c = _half(cover), _half(alpha)

        def crop(box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
            top, bottom, left, right = box
            return (
                max(0, (top - r0) // 2 * 2),
                min(r1 - r0, (bottom - r0 + 1) // 2 * 2),
                max(0, (left - c0) // 2 * 2),
                min(c1 - c0, (right - c0 + 1) // 2 * 2),
            )

        bx0, by0 = self._canvas_origin(geo)
        image = _CueImage(
            x0=bx0 + c0,
            y0=by0 + r0,
            x1=bx0 + c1,
            y1=by0 + r1,
            cover=cover,
            alpha=alpha,
            cover_c=cover_c,
            alpha_c=alpha_c,
            inv_y=_inverse(alpha),
            inv_c=_inverse(alpha_c),
            pre=self._premultiplied(cover, alpha, cover_c, alpha_c, self._ycc[0]),
            word_boxes=tuple(tuple(crop(b) for b in bs) for bs in boxes),
        )
        return image

    def _premultiplied(
        self,
        cover: np.ndarray,
        alpha: np.ndarray,
        cover_c: np.ndarray,
        alpha_c: np.ndarray,
        ycc: tuple[float, float, float],
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``value * alpha * 256 + 128`` of Y (luma size), U and V (chroma size), uint16.

        Over black, the premultiplied colour is the fill colour times its cover, so each
        plane is the black level times alpha plus the colour's offset from it times cover.
        """
        luma, cb, cr = ycc
        y = 16.0 * alpha + 219.0 * luma * cover
        u = 128.0 * alpha_c + 224.0 * cb * cover_c
        v = 128.0 * alpha_c + 224.0 * cr * cover_c
        return _fixed(y), _fixed(u), _fixed(v)

    def _state(self, cue: int, word: int) -> Overlay:
        """The overlay of a cue with ``word`` highlighted (-1: none).

        Alpha is the same in every state, so the states share ``inv_*``; a highlight
        copies the plain state's values and recolours the word's box.
        """
        self.renders += 1
        image = self._cue_image(cue)
        pre_y, pre_u, pre_v = (p.copy() for p in image.pre) if word >= 0 else image.pre
        if word >= 0:
            for r0, r1, c0, c1 in image.word_boxes[word]:
                h0, h1, w0, w1 = r0 // 2, r1 // 2, c0 // 2, c1 // 2
                y, u, v = self._premultiplied(
                    image.cover[r0:r1, c0:c1],
                    image.alpha[r0:r1, c0:c1],
                    image.cover_c[h0:h1, w0:w1],
                    image.alpha_c[h0:h1, w0:w1],
                    self._ycc[1],
                )
                pre_y[r0:r1, c0:c1] = y
                pre_u[h0:h1, w0:w1] = u
                pre_v[h0:h1, w0:w1] = v
        return Overlay(
            key=(cue, word),
            x0=image.x0,
            y0=image.y0,
            x1=image.x1,
            y1=image.y1,
            inv_y=image.inv_y,
            pre_y=pre_y,
            inv_c=image.inv_c,
            pre_u=pre_u,
            pre_v=pre_v,
        )


__all__ = [
    "CaptionCue",
    "CaptionStyle",
    "CaptionTrack",
    "CaptionWord",
    "Overlay",
    "blend",
    "cues_from_proto",
    "find_system_font",
    "parse_color",
    "plane_views",
    "style_from_proto",
    "validate_cues",
]
