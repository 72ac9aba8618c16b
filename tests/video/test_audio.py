"""The soundtrack: decoding, ducking, music bed, loudness and true peak.

Loudness is checked with pyloudnorm and true peak with a 4x oversampling written here,
so the code under test is not its own judge.
"""

from __future__ import annotations

import math
import wave
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pyloudnorm
import pytest
from google.protobuf import duration_pb2
from scipy import signal
from vo.common.v1 import common_pb2
from vo.video.v1 import video_service_pb2 as pb
from vo_core.errors import InvalidInput, NotFound
from vo_video.audio import (
    MixSpec,
    check_voice_fits,
    decode_audio,
    duck_envelope,
    integrated_loudness,
    mix,
    true_peak_db,
)

SR = 48000


def _tone(hz: float, seconds: float, amp: float = 0.5, sr: int = SR) -> np.ndarray:
    t = np.arange(round(seconds * sr)) / sr
    return (amp * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def _pyln(x: np.ndarray) -> float:
    return float(pyloudnorm.Meter(SR).integrated_loudness(x.T.astype(np.float64)))


def _true_peak_dbtp(x: np.ndarray) -> float:
    up = signal.resample_poly(x.astype(np.float64), 4, 1, axis=1, window=("kaiser", 8.0))
    return 20 * math.log10(float(np.max(np.abs(up))))


def _band_db(x: np.ndarray, hz: float, sr: int = SR) -> float:
    """Energy (dB) within ±20 Hz of ``hz``."""
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size))) ** 2
    f = np.fft.rfftfreq(x.size, 1 / sr)
    return 10 * math.log10(float(spec[(f > hz - 20) & (f < hz + 20)].sum()) + 1e-30)


def _program(seconds: float = 30.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An original (220 Hz + noise), a voice (1 kHz, 5-15 s) and 7 s of music (440 Hz)."""
    rng = np.random.default_rng(1)
    n = round(seconds * SR)
    orig = _tone(220, seconds, 0.3) + (0.03 * rng.standard_normal(n)).astype(np.float32)
    voice = _tone(1000, 15, 0.5)
    voice[: 5 * SR] = 0
    return np.stack([orig, orig]), voice[None], _tone(440, 7, 0.4)[None]


# --- loudness and peak ---------------------------------------------------------------


@pytest.mark.parametrize("kind", ["noise", "tone", "program"])
def test_loudness_agrees_with_pyloudnorm(kind: str) -> None:
    rng = np.random.default_rng(0)
    if kind == "noise":
        x = (0.1 * rng.standard_normal((2, 10 * SR))).astype(np.float32)
    elif kind == "tone":
        x = np.stack([_tone(997, 10)] * 2)
    else:
        x = _program()[0]
    assert integrated_loudness(x, SR) == pytest.approx(_pyln(x), abs=0.1)


def test_silence_measures_minus_infinity_and_mixes_to_silence() -> None:
    silence = np.zeros((2, 5 * SR), dtype=np.float32)
    assert integrated_loudness(silence, SR) == -math.inf
    assert true_peak_db(silence) == -math.inf
    result = mix(silence, None, None, 5 * SR, SR, MixSpec())
    assert not result.samples.any()
    assert result.loudness_lufs == -math.inf and result.true_peak_dbtp == -math.inf


def test_mix_is_normalised_and_under_the_true_peak_ceiling() -> None:
    orig, voice, music = _program()
    result = mix(orig, voice, music, 30 * SR, SR, MixSpec())
    assert result.samples.shape == (2, 30 * SR) and result.samples.dtype == np.float32
    assert _pyln(result.samples) == pytest.approx(-14.0, abs=1.0)
    assert _true_peak_dbtp(result.samples) <= -1.0 + 0.05
    assert result.loudness_lufs == pytest.approx(_pyln(result.samples), abs=0.1)
    assert result.true_peak_dbtp == pytest.approx(_true_peak_dbtp(result.samples), abs=0.1)


def test_peaky_material_is_limited_and_still_near_the_target() -> None:
    """Drum-like clicks over a quiet bed: the limiter works hard, loudness holds."""
    rng = np.random.default_rng(2)
    x = (0.02 * rng.standard_normal((2, 20 * SR))).astype(np.float32)
    hit = (np.exp(-np.arange(2400) / 300) * rng.standard_normal(2400)).astype(np.float32)
    for i in range(0, 20 * SR - 2400, SR // 4):
        x[:, i : i + 2400] += 0.9 * hit
    result = mix(x, None, None, 20 * SR, SR, MixSpec(target_lufs=-10.0))
    assert _true_peak_dbtp(result.samples) <= -1.0 + 0.05
    assert _pyln(result.samples) == pytest.approx(-10.0, abs=1.0)


# --- ducking and music ---------------------------------------------------------------


def test_the_original_ducks_while_the_voice_speaks() -> None:
    orig, voice, _ = _program()
    result = mix(orig, voice, None, 30 * SR, SR, MixSpec(duck_db=12.0, normalize=False))
    out = result.samples[0]
    # Windows of equal length (4 s), so band energies compare directly.
    during = _band_db(out[8 * SR : 12 * SR], 220)
    before = _band_db(out[0 : 4 * SR], 220)
    after = _band_db(out[20 * SR : 24 * SR], 220)
    assert before - during == pytest.approx(12.0, abs=1.0)
    assert after - during == pytest.approx(12.0, abs=1.0)
    # The voice itself is not ducked.
    assert _band_db(out[7 * SR : 13 * SR], 1000) == pytest.approx(
        _band_db(voice[0, 7 * SR : 13 * SR], 1000), abs=0.5
    )


def test_ducking_ramps_instead_of_cutting() -> None:
    _, voice, _ = _program()
    spec = MixSpec(duck_db=12.0, attack=0.05, release=0.4)
    padded = np.pad(voice[0], (0, 5 * SR))  # 5 s of silence after the voice, to release in
    gain_db = 20 * np.log10(duck_envelope(np.stack([padded] * 2), SR, spec))
    # Fully ducked by the time the voice starts (the duck looks ahead by the attack)...
    assert gain_db[5 * SR] == pytest.approx(-12.0, abs=0.3)
    # ...over a ramp of about 50 ms before it (no hard cut), untouched 150 ms before.
    ramp = gain_db[5 * SR - SR // 10 : 5 * SR]
    assert np.max(np.abs(np.diff(ramp))) < 0.01  # dB per sample: 12 dB over >= 1200 samples
    assert np.sum((ramp < -1) & (ramp > -11)) > 0.03 * SR
    assert gain_db[5 * SR - round(0.15 * SR)] == pytest.approx(0.0, abs=0.01)
    # Release after the voice stops at 15 s (+200 ms hold): half-way 200 ms into it.
    mid = 15 * SR + round(0.2 * SR) + round(0.2 * SR)
    assert -9.0 < gain_db[mid] < -3.0
    assert gain_db[16 * SR] == pytest.approx(0.0, abs=0.01)


def test_music_is_looped_to_length_with_fades() -> None:
    _, _, music = _program()
    spec = MixSpec(music_gain_db=0.0, normalize=False)
    result = mix(None, None, music, 20 * SR, SR, spec)
    out = result.samples[0]
    assert out.shape == (20 * SR,)
    rms = lambda a: float(np.sqrt(np.mean(a**2)))  # noqa: E731
    steady = 0.4 / math.sqrt(2)
    assert rms(out[: SR // 50]) < 0.1 * steady  # fading in
    assert rms(out[SR : 2 * SR]) == pytest.approx(steady, rel=0.05)
    # Past the 7 s of music it loops, and the seams do not dip or click.
    assert rms(out[15 * SR : 17 * SR]) == pytest.approx(steady, rel=0.05)
    windows = out[SR : 18 * SR].reshape(-1, 480)
    assert np.sqrt(np.mean(windows**2, axis=1)).min() > 0.8 * steady
    assert rms(out[-SR // 50 :]) < 0.1 * steady  # fading out
    assert _band_db(out[15 * SR : 17 * SR], 440) > _band_db(out[15 * SR : 17 * SR], 880) + 30


def test_drop_original_leaves_only_voice_and_music() -> None:
    orig, voice, _ = _program()
    result = mix(orig, voice, None, 30 * SR, SR, MixSpec(drop_original=True, normalize=False))
    assert not result.samples[:, : 4 * SR].any()


# --- voice-over policy and spec --------------------------------------------------------


def test_a_voice_longer_than_the_video_is_rejected() -> None:
    with pytest.raises(InvalidInput) as err:
        check_voice_fits(round(35.2 * SR), 30 * SR, SR)
    assert str(err.value) == (
        "audio.voice lasts 35.2 s but the video (after the ramp) lasts 30.0 s; "
        "shorten the voice-over or the ramp"
    )
    check_voice_fits(30 * SR + 100, 30 * SR, SR)  # rounding within a frame is fine
    with pytest.raises(InvalidInput):
        mix(None, np.zeros((1, 31 * SR), np.float32), None, 30 * SR, SR, MixSpec())


def test_spec_from_proto_defaults_and_ranges() -> None:
    spec = MixSpec.from_proto(pb.AudioMixSpec())
    assert spec == MixSpec(normalize=False)
    voiced = pb.AudioMixSpec(
        voice=common_pb2.MediaSource(uri="/in/voice.wav"),
        duck_db=20,
        duck_attack=duration_pb2.Duration(nanos=100_000_000),
        target_lufs=-16,
    )
    spec = MixSpec.from_proto(voiced)
    assert (spec.duck_db, spec.attack, spec.target_lufs, spec.normalize) == (20, 0.1, -16, True)
    for msg, field in [
        (pb.AudioMixSpec(duck_db=50), "audio.duck_db 50 dB is outside 0 to 40"),
        (pb.AudioMixSpec(target_lufs=-3), "audio.target_lufs -3 LUFS is outside -40 to -5"),
        (pb.AudioMixSpec(true_peak_db=-12), "audio.true_peak_db -12 dBTP is outside -9 to 0"),
    ]:
        with pytest.raises(InvalidInput) as err:
            MixSpec.from_proto(msg)
        assert str(err.value) == field


# --- decoding ------------------------------------------------------------------------


def _write_wav(path: Path, samples: np.ndarray, sr: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(sr)
        w.writeframes((samples * 32767).astype("<i2").tobytes())


def _write_mp4(path: Path, with_audio: bool) -> None:
    with av.open(str(path), "w") as out:
        video = out.add_stream("mpeg4", rate=25)
        video.width, video.height, video.pix_fmt = 64, 64, "yuv420p"
        audio = out.add_stream("aac", rate=44100, layout="stereo") if with_audio else None
        for i in range(25):
            frame = av.VideoFrame.from_ndarray(
                np.full((64, 64, 3), i * 8, np.uint8), format="rgb24"
            )
            out.mux(video.encode(frame))
        out.mux(video.encode(None))
        if audio is not None:
            tone = _tone(440, 1.0, 0.5, sr=44100)
            for j in range(0, tone.size - 1024, 1024):
                chunk = np.stack([tone[j : j + 1024]] * 2)
                af = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="stereo")
                af.sample_rate, af.pts, af.time_base = 44100, j, Fraction(1, 44100)
                out.mux(audio.encode(af))
            out.mux(audio.encode(None))


def test_decode_a_mono_wav_to_stereo_48k(tmp_path: Path) -> None:
    path = tmp_path / "voice.wav"
    _write_wav(path, _tone(440, 2.0, 0.5, sr=22050), 22050)
    x = decode_audio(path, "audio.voice")
    assert x.dtype == np.float32 and x.shape[0] == 2
    assert abs(x.shape[1] - 2 * SR) < 100
    assert np.allclose(x[0], x[1])
    spec = np.abs(np.fft.rfft(x[0]))
    assert np.argmax(spec) * SR / x.shape[1] == pytest.approx(440, abs=2)


def test_decode_the_audio_of_an_mp4(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    _write_mp4(path, with_audio=True)
    x = decode_audio(path, "audio.music", channels=1)
    assert x.shape[0] == 1 and 0.9 * SR < x.shape[1] < 1.1 * SR
    spec = np.abs(np.fft.rfft(x[0]))
    assert np.argmax(spec) * SR / x.shape[1] == pytest.approx(440, abs=2)


def test_decode_rejects_what_is_not_audio(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("this is not audio\n" * 50)
    # FFmpeg may refuse the file or read it as a stream-less "tty" text; both say why.
    with pytest.raises(
        InvalidInput, match=r"^audio\.music: notes\.txt (is not a media file|has no audio stream)"
    ):
        decode_audio(text, "audio.music")
    silent = tmp_path / "silent.mp4"
    _write_mp4(silent, with_audio=False)
    with pytest.raises(InvalidInput, match=r"^audio\.voice: silent\.mp4 has no audio stream"):
        decode_audio(silent, "audio.voice")
    with pytest.raises(NotFound):
        decode_audio(tmp_path / "missing.wav", "audio.voice")
