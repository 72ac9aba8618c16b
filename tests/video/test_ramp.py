"""Speed ramps: parsing and validation, the time map, and pitch-kept retimed audio."""

from __future__ import annotations

import numpy as np
import pytest
from google.protobuf import duration_pb2
from vo.video.v1 import video_service_pb2 as pb
from vo_core.errors import InvalidInput
from vo_video.ramp import SpeedCurve, _stretch, retime_audio

SR = 48000
FRAME = 1 / 30


def _dominant_hz(x: np.ndarray, sr: int = SR) -> float:
    """Peak of the windowed spectrum, refined by parabolic interpolation."""
    spec = np.abs(np.fft.rfft(x * np.hanning(x.size)))
    k = int(np.argmax(spec[1:])) + 1
    a, b, c = np.log(spec[k - 1 : k + 2] + 1e-12)
    return (k + 0.5 * (a - c) / (a - 2 * b + c)) * sr / x.size


# --- parsing and validation ----------------------------------------------------------


def test_parse_cli_form() -> None:
    curve = SpeedCurve.parse("0:1,10:0.5,15:2")
    assert curve.points == ((0.0, 1.0), (10.0, 0.5), (15.0, 2.0))
    assert curve.ease == 0.3
    assert not curve.blend_frames


def test_from_proto_defaults_and_explicit_zero_ease() -> None:
    msg = pb.SpeedRamp(
        points=[
            pb.SpeedPoint(source_offset=duration_pb2.Duration(seconds=0), speed=1),
            pb.SpeedPoint(
                source_offset=duration_pb2.Duration(seconds=2, nanos=500_000_000), speed=0.5
            ),
        ],
        blend_frames=True,
    )
    curve = SpeedCurve.from_proto(msg)
    assert curve.points == ((0.0, 1.0), (2.5, 0.5))
    assert curve.ease == 0.3 and curve.blend_frames
    msg.ease_duration.CopyFrom(duration_pb2.Duration())
    assert SpeedCurve.from_proto(msg).ease == 0.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "0:1,10:0.5,10:2,9:1",
            "ramp.points[2].source_offset 10.0 s is not after ramp.points[1] at 10.0 s",
        ),
        (
            "0:1,10:2,9:1",
            "ramp.points[2].source_offset 9.0 s is not after ramp.points[1] at 10.0 s",
        ),
        ("0:1,5:5", "ramp.points[1].speed 5 is outside 0.25-4"),
        ("0:0.2", "ramp.points[0].speed 0.2 is outside 0.25-4"),
        ("0:1,-1:2", "must be 0 or more"),
        ("0:1,abc", "'abc' is not SECONDS:SPEED"),
        ("0:1:2", "is not SECONDS:SPEED"),
        ("", "ramp is empty"),
        ("0:nan", "is outside 0.25-4"),
    ],
)
def test_bad_ramps_are_rejected_naming_the_field(text: str, message: str) -> None:
    with pytest.raises(InvalidInput) as err:
        SpeedCurve.parse(text)
    assert message in str(err.value)


def test_point_past_the_end_of_the_video() -> None:
    curve = SpeedCurve.parse("0:1,10:0.5,15:2,40:1")
    curve.validate(45.0)
    with pytest.raises(InvalidInput) as err:
        curve.validate(30.0)
    assert (
        str(err.value)
        == "ramp.points[3].source_offset 40.0 s is past the end of the video (30.0 s)"
    )


# --- the time map --------------------------------------------------------------------


def test_hard_jumps_integrate_exactly() -> None:
    curve = SpeedCurve.parse("0:1,10:0.5,15:2", ease=0)
    # 10 s at 1x, 5 s at 0.5x (10 s out), 15 s at 2x (7.5 s out).
    assert curve.output_duration(30) == pytest.approx(27.5, abs=1e-9)
    assert curve.output_time(12.0) == pytest.approx(14.0, abs=1e-9)
    assert curve.source_time(14.0) == pytest.approx(12.0, abs=1e-9)


def test_first_speed_applies_before_the_first_point() -> None:
    curve = SpeedCurve.parse("5:0.5", ease=0)
    assert curve.output_duration(10) == pytest.approx(20.0)


@pytest.mark.parametrize("ease", [0.3, 1.0, 4.0])
def test_eased_map_matches_a_brute_force_integral(ease: float) -> None:
    curve = SpeedCurve.parse("0:1,10:0.5,15:2,20:0.25", ease=ease)
    s = np.linspace(0, 30, 3_000_001)
    brute = np.trapezoid(1 / curve.speed_at(s), s)
    assert curve.output_duration(30) == pytest.approx(brute, abs=1e-5)
    # Eased, never a jump: neighbouring speeds 1 ms apart differ by little.
    assert np.max(np.abs(np.diff(curve.speed_at(np.arange(0, 30, 0.001))))) < 0.02


def test_source_time_inverts_output_time_and_is_monotonic() -> None:
    curve = SpeedCurve.parse("0:1,10:0.5,15:2,20:0.25")
    s = np.linspace(0, 30, 10_001)
    o = curve.output_time(s)
    assert np.all(np.diff(o) > 0)
    assert np.allclose(curve.source_time(o), s, atol=1e-9)
    frames = curve.frame_source_times(30, 30)
    assert frames.size == curve.frame_count(30, 30)
    assert np.all(np.diff(frames) > 0) and frames[-1] <= 30


def test_frame_weights_blend_only_in_slow_segments() -> None:
    slow = SpeedCurve.parse("0:0.5", blend_frames=True)
    # Output 1.0 s is source 0.5 s: a quarter of the way from 0.48 to 0.56.
    assert slow.frame_weights(1.0, 0.48, 0.56) == pytest.approx((0.75, 0.25))
    assert SpeedCurve.parse("0:0.5").frame_weights(1.0, 0.48, 0.56) == (1.0, 0.0)
    fast = SpeedCurve.parse("0:2", blend_frames=True)
    assert fast.frame_weights(0.25, 0.48, 0.52) == (0.0, 1.0)


# --- retimed audio -------------------------------------------------------------------


def test_pitch_is_kept_at_half_and_double_speed() -> None:
    t = np.arange(10 * SR) / SR
    tone = (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
    curve = SpeedCurve.parse("0:0.5,5:2", ease=0.3)
    out = retime_audio(tone, SR, curve, 10.0)
    slow = out[0, int(1 * SR) : int(9 * SR)]  # source 0.5-4.5 s at 0.5x
    fast = out[0, int(10.5 * SR) : int(12.5 * SR)]  # source 6-10 s at 2x
    assert _dominant_hz(slow) == pytest.approx(440, rel=0.01)
    assert _dominant_hz(fast) == pytest.approx(440, rel=0.01)


def test_length_is_the_time_map_and_the_tone_has_no_dropouts() -> None:
    t = np.arange(30 * SR) / SR
    tone = np.stack([0.5 * np.sin(2 * np.pi * 440 * t)] * 2).astype(np.float32)
    curve = SpeedCurve.parse("0:1,10:0.5,15:2")
    out = retime_audio(tone, SR, curve, 30.0)
    assert out.shape == (2, round(curve.output_duration(30) * SR))
    assert abs(out.shape[1] / SR - curve.output_duration(30)) < FRAME
    # Seams between pieces are cross-faded: 10 ms RMS stays near the tone's 0.354.
    body = out[0, SR // 10 : -SR // 10]
    rms = np.sqrt(np.mean(body[: body.size // 480 * 480].reshape(-1, 480) ** 2, axis=1))
    assert rms.min() > 0.3 and rms.max() < 0.4


def test_audio_stays_in_sync_with_the_time_map() -> None:
    """Tone bursts over a noise bed land where the video will show them."""
    rng = np.random.default_rng(7)
    x = (0.02 * rng.standard_normal((2, 30 * SR))).astype(np.float32)
    bursts = [1.0, 5.0, 9.5, 11.0, 13.0, 14.7, 17.0, 22.0, 26.0, 29.0]
    for b in bursts:
        i = int(b * SR)
        x[:, i : i + 2400] += 0.8 * np.sin(2 * np.pi * 1000 * np.arange(2400) / SR)
    curve = SpeedCurve.parse("0:1,10:0.5,15:2")
    out = retime_audio(x, SR, curve, 30.0)
    errors = []
    for b in bursts:
        expect = curve.output_time(b)
        lo = int((expect - 0.2) * SR)
        onset = lo + int(np.argmax(np.abs(out[0, lo : lo + int(0.4 * SR)]) > 0.4))
        errors.append(onset / SR - expect)
    assert abs(errors[-1]) < FRAME, errors  # the end of the clip
    assert max(abs(e) for e in errors) < FRAME, errors


def test_timing_error_does_not_accumulate_along_the_clip() -> None:
    """Where each output sample came from (the hidden timecode) follows the map."""
    rng = np.random.default_rng(3)
    x = (0.1 * rng.standard_normal((2, 30 * SR))).astype(np.float32)
    curve = SpeedCurve.parse("0:1,10:0.5,15:2")
    _, pos = _stretch(x, SR, curve, 30.0)
    err = curve.output_time(pos) - np.arange(pos.size) / SR
    assert abs(err[-SR // 10]) < FRAME
    assert np.percentile(np.abs(err), 99) < FRAME
