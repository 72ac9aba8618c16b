"""Render specs as domain values: parsed and validated from the proto, with defaults applied.

Everything a render needs is checked here, before any frame is decoded, so a bad request fails
at once with INVALID_ARGUMENT naming the field and the value to fix.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from vo.common.v1 import common_pb2
from vo.video.v1 import video_service_pb2 as pb
from vo_core.errors import InvalidInput
from vo_core.media import MediaInfo, probe
from vo_core.storage import ArtifactStore, PathPolicy, resolve_source

from vo_video.audio import MixSpec
from vo_video.captions import (
    CaptionCue,
    CaptionStyle,
    CaptionTrack,
    cues_from_proto,
    style_from_proto,
    validate_cues,
)
from vo_video.config import Settings
from vo_video.ramp import SpeedCurve

ReframeMode = Literal["none", "center", "smart"]
Hardware = Literal["auto", "cpu", "nvidia", "vaapi"]

DEFAULT_ASPECT = (9, 16)
DEFAULT_SIZE = (1080, 1920)
PRESETS = (
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
)
_ASPECT_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*[:/x]\s*(\d+(?:\.\d+)?)\s*$")
MAX_OUTPUT_SIDE = 4096


def parse_aspect(text: str) -> tuple[int, int]:
    """``"9:16"`` to (9, 16); reject anything that is not two positive numbers."""
    m = _ASPECT_RE.match(text or "")
    if not m:
        raise InvalidInput(
            f"aspect {text!r} is not a ratio; write it as W:H, such as 9:16, 4:5 or 1:1"
        )
    w, h = float(m.group(1)), float(m.group(2))
    if w <= 0 or h <= 0:
        raise InvalidInput(f"aspect {text!r} has a zero side; write it as W:H, such as 9:16")
    ratio = w / h
    if not 0.2 <= ratio <= 5:
        raise InvalidInput(f"aspect {text!r} is too extreme; use a ratio between 1:5 and 5:1")
    # Keep integers when given, else scale decimals to integers.
    scale = 1000 if (w % 1 or h % 1) else 1
    g = math.gcd(round(w * scale), round(h * scale))
    return round(w * scale) // g, round(h * scale) // g


def parse_size(text: str) -> tuple[int, int]:
    """``"1080x1920"`` to (1080, 1920)."""
    m = re.match(r"^\s*(\d+)\s*[x:X]\s*(\d+)\s*$", text or "")
    if not m:
        raise InvalidInput(f"size {text!r} is not WIDTHxHEIGHT, such as 1080x1920")
    return int(m.group(1)), int(m.group(2))


def even(n: float) -> int:
    """Nearest even integer >= 2 (yuv420p needs even dimensions)."""
    return max(2, round(n / 2) * 2)


@dataclass(frozen=True)
class ReframeOptions:
    """How the picture becomes the target shape."""

    mode: ReframeMode = "smart"
    aspect: tuple[int, int] = DEFAULT_ASPECT
    width: int = DEFAULT_SIZE[0]
    height: int = DEFAULT_SIZE[1]


@dataclass(frozen=True)
class EncoderOptions:
    """How the output is encoded."""

    preset: str = "veryfast"
    crf: int = 23
    audio_bitrate: int = 128_000
    frame_rate: float = 0.0  # 0 keeps the input's average rate
    hardware: Hardware = "cpu"


@dataclass(frozen=True)
class CaptionOptions:
    """Validated captions: cues in output time and how they look."""

    cues: tuple[CaptionCue, ...]
    style: CaptionStyle


@dataclass(frozen=True)
class AudioOptions:
    """The soundtrack: what to mix and how."""

    mix: MixSpec
    voice: Path | None = None
    music: Path | None = None


@dataclass(frozen=True)
class RenderJob:
    """One validated render: input, output and what to do."""

    input: Path
    info: MediaInfo
    output: Path | None  # None: store as an artifact only
    reframe: ReframeOptions | None
    encoder: EncoderOptions = field(default_factory=EncoderOptions)
    ramp: SpeedCurve | None = None
    captions: CaptionOptions | None = None
    audio: AudioOptions | None = None

    @property
    def output_duration(self) -> float:
        """How long the output lasts (after the speed ramp)."""
        return self.ramp.output_duration(self.info.duration) if self.ramp else self.info.duration


def reframe_from_proto(msg: pb.ReframeSpec, default_mode: ReframeMode) -> ReframeOptions:
    """Validate a ReframeSpec and derive the output size from aspect and/or size."""
    modes: dict[int, ReframeMode] = {
        pb.ReframeSpec.MODE_NONE: "none",
        pb.ReframeSpec.MODE_CENTER: "center",
        pb.ReframeSpec.MODE_SMART: "smart",
    }
    mode = modes.get(msg.mode, default_mode) if msg.mode else default_mode
    width, height = msg.width, msg.height
    if width < 0 or height < 0:
        raise InvalidInput(f"reframe size {width}x{height} is negative; give positive pixels")
    if msg.aspect:
        aw, ah = parse_aspect(msg.aspect)
    elif width and height:
        aw, ah = width, height
    else:
        aw, ah = DEFAULT_ASPECT
    if width and height:
        if abs(width / height - aw / ah) > 0.01:
            raise InvalidInput(
                f"reframe size {width}x{height} does not have aspect {aw}:{ah}; "
                "give only one of width/height, or a matching size"
            )
    elif width:
        height = even(width * ah / aw)
    elif height:
        width = even(height * aw / ah)
    else:
        # Default: 1080 on the short side (1080x1920 for 9:16, 1080x1350 for 4:5, 1080x1080).
        short = DEFAULT_SIZE[0]
        width, height = (
            (short, even(short * ah / aw)) if aw <= ah else (even(short * aw / ah), short)
        )
    if width % 2 or height % 2:
        raise InvalidInput(f"reframe size {width}x{height} must have even sides (H.264 yuv420p)")
    if max(width, height) > MAX_OUTPUT_SIDE or min(width, height) < 16:
        raise InvalidInput(
            f"reframe size {width}x{height} is outside 16..{MAX_OUTPUT_SIDE} pixels per side"
        )
    return ReframeOptions(mode=mode, aspect=(aw, ah), width=width, height=height)


def encoder_from_proto(msg: pb.EncoderSpec) -> EncoderOptions:
    """Validate an EncoderSpec, applying the short-form defaults (veryfast, crf 23, 128 kb/s)."""
    preset = msg.preset or "veryfast"
    if preset not in PRESETS:
        raise InvalidInput(f"encoder.preset {preset!r} is not one of {', '.join(PRESETS)}")
    crf = msg.crf if msg.HasField("crf") else 23
    if not 0 <= crf <= 51:
        raise InvalidInput(f"encoder.crf {crf} is outside 0..51 (lower is better quality)")
    bitrate = msg.audio_bitrate or 128_000
    if not 32_000 <= bitrate <= 512_000:
        raise InvalidInput(f"encoder.audio_bitrate {bitrate} is outside 32000..512000 bits/s")
    if msg.frame_rate < 0 or msg.frame_rate > 240:
        raise InvalidInput(f"encoder.frame_rate {msg.frame_rate} is outside 0..240")
    hardware: dict[int, Hardware] = {
        pb.EncoderSpec.HARDWARE_AUTO: "auto",
        pb.EncoderSpec.HARDWARE_CPU: "cpu",
        pb.EncoderSpec.HARDWARE_NVIDIA: "nvidia",
        pb.EncoderSpec.HARDWARE_VAAPI: "vaapi",
    }
    return EncoderOptions(
        preset=preset,
        crf=crf,
        audio_bitrate=bitrate,
        frame_rate=msg.frame_rate,
        hardware=hardware.get(msg.hardware, "cpu"),
    )


def check_input_limits(info: MediaInfo, settings: Settings) -> None:
    """Reject inputs beyond the configured size and duration limits, up front."""
    if info.video is None:
        raise InvalidInput(f"{info.path} has no video stream; give a video file")
    pixels = info.video.width * info.video.height
    if pixels > settings.max_input_pixels:
        raise InvalidInput(
            f"input is {info.video.width}x{info.video.height}, over the limit of "
            f"{settings.max_input_pixels} pixels; downscale it first"
        )
    if info.duration > settings.max_input_seconds:
        raise InvalidInput(
            f"input lasts {info.duration:.0f} s, over the limit of {settings.max_input_seconds} s"
        )


def render_job_from_proto(
    source: common_pb2.MediaSource,
    output_uri: str,
    spec: pb.RenderSpec,
    settings: Settings,
    policy: PathPolicy,
    store: ArtifactStore,
) -> RenderJob:
    """Validate a request completely (including probing the input) and build the job."""
    # Cheap checks first: a bad option should not wait for a probe.
    reframe = reframe_from_proto(spec.reframe, "none") if spec.HasField("reframe") else None
    encoder = encoder_from_proto(spec.encoder)
    output = policy.output_path(output_uri) if output_uri else None
    if output is not None and output.suffix.lower() not in (".mp4", ".m4v", ".mov"):
        raise InvalidInput(f"output {output.name} must end in .mp4 (H.264 + AAC in MP4)")
    path = resolve_source(source, policy, store)
    info = probe(path, need_video=True)
    check_input_limits(info, settings)
    job = RenderJob(input=path, info=info, output=output, reframe=reframe, encoder=encoder)
    if spec.HasField("ramp"):
        curve = SpeedCurve.from_proto(spec.ramp)
        curve.validate(info.duration)
        job = replace(job, ramp=curve)
    if spec.HasField("captions"):
        job = replace(job, captions=_captions(spec.captions, job, policy, store))
    if spec.HasField("audio"):
        job = replace(job, audio=_audio(spec.audio, job, policy, store))
    return job


def _captions(
    msg: pb.CaptionSpec, job: RenderJob, policy: PathPolicy, store: ArtifactStore
) -> CaptionOptions:
    """Cues from the request (or its subtitle file), checked against the output and the font."""
    if msg.cues and msg.HasField("subtitles"):
        raise InvalidInput("captions: give cues or a subtitles file, not both")
    if msg.HasField("subtitles"):
        from vo_subtitle.formats import read as read_subtitles

        path = resolve_source(msg.subtitles, policy, store, "captions.subtitles")
        try:
            text = path.read_text(encoding="utf-8-sig")
        except UnicodeDecodeError:
            raise InvalidInput(f"captions.subtitles {path.name} is not UTF-8 text") from None
        try:
            cues = cues_from_proto(c.to_proto() for c in read_subtitles(text)[0])
        except InvalidInput as exc:
            raise InvalidInput(f"captions.subtitles {path.name}: {exc}") from None
    else:
        cues = cues_from_proto(msg.cues)
    if not cues:
        raise InvalidInput("captions has no cues; give captions.cues or captions.subtitles")
    validate_cues(cues)
    style = style_from_proto(msg)
    size, _, _ = output_geometry(job)
    CaptionTrack(cues, style, *size)  # checks the font covers the text and each cue fits
    return CaptionOptions(tuple(cues), style)


def _audio(
    msg: pb.AudioMixSpec, job: RenderJob, policy: PathPolicy, store: ArtifactStore
) -> AudioOptions:
    """The mix settings, with voice and music checked to be audio (and the voice to fit)."""
    mix = MixSpec.from_proto(msg)
    voice = music = None
    if msg.HasField("voice"):
        voice = _audio_input(msg.voice, "audio.voice", policy, store)
        voice_seconds = probe(voice).duration
        if voice_seconds > job.output_duration + 1 / 30:
            raise InvalidInput(
                f"audio.voice lasts {voice_seconds:.1f} s but the video (after the ramp) lasts "
                f"{job.output_duration:.1f} s; shorten the voice-over or the ramp"
            )
    if msg.HasField("music"):
        music = _audio_input(msg.music, "audio.music", policy, store)
    if mix.drop_original and voice is None and music is None:
        raise InvalidInput("audio.drop_original leaves no sound; add audio.voice or audio.music")
    return AudioOptions(mix, voice, music)


def _audio_input(
    source: common_pb2.MediaSource, what: str, policy: PathPolicy, store: ArtifactStore
) -> Path:
    path = resolve_source(source, policy, store, what)
    try:
        info = probe(path)
    except InvalidInput as exc:
        raise InvalidInput(f"{what}: {exc}") from None
    if info.audio is None:
        raise InvalidInput(f"{what}: {path.name} has no audio stream; give an audio file")
    return path


def output_geometry(job: RenderJob) -> tuple[tuple[int, int], tuple[int, int] | None, bool]:
    """(output size, display size to crop from or None, letterbox?) for the job."""
    assert job.info.video is not None
    dw, dh = job.info.video.display_size
    r = job.reframe
    if r is None:
        return (even(dw), even(dh)), None, False
    if r.mode == "none":
        return (r.width, r.height), None, True
    return (r.width, r.height), (dw, dh), False
