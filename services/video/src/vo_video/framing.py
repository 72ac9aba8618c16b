"""Where the crop window sits on every frame: centre, or a smoothed path that follows the subject.

Smart framing has a cheap analysis pass of its own: it decodes only reference frames, samples
about six per second, shrinks each to a 320-pixel-wide grey image, and finds the subject there
(faces with OpenCV's Haar cascade; else what moved since the last sample; else the most
salient region). Scene cuts split the video into shots. Within a shot the virtual camera holds
still while the subject moves inside a dead zone, then makes one eased move with lead room
ahead of the subject, and is clamped so the subject stays in view and the window stays in the
picture; it never jitters. Between shots it cuts, as an editor would.

The analysis runs in a thread alongside the render pass, a few seconds ahead of it: the path
is planned as samples arrive (:class:`PathPlanner`), and the render reads it through a
:class:`LivePath` that waits only where the path is not final yet.
"""

from __future__ import annotations

import bisect
import functools
import math
import threading
from collections.abc import Callable, Iterator
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
FACE_SEARCH_EVERY = 3  # samples between looks for a face while none is in view
SCENE_CUT_DISTANCE = 0.45  # L1 distance between normalised grey histograms (0..2)
FINE_RATE = 30.0  # camera path samples per second
DEAD_ZONE = 0.3  # of the window: how far the subject may drift from centre before a move
MOVE_SECONDS = 0.6  # length of one eased camera move
LEAD_ROOM = 0.25  # of the window: space left ahead of a subject on the move
HEADING_SECONDS = 1.0  # how far ahead a move looks to see where the subject is heading
ON_THE_MOVE = 0.1  # of the window per HEADING_SECONDS: slower than this is standing still
MARGIN = 0.2  # of the window: the subject is always kept this far inside its edges
MEDIAN_TAPS = 9  # 0.3 s on the 30 Hz grid


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


@functools.cache
def _cv2() -> Any:
    # OpenCV is imported on first use: it costs a few hundred ms at start, and only smart
    # framing needs it (a centre crop or a ramp should not wait for it).
    import cv2

    # One thread: the analysis runs beside the render's encoder, where OpenCV's own thread
    # pool only adds contention (a third more CPU time for the same detections).
    cv2.setNumThreads(1)
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
    gray: np.ndarray, prev: np.ndarray | None, *, look_for_faces: bool = True
) -> tuple[tuple[float, float] | None, str]:
    """The subject's centre in ``gray``'s pixels, and which detector found it.

    ``look_for_faces=False`` skips the face cascade, the costliest detector, for this frame.
    """
    h, w = gray.shape
    if look_for_faces:
        smallest = max(16, h // 10)
        faces = np.asarray(
            _face_cascade().detectMultiScale(
                gray, scaleFactor=1.2, minNeighbors=5, minSize=(smallest, smallest)
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


@dataclass(frozen=True)
class AnalysisState:
    """Where an analysis stands after a sample: enough for another thread to carry on."""

    next_time: float = -1.0  # take the next sample at or after this source time
    index: int = 0  # samples taken
    source: str = "none"  # what found the subject in the last sample
    prev_small: np.ndarray | None = None  # the last sample, blurred (for motion)
    prev_hist: np.ndarray | None = None  # its grey histogram (for scene cuts)


def analyse(
    path: Path, info: MediaInfo, token: CancelToken, meter: ProgressMeter
) -> Iterator[ProgressEvent | Sample]:
    """Decode reference frames and sample the subject; yields each sample as it is found,
    with progress between them."""
    for item in analyse_from(path, info, token, meter, AnalysisState()):
        yield item if isinstance(item, ProgressEvent) else item[0]


def analyse_from(
    path: Path, info: MediaInfo, token: CancelToken, meter: ProgressMeter, state: AnalysisState
) -> Iterator[ProgressEvent | tuple[Sample, AnalysisState]]:
    """:func:`analyse` from ``state`` on; each sample comes with the state after it."""
    assert info.video is not None
    rotation = info.video.rotation
    fps = info.video.frame_rate or 30.0
    step = 1.0 / SAMPLES_PER_SECOND
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        # One decoding thread: the analysis runs beside the render, where CPU time is what it
        # costs, and frame threads spend a third more of it (0.7 s against 1.1 s for 30 s).
        stream.codec_context.thread_count = 1
        # Non-reference frames (most B-frames) are never needed for a 6-per-second sample, and
        # a 320-pixel grey thumbnail does not need the deblocking filter (~25% of decode time).
        stream.codec_context.skip_frame = "NONREF"
        stream.codec_context.options = {"skip_loop_filter": "all"}
        if state.next_time > 0 and stream.time_base:
            # Carry on: decoding restarts at the keyframe before the next sample.
            container.seek(int(state.next_time / stream.time_base), stream=stream, backward=True)
        for frame in container.decode(stream):
            token.check()
            t = float(frame.time) if frame.time is not None else 0.0
            if t < state.next_time:
                continue
            small_h = max(2, round(frame.height * ANALYSIS_WIDTH / frame.width))
            gray = frame.reformat(
                width=ANALYSIS_WIDTH, height=small_h, format="gray", interpolation="FAST_BILINEAR"
            ).to_ndarray()
            gray = _rotate_small(gray, rotation)
            dw, dh = info.video.display_size
            scale_x, scale_y = dw / gray.shape[1], dh / gray.shape[0]
            hist = _histogram(gray)
            prev_hist = state.prev_hist
            cut = (
                prev_hist is not None and float(np.abs(hist - prev_hist).sum()) > SCENE_CUT_DISTANCE
            )
            # The face cascade is most of a sample's cost: it looks on every third sample
            # (twice a second) until it finds a face, then on every one while one is in view.
            faces = cut or state.source == "face" or state.index % FACE_SEARCH_EVERY == 0
            prev = None if cut else state.prev_small
            target, source = find_subject(gray, prev, look_for_faces=faces)
            if target is not None:
                target = (target[0] * scale_x, target[1] * scale_y)
            state = AnalysisState(
                t + step, state.index + 1, source, _cv2().GaussianBlur(gray, (5, 5), 0), hist
            )
            yield Sample(t, target, source, cut), state
            meter.done = min(meter.total, round(t * fps))
            if event := meter.advance(0):
                yield event
    yield meter.finish()


class _AxisCamera:
    """The window along one axis within one shot, decided point by point as targets arrive.

    Targets come on the fine (30 Hz) grid. A median over 0.3 s ignores detections that jump
    for a frame or two. The camera holds still while the subject stays inside a dead zone
    around the window's centre. When it leaves, the camera makes one eased move (smoothstep)
    to where the subject will be when the move ends, leaving lead room on the side the
    subject is heading to (as a camera operator frames a walker), and holds again. Holding
    still spares the encoder too: a still background costs almost nothing to encode, a
    panning one as much as new picture, and lead room halves the number of moves.

    Every decision looks only a bounded stretch ahead (the median's half, one move, the
    heading look-ahead), so the path can be planned while the analysis is still running,
    and it comes out the same as when planned afterwards.
    """

    def __init__(self, window: float, src: float) -> None:
        self.window = window
        self.src = src
        self.targets: list[float] = []
        self.closed = False  # no more targets: the shot has ended
        self.out: list[float] = []  # decided window origins (left or top edge)
        self._raw: list[float] = []  # median-filtered targets
        self._cam: list[float] = []  # decided camera centres, before clamping
        self._c = 0.0
        self._move = max(2, round(MOVE_SECONDS * FINE_RATE))
        self._look = round(HEADING_SECONDS * FINE_RATE)

    def advance(self) -> None:
        """Decide every point the targets known so far allow."""
        if self.window >= self.src:  # no freedom on this axis
            self.out.extend([0.0] * (len(self.targets) - len(self.out)))
            return
        self._filter()
        raw, n = self._raw, len(self.targets)
        # The camera's centre stays where the window fits in the picture, so a move that
        # starts at an edge starts at rest rather than already under way.
        lowest, highest = self.window / 2, self.src - self.window / 2
        if not self._cam and raw:
            self._c = min(max(raw[0], lowest), highest)
        while len(self._cam) < len(raw):
            i, c = len(self._cam), self._c
            if abs(raw[i] - c) > self.window * DEAD_ZONE and i + 1 < n:
                if not self.closed and i + self._move + self._look >= len(raw):
                    break  # the move must see further ahead: wait for more targets
                end = min(n - 1, i + self._move)
                goal = raw[end]
                heading = raw[min(n - 1, end + self._look)] - goal
                if abs(heading) > self.window * ON_THE_MOVE:
                    goal += math.copysign(LEAD_ROOM * self.window, heading)
                goal = min(max(goal, lowest), highest)
                # A move the shot's end cuts short keeps its pace: no sprint at the end.
                self._cam.append(c)
                for k in range(1, min(self._move, n - 1 - i) + 1):
                    u = k / self._move
                    self._cam.append(c + (goal - c) * u * u * (3 - 2 * u))
                self._c = goal
            else:
                self._cam.append(c)
        # Keep the subject inside the window with a margin, then the window in the picture.
        reach = self.window / 2 - self.window * MARGIN
        for j in range(len(self.out), len(self._cam)):
            centre = min(max(self._cam[j], raw[j] - reach), raw[j] + reach)
            self.out.append(min(max(centre - self.window / 2, 0.0), self.src - self.window))

    def _filter(self) -> None:
        targets, n = self.targets, len(self.targets)
        half = MEDIAN_TAPS // 2
        known = n if self.closed else n - half
        if self.closed and n < 3:  # too short to filter
            self._raw.extend(targets[len(self._raw) :])
            return
        while len(self._raw) < known:
            j = len(self._raw)
            taps = [targets[min(max(k, 0), n - 1)] for k in range(j - half, j + half + 1)]
            self._raw.append(sorted(taps)[half])


class _Shot:
    """One shot's samples, turned into camera points on the fine grid as they arrive."""

    def __init__(self, geometry: CropGeometry) -> None:
        self.geometry = geometry
        self.times: list[float] = []  # sample times
        self._targets: list[tuple[float, float] | None] = []
        self._filled: list[tuple[float, float]] = []
        self._first: tuple[float, float] | None = None  # the shot's first detection
        self._last: tuple[float, float] | None = None
        self.fine_times: list[float] = []
        self.x = _AxisCamera(geometry.crop_width, geometry.src_width)
        self.y = _AxisCamera(geometry.crop_height, geometry.src_height)
        self.closed = False

    def add(self, sample: Sample) -> None:
        """One more sample of this shot."""
        self.times.append(sample.time)
        self._targets.append(sample.target)
        if self._first is None and sample.target is not None:
            self._first = sample.target
        self._advance()

    def close(self) -> None:
        """The shot has ended: decide the rest."""
        self.closed = self.x.closed = self.y.closed = True
        self._advance()

    @property
    def decided(self) -> int:
        """How many fine points have their final position on both axes."""
        return min(len(self.x.out), len(self.y.out))

    def _advance(self) -> None:
        # Before the first detection, hold where the subject will first be seen: samples
        # wait until it is (or the shot ends with none, when the camera holds the centre).
        if self._first is not None or self.closed:
            g = self.geometry
            centre = (g.src_width / 2, g.src_height / 2)
            for target in self._targets[len(self._filled) :]:
                self._last = target if target is not None else self._last
                self._filled.append(self._last or self._first or centre)
        self._interpolate()
        self.x.advance()
        self.y.advance()

    def _interpolate(self) -> None:
        # The camera is planned on a 30 Hz grid, so eased moves stay smooth frame to frame.
        filled, times = self._filled, self.times
        if not filled:
            return
        while True:
            k = len(self.fine_times)
            t = times[0] + k / FINE_RATE
            if t > times[len(filled) - 1] + 1e-9:
                return
            j = max(0, bisect.bisect_right(times, t, hi=len(filled)) - 1)
            if j + 1 < len(filled):
                u = (t - times[j]) / (times[j + 1] - times[j])
                (x0, y0), (x1, y1) = filled[j], filled[j + 1]
                x, y = x0 + (x1 - x0) * u, y0 + (y1 - y0) * u
            else:
                x, y = filled[j]
            self.fine_times.append(t)
            self.x.targets.append(x)
            self.y.targets.append(y)


class PathPlanner:
    """Turns analysis samples, in time order, into a shot-aware smooth window path.

    Samples can be added while the render already reads the path (see :class:`LivePath`):
    :meth:`decided_until` says how far the path is final.
    """

    def __init__(self, geometry: CropGeometry) -> None:
        self.geometry = geometry
        self._shots: list[_Shot] = []
        self.finished = False

    def add(self, sample: Sample) -> None:
        """The next sample (a cut in it starts a new shot)."""
        if not self._shots or (sample.cut and self._shots[-1].times):
            if self._shots:
                self._shots[-1].close()
            self._shots.append(_Shot(self.geometry))
        self._shots[-1].add(sample)

    def finish(self) -> None:
        """No more samples: decide the rest."""
        if self._shots:
            self._shots[-1].close()
        self.finished = True

    def decided_until(self) -> float:
        """The source time up to which the path is final (infinite once finished)."""
        if self.finished:
            return math.inf
        if not self._shots:
            return -math.inf
        shot = self._shots[-1]
        if shot.decided:
            return shot.fine_times[shot.decided - 1]
        # Up to the cut: the previous shot is final, this one has nothing yet.
        return shot.times[0] - 1e-6 if len(self._shots) > 1 else -math.inf

    def path(self) -> CropPath:
        """The decided part of the path."""
        times: list[float] = []
        xs: list[float] = []
        ys: list[float] = []
        cuts: list[float] = []
        for shot in self._shots:
            n = shot.decided
            if not n:
                break
            if times:
                cuts.append(shot.fine_times[0])
            times.extend(shot.fine_times[:n])
            xs.extend(shot.x.out[:n])
            ys.extend(shot.y.out[:n])
        if not times:
            return CropPath.centered(self.geometry)
        return CropPath(self.geometry, times, xs, ys, cuts)


def smart_path(geometry: CropGeometry, samples: list[Sample]) -> CropPath:
    """A smooth, shot-aware window path from all of a video's analysis samples."""
    planner = PathPlanner(geometry)
    for sample in samples:
        planner.add(sample)
    planner.finish()
    return planner.path()


LIVE_LEAD_SECONDS = 2.0  # of source the analysis should stay ahead of the render by
LIVE_STALL_SECONDS = 0.5  # a reader waiting this long means the analysis has fallen behind


class LivePath:
    """A crop path the render reads while the analysis thread is still planning it.

    :meth:`at` waits until the path is final at the time asked for. The analysis runs about
    five times faster than the render, so only the first frame waits (about 0.1 s, for the
    first seconds to be planned).
    """

    is_static = False

    def __init__(
        self, geometry: CropGeometry, on_falling_behind: Callable[[], None] | None = None
    ) -> None:
        self.geometry = geometry
        self._planner = PathPlanner(geometry)
        self._changed = threading.Condition()
        self._snapshot = CropPath.centered(geometry)
        self._until = -math.inf  # the snapshot is final up to here
        self._waiting = 0
        self._error: BaseException | None = None
        # Called once, from the reader's thread, when the analysis falls behind: the reader
        # waited LIVE_STALL_SECONDS, or the lead, once twice as long, fell under
        # LIVE_LEAD_SECONDS.
        self._on_falling_behind = on_falling_behind
        self._was_ahead = False
        self._read_until = -math.inf  # the latest time a reader asked for

    def add(self, sample: Sample) -> None:
        """The analysis found one more sample."""
        with self._changed:
            self._planner.add(sample)
            until = self._planner.decided_until()
            # A snapshot copies the path so far: take one when the reader waits or is close
            # behind, else each time the path has grown by a second or 5% (so an hour-long
            # input copies it ~200 times, not 3600; the render is far behind by then).
            close = self._until - self._read_until < 2 * LIVE_LEAD_SECONDS
            if self._waiting or close or until - self._until >= max(1.0, 0.05 * until):
                self._publish(until)

    def finish(self) -> None:
        """The analysis is done; every time is final."""
        with self._changed:
            self._planner.finish()
            self._publish(math.inf)

    def fail(self, error: BaseException) -> None:
        """The analysis failed: readers get ``error``."""
        with self._changed:
            self._error = error
            self._changed.notify_all()

    def at(self, t: float) -> tuple[int, int]:
        """Top-left corner at source time ``t``, waiting until the analysis has decided it."""
        while True:
            with self._changed:
                alarm = self._alarm_if_behind(t)
                if alarm is None:
                    self._waiting += 1
                    try:
                        ready = self._changed.wait_for(
                            lambda: self._error is not None or t <= self._until,
                            timeout=LIVE_STALL_SECONDS,
                        )
                    finally:
                        self._waiting -= 1
                    if self._error is not None:
                        raise self._error
                    if ready:
                        snapshot = self._snapshot
                        break
                    alarm = self._take_alarm()  # waited too long
            if alarm is not None:
                alarm()  # outside the lock: it starts another analysis thread
        return snapshot.at(t)

    def _alarm_if_behind(self, t: float) -> Callable[[], None] | None:
        self._read_until = max(self._read_until, t)
        lead = self._until - t
        self._was_ahead = self._was_ahead or lead >= 2 * LIVE_LEAD_SECONDS
        return self._take_alarm() if self._was_ahead and lead < LIVE_LEAD_SECONDS else None

    def _take_alarm(self) -> Callable[[], None] | None:
        alarm, self._on_falling_behind = self._on_falling_behind, None
        return alarm

    def _publish(self, until: float) -> None:
        self._snapshot = self._planner.path()
        self._until = until
        self._changed.notify_all()
