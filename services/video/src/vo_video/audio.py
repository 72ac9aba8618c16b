"""The soundtrack: decode, voice-over with ducking, music bed, loudness and true peak.

Everything here works on whole float32 arrays shaped ``(channels, n)``: a 30 s stereo clip
at 48 kHz is 11 MB, and loudness (BS.1770 integrated) needs the whole programme anyway.
The renderer decodes and retimes the original track, calls :func:`mix`, and encodes the
result alongside its video frames.

Loudness follows ITU-R BS.1770-4 / EBU R128: K-weighting (a high shelf and the RLB
high-pass), mean square in 400 ms blocks with 75% overlap, an absolute gate at -70 LUFS
and a relative gate 10 LU below the ungated level. True peak is the sample peak of a 4x
oversampled signal (BS.1770-4 Annex 2).
"""

from __future__ import annotations

import math
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


def decode_audio(
    path: str | Path,
    what: str = "audio",
    sample_rate: int = DEFAULT_SAMPLE_RATE,
    channels: int = 2,
) -> np.ndarray:
    """Decode the first audio stream of ``path`` to float32 ``(channels, n)``.

    Resampled and remixed by FFmpeg (``av.AudioResampler``) to ``sample_rate`` and
    ``channels`` (1 or 2). ``what`` names the request field in errors ("audio.music").
    Raises :class:`NotFound` for a missing file and :class:`InvalidInput` for a file
    FFmpeg cannot read, one without an audio stream, or one with no audio samples.
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
    with container:
        if not container.streams.audio:
            raise InvalidInput(f"{what}: {path.name} has no audio stream")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="fltp", layout=layout, rate=sample_rate)
        chunks: list[np.ndarray] = []
        try:
            for frame in container.decode(stream):
                chunks.extend(f.to_ndarray() for f in resampler.resample(frame))
            # The resampler holds back a few samples for its filter; flush it once.
            chunks.extend(f.to_ndarray() for f in resampler.resample(None))
        except av.error.FFmpegError as e:
            raise InvalidInput(f"{what}: {path.name} could not be decoded ({e})") from e
    if not chunks:
        raise InvalidInput(f"{what}: {path.name} has an audio stream but no samples")
    return np.ascontiguousarray(np.concatenate(chunks, axis=1), dtype=np.float32)


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


def integrated_loudness(samples: np.ndarray, sample_rate: int) -> float:
    """Integrated loudness in LUFS (BS.1770-4, gated); ``-inf`` for silence or < 400 ms.

    Every channel is weighted 1.0, right for mono and stereo (surround channels would
    need 1.41 on Ls/Rs; vo only mixes mono and stereo). The K-weighting filters run chunk
    by chunk with their state carried over, so the float64 working copies stay a few MB
    whatever the length; a 400 ms block is four 100 ms hops, and only hop energies are kept.
    """
    x = np.atleast_2d(samples)
    hop = round(0.1 * sample_rate)
    hops = x.shape[1] // hop
    if hops < 4:
        return -math.inf
    filters = _k_weighting(sample_rate)
    state = [np.zeros((x.shape[0], max(len(a), len(b)) - 1), dtype=np.float64) for b, a in filters]
    hop_energy = np.empty(hops, dtype=np.float64)
    step = hop * _CHUNK_HOPS
    for first in range(0, hops * hop, step):
        y = np.asarray(x[:, first : min(first + step, hops * hop)], dtype=np.float64)
        for i, (b, a) in enumerate(filters):
            y, state[i] = _scipy_signal().lfilter(b, a, y, axis=1, zi=state[i])
        power = np.sum(y * y, axis=0)  # channel sum, all weights 1
        hop_energy[first // hop : first // hop + power.size // hop] = power.reshape(-1, hop).sum(1)
    # Blocks of 400 ms with 75% overlap: four consecutive hops.
    z = (hop_energy[:-3] + hop_energy[1:-2] + hop_energy[2:-1] + hop_energy[3:]) / (4 * hop)
    with np.errstate(divide="ignore"):
        block_lufs = -0.691 + 10.0 * np.log10(z)
    gated = z[block_lufs > -70.0]
    if gated.size == 0:
        return -math.inf
    relative = -0.691 + 10.0 * math.log10(float(np.mean(gated))) - 10.0
    gated = z[(block_lufs > -70.0) & (block_lufs > relative)]
    return -0.691 + 10.0 * math.log10(float(np.mean(gated)))


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
    step = _CHUNK_HOPS * 4800
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


def _fit(x: np.ndarray, length: int, channels: int) -> np.ndarray:
    """``x`` as float32 ``(channels, length)``: mono spread, cut or padded with silence."""
    x = np.atleast_2d(np.asarray(x, dtype=np.float32))
    if x.shape[0] != channels:
        # Mono to stereo copies the channel; anything else is averaged down first.
        x = np.repeat(x.mean(axis=0, keepdims=True), channels, axis=0)
    out = np.zeros((channels, length), dtype=np.float32)
    n = min(length, x.shape[1])
    out[:, :n] = x[:, :n]
    return out


def _loop_music(music: np.ndarray, length: int, sample_rate: int) -> np.ndarray:
    """Music repeated to ``length`` with cross-faded seams, faded in and out."""
    n = music.shape[1]
    out = np.zeros((music.shape[0], length), dtype=np.float32)
    if n > 0:
        seam = min(round(_LOOP_CROSSFADE_S * sample_rate), n // 4)
        ramp = np.linspace(0.0, 1.0, seam, dtype=np.float32)
        # Each repetition after the first overlaps the previous one's last `seam` samples.
        step = n - seam
        for start in range(0, length, step):
            rep = music[:, : length - start].copy()
            if start > 0 and seam:
                rep[:, :seam] *= ramp[: rep.shape[1]]
            if start + step < length and seam and rep.shape[1] == n:
                rep[:, -seam:] *= ramp[::-1]
            out[:, start : start + rep.shape[1]] += rep
    fade_in = min(round(_MUSIC_FADE_IN_S * sample_rate), length)
    fade_out = min(round(_MUSIC_FADE_OUT_S * sample_rate), length)
    env = np.ones(length, dtype=np.float32)
    env[:fade_in] *= np.linspace(0.0, 1.0, fade_in, dtype=np.float32)
    if fade_out:
        env[-fade_out:] *= np.linspace(1.0, 0.0, fade_out, dtype=np.float32)
    return out * env


def duck_envelope(voice: np.ndarray, sample_rate: int, spec: MixSpec) -> np.ndarray:
    """Per-sample gain (linear) for the bed: ``-duck_db`` while the voice speaks, else 1.

    Speech is where the voice's short-term RMS is within 30 dB of its loudest moment. The
    gain moves in dB at a fixed rate, so a full duck takes ``attack`` seconds and a full
    recovery ``release`` seconds; it starts ``attack`` early (we see the whole voice in
    advance), so the first syllable is not masked, and holds through pauses under 200 ms.
    """
    n = voice.shape[1]
    hop = max(1, round(_DUCK_HOP_S * sample_rate))
    power = np.mean(np.asarray(voice, dtype=np.float64) ** 2, axis=0)
    window = max(1, round(_DUCK_WINDOW_S * sample_rate))
    ms = _ndimage().uniform_filter1d(power, window, mode="constant")[::hop]
    with np.errstate(divide="ignore"):
        rms_db = 10.0 * np.log10(np.maximum(ms, 1e-20))
    if spec.duck_db <= 0 or ms.size == 0 or rms_db.max() < _DUCK_FLOOR_DB:
        return np.ones(n, dtype=np.float32)
    threshold = max(_DUCK_FLOOR_DB, float(rms_db.max()) - _DUCK_RANGE_DB)
    speaking = rms_db > threshold
    # Hold through short pauses, and look ahead by the attack time.
    hold = max(1, round(_DUCK_HOLD_S / _DUCK_HOP_S))
    lead = round(spec.attack / _DUCK_HOP_S)
    speaking = (
        np.convolve(speaking.astype(np.float64), np.ones(hold), mode="full")[: speaking.size] > 0
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
    hop_times = np.arange(gain_db.size) * hop
    per_sample = np.interp(np.arange(n), hop_times, gain_db)
    return (10.0 ** (per_sample / 20.0)).astype(np.float32)


def limit_true_peak(
    samples: np.ndarray, ceiling_db: float, sample_rate: int = DEFAULT_SAMPLE_RATE
) -> np.ndarray:
    """A look-ahead limiter keeping the 4x-oversampled peak at or under ``ceiling_db``."""
    return _limit(samples, ceiling_db, sample_rate)[0]


def _limit(samples: np.ndarray, ceiling_db: float, sample_rate: int) -> tuple[np.ndarray, float]:
    """A look-ahead limiter keeping the 4x-oversampled peak at or under ``ceiling_db``.

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
        return x, -math.inf
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
        top = float(_sample_peaks(x).max())
    if top > ceiling:
        x = x * np.float32(ceiling / top)
        top = ceiling
    return x.astype(np.float32), 20.0 * math.log10(top) if top > 0 else -math.inf


def mix(
    original: np.ndarray | None,
    voice: np.ndarray | None,
    music: np.ndarray | None,
    length: int,
    sample_rate: int,
    spec: MixSpec,
    channels: int = 2,
) -> MixResult:
    """Mix the soundtrack: original (ducked) + music (looped, ducked) + voice.

    All inputs are float32 ``(channels, n)`` at ``sample_rate`` (mono is spread to
    ``channels``). ``original`` is the source track already retimed to the output and
    is cut or padded to ``length``; ``music`` is looped to ``length`` with a 0.5 s fade in
    and a 1.5 s fade out; ``voice`` starts at 0. Voice-over policy: a voice longer than
    ``length`` is rejected (:func:`check_voice_fits`, :class:`InvalidInput`), never cut.

    With ``spec.normalize`` the sum is gained to ``target_lufs`` integrated; then, always,
    a true-peak limiter holds it under ``true_peak_db`` (a mix that clips is never
    wanted). The limiter costs loudness on very peaky material; the gain is raised and the
    limiter rerun up to twice to land within 0.5 LU of the target. Silence is returned as
    silence, with ``-inf`` loudness and peak.
    """
    if voice is not None:
        check_voice_fits(np.atleast_2d(voice).shape[1], length, sample_rate)
    bed = np.zeros((channels, length), dtype=np.float32)
    if original is not None and not spec.drop_original:
        bed += _fit(original, length, channels) * _db_to_gain(spec.original_gain_db)
    if music is not None:
        m = _fit(music, np.atleast_2d(music).shape[1], channels)
        bed += _loop_music(m, length, sample_rate) * _db_to_gain(spec.music_gain_db)
    if voice is not None:
        vo = _fit(voice, length, channels)
        bed *= duck_envelope(vo, sample_rate, spec)
        bed += vo

    out, peak_db = bed, math.nan
    if spec.normalize:
        measured = integrated_loudness(out, sample_rate)
        if math.isfinite(measured):
            pre = out * _db_to_gain(spec.target_lufs - measured)
            out, peak_db = _limit(pre, spec.true_peak_db, sample_rate)
            for _ in range(2):
                shortfall = spec.target_lufs - integrated_loudness(out, sample_rate)
                if shortfall <= 0.5:
                    break
                pre = pre * _db_to_gain(shortfall)
                out, peak_db = _limit(pre, spec.true_peak_db, sample_rate)
    if math.isnan(peak_db):
        out, peak_db = _limit(out, spec.true_peak_db, sample_rate)
    out = np.ascontiguousarray(out, dtype=np.float32)
    return MixResult(out, integrated_loudness(out, sample_rate), peak_db)
