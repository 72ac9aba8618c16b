"""Burned-in captions, checked on real pixels of 1080x1920 yuv420p frames.

Frames are converted back to RGB by swscale with the BT.709 matrix, an independent check of
the Y'CbCr values the caption module writes.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import av
import numpy as np
import pytest
from google.protobuf import duration_pb2
from vo.common.v1 import common_pb2
from vo.video.v1 import video_service_pb2
from vo_core.errors import InvalidInput, NotFound
from vo_video.captions import (
    CaptionCue,
    CaptionStyle,
    CaptionTrack,
    CaptionWord,
    cues_from_proto,
    find_system_font,
    plane_views,
    style_from_proto,
    validate_cues,
)

W, H = 1080, 1920
DARK = (24, 32, 40)


def dark_frame() -> av.VideoFrame:
    """A flat dark-grey yuv420p frame (BT.709, limited range), as the renderer holds."""
    rgb = np.empty((H, W, 3), np.uint8)
    rgb[:] = DARK
    frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
    return frame.reformat(format="yuv420p", dst_colorspace="ITU709")


def copy_frame(frame: av.VideoFrame) -> av.VideoFrame:
    """A deep copy of a yuv420p frame (reformat to the same format returns the same frame)."""
    out = av.VideoFrame(frame.width, frame.height, "yuv420p")
    for src, dst in zip(plane_views(frame), plane_views(out), strict=True):
        dst[:] = src
    return out


def to_rgb(frame: av.VideoFrame) -> np.ndarray:
    return frame.reformat(format="rgb24", src_colorspace="ITU709").to_ndarray()


def yellowish(rgb: np.ndarray) -> np.ndarray:
    """Pixels close to the default highlight colour #FFE000."""
    r, g, b = (rgb[..., k].astype(int) for k in range(3))
    return (r > 200) & (g > 170) & (b < 90) & (r - b > 150)


def words(text: str, start: float, step: float = 0.5) -> tuple[CaptionWord, ...]:
    """Timed words, one every ``step`` seconds, each spoken for 90% of its step."""
    return tuple(
        CaptionWord(w, start + i * step, start + i * step + 0.9 * step)
        for i, w in enumerate(text.split())
    )


# Two karaoke cues: the first starts 0.5 s before its first word is spoken.
CUES = [
    CaptionCue(None, 1.0, 4.0, words("Captions make short videos", 1.5)),
    CaptionCue(None, 4.0, 6.0, words("easy to follow", 4.0)),
]


@pytest.fixture(scope="module")
def base() -> av.VideoFrame:
    return dark_frame()


def applied(track: CaptionTrack, base: av.VideoFrame, t: float) -> av.VideoFrame:
    frame = copy_frame(base)
    track.apply(frame, t)
    return frame


def test_karaoke_highlights_the_spoken_word_only(base: av.VideoFrame) -> None:
    track = CaptionTrack(CUES, CaptionStyle(), W, H)
    spoken = 2.1  # "make", word 1 of cue 0, is spoken from 2.0 to 2.45 s
    overlay = track.overlay_at(spoken)
    assert overlay is not None and overlay.key == (0, 1)
    x0, y0, x1, y1 = track.word_bbox(overlay, 1)

    rgb = to_rgb(applied(track, base, spoken))
    hit = yellowish(rgb)
    assert hit[y0:y1, x0:x1].sum() > 200, "the spoken word is not yellow"
    outside = hit.copy()
    outside[y0:y1, x0:x1] = False
    assert outside.sum() == 0, "yellow outside the spoken word"
    # The other words are white.
    ox0, oy0, ox1, oy1 = track.word_bbox(overlay, 2)
    assert (rgb[oy0:oy1, ox0:ox1].min(axis=2) > 230).sum() > 200

    # Before the word is spoken: the cue shows (1.0 s on), nothing is highlighted.
    before = to_rgb(applied(track, base, 1.2))
    assert yellowish(before).sum() == 0
    assert (before[y0:y1, x0:x1].min(axis=2) > 230).sum() > 200, "the word is not drawn white"
    # The next word spoken moves the highlight.
    later = yellowish(to_rgb(applied(track, base, 2.6)))
    assert later[y0:y1, x0:x1].sum() == 0
    assert later.sum() > 200


def test_highlight_color_round_trips_through_bt709(base: av.VideoFrame) -> None:
    """The solid inside of highlighted glyphs comes back as #FFE000 through swscale."""
    track = CaptionTrack(CUES, CaptionStyle(), W, H)
    overlay = track.overlay_at(2.1)
    assert overlay is not None
    x0, y0, x1, y1 = track.word_bbox(overlay, 1)
    box = to_rgb(applied(track, base, 2.1))[y0:y1, x0:x1].astype(int)
    solid = box[yellowish(box)]
    median = np.median(solid, axis=0)
    assert np.abs(median - (255, 224, 0)).max() <= 6, median


def test_plain_style_has_no_highlight(base: av.VideoFrame) -> None:
    track = CaptionTrack(CUES, CaptionStyle(style="plain"), W, H)
    for t in (1.6, 2.1, 2.6, 4.1):
        overlay = track.overlay_at(t)
        assert overlay is not None and overlay.key[1] == -1
        rgb = to_rgb(applied(track, base, t))
        assert yellowish(rgb).sum() == 0
        assert (rgb.min(axis=2) > 230).sum() > 1000, "no white text"


def test_changes_stay_in_the_safe_area_and_lower_third(base: av.VideoFrame) -> None:
    track = CaptionTrack(CUES, CaptionStyle(), W, H)
    sx0, sy0, sx1, sy1 = track.safe_area()
    # Clear of the bottom fifth, the right eighth and a left margin.
    assert sy1 <= 0.8 * H and sx1 <= 0.88 * W and sx0 >= 0.05 * W

    frame = applied(track, base, 2.1)
    changed_y = np.argwhere(
        plane_views(frame)[0][:, :W] != plane_views(base)[0][:, :W]
    )  # (row, col) pairs
    assert len(changed_y) > 1000
    assert changed_y[:, 0].min() >= sy0 and changed_y[:, 0].max() < sy1
    assert changed_y[:, 1].min() >= sx0 and changed_y[:, 1].max() < sx1
    for k in (1, 2):
        changed_c = np.argwhere(
            plane_views(frame)[k][:, : W // 2] != plane_views(base)[k][:, : W // 2]
        )
        assert changed_c[:, 0].min() * 2 >= sy0 and changed_c[:, 0].max() * 2 < sy1
        assert changed_c[:, 1].min() * 2 >= sx0 and changed_c[:, 1].max() * 2 < sx1

    overlay = track.overlay_at(2.1)
    assert overlay is not None
    x0, y0, x1, y1 = track.bbox_of(overlay)
    # In the lower third, just above the bottom band, centred in the safe area.
    assert y0 >= 2 * H / 3 - 100 and y1 <= sy1
    assert sy1 - y1 < 0.02 * H
    assert abs((x0 + x1) / 2 - (sx0 + sx1) / 2) <= 0.02 * W


def test_long_cue_wraps_to_two_balanced_lines(base: av.VideoFrame) -> None:
    text = "This caption is far too long to fit on one line of a vertical video"
    track = CaptionTrack([CaptionCue(None, 0.0, 3.0, words(text, 0.0, 0.2))], CaptionStyle(), W, H)
    lines = track.lines_of(0)
    assert len(lines) == 2
    assert " ".join(lines) == text
    assert abs(len(lines[0]) - len(lines[1])) <= 12, lines

    # On the frame: two bands of white rows, with a gap between them.
    rgb = to_rgb(applied(track, base, 2.9))  # after the last word: all white
    white_rows = np.flatnonzero((rgb.min(axis=2) > 230).sum(axis=1) > 0)
    gaps = np.flatnonzero(np.diff(white_rows) > 1)
    assert len(gaps) == 1, "expected two lines of text"


def test_short_cue_is_one_line_and_given_lines_are_kept() -> None:
    cues = [
        CaptionCue(None, 0.0, 1.0, words("Hello there", 0.0)),
        CaptionCue(("Hello", "there"), 1.0, 2.0, words("Hello there", 1.0)),
    ]
    track = CaptionTrack(cues, CaptionStyle(), W, H)
    assert track.lines_of(0) == ("Hello there",)
    assert track.lines_of(1) == ("Hello", "there")
    assert track.font_size_of(0) == round(W / 16)


def test_overlay_lookup_respects_cue_bounds() -> None:
    track = CaptionTrack(CUES, CaptionStyle(), W, H)
    assert track.overlay_at(0.99) is None
    first = track.overlay_at(1.0)
    assert first is not None and first.key == (0, -1)
    last = track.overlay_at(3.999)
    assert last is not None and last.key[0] == 0
    after = track.overlay_at(4.0)  # a cue's end is exclusive, the next one's start inclusive
    assert after is not None and after.key == (1, 0)
    assert track.overlay_at(6.0) is None


def test_each_distinct_image_is_made_once(base: av.VideoFrame) -> None:
    track = CaptionTrack(CUES, CaptionStyle(), W, H)
    frame = copy_frame(base)
    keys = set()
    for n in range(0, 7 * 30):  # 7 s at 30 fps
        t = n / 30
        overlay = track.overlay_at(t)
        if overlay is not None:
            keys.add(overlay.key)
        track.apply(frame, t)
    # Cue 0: before its first word, then each of 4 words and the gaps between them; cue 1:
    # 3 words and their gaps. Each distinct state is built once, each cue drawn once.
    assert track.renders == len(keys)
    assert (0, -1) in keys and (0, 3) in keys and (1, 2) in keys
    assert track.draws == 2


def test_font_that_cannot_draw_the_text_is_refused() -> None:
    cue = CaptionCue(("日本語のキャプション",), 0.0, 1.0, ())
    with pytest.raises(InvalidInput) as e:
        CaptionTrack([cue], CaptionStyle(), W, H, use_system_font=False)
    msg = str(e.value)
    assert "built-in font" in msg and "ASCII" in msg
    assert "'日' (U+65E5)" in msg and "captions.font_path" in msg
    # Pillow's built-in font has no accents either.
    with pytest.raises(InvalidInput, match="'é'"):
        CaptionTrack(
            [CaptionCue(("Café",), 0.0, 1.0, ())], CaptionStyle(), W, H, use_system_font=False
        )
    # The built-in font draws ASCII.
    CaptionTrack(
        [CaptionCue(("Cafe!",), 0.0, 1.0, ())], CaptionStyle(), W, H, use_system_font=False
    )


@pytest.mark.skipif(find_system_font() is None, reason="no bold system font installed")
def test_system_font_is_used_and_checked() -> None:
    font = find_system_font()
    track = CaptionTrack([CaptionCue(("Café déjà vu",), 0.0, 1.0, ())], CaptionStyle(), W, H)
    assert track.font_name == font
    with pytest.raises(InvalidInput) as e:
        CaptionTrack([CaptionCue(("日本語",), 0.0, 1.0, ())], CaptionStyle(), W, H)
    assert str(font) in str(e.value) and "U+65E5" in str(e.value)


def test_bad_font_path_is_refused(tmp_path: Path) -> None:
    not_a_font = tmp_path / "font.ttf"
    not_a_font.write_text("hello")
    with pytest.raises(InvalidInput, match=r"captions\.font_path: .* is not a TTF/OTF font"):
        CaptionTrack(CUES, CaptionStyle(font_path=str(not_a_font)), W, H)
    with pytest.raises(NotFound, match=r"captions\.font_path: .* is not a file"):
        CaptionTrack(CUES, CaptionStyle(font_path=str(tmp_path / "missing.ttf")), W, H)


@pytest.mark.parametrize(
    ("cues", "message"),
    [
        (
            [CaptionCue(("a",), 0.0, 1.0), CaptionCue(("b",), 2.0, 1.2)],
            "captions.cues[1]: end 1.2 s is before start 2.0 s",
        ),
        (
            [CaptionCue(("a",), 0.0, 3.4), CaptionCue(("b",), 3.1, 4.0)],
            "captions.cues[1] starts at 3.1 s before captions.cues[0] ends at 3.4 s",
        ),
        ([CaptionCue(("a",), 1.0, 1.0)], "captions.cues[0]: end 1.0 s equals start"),
        ([CaptionCue(("a",), -1.0, 1.0)], "captions.cues[0]: start -1.0 s"),
        ([CaptionCue(None, 0.0, 1.0)], "captions.cues[0]: has no text"),
        (
            [CaptionCue(None, 0.0, 1.0, (CaptionWord("hi", 0.5, 0.2),))],
            "captions.cues[0].words[0]: end 0.2 s is before start 0.5 s",
        ),
        (
            [CaptionCue(None, 0.0, 1.0, (CaptionWord("a", 0.5, 0.6), CaptionWord("b", 0.1, 0.2)))],
            "captions.cues[0].words[1] starts at 0.1 s before captions.cues[0].words[0]",
        ),
    ],
)
def test_bad_cue_times_are_refused(cues: list[CaptionCue], message: str) -> None:
    with pytest.raises(InvalidInput) as e:
        validate_cues(cues)
    assert message in str(e.value)
    with pytest.raises(InvalidInput):
        CaptionTrack(cues, CaptionStyle(), W, H)


def test_words_must_be_in_the_given_lines() -> None:
    cue = CaptionCue(
        ("Hello world",), 0.0, 1.0, (CaptionWord("Hello", 0, 0.5), CaptionWord("there", 0.5, 1))
    )
    with pytest.raises(InvalidInput, match=r"captions\.cues\[0\]\.words\[1\]: 'there' is not in"):
        CaptionTrack([cue], CaptionStyle(), W, H)


def test_cue_too_long_for_two_lines_is_refused() -> None:
    text = " ".join(["unbelievably"] * 12)
    with pytest.raises(InvalidInput, match=r"captions\.cues\[0\]: .* does not fit in two lines"):
        CaptionTrack([CaptionCue(None, 0.0, 1.0, words(text, 0.0, 0.05))], CaptionStyle(), W, H)


@pytest.mark.parametrize("field", ["text_color", "highlight_color"])
@pytest.mark.parametrize("value", ["yellow", "#FFF", "#GG0000", "FFE000", ""])
def test_bad_colors_are_refused(field: str, value: str) -> None:
    with pytest.raises(InvalidInput, match=rf"captions\.{field}: .* is not a color; use '#RRGGBB'"):
        CaptionStyle(**cast(dict[str, Any], {field: value}))


def test_bad_style_and_font_size_are_refused() -> None:
    with pytest.raises(InvalidInput, match=r"captions\.style"):
        CaptionStyle(style=cast(Any, "bouncy"))
    with pytest.raises(InvalidInput, match=r"captions\.font_size"):
        CaptionStyle(font_size=-3)


def test_custom_colors_and_font_size(base: av.VideoFrame) -> None:
    style = CaptionStyle(style="plain", font_size=40, text_color="#00FF00")
    track = CaptionTrack(CUES, style, W, H)
    assert track.font_size_of(0) == 40
    rgb = to_rgb(applied(track, base, 2.0)).astype(int)
    green = (rgb[..., 1] > 200) & (rgb[..., 0] < 60) & (rgb[..., 2] < 60)
    assert green.sum() > 500


def seconds_to_duration(seconds: float) -> duration_pb2.Duration:
    d = duration_pb2.Duration()
    d.FromNanoseconds(round(seconds * 1e9))
    return d


def test_from_proto() -> None:
    cue = common_pb2.Cue(
        start_offset=seconds_to_duration(1.0),
        end_offset=seconds_to_duration(2.5),
        words=[
            common_pb2.Word(
                text="Hi",
                start_offset=seconds_to_duration(1.1),
                end_offset=seconds_to_duration(1.4),
            )
        ],
    )
    lined = common_pb2.Cue(
        lines=["a", "b"], start_offset=seconds_to_duration(3), end_offset=seconds_to_duration(4)
    )
    got = cues_from_proto([cue, lined])
    assert got[0] == CaptionCue(None, 1.0, 2.5, (CaptionWord("Hi", 1.1, 1.4),))
    assert got[1] == CaptionCue(("a", "b"), 3.0, 4.0, ())

    spec = video_service_pb2.CaptionSpec()
    assert style_from_proto(spec) == CaptionStyle()
    spec = video_service_pb2.CaptionSpec(
        style=video_service_pb2.CaptionSpec.STYLE_PLAIN,
        font_path="/f.ttf",
        font_size=50,
        text_color="#000000",
    )
    assert style_from_proto(spec) == CaptionStyle("plain", "/f.ttf", 50, "#000000", "#FFE000")


def test_apply_refuses_wrong_frames() -> None:
    track = CaptionTrack(CUES, CaptionStyle(), W, H)
    rgb = av.VideoFrame(W, H, "rgb24")
    with pytest.raises(ValueError, match="yuv420p"):
        track.apply(rgb, 2.0)
    with pytest.raises(ValueError, match="1080x1920"):
        track.apply(av.VideoFrame(720, 1280, "yuv420p"), 2.0)
    track.apply(rgb, 0.0)  # no caption shown: nothing to check, nothing done


def test_shared_filter_graph_frame_is_copied_not_corrupted(base: av.VideoFrame) -> None:
    """A crop-only graph passes the input's buffer through; the input must stay untouched."""
    source = copy_frame(base)
    before = plane_views(source)[0].copy()
    graph = av.filter.Graph()
    src = graph.add_buffer(
        width=W, height=H, format=av.VideoFormat("yuv420p"), time_base=Fraction(1, 30)
    )
    crop = graph.add("crop", f"{W}:{H}:0:0")
    sink = graph.add("buffersink")
    src.link_to(crop)
    crop.link_to(sink)
    graph.configure()
    src.push(source)
    out = graph.pull()
    assert isinstance(out, av.VideoFrame)

    track = CaptionTrack(CUES, CaptionStyle(), W, H)
    track.apply(out, 2.1)
    assert np.array_equal(plane_views(source)[0], before)
    assert not np.array_equal(plane_views(out)[0], before)
