"""Where the crop window sits on every frame: centre, or a smoothed path that follows the subject.

Smart framing runs a cheap analysis pass before the render: it decodes only reference frames,
samples about six per second, shrinks each to a 320-pixel-wide grey image, and finds the subject
there (faces with OpenCV's Haar cascade; else what moved since the last sample; else the most
salient region). Scene cuts split the video into shots. Within a shot the virtual camera has a
dead zone (it holds still while the subject moves inside it), is then Gaussian-smoothed (so it
never jitters), and is finally clamped so the subject stays in view and the window stays in the
picture. Between shots it cuts, as an editor would.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
from vo_core.media import MediaInfo
from vo_core.progress import ProgressEvent, ProgressMeter
from vo_core.threads import CancelToken

ANALYSIS_WIDTH = 320
SAMPLES_PER_SECOND = 6.0
SCENE_CUT_DISTANCE = 0.45
FINE_RATE = 30.0  # camera path samples per second
DEAD_ZONE = 0.25  # of the window: how far the subject may drift from centre before a move
MOVE_SECONDS = (
    0.8  # length of one eased camera move  # L1 distance between normalised grey histograms (0..2)
)


@dataclass(frozen=True)
class CropGeometry:
    """The crop window's size inside the displayed (rotated) source picture."""

    src_width: int
    src_height: int
    crop_width: int
    crop_height: int

    @classmethod
    def for_aspect(cls, src_width: int, src_height: int, aspect: tuple[int, int]) -> CropGeometry:
        """The largest window of ``aspect`` that fits the source, with even sides."""
        aw, ah = aspect
        if src_width * ah > src_height * aw:  # source is wider than the target: full height
            ch = src_height - src_height % 2
            cw = min(src_width, max(2, int(ch * aw / ah) // 2 * 2))
        else:
            cw = src_width - src_width % 2
            ch = min(src_height, max(2, int(cw * ah / aw) // 2 * 2))
        return cls(src_width, src_height, cw, ch)

    @property
    def max_x(self) -> int:
        """Rightmost left edge."""
        return self.src_width - self.crop_width

    @property
    def max_y(self) -> int:
        """Lowest top edge."""
        return self.src_height - self.crop_height


class CropPath:
    """The window's top-left corner over source time; a step at every scene cut."""

    def __init__(
        self,
        geometry: CropGeometry,
        times: list[float],
        xs: list[float],
        ys: list[float],
        cuts: list[float] | None = None,
    ) -> None:
        self.geometry = geometry
        self.times = np.asarray(times, dtype=np.float64)
        self.xs = np.asarray(xs, dtype=np.float64)
        self.ys = np.asarray(ys, dtype=np.float64)
        self.cuts = sorted(cuts or [])
        # at() runs once per frame: find each shot's slice of the samples once, here.
        edges = np.searchsorted(self.times, self.cuts, side="left").tolist()
        self._shots = list(zip([0, *edges], [*edges, len(self.times)], strict=True))
        self._static = bool(np.ptp(self.xs) < 1 and np.ptp(self.ys) < 1)

    @classmethod
    def centered(cls, geometry: CropGeometry) -> CropPath:
        """A still window in the middle of the picture."""
        return cls(geometry, [0.0], [geometry.max_x / 2], [geometry.max_y / 2])

    @property
    def is_static(self) -> bool:
        """True when the window never moves (one filter setting serves the whole render)."""
        return self._static

    def at(self, t: float) -> tuple[int, int]:
        """Top-left corner (even, inside the picture) at source time ``t``."""
        if len(self.times) == 1:
            x, y = self.xs[0], self.ys[0]
        else:
            # Interpolate only within the shot containing t, so cuts stay cuts.
            start, end = self._shots[bisect.bisect_right(self.cuts, t)]
            if start == end:  # a cut with no samples after it: use them all
                start, end = 0, len(self.times)
            times = self.times[start:end]
            x = float(np.interp(t, times, self.xs[start:end]))
            y = float(np.interp(t, times, self.ys[start:end]))
        g = self.geometry
        xi = round(min(max(x, 0), g.max_x) / 2) * 2
        yi = round(min(max(y, 0), g.max_y) / 2) * 2
        return min(xi, g.max_x - g.max_x % 2), min(yi, g.max_y - g.max_y % 2)


@dataclass(frozen=True)
class Sample:
    """What the analysis saw at one moment."""

    time: float
    target: tuple[float, float] | None  # subject centre in source pixels, None when nothing found
    source: str  # "face", "motion", "saliency" or "none"
    cut: bool  # a scene cut happened just before this sample


_cascade: Any = None


def _cv2() -> Any:
    # OpenCV is imported on first use: it costs a few hundred ms at start, and only smart
    # framing needs it (a centre crop or a ramp should not wait for it).
    import cv2

    return cv2


def _face_cascade() -> Any:
    global _cascade
    cv2 = _cv2()
    if _cascade is None:
        cascades = Path(cv2.data.haarcascades)
        path = cascades / "haarcascade_frontalface_default.xml"
        _cascade = cv2.CascadeClassifier(str(path))
        if _cascade.empty():
            raise RuntimeError(
                f"OpenCV face cascade missing at {path}; reinstall opencv-python-headless<5"
            )
    return _cascade


def _rotate_small(gray: np.ndarray, rotation: int) -> np.ndarray:
    # np.rot90 turns counter-clockwise; display rotation is clockwise.
    return np.ascontiguousarray(np.rot90(gray, k=-(rotation // 90) % 4)) if rotation else gray


def find_subject(
    gray: np.ndarray, prev: np.ndarray | None
) -> tuple[tuple[float, float] | None, str]:
    """The subject's centre in ``gray``'s pixels, and which detector found it."""
    h, w = gray.shape
    faces = np.asarray(
        _face_cascade().detectMultiScale(
            gray, scaleFactor=1.2, minNeighbors=5, minSize=(max(16, h // 10), max(16, h // 10))
        )
    )
    if len(faces):
        areas = faces[:, 2] * faces[:, 3]
        weights = areas / areas.sum()
        cx = float(((faces[:, 0] + faces[:, 2] / 2) * weights).sum())
        cy = float(((faces[:, 1] + faces[:, 3] / 2) * weights).sum())
        return (cx, cy), "face"
    cv2 = _cv2()
    blur = cv2.GaussianBlur(gray, (5, 5), 0)
    if prev is not None:
        diff = cv2.absdiff(blur, prev).astype(np.float32)
        diff[diff < 18] = 0  # ignore sensor noise and compression shimmer
        total = float(diff.sum())
        if total > 255 * w * h * 0.0008:
            ys, xs = np.mgrid[0:h, 0:w]
            return (float((xs * diff).sum() / total), float((ys * diff).sum() / total)), "motion"
    # Centre-surround contrast: what differs most from its neighbourhood.
    surround = cv2.blur(blur, (w // 6 | 1, w // 6 | 1)).astype(np.float32)
    contrast = np.abs(blur.astype(np.float32) - surround)
    thresh = np.percentile(contrast, 98)
    if thresh > 12:
        sal = np.where(contrast >= thresh, contrast, 0)
        total = float(sal.sum())
        ys, xs = np.mgrid[0:h, 0:w]
        return (float((xs * sal).sum() / total), float((ys * sal).sum() / total)), "saliency"
    return None, "none"


def _histogram(gray: np.ndarray) -> np.ndarray:
    hist = _cv2().calcHist([gray], [0], None, [32], [0, 256]).ravel()
    return hist / max(1.0, float(hist.sum()))


def analyse(
    path: Path, info: MediaInfo, token: CancelToken, meter: ProgressMeter
) -> Iterator[ProgressEvent | list[Sample]]:
    """Decode reference frames, sample the subject; yields progress, then the sample list."""
    assert info.video is not None
    rotation = info.video.rotation
    fps = info.video.frame_rate or 30.0
    step = 1.0 / SAMPLES_PER_SECOND
    samples: list[Sample] = []
    prev_small: np.ndarray | None = None
    prev_hist: np.ndarray | None = None
    next_time = -1.0
    scale_x = scale_y = 1.0
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        # Non-reference frames (most B-frames) are never needed for a 6-per-second sample, and
        # a 320-pixel grey thumbnail does not need the deblocking filter (~25% of decode time).
        stream.codec_context.skip_frame = "NONREF"
        stream.codec_context.options = {"skip_loop_filter": "all"}
        for frame in container.decode(stream):
            token.check()
            t = float(frame.time) if frame.time is not None else 0.0
            if t < next_time:
                continue
            next_time = t + step
            small_h = max(2, round(frame.height * ANALYSIS_WIDTH / frame.width))
            gray = frame.reformat(
                width=ANALYSIS_WIDTH, height=small_h, format="gray", interpolation="FAST_BILINEAR"
            ).to_ndarray()
            gray = _rotate_small(gray, rotation)
            dw, dh = info.video.display_size
            scale_x, scale_y = dw / gray.shape[1], dh / gray.shape[0]
            hist = _histogram(gray)
            cut = (
                prev_hist is not None and float(np.abs(hist - prev_hist).sum()) > SCENE_CUT_DISTANCE
            )
            target, source = find_subject(gray, None if cut else prev_small)
            if target is not None:
                target = (target[0] * scale_x, target[1] * scale_y)
            samples.append(Sample(t, target, source, cut))
            prev_small = _cv2().GaussianBlur(gray, (5, 5), 0)
            prev_hist = hist
            meter.done = min(meter.total, round(t * fps))
            if event := meter.advance(0):
                yield event
    yield meter.finish()
    yield samples


def _median(values: np.ndarray, window: int) -> np.ndarray:
    if len(values) < 3:
        return values
    half = window // 2
    padded = np.pad(values, half, mode="edge")
    return np.array([np.median(padded[i : i + window]) for i in range(len(values))])


def _follow(targets: np.ndarray, window: float, src: float) -> np.ndarray:
    """Window origin along one axis for one shot, on the fine (30 Hz) grid.

    The camera holds still while the subject stays inside a dead zone around the window's
    centre. When the subject leaves it, the camera makes one eased move (smoothstep) to where
    the subject will be when the move ends (the whole path is known: this is an offline
    pass) and holds again. Holding still also spares the encoder: a still background costs
    almost nothing to encode, a panning one costs as much as new picture.
    """
    if window >= src:  # no freedom on this axis
        return np.zeros_like(targets)
    raw = _median(targets, 9)  # 0.3 s: detections that jump for a frame or two are ignored
    dead_zone = window * DEAD_ZONE
    move = max(2, round(MOVE_SECONDS * FINE_RATE))
    n = len(raw)
    cam = np.empty(n)
    c = float(raw[0])
    i = 0
    while i < n:
        if abs(raw[i] - c) > dead_zone and i + 1 < n:
            goal = float(raw[min(n - 1, i + move)])
            u = np.arange(1, move + 1) / move
            eased = c + (goal - c) * u * u * (3 - 2 * u)
            # A move the shot's end cuts short keeps its pace: no sprint at the end.
            take = min(move, n - 1 - i)
            cam[i] = c
            cam[i + 1 : i + 1 + take] = eased[:take]
            c, i = goal, i + 1 + take
            continue
        cam[i] = c
        i += 1
    # Keep the subject inside the window with a margin, then keep the window in the picture.
    margin = window * 0.2
    cam = np.clip(cam, raw - (window / 2 - margin), raw + (window / 2 - margin))
    return np.clip(cam - window / 2, 0, src - window)


def smart_path(geometry: CropGeometry, samples: list[Sample]) -> CropPath:
    """A smooth, shot-aware window path from analysis samples."""
    if not samples:
        return CropPath.centered(geometry)
    g = geometry
    times: list[float] = []
    xs: list[float] = []
    ys: list[float] = []
    cuts: list[float] = []
    shots: list[list[Sample]] = [[]]
    for s in samples:
        if s.cut and shots[-1]:
            shots.append([])
            cuts.append(s.time)
        shots[-1].append(s)
    for shot in shots:
        found = [s.target for s in shot if s.target is not None]
        if not found:
            centre = (g.src_width / 2, g.src_height / 2)
            filled = [centre] * len(shot)
        else:
            # Before the first detection, hold where the subject will first be seen.
            filled, last = [], found[0]
            for s in shot:
                last = s.target if s.target is not None else last
                filled.append(last)
        # Plan the camera on a 30 Hz grid, so eased moves stay smooth frame to frame.
        coarse = np.array([s.time for s in shot])
        fine = np.arange(coarse[0], coarse[-1] + 1e-9, 1 / FINE_RATE) if len(coarse) > 1 else coarse
        tx = np.interp(fine, coarse, [p[0] for p in filled])
        ty = np.interp(fine, coarse, [p[1] for p in filled])
        xs.extend(_follow(tx, g.crop_width, g.src_width))
        ys.extend(_follow(ty, g.crop_height, g.src_height))
        times.extend(fine.tolist())
    return CropPath(geometry, times, xs, ys, cuts)
