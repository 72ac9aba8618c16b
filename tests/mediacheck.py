"""Independent checks of rendered media: decode the output and count what is really there."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np


@dataclass(frozen=True)
class Decoded:
    """What decoding a whole file found."""

    width: int
    height: int
    video_codec: str
    audio_codec: str | None
    frames: int
    fps: float
    video_seconds: float  # frames / fps
    audio_seconds: float  # decoded samples / sample rate
    faststart: bool


def decode(path: Path) -> Decoded:
    """Decode every frame and sample of ``path``."""
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        a = c.streams.audio[0] if c.streams.audio else None
        frames = 0
        samples = 0
        rate = a.codec_context.sample_rate if a else 0
        for frame in c.decode(*[s for s in (v, a) if s is not None]):
            if isinstance(frame, av.VideoFrame):
                frames += 1
            else:
                samples += frame.samples
        fps = float(v.average_rate)
        width, height = v.codec_context.width, v.codec_context.height
        vcodec = v.codec_context.name
        acodec = a.codec_context.name if a else None
    head = path.read_bytes()[:4096]
    # With faststart the index (moov) comes before the media data (mdat).
    faststart = 0 <= head.find(b"moov") < (head.find(b"mdat") if b"mdat" in head else 1 << 30)
    return Decoded(
        width=width,
        height=height,
        video_codec=vcodec,
        audio_codec=acodec,
        frames=frames,
        fps=fps,
        video_seconds=frames / fps,
        audio_seconds=samples / rate if rate else 0.0,
        faststart=faststart,
    )


def luma_frames(path: Path, every: int = 1) -> list[tuple[float, np.ndarray]]:
    """(time, luma plane) of every ``every``-th frame."""
    out = []
    with av.open(str(path)) as c:
        for i, frame in enumerate(c.decode(video=0)):
            if i % every == 0:
                out.append((float(frame.time), frame.to_ndarray(format="gray")))
    return out
