"""Choosing the H.264 encoder: libx264 on the CPU, or a hardware encoder when asked and present.

Detection opens a tiny encoder of each kind once; an encoder that is compiled into PyAV's FFmpeg
but has no device behind it (NVENC without a GPU) fails to open, and we fall back to the CPU
with the reason recorded, so the result always says which path ran.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import av

log = logging.getLogger(__name__)

HARDWARE_ENCODERS = {"nvidia": "h264_nvenc", "vaapi": "h264_vaapi"}


@dataclass(frozen=True)
class EncoderChoice:
    """The encoder that will run, its options, and why it was picked."""

    codec: str
    path: str  # reported to the user, such as "cpu:libx264" or "nvidia:h264_nvenc"
    options: dict[str, str]
    notes: tuple[str, ...] = field(default=())


@functools.cache
def encoder_works(codec: str) -> str | None:
    """None when ``codec`` opens here, else the reason it does not."""
    if codec not in av.codecs_available:
        return f"{codec} is not compiled into this FFmpeg"
    try:
        ctx: Any = av.CodecContext.create(codec, "w")
        ctx.width, ctx.height, ctx.pix_fmt = 256, 144, "yuv420p"
        ctx.time_base = Fraction(1, 30)
        ctx.open()
        ctx.close()
    except Exception as exc:  # FFmpeg reports missing devices in many ways
        return f"{codec} did not open ({exc})"
    return None


def available_hardware() -> list[str]:
    """Hardware kinds whose encoder opens on this machine."""
    return [kind for kind, codec in HARDWARE_ENCODERS.items() if encoder_works(codec) is None]


def choose_encoder(hardware: str, preset: str, crf: int) -> EncoderChoice:
    """Pick the encoder for ``hardware`` ("cpu", "auto", "nvidia", "vaapi") with a CPU fallback."""
    cpu = EncoderChoice("libx264", "cpu:libx264", {"preset": preset, "crf": str(crf)})
    if hardware == "cpu":
        return cpu
    wanted = list(HARDWARE_ENCODERS) if hardware == "auto" else [hardware]
    reasons = []
    for kind in wanted:
        codec = HARDWARE_ENCODERS[kind]
        reason = encoder_works(codec)
        if reason is None:
            # NVENC's constant-quality mode is the closest match to x264's CRF.
            options = {"preset": "p4", "rc": "vbr", "cq": str(crf)} if kind == "nvidia" else {}
            return EncoderChoice(codec, f"{kind}:{codec}", options)
        reasons.append(reason)
    note = (
        f"hardware encoding ({hardware}) unavailable: {'; '.join(reasons)}; used libx264 on the CPU"
    )
    log.info(note)
    return EncoderChoice(cpu.codec, cpu.path, cpu.options, (note,))
