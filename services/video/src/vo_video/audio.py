"""The soundtrack: decode, voice-over with ducking, music bed, loudness and true peak.

The renderer streams it: :func:`open_audio` decodes in blocks, the ramp retimes them
(:func:`vo_video.ramp.retime_blocks`), and :func:`mix_stream` ducks and sums them into a
spill file while measuring loudness, then gains and limits that file block by block into
the finished track, which the video pass reads back as it encodes. Memory stays a few
blocks whatever the length; only the music, looped from memory, is held whole.
:func:`mix` is the same on whole arrays, for short clips and tests.

Loudness follows ITU-R BS.1770-4 / EBU R128: K-weighting (a high shelf and the RLB
high-pass), mean square in 400 ms blocks with 75% overlap, an absolute gate at -70 LUFS
and a relative gate 10 LU below the ungated level. True peak is the sample peak of a 4x
oversampled signal (BS.1770-4 Annex 2).
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import av
import numpy as np
from vo_core.errors import InvalidInput, NotFound
from vo_core.progress import duration_to_seconds

if TYPE_CHECKING:
    from vo.video.v1 import video_service_pb2 as pb

DEFAULT_SAMPLE_RATE = 48000
BLOCK = 1 << 16
"""Samples per block when the soundtrack is streamed (1.4 s at 48 kHz)."""

_MUSIC_FADE_IN_S = 0.5
_MUSIC_FADE_OUT_S = 1.5
# Where the music loops, its end is cross-faded into its start so the seam does not click.
_LOOP_CROSSFADE_S = 0.05

# Ducking: the voice's RMS is measured in 10 ms hops over 50 ms windows; a hop counts as
# speech when it is within 30 dB of the voice's loudest hop (and above -60 dBFS), so quiet
# and loud recordings duck alike. Short pauses between words are held for 200 ms so the
# bed does not pump up between words.
_DUCK_HOP_S = 0.01
_DUCK_WINDOW_S = 0.05
_DUCK_RANGE_DB = 30.0
_DUCK_FLOOR_DB = -60.0
_DUCK_HOLD_S = 0.2

# The true-peak limiter aims a little under the ceiling, because oversampled peaks of the
# limited signal move slightly once the gain curve is applied. Its gain ramps over 10 ms
# (short enough to catch a transient, long enough not to distort bass) and holds 20 ms.
_LIMITER_MARGIN_DB = 0.1
_LIMITER_LOOKAHEAD_S = 0.01
_LIMITER_RELEASE_S = 0.02
_OVERSAMPLE = 4
# Long measurements work through the signal in chunks of this many 100 ms hops (6.4 s), so
# their float64 temporaries stay small whatever the programme's length.
_CHUNK_HOPS = 64
_PEAK_CHUNK = 1 << 18  # input samples oversampled at a time (5.5 s at 48 kHz)


def _scipy_signal() -> Any:
    # Imported on first use: scipy.signal takes seconds to import, and every process that
    # loads the video service (each pipeline worker) would pay for it at start even when it
    # never mixes audio.
    import scipy.signal

    return scipy.signal


def _ndimage() -> Any:
    import scipy.ndimage

    return scipy.ndimage


def _db_to_gain(db: float) -> float:
    return float(10.0 ** (db / 20.0))


# --- decoding -------------------------------------------------------------------------


def open_audio(
    path: str | Path,
    what: str = "audio",
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    channels: int = 2,
) -> Iterator[np.ndarray]:
    """Decode the first audio stream of ``path`` as float32 ``(channels, k)`` blocks, in order.

    Resampled and remixed by FFmpeg (``av.AudioResampler``) to ``sample_rate`` and
    ``channels`` (1 or 2). ``what`` names the request field in errors ("audio.music").
    The file is opened and checked now: :class:`NotFound` for a missing file and
    :class:`InvalidInput` for a file FFmpeg cannot read or one without an audio stream;
    a decoding error part-way raises :class:`InvalidInput` from the iterator.
    """
    layout = {1: "mono", 2: "stereo"}.get(channels)
    if layout is None:
        raise ValueError(f"channels must be 1 or 2, got {channels}")
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"{what}: {path} does not exist")
    try:
        container = av.open(str(path))
    except av.error.FFmpegError as e:
        raise InvalidInput(f"{what}: {path.name} is not a media file FFmpeg can read ({e})") from e
    if not container.streams.audio:
        container.close()
        raise InvalidInput(f"{what}: {path.name} has no audio stream")

    def blocks() -> Iterator[np.ndarray]:
        with container:
            stream = container.streams.audio[0]
            resampler = av.AudioResampler(format="fltp", layout=layout, rate=sample_rate)
            try:
                for frame in container.decode(stream):
                    for f in resampler.resample(frame):
                        yield f.to_ndarray()
                # The resampler holds back a few samples for its filter; flush it once.
                for f in resampler.resample(None):
                    yield f.to_ndarray()
            except av.error.FFmpegError as e:
                raise InvalidInput(f"{what}: {path.name} could not be decoded ({e})") from e

    return blocks()


def decode_audio(
    path: str | Path,
    what: str = "audio",
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    channels: int = 2,
) -> np.ndarray:
    """All of :func:`open_audio` as one float32 ``(channels, n)`` array (for short files:
    music, tests); :class:`InvalidInput` when the stream has no samples at all."""
    chunks = list(open_audio(path, what, sample_rate, channels))
    if not chunks:
        raise InvalidInput(f"{what}: {Path(path).name} has an audio stream but no samples")
    return np.ascontiguousarray(np.concatenate(chunks, axis=1), dtype=np.float32)


def _to_channels(samples: np.ndarray, channels: int) -> np.ndarray:
    """float32 ``(channels, n)``: mono spread, anything else averaged down first."""
    x = np.atleast_2d(np.asarray(samples, dtype=np.float32))
    if x.shape[0] != channels:
        x = np.repeat(x.mean(axis=0, keepdims=True), channels, axis=0)
    return x


def reblock(
    blocks: Iterable[np.ndarray] | None, length: int, channels: int, size: int = BLOCK
) -> Iterator[np.ndarray]:
    """Exactly ``length`` samples in float32 ``(channels, size)`` blocks (the last shorter):
    ``blocks`` cut, or padded with silence (all silence for None); mono is spread to
    ``channels``, anything else averaged down first."""
    pending: list[np.ndarray] = []
    have = 0
    source = iter(blocks) if blocks is not None else iter(())
    for start in range(0, length, size):
        want = min(size, length - start)
        while have < want:
            block = next(source, None)
            if block is None:
                break
            x = _to_channels(block, channels)
            pending.append(x)
            have += x.shape[1]
        joined = np.concatenate(pending, axis=1) if pending else np.zeros((channels, 0), np.float32)
        out = joined[:, :want]
        if out.shape[1] < want:
            out = np.concatenate([out, np.zeros((channels, want - out.shape[1]), np.float32)], 1)
        rest = joined[:, want:]
        pending, have = ([rest], rest.shape[1]) if rest.shape[1] else ([], 0)
        yield out


# --- the spec -------------------------------------------------------------------------


@dataclass(frozen=True)
class MixSpec:
    """How the soundtrack is built; the fields mirror ``vo.video.v1.AudioMixSpec``.

    ``duck_db`` is how far the original and the music drop while the voice speaks;
    ``attack`` and ``release`` are how long (seconds) a full duck takes to engage and to
    let go. Gains are in dB. ``target_lufs`` is the integrated loudness of the result and
    ``true_peak_db`` the ceiling for its true peak (dBTP). ``drop_original`` leaves the
    original track out; ``normalize`` turns loudness normalisation on.
    """

    duck_db: float = 12.0
    attack: float = 0.05
    release: float = 0.4
    original_gain_db: float = 0.0
    music_gain_db: float = -18.0
    target_lufs: float = -14.0
    true_peak_db: float = -1.0
    drop_original: bool = False
    normalize: bool = True

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`InvalidInput` naming the first field out of range."""
        checks = [
            ("audio.duck_db", self.duck_db, 0.0, 40.0, " dB"),
            ("audio.duck_attack", self.attack, 0.0, 5.0, " s"),
            ("audio.duck_release", self.release, 0.0, 10.0, " s"),
            ("audio.original_gain_db", self.original_gain_db, -60.0, 24.0, " dB"),
            ("audio.music_gain_db", self.music_gain_db, -60.0, 24.0, " dB"),
            ("audio.target_lufs", self.target_lufs, -40.0, -5.0, " LUFS"),
            ("audio.true_peak_db", self.true_peak_db, -9.0, 0.0, " dBTP"),
        ]
        for name, value, lo, hi, unit in checks:
            # `not (lo <= v <= hi)` also rejects NaN.
            if not (lo <= value <= hi):
                raise InvalidInput(f"{name} {value:g}{unit} is outside {lo:g} to {hi:g}")

    @classmethod
    def from_proto(cls, msg: pb.AudioMixSpec) -> MixSpec:
        """From ``vo.video.v1.AudioMixSpec``, applying the contract's defaults.

        proto3 cannot tell an unset number from zero, so 0 means the default for
        ``duck_db`` (12), ``music_gain_db`` (-18), ``target_lufs`` (-14) and
        ``true_peak_db`` (-1); to duck by nothing, leave the voice out. Unset
        ``duck_attack``/``duck_release`` mean 50 ms / 400 ms. ``normalize`` is on when the
        message asks for it or when a voice or music is mixed in (the contract's "on by
        default in Render when any audio is mixed").
        """
        d = cls()
        return cls(
            duck_db=msg.duck_db or d.duck_db,
            attack=duration_to_seconds(msg.duck_attack)
            if msg.HasField("duck_attack")
            else d.attack,
            release=duration_to_seconds(msg.duck_release)
            if msg.HasField("duck_release")
            else d.release,
            original_gain_db=msg.original_gain_db,
            music_gain_db=msg.music_gain_db or d.music_gain_db,
            target_lufs=msg.target_lufs or d.target_lufs,
            true_peak_db=msg.true_peak_db or d.true_peak_db,
            drop_original=msg.drop_original,
            normalize=msg.normalize or msg.HasField("voice") or msg.HasField("music"),
        )


@dataclass(frozen=True)
class MixResult:
    """The mixed soundtrack, float32 ``(channels, length)``, and what it measures."""

    samples: np.ndarray
    loudness_lufs: float
    """Integrated loudness (BS.1770-4) of ``samples``; ``-inf`` for silence."""
    true_peak_dbtp: float
    """True peak (4x oversampled) of ``samples`` in dBTP; ``-inf`` for silence."""


# --- measurement ----------------------------------------------------------------------


def _k_weighting(sample_rate: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The BS.1770 pre-filter (high shelf) and RLB high-pass as (b, a) biquads.

    Derived for any rate from the analogue prototypes (as libebur128 does); at 48 kHz
    they equal the coefficients printed in BS.1770-4.
    """
    f0, gain_db, q = 1681.974450955533, 3.999843853973347, 0.7071752369554196
    k = math.tan(math.pi * f0 / sample_rate)
    vh = 10.0 ** (gain_db / 20.0)
    vb = vh**0.4996667741545416
    a0 = 1.0 + k / q + k * k
    shelf_b = np.array(
        [(vh + vb * k / q + k * k) / a0, 2.0 * (k * k - vh) / a0, (vh - vb * k / q + k * k) / a0]
    )
    shelf_a = np.array([1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0])
    f0, q = 38.13547087602444, 0.5003270373238773
    k = math.tan(math.pi * f0 / sample_rate)
    a0 = 1.0 + k / q + k * k
    hp_b = np.array([1.0, -2.0, 1.0])
    hp_a = np.array([1.0, 2.0 * (k * k - 1.0) / a0, (1.0 - k / q + k * k) / a0])
    return [(shelf_b, shelf_a), (hp_b, hp_a)]


class LoudnessMeter:
    """BS.1770-4 integrated loudness, fed block by block.

    Every channel is weighted 1.0, right for mono and stereo (surround channels would
    need 1.41 on Ls/Rs; vo only mixes mono and stereo). The K-weighting filters keep their
    state across blocks, and only the energy of each 100 ms hop is kept (a 400 ms block is
    four hops), so a programme of any length costs a few bytes per second.
    """

    def __init__(self, sample_rate: int, channels: int = 2) -> None:
        self.hop = round(0.1 * sample_rate)
        self.filters = _k_weighting(sample_rate)
        self.state = [
            np.zeros((channels, max(len(a), len(b)) - 1), np.float64) for b, a in self.filters
        ]
        self.hops: list[float] = []
        self.partial = 0.0  # energy of the hop in progress
        self.partial_n = 0

    def add(self, samples: np.ndarray) -> None:
        """Measure the next samples, float ``(channels, k)``."""
        y = np.atleast_2d(np.asarray(samples, dtype=np.float64))
        for i, (b, a) in enumerate(self.filters):
            y, self.state[i] = _scipy_signal().lfilter(b, a, y, axis=1, zi=self.state[i])
        power = np.sum(y * y, axis=0)  # channel sum, all weights 1
        take = min(power.size, self.hop - self.partial_n)
        self.partial += float(power[:take].sum())
        self.partial_n += take
        if self.partial_n == self.hop:
            self.hops.append(self.partial)
            rest = power[take:]
            whole = rest.size // self.hop * self.hop
            self.hops.extend(rest[:whole].reshape(-1, self.hop).sum(axis=1).tolist())
            self.partial, self.partial_n = float(rest[whole:].sum()), rest.size - whole

    def integrated(self) -> float:
        """The integrated loudness so far in LUFS; ``-inf`` for silence or < 400 ms."""
        h = np.asarray(self.hops)
        if h.size < 4:
            return -math.inf
        z = (h[:-3] + h[1:-2] + h[2:-1] + h[3:]) / (4 * self.hop)
        with np.errstate(divide="ignore"):
            block_lufs = -0.691 + 10.0 * np.log10(z)
        gated = z[block_lufs > -70.0]
        if gated.size == 0:
            return -math.inf
        relative = -0.691 + 10.0 * math.log10(float(np.mean(gated))) - 10.0
        gated = z[(block_lufs > -70.0) & (block_lufs > relative)]
        return -0.691 + 10.0 * math.log10(float(np.mean(gated)))


def integrated_loudness(samples: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness in LUFS (BS.1770-4, gated); ``-inf`` for silence or < 400 ms."""
    x = np.atleast_2d(samples)
    meter = LoudnessMeter(sample_rate, x.shape[0])
    step = meter.hop * _CHUNK_HOPS
    for first in range(0, x.shape[1], step):
        meter.add(x[:, first : first + step])
    return meter.integrated()


def _sample_peaks(samples: np.ndarray) -> np.ndarray:
    """Per input sample, the largest |value| of the 4x oversampled signal around it, over
    channels (scipy's default Kaiser FIR): float32 ``(n,)``.

    Oversampled chunk by chunk, each with a margin wider than the filter's reach, so the
    result equals one whole-signal pass while the 4x float64 copy stays a few MB.
    """
    x = np.atleast_2d(samples)
    n = x.shape[1]
    peaks = np.empty(n, dtype=np.float32)
    margin = 64  # input samples; resample_poly's filter reaches 10 * up / up = 10
    step = _PEAK_CHUNK
    for first in range(0, n, step):
        last = min(first + step, n)
        lo, hi = max(0, first - margin), min(n, last + margin)
        up = _scipy_signal().resample_poly(
            np.asarray(x[:, lo:hi], dtype=np.float64), _OVERSAMPLE, 1, axis=1
        )
        inner = np.abs(up[:, (first - lo) * _OVERSAMPLE : (last - lo) * _OVERSAMPLE])
        peaks[first:last] = inner.max(axis=0).reshape(-1, _OVERSAMPLE).max(axis=1)
    return peaks


def true_peak_db(samples: np.ndarray) -> float:
    """True peak in dBTP: the peak of the 4x oversampled signal; ``-inf`` for silence."""
    x = np.atleast_2d(samples)
    if x.shape[1] == 0:
        return -math.inf
    peak = float(np.max(_sample_peaks(x)))
    return 20.0 * math.log10(peak) if peak > 0 else -math.inf


# --- processing -----------------------------------------------------------------------


def check_voice_fits(voice_len: int, video_len: int, sample_rate: int) -> None:
    """Reject a voice-over longer than the (ramped) video.

    Policy: the voice is never cut (a sentence would stop mid-word) nor sped up (it
    would no longer sound like the speaker); the request is rejected so the user can
    shorten the voice-over or the ramp. Anything within one 30 fps frame is let through
    (and trimmed by :func:`mix`), so rounding never fails a render.
    """
    if voice_len > video_len + sample_rate // 30:
        raise InvalidInput(
            f"audio.voice lasts {voice_len / sample_rate:.1f} s but the video (after the ramp) "
            f"lasts {video_len / sample_rate:.1f} s; shorten the voice-over or the ramp"
        )


def _music_block(music: np.ndarray, start: int, stop: int, length: int, sr: int) -> np.ndarray:
    """Samples ``[start, stop)`` of the music repeated to ``length``: each repetition's end
    is cross-faded into the next one's start, and the whole faded in and out."""
    n = music.shape[1]
    out = np.zeros((music.shape[0], stop - start), dtype=np.float32)
    if n > 0:
        seam = min(round(_LOOP_CROSSFADE_S * sr), n // 4)
        ramp = np.linspace(0.0, 1.0, seam, dtype=np.float32)
        # Each repetition after the first overlaps the previous one's last `seam` samples.
        step = n - seam
        for r in range(max(0, (start - n) // step + 1), (stop - 1) // step + 1):
            at = r * step
            whole = min(n, length - at)  # the last repetition is cut at the end
            lo, hi = max(start, at), min(stop, at + whole)
            if hi <= lo:
                continue
            seg = music[:, lo - at : hi - at].copy()
            pos = np.arange(lo - at, hi - at)
            if r > 0 and seam:
                head = pos < seam
                seg[:, head] *= ramp[pos[head]]
            if at + step < length and seam and whole == n:
                tail = pos >= n - seam
                seg[:, tail] *= ramp[::-1][pos[tail] - (n - seam)]
            out[:, lo - start : hi - start] += seg
    t = np.arange(start, stop)
    env = np.ones(stop - start, dtype=np.float32)
    fade_in = min(round(_MUSIC_FADE_IN_S * sr), length)
    fade_out = min(round(_MUSIC_FADE_OUT_S * sr), length)
    if fade_in:
        head = t < fade_in
        env[head] *= t[head] / max(fade_in - 1, 1) if fade_in > 1 else 0.0
    if fade_out:
        tail = t >= length - fade_out
        j = t[tail] - (length - fade_out)
        env[tail] *= 1.0 - j / max(fade_out - 1, 1) if fade_out > 1 else 1.0
    return out * env


def _prefix_sums(blocks: Iterable[np.ndarray], queries: np.ndarray) -> np.ndarray:
    """``sum(x[:q])`` for each ``q`` of ascending ``queries``, over a 1-D signal in blocks."""
    out = np.empty(queries.size, dtype=np.float64)
    total, start, qi = 0.0, 0, 0
    for block in blocks:
        c = np.cumsum(block, dtype=np.float64)
        end = start + c.size
        hi = int(np.searchsorted(queries, end, side="right"))
        local = queries[qi:hi] - start
        out[qi:hi] = total + np.where(local > 0, c[np.maximum(local - 1, 0)], 0.0)
        qi, start = hi, end
        total += float(c[-1]) if c.size else 0.0
    out[qi:] = total  # past the signal's end
    return out


class DuckCurve:
    """The bed's gain while the voice speaks, at 10 ms resolution, over the whole output.

    Speech is where the voice's short-term RMS is within 30 dB of its loudest moment. The
    gain moves in dB at a fixed rate, so a full duck takes ``attack`` seconds and a full
    recovery ``release`` seconds; it starts ``attack`` early (we see the whole voice in
    advance), so the first syllable is not masked, and holds through pauses under 200 ms.
    Built in one streaming pass over the voice, keeping 100 numbers a second.
    """

    def __init__(self, gain_db: np.ndarray | None, hop: int) -> None:
        self.gain_db = gain_db  # None: no ducking
        self.hop = hop
        self.hop_starts = np.arange(gain_db.size) * hop if gain_db is not None else None

    @classmethod
    def from_voice(
        cls, voice: Iterable[np.ndarray], length: int, sample_rate: int, spec: MixSpec
    ) -> DuckCurve:
        """The curve for a voice-over (float ``(channels, k)`` blocks) over ``length``."""
        hop = max(1, round(_DUCK_HOP_S * sample_rate))
        window = max(1, round(_DUCK_WINDOW_S * sample_rate))
        # The mean square over a 50 ms window centred on each hop (silence past the ends),
        # from running sums of the per-sample power (the channel mean).
        centres = np.arange(0, length, hop)
        lo = np.clip(centres - window // 2, 0, length)
        hi = np.clip(centres - window // 2 + window, 0, length)
        power = (np.mean(np.asarray(b, dtype=np.float64) ** 2, axis=0) for b in voice)
        queries = np.concatenate([lo, hi])
        order = np.argsort(queries, kind="stable")
        sums = np.empty(queries.size, dtype=np.float64)
        sums[order] = _prefix_sums(power, queries[order])
        ms = (sums[lo.size :] - sums[: lo.size]) / window
        with np.errstate(divide="ignore"):
            rms_db = 10.0 * np.log10(np.maximum(ms, 1e-20))
        if spec.duck_db <= 0 or ms.size == 0 or rms_db.max() < _DUCK_FLOOR_DB:
            return cls(None, hop)
        threshold = max(_DUCK_FLOOR_DB, float(rms_db.max()) - _DUCK_RANGE_DB)
        speaking = rms_db > threshold
        # Hold through short pauses, and look ahead by the attack time.
        hold = max(1, round(_DUCK_HOLD_S / _DUCK_HOP_S))
        lead = round(spec.attack / _DUCK_HOP_S)
        speaking = (
            np.convolve(speaking.astype(np.float64), np.ones(hold), mode="full")[: speaking.size]
            > 0
        )
        if lead:
            ahead = np.zeros_like(speaking)
            ahead[:-lead] = speaking[lead:]
            speaking |= ahead
        target = np.where(speaking, -spec.duck_db, 0.0)
        # Rate-limited in dB; a Python loop over 10 ms hops is 100 iterations per second.
        down = spec.duck_db * _DUCK_HOP_S / max(spec.attack, _DUCK_HOP_S)
        up = spec.duck_db * _DUCK_HOP_S / max(spec.release, _DUCK_HOP_S)
        gain_db = np.empty_like(target)
        g = 0.0
        for i, t in enumerate(target):
            g = max(g - down, t) if t < g else min(g + up, t)
            gain_db[i] = g
        return cls(gain_db, hop)

    def gains(self, start: int, stop: int) -> np.ndarray:
        """Linear gain for output samples ``[start, stop)``, float32."""
        if self.gain_db is None or self.hop_starts is None:
            return np.ones(stop - start, dtype=np.float32)
        per_sample = np.interp(np.arange(start, stop), self.hop_starts, self.gain_db)
        return (10.0 ** (per_sample / 20.0)).astype(np.float32)


def duck_envelope(voice: np.ndarray, sample_rate: int, spec: MixSpec) -> np.ndarray:
    """Per-sample gain (linear) for the bed under ``voice`` (float ``(channels, n)``):
    ``-duck_db`` while the voice speaks, else 1 (see :class:`DuckCurve`)."""
    n = np.atleast_2d(voice).shape[1]
    return DuckCurve.from_voice([np.atleast_2d(voice)], n, sample_rate, spec).gains(0, n)


def limit_true_peak(
    samples: np.ndarray, ceiling_db: float, sample_rate: int = DEFAULT_SAMPLE_RATE
) -> np.ndarray:
    """A look-ahead limiter keeping the 4x-oversampled peak at or under ``ceiling_db``."""
    return _limit(samples, ceiling_db, sample_rate)[0]


def _limit(
    samples: np.ndarray, ceiling_db: float, sample_rate: int
) -> tuple[np.ndarray, np.ndarray]:
    """A look-ahead limiter keeping the 4x-oversampled peak at or under ``ceiling_db``;
    returns the limited samples and their per-sample peaks (:func:`_sample_peaks`).

    The gain each sample needs comes from its oversampled peak. A running minimum over
    [n - hold, n + smooth) followed by a moving average over (n - smooth, n] gives a gain
    that ramps down over ``smooth`` before a peak, holds, and ramps back up, and is never
    above what any sample needs (every sample the average touches saw the peak in its
    minimum window). We have the whole signal, so the look-ahead costs no latency. Limiting
    moves oversampled peaks slightly, so it re-measures and repeats; a last static trim
    catches what is left.
    """
    x = np.asarray(samples, dtype=np.float32)
    if x.shape[1] == 0:
        return x, np.zeros(0, np.float32)
    ceiling = _db_to_gain(ceiling_db - _LIMITER_MARGIN_DB)
    smooth = max(1, round(_LIMITER_LOOKAHEAD_S * sample_rate))
    hold = max(0, round(_LIMITER_RELEASE_S * sample_rate))
    size = hold + smooth
    for _ in range(4):
        peak = _sample_peaks(x)
        top = float(peak.max())
        if top <= ceiling:
            break
        need = np.minimum(1.0, ceiling / np.maximum(peak, 1e-12))
        # scipy centres windows; `origin` slides them to [n - hold, n + smooth - 1]...
        held = _ndimage().minimum_filter1d(need, size, origin=hold - size // 2, mode="nearest")
        # ...and to [n - smooth + 1, n] for the average.
        gain = _ndimage().uniform_filter1d(held, smooth, origin=(smooth - 1) // 2, mode="nearest")
        x = x * gain.astype(np.float32)
    else:
        peak = _sample_peaks(x)
        top = float(peak.max())
    if top > ceiling:
        # A static trim scales the peaks exactly as it scales the samples.
        x = x * np.float32(ceiling / top)
        peak = peak * np.float32(ceiling / top)
    return x.astype(np.float32), peak


@dataclass(frozen=True)
class MixedFile:
    """A finished soundtrack spilled to disk: float32 frames, ``channels`` interleaved."""

    path: Path
    length: int
    channels: int
    loudness_lufs: float
    """Integrated loudness (BS.1770-4); ``-inf`` for silence."""
    true_peak_dbtp: float
    """True peak (4x oversampled) in dBTP; ``-inf`` for silence."""

    def read(self, start: int, stop: int) -> np.ndarray:
        """Samples ``[start, stop)`` as float32 ``(channels, k)``."""
        return _read_spill(self.path, self.channels, start, stop)


def _read_spill(path: Path, channels: int, start: int, stop: int) -> np.ndarray:
    count = max(0, stop - start) * channels
    data = np.fromfile(path, dtype=np.float32, count=count, offset=start * channels * 4)
    return np.ascontiguousarray(data.reshape(-1, channels).T)


def mix_stream(
    original: Iterable[np.ndarray] | None,
    voice: Callable[[], Iterable[np.ndarray]] | None,
    music: np.ndarray | None,
    length: int,
    sample_rate: int,
    spec: MixSpec,
    spill_dir: Path,
    channels: int = 2,
) -> Iterator[float | MixedFile]:
    """Mix the soundtrack into a file in ``spill_dir``: progress (0-1), then the :class:`MixedFile`.

    ``original`` is the source track, already retimed to the output, in blocks; it is cut or
    padded to ``length`` and ducked. ``voice`` makes the voice-over's blocks (it is read
    twice: once for the ducking curve, once to mix); it starts at 0 and must fit in
    ``length`` (:func:`check_voice_fits`). ``music`` is looped to ``length`` with a 0.5 s fade
    in and a 1.5 s fade out, and ducked like the original.

    Pass one sums the parts into a spill file and measures its loudness. Pass two gains it
    to ``target_lufs`` (with ``spec.normalize``) and runs a true-peak limiter holding it
    under ``true_peak_db`` (always: a mix that clips is never wanted), block by block with
    enough of the neighbours either side that the result equals one whole-signal pass; the
    limiter costs loudness on very peaky material, so the gain is raised and pass two rerun
    up to twice to land within 0.5 LU of the target. Memory stays a few blocks whatever
    ``length`` is; disk holds two float32 copies (0.4 MB per second of stereo each).
    """
    duck = DuckCurve.from_voice(voice(), length, sample_rate, spec) if voice else None
    music_fit = _to_channels(music, channels) if music is not None else None
    original_gain = _db_to_gain(spec.original_gain_db)
    music_gain = _db_to_gain(spec.music_gain_db)
    use_original = original is not None and not spec.drop_original
    parts = (
        reblock(original if use_original else None, length, channels),
        reblock(voice() if voice else None, length, channels),
    )
    premix = spill_dir / "premix.f32"
    meter = LoudnessMeter(sample_rate, channels)
    passes = 3 if spec.normalize else 1  # the most pass-two runs, for the progress fraction
    with premix.open("wb") as f:
        stop = 0
        for orig, vo in zip(*parts, strict=True):
            start, stop = stop, stop + orig.shape[1]
            bed = orig * original_gain if use_original else np.zeros_like(orig)
            if music_fit is not None and music_fit.shape[1]:
                bed += _music_block(music_fit, start, stop, length, sample_rate) * music_gain
            if duck is not None:
                bed *= duck.gains(start, stop)
            bed += vo
            meter.add(bed)
            bed.T.astype(np.float32).tofile(f)
            yield 0.5 * stop / max(length, 1)
    measured = meter.integrated()
    gain_db = spec.target_lufs - measured if spec.normalize and math.isfinite(measured) else 0.0
    final = spill_dir / "mix.f32"
    result: MixedFile | None = None
    for attempt in range(passes):
        result = None
        for item in _limit_pass(premix, final, length, channels, gain_db, spec, sample_rate):
            if isinstance(item, float):
                yield 0.5 + 0.5 * (attempt + item) / passes
            else:
                result = item
        assert result is not None
        shortfall = spec.target_lufs - result.loudness_lufs
        if not spec.normalize or not math.isfinite(measured) or shortfall <= 0.5:
            break
        gain_db += shortfall
    premix.unlink(missing_ok=True)
    assert result is not None
    yield result


# A limiter block sees this many samples of its neighbours either side: more than four
# iterations of the limiter's reach (30 ms of hold and smoothing plus the oversampling
# filter), so each block comes out as it would from one pass over the whole signal.
_LIMIT_CONTEXT = 8192


def _limit_pass(
    src: Path,
    dst: Path,
    length: int,
    channels: int,
    gain_db: float,
    spec: MixSpec,
    sample_rate: int,
) -> Iterator[float | MixedFile]:
    """Gain and limit ``src`` into ``dst`` block by block; progress, then the result."""
    gain = np.float32(_db_to_gain(gain_db))
    meter = LoudnessMeter(sample_rate, channels)
    peak = 0.0
    with dst.open("wb") as f:
        for start in range(0, length, BLOCK):
            stop = min(start + BLOCK, length)
            lo, hi = max(0, start - _LIMIT_CONTEXT), min(length, stop + _LIMIT_CONTEXT)
            window, window_peaks = _limit(
                _read_spill(src, channels, lo, hi) * gain, spec.true_peak_db, sample_rate
            )
            peaks = window_peaks[start - lo : stop - lo]
            peak = max(peak, float(peaks.max()) if peaks.size else 0.0)
            block = window[:, start - lo : stop - lo]
            meter.add(block)
            block.T.tofile(f)
            yield stop / max(length, 1)
    peak_db = 20.0 * math.log10(peak) if peak > 0 else -math.inf
    yield MixedFile(dst, length, channels, meter.integrated(), peak_db)


def mix(
    original: np.ndarray | None,
    voice: np.ndarray | None,
    music: np.ndarray | None,
    length: int,
    sample_rate: int,
    spec: MixSpec,
    channels: int = 2,
) -> MixResult:
    """:func:`mix_stream` on whole arrays, returning the mix in memory (short clips, tests).

    All inputs are float32 ``(channels, n)`` at ``sample_rate`` (mono is spread to
    ``channels``). Voice-over policy: a voice longer than ``length`` is rejected
    (:func:`check_voice_fits`, :class:`InvalidInput`), never cut. Silence is returned as
    silence, with ``-inf`` loudness and peak.
    """
    if voice is not None:
        check_voice_fits(np.atleast_2d(voice).shape[1], length, sample_rate)
    with tempfile.TemporaryDirectory(prefix="vo-mix-") as spill:
        result: MixedFile | None = None
        for item in mix_stream(
            [original] if original is not None else None,
            (lambda: [voice]) if voice is not None else None,
            music,
            length,
            sample_rate,
            spec,
            Path(spill),
            channels,
        ):
            if isinstance(item, MixedFile):
                result = item
        assert result is not None
        samples = result.read(0, length)
    return MixResult(samples, result.loudness_lufs, result.true_peak_dbtp)
