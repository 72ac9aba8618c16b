"""VideoService.Render: speed ramp, captions, audio mix, in one pass through a real server."""

from __future__ import annotations

import wave
from fractions import Fraction
from pathlib import Path

import av
import grpc
import numpy as np
import pyloudnorm
import pytest
from mediacheck import decode
from scipy.signal import resample_poly
from vo.client import AsyncVideoClient, VoClientError
from vo.common.v1 import common_pb2
from vo.events import ProgressEvent, seconds_to_duration
from vo.video.v1 import video_service_pb2 as pb
from vo_video.hardware import available_hardware
from vo_video.ramp import SpeedCurve

RATE = 48000


def _source(path: Path) -> common_pb2.MediaSource:
    return common_pb2.MediaSource(uri=str(path))


async def render(
    target: str, src: Path, out: Path, spec: pb.RenderSpec
) -> tuple[list[ProgressEvent], pb.RenderResult]:
    events: list[ProgressEvent] = []
    result = None
    async with AsyncVideoClient.connect(target) as client:
        async for event in client.render(
            pb.RenderRequest(input=_source(src), output_uri=str(out), spec=spec)
        ):
            if isinstance(event, ProgressEvent):
                events.append(event)
            else:
                result = event
    assert result is not None
    return events, result


async def render_error(target: str, src: Path, out: Path, spec: pb.RenderSpec) -> VoClientError:
    with pytest.raises(VoClientError) as info:
        await render(target, src, out, spec)
    assert not out.exists()
    return info.value


def small(**parts: object) -> pb.RenderSpec:
    spec = pb.RenderSpec(
        reframe=pb.ReframeSpec(mode=pb.ReframeSpec.MODE_CENTER, width=360, height=640),
        encoder=pb.EncoderSpec(preset="ultrafast"),
    )
    for name, value in parts.items():
        getattr(spec, name).CopyFrom(value)
    return spec


def ramp(text: str) -> pb.SpeedRamp:
    r = pb.SpeedRamp()
    for item in text.split(","):
        t, v = (float(x) for x in item.split(":"))
        r.points.append(pb.SpeedPoint(source_offset=seconds_to_duration(t), speed=v))
    return r


def decode_audio(path: Path) -> np.ndarray:
    chunks = []
    with av.open(str(path)) as c:
        resampler = av.AudioResampler(format="fltp", layout="stereo", rate=RATE)
        for frame in c.decode(audio=0):
            for out in resampler.resample(frame):
                chunks.append(out.to_ndarray())
    return np.concatenate(chunks, axis=1)


def dominant_hz(x: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x)), n=len(x) * 4))
    return float(np.argmax(spectrum) * RATE / (len(x) * 4))


def band_db(x: np.ndarray, hz: float) -> float:
    spectrum = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    freqs = np.fft.rfftfreq(len(x), 1 / RATE)
    band = (freqs > hz * 0.95) & (freqs < hz * 1.05)
    return float(20 * np.log10(spectrum[band].max() + 1e-12))


async def test_speed_ramp_duration_sync_and_pitch(
    server_target: str, landscape_clip, tmp_path: Path
) -> None:
    out = tmp_path / "ramped.mp4"
    events, result = await render(
        server_target, landscape_clip.path, out, small(ramp=ramp("0:1,1:0.5,2:2"))
    )
    expected = SpeedCurve.parse("0:1,1:0.5,2:2").output_duration(4.0)
    d = decode(out)
    assert abs(d.video_seconds - expected) <= 1 / 30, (d.video_seconds, expected)
    assert abs(d.audio_seconds - d.video_seconds) < 1 / 30, "A/V drift of a frame or more"
    assert d.frames == result.frames
    assert {e.stage for e in events} >= {"audio", "render"}
    # Progress counts output frames, after retiming: the total is known from the start
    # (to within the rounding of the last frame) and the last event has the real count.
    renders = [e for e in events if e.stage == "render"]
    assert all(abs(e.frames_total - result.frames) <= 1 for e in renders), renders
    assert renders[-1].frames_done == renders[-1].frames_total == result.frames
    assert abs(result.frames - expected * 30) <= 1
    audio = decode_audio(out)[0]
    curve = SpeedCurve.parse("0:1,1:0.5,2:2")
    slow = audio[int(curve.output_time(1.3) * RATE) : int(curve.output_time(1.8) * RATE)]
    fast = audio[int(curve.output_time(2.6) * RATE) : int(curve.output_time(3.6) * RATE)]
    for segment in (slow, fast):
        assert dominant_hz(segment) == pytest.approx(440, rel=0.01), "pitch changed"


def plain_clip(
    path: Path, seconds: float = 3.0, tone_hz: float = 440.0, amplitude: float = 0.25
) -> None:
    """A dark, flat 640x360 clip with a tone: nothing yellow, nothing moving."""
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=30)
        v.width, v.height, v.pix_fmt = 640, 360, "yuv420p"
        a = c.add_stream("aac", rate=RATE, layout="stereo")
        img = np.full((360, 640, 3), 40, np.uint8)
        n = round(seconds * 30)
        for i in range(n):
            f = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
            f.pts, f.time_base = i, Fraction(1, 30)
            for p in v.encode(f):
                c.mux(p)
        t = np.arange(round(seconds * RATE)) / RATE
        tone = (amplitude * np.sin(2 * np.pi * tone_hz * t)).astype(np.float32)
        af = av.AudioFrame.from_ndarray(np.stack([tone, tone]), format="fltp", layout="stereo")
        af.sample_rate, af.pts, af.time_base = RATE, 0, Fraction(1, RATE)
        for p in [*a.encode(af), *a.encode(None), *v.encode(None)]:
            c.mux(p)


def yellow_pixels(path: Path, at: float) -> int:
    with av.open(str(path)) as c:
        for frame in c.decode(video=0):
            if frame.time is not None and frame.time >= at - 1e-6:
                rgb = frame.to_ndarray(format="rgb24").astype(int)
                return int(((rgb[..., 0] > 170) & (rgb[..., 1] > 150) & (rgb[..., 2] < 110)).sum())
    raise AssertionError(f"no frame at {at}")


def cue(start: float, end: float, words: list[tuple[str, float, float]]) -> common_pb2.Cue:
    c = common_pb2.Cue(start_offset=seconds_to_duration(start), end_offset=seconds_to_duration(end))
    for text, ws, we in words:
        c.words.append(
            common_pb2.Word(
                text=text, start_offset=seconds_to_duration(ws), end_offset=seconds_to_duration(we)
            )
        )
    return c


async def test_karaoke_highlights_the_spoken_word_inside_the_safe_area(
    server_target: str, tmp_path: Path
) -> None:
    src, out, bare = tmp_path / "plain.mp4", tmp_path / "captioned.mp4", tmp_path / "bare.mp4"
    plain_clip(src)
    captions = pb.CaptionSpec(
        cues=[cue(0.5, 2.5, [("HELLO", 0.5, 1.4), ("WORLD", 1.4, 2.5)])],
        style=pb.CaptionSpec.STYLE_KARAOKE,
    )
    await render(server_target, src, out, small(captions=captions))
    await render(server_target, src, bare, small())
    assert yellow_pixels(out, 0.2) == 0, "no caption before its cue"
    assert yellow_pixels(out, 1.0) > 50, "the spoken word is highlighted"
    assert yellow_pixels(out, 2.9) == 0, "no caption after its cue"
    # Everything the captions changed lies inside the platforms' safe area of a 360x640 frame.
    with av.open(str(out)) as a, av.open(str(bare)) as b:
        fa = (
            next(f for f in a.decode(video=0) if f.time >= 1.0)
            .to_ndarray(format="gray")
            .astype(int)
        )
        fb = (
            next(f for f in b.decode(video=0) if f.time >= 1.0)
            .to_ndarray(format="gray")
            .astype(int)
        )
    rows, cols = np.nonzero(np.abs(fa - fb) > 40)
    assert len(rows) > 100
    assert rows.max() < 640 * 0.8 + 4, "captions in the bottom UI band"
    assert cols.max() < 360 * 0.88 + 4, "captions under the side buttons"
    assert rows.min() > 640 * 0.4, "captions belong in the lower part of the frame"


def write_wav(path: Path, samples: np.ndarray) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes((np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes())


async def test_voice_over_ducks_the_original_and_hits_the_loudness_target(
    server_target: str, tmp_path: Path
) -> None:
    src, voice, out = tmp_path / "plain.mp4", tmp_path / "voice.wav", tmp_path / "mixed.mp4"
    plain_clip(src, seconds=6.0, amplitude=0.1)
    t = np.arange(6 * RATE) / RATE
    speaking = (t >= 2.0) & (t < 4.0)
    write_wav(voice, np.where(speaking, 0.3 * np.sin(2 * np.pi * 1000 * t), 0.0))
    audio = pb.AudioMixSpec(voice=_source(voice), duck_db=12)
    _, result = await render(server_target, src, out, small(audio=audio))
    mixed = decode_audio(out)
    meter = pyloudnorm.Meter(RATE)
    loudness = meter.integrated_loudness(mixed.T)
    assert loudness == pytest.approx(-14, abs=1.0)
    peak = np.abs(resample_poly(mixed, 4, 1, axis=1)).max()
    assert 20 * np.log10(peak) <= -1.0, "true peak above -1 dBTP"
    assert result.loudness_lufs == pytest.approx(-14, abs=1.0) and result.true_peak_dbtp <= -1.0
    during = band_db(mixed[0, int(2.5 * RATE) : int(3.5 * RATE)], 440)
    outside = band_db(mixed[0, int(4.6 * RATE) : int(5.6 * RATE)], 440)
    assert outside - during == pytest.approx(12, abs=2.5), "the original is ducked under the voice"


@pytest.mark.parametrize(
    ("curve", "needle"),
    [
        ("0:1,2:0.5,1:2", "is not after"),
        ("0:1,1:5", "speed 5"),
        ("0:1,9:2", "past the end of the video"),
    ],
)
async def test_bad_ramps(
    server_target: str, landscape_clip, tmp_path: Path, curve: str, needle: str
) -> None:
    err = await render_error(
        server_target, landscape_clip.path, tmp_path / "o.mp4", small(ramp=ramp(curve))
    )
    assert (
        err.code == grpc.StatusCode.INVALID_ARGUMENT
        and "ramp.points" in err.message
        and needle in err.message
    )


async def test_bad_captions_and_audio(server_target: str, landscape_clip, tmp_path: Path) -> None:
    out = tmp_path / "o.mp4"
    overlapping = pb.CaptionSpec(cues=[cue(0, 2, []), cue(1, 3, [])])
    overlapping.cues[0].lines.append("one")
    overlapping.cues[1].lines.append("two")
    err = await render_error(server_target, landscape_clip.path, out, small(captions=overlapping))
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT and "captions.cues[1]" in err.message
    backwards = pb.CaptionSpec(cues=[cue(2, 1, [])])
    backwards.cues[0].lines.append("late")
    err = await render_error(server_target, landscape_clip.path, out, small(captions=backwards))
    assert "captions.cues[0]" in err.message and "before start" in err.message
    broken = tmp_path / "broken.srt"
    broken.write_text("1\n00:00:01,000 --> 00:00:0x,000\nhello\n")
    err = await render_error(
        server_target,
        landscape_clip.path,
        out,
        small(captions=pb.CaptionSpec(subtitles=_source(broken))),
    )
    assert "captions.subtitles broken.srt" in err.message and "line 2" in err.message
    text = tmp_path / "music.mp3"
    text.write_text("la la la")
    err = await render_error(
        server_target, landscape_clip.path, out, small(audio=pb.AudioMixSpec(music=_source(text)))
    )
    assert err.code == grpc.StatusCode.INVALID_ARGUMENT and "audio.music" in err.message
    long_voice = tmp_path / "long.wav"
    write_wav(long_voice, np.zeros(10 * RATE))
    err = await render_error(
        server_target,
        landscape_clip.path,
        out,
        small(audio=pb.AudioMixSpec(voice=_source(long_voice))),
    )
    assert "audio.voice lasts 10.0 s but the video" in err.message


def stepped_clip(path: Path, frames: int = 20, fps: int = 10) -> None:
    """A silent clip whose brightness steps up by 10 every frame."""
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = 320, 180, "yuv420p"
        for i in range(frames):
            img = np.full((180, 320, 3), 30 + 10 * i, np.uint8)
            f = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
            f.pts, f.time_base = i, Fraction(1, fps)
            for p in v.encode(f):
                c.mux(p)
        for p in v.encode(None):
            c.mux(p)


@pytest.mark.parametrize("blend", [False, True])
async def test_slow_motion_repeats_or_blends_frames(
    server_target: str, tmp_path: Path, blend: bool
) -> None:
    src, out = tmp_path / "steps.mp4", tmp_path / "slow.mp4"
    stepped_clip(src)
    curve = ramp("0:0.25")
    curve.ease_duration.CopyFrom(seconds_to_duration(0))
    curve.blend_frames = blend
    await render(server_target, src, out, small(ramp=curve))
    means = []
    with av.open(str(out)) as c:
        for frame in c.decode(video=0):
            means.append(float(frame.to_ndarray(format="gray").mean()))
    assert len(means) == 80  # 2 s at a quarter speed, at the input's 10 fps
    levels = {round(m / 2.5) for m in means[:-4]}
    # Repeating shows each source level 4 times; blending adds the levels in between.
    assert (len(levels) > 60) if blend else (len(levels) <= 21), sorted(levels)


async def test_hardware_is_used_when_it_works_else_the_cpu_says_why(
    server_target: str, landscape_clip, tmp_path: Path
) -> None:
    out = tmp_path / "hw.mp4"
    encoder = pb.EncoderSpec(preset="ultrafast", hardware=pb.EncoderSpec.HARDWARE_AUTO)
    _, result = await render(server_target, landscape_clip.path, out, small(encoder=encoder))
    assert decode(out).frames == result.frames == 120
    if available_hardware():  # a GPU machine: the hardware path must really run
        assert result.hardware_path.startswith(("nvidia:", "vaapi:")), result.hardware_path
    else:
        assert result.hardware_path == "cpu:libx264"
        assert any("unavailable" in n and "h264_nvenc" in n for n in result.notes), result.notes


def flash_and_beep_clip(path: Path, seconds: float, at: float) -> None:
    """A dark 320x180 clip over a quiet noise bed, with one white frame and a 1 kHz beep at ``at``."""
    rng = np.random.default_rng(11)
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=30)
        v.width, v.height, v.pix_fmt = 320, 180, "yuv420p"
        v.options = {"preset": "ultrafast"}
        a = c.add_stream("aac", rate=RATE, layout="stereo")
        dark, white = np.full((180, 320, 3), 20, np.uint8), np.full((180, 320, 3), 235, np.uint8)
        flash = round(at * 30)
        for i in range(round(seconds * 30)):
            img = white if i == flash else dark
            f = av.VideoFrame.from_ndarray(img, format="rgb24").reformat(format="yuv420p")
            f.pts, f.time_base = i, Fraction(1, 30)
            for p in v.encode(f):
                c.mux(p)
        sound = (0.01 * rng.standard_normal(round(seconds * RATE))).astype(np.float32)
        start = round(at * RATE)
        sound[start : start + 4800] += 0.8 * np.sin(2 * np.pi * 1000 * np.arange(4800) / RATE)
        for s in range(0, sound.size, 1024):
            block = sound[s : s + 1024]
            af = av.AudioFrame.from_ndarray(
                np.stack([block, block]), format="fltp", layout="stereo"
            )
            af.sample_rate, af.pts, af.time_base = RATE, s, Fraction(1, RATE)
            for p in a.encode(af):
                c.mux(p)
        for p in [*a.encode(None), *v.encode(None)]:
            c.mux(p)


async def test_a_30_s_ramped_clip_keeps_picture_and_sound_together_to_the_end(
    server_target: str, tmp_path: Path
) -> None:
    src, out = tmp_path / "flash.mp4", tmp_path / "ramped.mp4"
    flash_and_beep_clip(src, 30.0, at=29.0)
    spec = pb.RenderSpec(
        reframe=pb.ReframeSpec(mode=pb.ReframeSpec.MODE_CENTER, width=180, height=320),
        ramp=ramp("0:1,10:0.5,15:2"),
        encoder=pb.EncoderSpec(preset="ultrafast"),
    )
    await render(server_target, src, out, spec)
    curve = SpeedCurve.parse("0:1,10:0.5,15:2")
    d = decode(out)
    assert abs(d.video_seconds - curve.output_duration(30.0)) <= 1 / 30
    assert abs(d.audio_seconds - d.video_seconds) < 1 / 30
    # Where the flash is shown and where the beep starts, at the end of the ramped clip.
    with av.open(str(out)) as c:
        shown = next(
            float(f.time) for f in c.decode(video=0) if f.to_ndarray(format="gray").mean() > 128
        )
    sound = decode_audio(out)[0]
    onset = float(np.argmax(np.abs(sound) > 0.4)) / RATE
    expected = curve.output_time(29.0)
    assert abs(shown - expected) <= 1 / 30, (shown, expected)
    assert abs(onset - shown) < 1 / 30, (
        f"A/V drift at the end: beep {onset:.3f} s, flash {shown:.3f} s"
    )
