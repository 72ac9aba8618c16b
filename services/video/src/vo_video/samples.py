"""Synthetic test media: a landscape clip with a moving subject and a tone soundtrack.

Used by ``vo demo``, the tests and the benchmarks, so nothing large is committed. Frames are
drawn straight into yuv420p planes with numpy (no per-pixel Python, no RGB conversion).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np


@dataclass(frozen=True)
class SubjectPath:
    """Where the subject's centre is at time t, in pixels of the landscape frame."""

    width: int
    height: int
    duration: float

    def at(self, t: float) -> tuple[float, float]:
        """Centre (x, y): the subject walks left to right and back, with a slow bob."""
        u = (t / self.duration) if self.duration else 0.0
        # Triangle wave across 15%..85% of the width, so a 9:16 crop must move to follow it.
        tri = 1 - abs(2 * u - 1)
        x = self.width * (0.15 + 0.70 * tri)
        y = self.height * (0.5 + 0.08 * np.sin(2 * np.pi * u * 2))
        return float(x), float(y)

    @property
    def radius(self) -> int:
        """Subject radius in pixels."""
        return max(8, self.height // 9)


def _background(width: int, height: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A static, gently textured background (so motion stands out, but it is not flat)."""
    yy, xx = np.mgrid[0:height, 0:width]
    luma = (60 + 25 * np.sin(xx / 37.0) * np.cos(yy / 53.0) + 20 * (xx / width)).astype(np.uint8)
    cy, cx = np.mgrid[0 : height // 2, 0 : width // 2]
    u = (118 + 6 * np.sin(cx / 21.0)).astype(np.uint8)
    v = (132 + 6 * np.cos(cy / 17.0)).astype(np.uint8)
    return luma, u, v


def write_sample(
    path: Path,
    *,
    duration: float = 6.0,
    width: int = 1280,
    height: int = 720,
    fps: int = 30,
    audio: bool = True,
    tone_hz: float = 440.0,
    sample_rate: int = 48000,
    rotation: int = 0,
    crf: int = 23,
    preset: str = "veryfast",
    on_frame: Callable[[int, int], None] | None = None,
) -> SubjectPath:
    """Write an H.264 (+AAC) MP4 whose bright round subject moves across the frame.

    ``rotation`` (clockwise degrees) is stored as display-matrix metadata, as phones do.
    Returns the subject's path so tests can check that a reframe kept it in view.
    """
    subject = SubjectPath(width, height, duration)
    n_frames = round(duration * fps)
    bg_y, bg_u, bg_v = _background(width, height)
    yy, xx = np.ogrid[0:height, 0:width]
    cyy, cxx = np.ogrid[0 : height // 2, 0 : width // 2]
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        vs.options = {"preset": preset, "crf": str(crf)}
        vs.thread_type = "AUTO"
        if rotation:
            # PyAV's display rotation is counter-clockwise; phones store clockwise.
            vs.set_display_rotation(-rotation)
        aus = out.add_stream("aac", rate=sample_rate) if audio else None
        if aus is not None:
            aus.layout = "stereo"
            aus.bit_rate = 128000
        samples_done = 0
        samples_per_frame = sample_rate / fps
        for i in range(n_frames):
            t = i / fps
            x, y = subject.at(t)
            r = subject.radius
            frame = av.VideoFrame(width, height, "yuv420p")
            planes = [
                np.frombuffer(memoryview(frame.planes[k]), np.uint8).reshape(
                    frame.planes[k].height, frame.planes[k].line_size
                )
                for k in range(3)
            ]
            planes[0][:, :width] = bg_y
            planes[1][:, : width // 2] = bg_u
            planes[2][:, : width // 2] = bg_v
            disc = (xx - x) ** 2 + (yy - y) ** 2 <= r * r
            planes[0][:, :width][disc] = 225
            cdisc = (cxx - x / 2) ** 2 + (cyy - y / 2) ** 2 <= (r / 2) ** 2
            planes[1][:, : width // 2][cdisc] = 80  # warm skin-like chroma
            planes[2][:, : width // 2][cdisc] = 170
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            for packet in vs.encode(frame):
                out.mux(packet)
            if aus is not None:
                target = round((i + 1) * samples_per_frame)
                n = target - samples_done
                tt = (samples_done + np.arange(n)) / sample_rate
                tone = (0.25 * np.sin(2 * np.pi * tone_hz * tt)).astype(np.float32)
                aframe = av.AudioFrame.from_ndarray(
                    np.stack([tone, tone]), format="fltp", layout="stereo"
                )
                aframe.sample_rate = sample_rate
                aframe.pts = samples_done
                aframe.time_base = Fraction(1, sample_rate)
                samples_done = target
                for packet in aus.encode(aframe):
                    out.mux(packet)
            if on_frame:
                on_frame(i + 1, n_frames)
        for packet in vs.encode(None):
            out.mux(packet)
        if aus is not None:
            for packet in aus.encode(None):
                out.mux(packet)
    return subject
