"""Speed ramps: a piecewise speed curve over the source, its time map, and retimed audio.

A ramp is a list of control points ``(source seconds, speed)``; each speed holds from its
point until the next one. A change of speed is not a hard jump: it is spread over ``ease``
seconds of source time, starting at the point, with a smoothstep in speed. Output time is
``∫ 1/speed(s) ds`` over the source, so a 0.5x segment lasts twice as long in the output.

The renderer does the video side itself: for output frame ``k`` at constant frame rate
``F`` it asks :meth:`SpeedCurve.source_time` for ``k / F`` and shows the decoded source
frame whose time is nearest (dropping or repeating frames), or with ``blend_frames`` mixes
the two neighbours by :meth:`SpeedCurve.frame_weights`. :func:`retime_audio` stretches the
audio with FFmpeg's ``atempo`` (pitch kept) to the same time map, so A/V stays in sync.

This module is pure: it knows nothing of gRPC and holds no state between calls.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
from typing import TYPE_CHECKING, cast, overload

import av
import av.filter
import numpy as np
from vo_core.errors import InvalidInput
from vo_core.progress import duration_to_seconds

if TYPE_CHECKING:
    from vo.video.v1 import video_service_pb2 as pb

MIN_SPEED = 0.25
MAX_SPEED = 4.0
DEFAULT_EASE = 0.3

# Samples per eased transition in the time-map table. The integrand 1/speed is smooth
# there, so the trapezoid rule on 512 steps is exact to well under a microsecond.
_EASE_STEPS = 512

# Eased transitions are stretched as short constant-tempo pieces; at 60 ms a piece's
# linear map stays within a few ms of the curved one, and pieces stay long compared
# with atempo's ~43 ms window.
_AUDIO_PIECE_S = 0.06

# atempo accepts 0.5-100 per instance; two chained instances cover our 0.25-4 range.
_ATEMPO_MIN = 0.5


def _fmt(x: float) -> str:
    """Seconds or a speed as a user would type it ("10.0", "0.25")."""
    return repr(float(x)) if float(x).is_integer() else f"{x:g}"


def _smoothstep(u: np.ndarray) -> np.ndarray:
    u = np.clip(u, 0.0, 1.0)
    return u * u * (3.0 - 2.0 * u)


@dataclass(frozen=True)
class SpeedCurve:
    """A piecewise speed curve over the source, with eased changes of speed.

    ``points`` are ``(source seconds, speed)`` pairs, strictly increasing in time; the
    first point's speed also applies before it. ``ease`` is how many seconds of source
    time each change takes (a smoothstep in speed starting at the point, shortened when
    the next point comes sooner); 0 means hard jumps. ``blend_frames`` asks the renderer
    to blend neighbouring frames in slow segments instead of repeating them.

    Construction checks everything that does not need the video (order, speed range);
    :meth:`validate` adds the video's duration. Both raise :class:`InvalidInput`.
    """

    points: tuple[tuple[float, float], ...]
    ease: float = DEFAULT_EASE
    blend_frames: bool = False

    def __post_init__(self) -> None:
        # Normalise lists and ints from callers to the hashable float tuple the type says.
        object.__setattr__(self, "points", tuple((float(t), float(v)) for t, v in self.points))
        object.__setattr__(self, "ease", float(self.ease))
        self._check_structure()

    # --- construction -------------------------------------------------------------

    @classmethod
    def parse(cls, text: str, ease: float = DEFAULT_EASE, blend_frames: bool = False) -> SpeedCurve:
        """The CLI form ``"0:1,10:0.5,15:2"``: comma-separated ``SECONDS:SPEED`` pairs."""
        points: list[tuple[float, float]] = []
        if not text.strip():
            raise InvalidInput("ramp is empty; write SECONDS:SPEED pairs, e.g. 0:1,10:0.5,15:2")
        for i, item in enumerate(text.split(",")):
            parts = item.split(":")
            try:
                if len(parts) != 2:
                    raise ValueError(item)
                t, v = float(parts[0]), float(parts[1])
            except ValueError:
                raise InvalidInput(
                    f"ramp {text!r} is not a speed ramp: point {i} {item.strip()!r} is not "
                    "SECONDS:SPEED; write e.g. 0:1,10:0.5,15:2"
                ) from None
            points.append((t, v))
        return cls(tuple(points), ease=ease, blend_frames=blend_frames)

    @classmethod
    def from_proto(cls, ramp: pb.SpeedRamp) -> SpeedCurve:
        """From a ``vo.video.v1.SpeedRamp``; an unset ``ease_duration`` means the default."""
        ease = (
            duration_to_seconds(ramp.ease_duration)
            if ramp.HasField("ease_duration")
            else DEFAULT_EASE
        )
        points = tuple((duration_to_seconds(p.source_offset), p.speed) for p in ramp.points)
        return cls(points, ease=ease, blend_frames=ramp.blend_frames)

    def _check_structure(self) -> None:
        if not self.points:
            raise InvalidInput("ramp.points is empty; give at least one SECONDS:SPEED point")
        if not math.isfinite(self.ease) or self.ease < 0:
            raise InvalidInput(f"ramp.ease_duration {_fmt(self.ease)} s must be zero or more")
        prev_t: float | None = None
        for i, (t, v) in enumerate(self.points):
            if not math.isfinite(t) or t < 0:
                raise InvalidInput(f"ramp.points[{i}].source_offset {_fmt(t)} s must be 0 or more")
            if prev_t is not None and t <= prev_t:
                raise InvalidInput(
                    f"ramp.points[{i}].source_offset {_fmt(t)} s is not after "
                    f"ramp.points[{i - 1}] at {_fmt(prev_t)} s"
                )
            # `not (a <= v <= b)` also rejects NaN.
            if not (MIN_SPEED <= v <= MAX_SPEED):
                raise InvalidInput(
                    f"ramp.points[{i}].speed {v:g} is outside {MIN_SPEED:g}-{MAX_SPEED:g}"
                )
            prev_t = t

    def validate(self, video_duration: float) -> None:
        """Raise :class:`InvalidInput` unless every point lies within the video."""
        self._check_structure()
        for i, (t, _) in enumerate(self.points):
            if t > video_duration:
                raise InvalidInput(
                    f"ramp.points[{i}].source_offset {_fmt(t)} s is past the end of the "
                    f"video ({_fmt(round(video_duration, 3))} s)"
                )

    # --- the curve ----------------------------------------------------------------

    @cached_property
    def _table(self) -> tuple[np.ndarray, np.ndarray]:
        """Source times and their output times, exact at every node.

        Constant-speed stretches need only their two ends (output time is linear there,
        so ``np.interp`` between nodes is exact); eased stretches are sampled finely and
        integrated with the trapezoid rule. The table starts at 0 and ends where the last
        transition settles; beyond that the speed is constant and the map is extended
        analytically.
        """
        src, out = [0.0], [0.0]
        for v_old, _, t0, t1 in self._transitions():
            # The constant stretch up to this change runs at the old speed.
            src.append(t0)
            out.append(out[-1] + (t0 - src[-2]) / v_old)
            if t1 > t0:
                s = np.linspace(t0, t1, _EASE_STEPS + 1)
                inv = 1.0 / self.speed_at(s)
                cum = np.cumsum(np.diff(s) * 0.5 * (inv[1:] + inv[:-1]))
                src.extend(s[1:].tolist())
                out.extend((out[-1] + cum).tolist())
        s_all, o_all = np.asarray(src), np.asarray(out)
        # A change at 0 (or back-to-back nodes) leaves repeated times; keep the last.
        keep = np.append(np.diff(s_all) > 0, True)
        return s_all[keep], o_all[keep]

    def _transitions(self) -> list[tuple[float, float, float, float]]:
        """(speed before, speed after, start, end) of each change of speed, in source time."""
        result = []
        for i in range(1, len(self.points)):
            t0, v_new = self.points[i]
            v_old = self.points[i - 1][1]
            next_t = self.points[i + 1][0] if i + 1 < len(self.points) else math.inf
            # A transition never runs into the next point: the next point's speed holds from it.
            t1 = min(t0 + self.ease, next_t)
            result.append((v_old, v_new, t0, t1))
        return result

    @overload
    def speed_at(self, source_t: float) -> float: ...
    @overload
    def speed_at(self, source_t: np.ndarray) -> np.ndarray: ...
    def speed_at(self, source_t: float | np.ndarray) -> float | np.ndarray:
        """The playback speed at source time ``source_t`` (seconds)."""
        s = np.asarray(source_t, dtype=np.float64)
        v = np.full(s.shape, self.points[0][1])
        for v_old, v_new, t0, t1 in self._transitions():
            # A hard jump (t1 == t0) is the new speed from t0 on.
            w = _smoothstep((s - t0) / (t1 - t0)) if t1 > t0 else 1.0
            # Each transition starts where the previous one ended, so composing them in
            # order replaces the old speed by the new one from t0 on.
            v = np.where(s >= t0, v_old + (v_new - v_old) * w, v)
        return float(v) if np.ndim(source_t) == 0 else v

    @overload
    def output_time(self, source_t: float) -> float: ...
    @overload
    def output_time(self, source_t: np.ndarray) -> np.ndarray: ...
    def output_time(self, source_t: float | np.ndarray) -> float | np.ndarray:
        """Where source time ``source_t`` lands in the output, in seconds."""
        src, out = self._table
        s = np.asarray(source_t, dtype=np.float64)
        result = np.interp(s, src, out)
        # Past the table the speed is the last point's; before 0, the first point's.
        result = np.where(s > src[-1], out[-1] + (s - src[-1]) / self.points[-1][1], result)
        result = np.where(s < 0, s / self.points[0][1], result)
        return float(result) if np.ndim(source_t) == 0 else result

    @overload
    def source_time(self, output_t: float) -> float: ...
    @overload
    def source_time(self, output_t: np.ndarray) -> np.ndarray: ...
    def source_time(self, output_t: float | np.ndarray) -> float | np.ndarray:
        """The source time shown at output time ``output_t``: the inverse of output_time."""
        src, out = self._table
        o = np.asarray(output_t, dtype=np.float64)
        result = np.interp(o, out, src)
        result = np.where(o > out[-1], src[-1] + (o - out[-1]) * self.points[-1][1], result)
        result = np.where(o < 0, o * self.points[0][1], result)
        return float(result) if np.ndim(output_t) == 0 else result

    def output_duration(self, source_duration: float) -> float:
        """How long ``source_duration`` seconds of source last after the ramp."""
        return self.output_time(float(source_duration))

    def frame_count(self, source_duration: float, fps: float) -> int:
        """How many output frames at ``fps`` the ramped video has (rounded to nearest)."""
        return round(self.output_duration(source_duration) * fps)

    def frame_source_times(self, source_duration: float, fps: float) -> np.ndarray:
        """Source time of every output frame ``k / fps``, for the renderer's frame picker."""
        k = np.arange(self.frame_count(source_duration, fps), dtype=np.float64)
        return np.minimum(self.source_time(k / fps), source_duration)

    def frame_weights(
        self, output_t: float, prev_time: float, next_time: float
    ) -> tuple[float, float]:
        """Weights of the decoded frames either side of output time ``output_t``.

        ``prev_time`` and ``next_time`` are the source frames' times in seconds
        (``frame.time``, i.e. ``pts * time_base``), ``prev_time <= next_time``. Without
        ``blend_frames``, or where the ramp runs at normal speed or faster, the nearest
        frame gets weight 1 (drop/repeat); in slow segments with ``blend_frames`` the two
        are mixed linearly by where the source time falls between them.
        """
        s = self.source_time(float(output_t))
        span = next_time - prev_time
        if span <= 0:
            return (1.0, 0.0)
        w_next = min(max((s - prev_time) / span, 0.0), 1.0)
        if not self.blend_frames or self.speed_at(s) >= 1.0:
            return (0.0, 1.0) if w_next >= 0.5 else (1.0, 0.0)
        return (1.0 - w_next, w_next)

    def audio_pieces(self, source_duration: float) -> list[tuple[float, float, float]]:
        """Constant-tempo pieces ``(source start, source end, tempo)`` covering the source.

        Constant stretches are one piece; eased transitions are cut into ~60 ms pieces
        whose tempo is their source length over their output length, so each piece lands
        exactly where the time map says.
        """
        edges = [0.0]
        for _, _, t0, t1 in self._transitions():
            if t0 >= source_duration:
                break
            if t1 > t0:
                n = max(1, math.ceil((t1 - t0) / _AUDIO_PIECE_S))
                edges.extend(np.linspace(t0, min(t1, source_duration), n + 1).tolist())
            else:
                edges.append(t0)
        edges.append(float(source_duration))
        e = np.unique(np.clip(np.asarray(edges), 0.0, source_duration))
        o = self.output_time(e)
        return [
            (float(a), float(b), float((b - a) / (ob - oa)))
            for a, b, oa, ob in zip(e[:-1], e[1:], o[:-1], o[1:], strict=True)
            if b > a
        ]


# --- audio ---------------------------------------------------------------------------

# Each constant-tempo piece is stretched by its own atempo with this much real audio
# either side, so atempo's start-up and flush transients fall outside the piece, and
# joined to its neighbour by a short equal-gain cross-fade (both sides render the same
# source moment, so 10 ms is enough to hide the seam).
_CONTEXT_S = 0.1
_CROSSFADE_S = 0.01
_ALIGN_S = 0.005

# Every piece carries two extra channels: a "timecode", a tiny ramp whose value is the
# source sample index, and a constant. WSOLA copies and cross-fades source fragments, so
# timecode / constant comes out telling, for every output sample, which source position
# it came from (the ratio cancels atempo's Hann cross-fade gain, which is not exactly 1
# and would otherwise skew a ramp by hundreds of samples). Each piece is then placed by
# that map. atempo aligns on the loudest channel, so at -100 dBFS these steer nothing but
# digital silence.
_TIMECODE_PEAK = 1e-5


def _atempo_graph(
    sample_rate: int, channels: int, tempo: float
) -> tuple[av.filter.Graph, av.filter.context.FilterContext, av.filter.context.FilterContext]:
    """abuffer → atempo (→ atempo) → aformat → abuffersink for one constant tempo.

    atempo accepts 0.5-100 per instance, so below 0.5x a second one does the rest.
    """
    # Any layout with the right channel count will do: atempo treats channels alike.
    layout = av.AudioLayout(f"{channels}c").name
    graph = av.filter.Graph()
    src = graph.add_abuffer(format="fltp", sample_rate=sample_rate, layout=layout)
    first = max(tempo, _ATEMPO_MIN)
    chain = [graph.add("atempo", f"tempo={first:.9f}")]
    if tempo < _ATEMPO_MIN:
        chain.append(graph.add("atempo", f"tempo={tempo / first:.9f}"))
    # atempo may hand back packed samples; ask for planar so to_ndarray is (channels, n).
    chain.append(graph.add("aformat", f"sample_fmts=fltp:channel_layouts={layout}"))
    sink = graph.add("abuffersink")
    node = src
    for f in [*chain, sink]:
        node.link_to(f)
        node = f
    graph.configure()
    return graph, src, sink


def _atempo(samples: np.ndarray, sample_rate: int, tempo: float) -> np.ndarray:
    """Run ``(channels, n)`` float32 samples through atempo at a constant tempo."""
    channels = samples.shape[0]
    _, src, sink = _atempo_graph(sample_rate, channels, tempo)
    layout = av.AudioLayout(f"{channels}c").name
    out: list[np.ndarray] = []
    block = max(1, sample_rate // 10)

    def drain() -> None:
        while True:
            try:
                out.append(cast(av.AudioFrame, sink.pull()).to_ndarray())
            except (av.error.BlockingIOError, av.error.EOFError):
                return

    for j in range(0, samples.shape[1], block):
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples[:, j : j + block]), format="fltp", layout=layout
        )
        frame.sample_rate = sample_rate
        frame.time_base = Fraction(1, sample_rate)
        frame.pts = j
        src.push(frame)
        drain()
    src.push(None)  # flush exactly once, or atempo's last window is lost
    drain()
    return np.concatenate(out, axis=1) if out else np.zeros((channels, 0), dtype=np.float32)


# Constant stretches longer than this are stretched in pieces of at most this length, so a
# long clip's audio is retimed a few seconds at a time and memory stays flat in its length.
_MAX_PIECE_S = 4.0


def _bounded(pieces: list[tuple[float, float, float]]) -> Iterator[tuple[float, float, float]]:
    """The pieces, long ones cut into equal parts of at most ``_MAX_PIECE_S`` (same tempo)."""
    for a, b, tempo in pieces:
        parts = max(1, math.ceil((b - a) / _MAX_PIECE_S))
        edges = np.linspace(a, b, parts + 1)
        for lo, hi in itertools.pairwise(edges.tolist()):
            yield lo, hi, tempo


class _SourceWindow:
    """The source as the stretcher sees it, read from blocks as needed and dropped behind.

    Index ``x`` runs over ``[mirrored head, body, mirrored tail]``: the first and last
    ``context`` samples reversed either side of the body (so the first and last pieces have
    context like the others), the body being the decoded audio cut or padded with silence
    to ``n_src`` samples.
    """

    def __init__(self, blocks: Iterator[np.ndarray], channels: int, n_src: int, context: int):
        self.blocks = blocks
        self.channels = channels
        self.n_src = n_src
        self.shift = min(context, n_src)  # x of source sample 0
        self.size = n_src + 2 * self.shift
        self.buf = np.zeros((channels, 0), np.float32)
        self.buf_start = 0  # source index of buf[:, 0]
        self.ended = False

    def _fill(self, upto: int) -> None:
        # Decoded blocks are small (an AAC frame is 1024 samples): gather them, join once.
        have = self.buf_start + self.buf.shape[1]
        new: list[np.ndarray] = []
        while have < upto:
            block = None if self.ended else next(self.blocks, None)
            if block is None:  # the decoded audio is shorter than the video: silence
                self.ended = True
                block = np.zeros((self.channels, upto - have), np.float32)
            block = np.asarray(block[:, : self.n_src - have], dtype=np.float32)
            new.append(block)
            have += block.shape[1]
        if new:
            self.buf = np.concatenate([self.buf, *new], axis=1)

    def get(self, lo: int, hi: int) -> np.ndarray:
        """``x[:, lo:hi]``; everything before ``lo`` may be forgotten afterwards."""
        src = np.arange(lo, hi) - self.shift
        src = np.where(src < 0, -src - 1, src)  # mirrored head
        src = np.where(src >= self.n_src, 2 * self.n_src - 1 - src, src)  # mirrored tail
        if src.size == 0:
            return np.zeros((self.channels, 0), np.float32)
        self._fill(int(src.max()) + 1)
        piece = self.buf[:, src - self.buf_start]
        # Later pieces start no earlier, so they need source samples from ``lo - shift`` on
        # (all of them while ``lo`` is still in the mirrored head).
        keep = max(0, lo - self.shift)
        if keep > self.buf_start:
            self.buf = self.buf[:, keep - self.buf_start :]
            self.buf_start = keep
        return piece


def _stretch_blocks(
    blocks: Iterable[np.ndarray], sample_rate: int, curve: SpeedCurve, source_duration: float
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Stretched audio in output order, in blocks, with, per output sample, the source time
    (seconds) it came from. ``blocks`` are the source's ``(channels, k)`` float32 samples in
    order; only a few seconds of either side are held at any time."""
    sr = sample_rate
    it = iter(blocks)
    first = next(it, None)
    if first is None or first.ndim != 2:
        raise ValueError("samples must be (channels, n) blocks, with at least one block")
    channels = first.shape[0]
    n_src = round(source_duration * sr)
    n_out = round(curve.output_duration(source_duration) * sr)
    context = max(1, round(_CONTEXT_S * sr))
    fade = max(1, round(_CROSSFADE_S * sr))
    x = _SourceWindow(itertools.chain([first], it), channels, n_src, context)
    shift = x.shift

    overhang = np.zeros((channels, fade), np.float32)  # out[oa:oa+fade] of the next piece
    overhang_pos = np.zeros(fade, np.float64)
    emitted = 0
    ramp_in = np.linspace(0.0, 1.0, fade, endpoint=False, dtype=np.float32)
    for a, b, tempo in _bounded(curve.audio_pieces(source_duration)):
        ia, ib = round(a * sr), round(b * sr)
        oa, ob = round(curve.output_time(a) * sr), round(curve.output_time(b) * sr)
        if ib <= ia or ob <= oa:
            continue
        lo, hi = max(ia + shift - context, 0), min(ib + shift + context, x.size)
        piece = x.get(lo, hi)
        timecode = np.arange(piece.shape[1], dtype=np.float64) * (_TIMECODE_PEAK / piece.shape[1])
        marks = np.stack([timecode, np.full(piece.shape[1], _TIMECODE_PEAK)]).astype(np.float32)
        y = _atempo(np.concatenate([piece, marks], axis=0), sr, tempo)
        ratio = y[-2].astype(np.float64) / np.maximum(y[-1].astype(np.float64), 1e-30)
        src_pos = ratio * piece.shape[1] + lo - shift  # source sample index
        # Place the piece so that, over its body, output samples sit where the time map
        # wants their source on average (median): atempo settles into a small steady
        # offset after its start, and centring on it halves the worst error compared
        # with cutting exactly at the piece's first source sample.
        body = (src_pos >= ia) & (src_pos < ib)
        if body.any():
            k = np.flatnonzero(body)
            wanted = curve.output_time(src_pos[k] / sr) * sr - oa
            start = max(0, round(float(np.median(k - wanted))))
        else:
            start = 0
        if oa > 0:
            # Nudge the start (by at most 5 ms) to where it best matches the previous
            # piece's overhang, as WSOLA itself does, so the cross-fade joins waveforms in
            # phase instead of cancelling part of a tone.
            reach = round(_ALIGN_S * sr)
            lo_k = max(start - reach, 0)
            cand = y[:channels, lo_k : start + reach + fade].sum(axis=0)
            ref = overhang.sum(axis=0)
            if cand.size >= fade and np.any(ref):
                start = lo_k + int(np.argmax(np.correlate(cand, ref, mode="valid")))
        length = ob - oa + fade
        seg = y[:channels, start : start + length]
        seg_pos = src_pos[start : start + length]
        if seg.shape[1] < length:
            missing = length - seg.shape[1]
            seg = np.concatenate([seg, np.zeros((channels, missing), np.float32)], axis=1)
            seg_pos = np.concatenate([seg_pos, np.full(missing, float(ib))])
        if oa > 0:
            # Fade in over the previous piece's overhang, which rendered the same moment.
            seg = seg.copy()
            seg[:, :fade] = seg[:, :fade] * ramp_in + overhang * (1.0 - ramp_in)
        # Pieces tile the output (each starts where the last ended): all before ``ob`` is
        # final; the last ``fade`` samples wait for the next piece's cross-fade.
        done = min(ob, n_out) - emitted
        if done > 0:
            yield seg[:, :done], seg_pos[:done] / sr
            emitted += done
        overhang, overhang_pos = seg[:, length - fade :], seg_pos[length - fade :]
    if emitted < n_out:  # the last overhang, then silence, up to the exact length
        rest = n_out - emitted
        tail = np.zeros((channels, rest), np.float32)
        tail_pos = np.full(rest, float(n_src), np.float64)
        n = min(rest, fade)
        tail[:, :n], tail_pos[:n] = overhang[:, :n], overhang_pos[:n]
        yield tail, tail_pos / sr


def _stretch(
    samples: np.ndarray, sample_rate: int, curve: SpeedCurve, source_duration: float
) -> tuple[np.ndarray, np.ndarray]:
    """Stretched audio and, per output sample, the source time (seconds) it came from."""
    if samples.ndim != 2:
        raise ValueError(f"samples must be (channels, n), got shape {samples.shape}")
    parts = list(_stretch_blocks([samples], sample_rate, curve, source_duration))
    if not parts:
        return np.zeros((samples.shape[0], 0), np.float32), np.zeros(0)
    return (
        np.concatenate([p for p, _ in parts], axis=1),
        np.concatenate([q for _, q in parts]),
    )


def retime_blocks(
    blocks: Iterable[np.ndarray], sample_rate: int, curve: SpeedCurve, source_duration: float
) -> Iterator[np.ndarray]:
    """:func:`retime_audio` over a stream of ``(channels, k)`` blocks, yielding output blocks
    in order while holding only a few seconds of audio."""
    for samples, _ in _stretch_blocks(blocks, sample_rate, curve, source_duration):
        yield samples


def retime_audio(
    samples: np.ndarray, sample_rate: int, curve: SpeedCurve, source_duration: float
) -> np.ndarray:
    """Time-stretch ``samples`` (float32, ``(channels, n)``) to the curve's time map.

    Pitch is kept (FFmpeg's ``atempo``, WSOLA). The source is cut into constant-tempo
    pieces (eased transitions into ~60 ms steps); each is stretched with 100 ms of real
    audio either side, placed so its samples sit where the time map wants their source
    on average (a hidden timecode channel says where each output sample came from),
    nudged by at most 5 ms to join its neighbour in phase, and cross-faded (10 ms) with
    it. Timing errors therefore do not add up along the clip; what remains is WSOLA's own
    jitter, up to about half its 43 ms window in source time (so ±20 ms at 1x, more at
    0.25x). The audio is cut or padded with silence to ``source_duration`` first; the
    result has exactly ``round(curve.output_duration(source_duration) * sample_rate)``
    samples.
    """
    return _stretch(samples, sample_rate, curve, source_duration)[0]
