"""What burned-in captions cost per 1080x1920 frame, next to a plain frame copy.

    .venv/bin/python bench/captions.py [--seconds 60] [--fps 30]

A render runs at about 60-100 fps (10-16 ms a frame); captions should add at most 10%, so
well under 1 ms a frame. Three figures:

- copy: copying the frame's three planes with numpy, the cheapest thing one can do to
  a frame, as a yardstick;
- blend: ``blend()`` of a cached two-line karaoke caption (the steady state);
- apply: ``CaptionTrack.apply()`` over a whole timeline of karaoke cues, frame by frame,
  including drawing each cue and building each highlight state the first time (amortised),
  and frames with no caption.
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable

import av
import numpy as np
from vo_video.captions import (
    CaptionCue,
    CaptionStyle,
    CaptionTrack,
    CaptionWord,
    blend,
    plane_views,
)

W, H = 1080, 1920
SENTENCES = [
    "Captions make short videos easy to follow",
    "even with the sound off on a busy train",
    "every word lights up as it is spoken",
    "so viewers keep reading to the very end",
]


def timeline(seconds: float) -> list[CaptionCue]:
    """Karaoke cues back to back, about 2.8 words a second, a short pause between cues."""
    cues, t, k = [], 0.5, 0
    while t < seconds - 3:
        text = SENTENCES[k % len(SENTENCES)].split()
        words = tuple(CaptionWord(w, t + i * 0.35, t + i * 0.35 + 0.3) for i, w in enumerate(text))
        end = words[-1].end + 0.2
        cues.append(CaptionCue(None, t, end, words))
        t, k = end + 0.3, k + 1
    return cues


def frame() -> av.VideoFrame:
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (H, W, 3), np.uint8)
    return av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
        format="yuv420p", dst_colorspace="ITU709"
    )


def best_of(fn: Callable[[], None], batches: int = 7, n: int = 100) -> float:
    """Seconds per call, the best of several batches (as timeit does: least disturbed)."""
    best = math.inf
    for _ in range(batches):
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n)
    return best


def bench_blend(seconds: float = 60.0, fps: float = 30.0) -> dict[str, float]:
    """Milliseconds per frame for copy, blend and apply; see the module docstring."""
    src = frame()
    src_planes = plane_views(src)
    dst = av.VideoFrame(W, H, "yuv420p")
    dst_planes = plane_views(dst)

    def copy() -> None:
        for s, d in zip(src_planes, dst_planes, strict=True):
            np.copyto(d, s)

    cues = timeline(seconds)
    track = CaptionTrack(cues, CaptionStyle(), W, H)
    overlay = track.overlay_at(cues[0].words[2].start)
    assert overlay is not None
    results = {
        "copy (3 planes)": best_of(copy) * 1e3,
        "blend (cached)": best_of(lambda: blend(dst_planes, overlay)) * 1e3,
    }

    # A fresh track: every cue is drawn, every state built, during the run.
    track = CaptionTrack(cues, CaptionStyle(), W, H)
    n = int(seconds * fps)
    first_use = 0.0
    t_all = time.perf_counter()
    for i in range(n):
        draws, renders = track.draws, track.renders
        t0 = time.perf_counter()
        track.apply(dst, i / fps)
        if track.draws != draws or track.renders != renders:
            first_use += time.perf_counter() - t0
    total = time.perf_counter() - t_all
    results["apply, all frames"] = total / n * 1e3
    results["  of which first uses"] = first_use / n * 1e3
    print(
        f"{seconds:g} s at {fps:g} fps: {n} frames, {len(cues)} cues ({track.draws} drawn, "
        f"{track.renders} states built, {first_use * 1e3 / track.draws:.1f} ms per cue "
        f"drawn with its states); font {track.font_name} at {track.font_size_of(0)} px; "
        f"caption box {overlay.x1 - overlay.x0}x{overlay.y1 - overlay.y0}"
    )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--fps", type=float, default=30.0)
    args = parser.parse_args()
    for name, ms in bench_blend(args.seconds, args.fps).items():
        print(f"{name:<24}{ms:>8.3f} ms per 1080x1920 frame")


if __name__ == "__main__":
    main()
