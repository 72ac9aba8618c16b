"""Benchmark: speech recognition speed and accuracy, alignment, and cue segmentation.

Run: .venv/bin/python bench/subtitles.py [--repeat N]

Measures, on the real read speech the tests use (26 s of a LibriVox recording shipped in
tests/subtitle/data, with its reference transcript):
- recognition real-time factor (decode wall time / audio length; target < 0.5), with and
  without loading the English model, on the sample and on the sample played four times;
- word error rate of recognition against the reference transcript;
- forced alignment of the reference script: real-time factor;
- segmentation of a 10-minute transcript (1600 timed words; target < 100 ms), best and
  median of N, plus writing it as SRT, WebVTT and karaoke ASS.
PocketSphinx decodes on one core; the real-time factor is per stream, so a 2-core machine
runs two streams at that speed.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from vo_subtitle import formats
from vo_subtitle.model import Word
from vo_subtitle.recognize import Transcript, align, load_audio, recognize
from vo_subtitle.segment import segment

ROOT = Path(__file__).resolve().parent.parent
SPEECH = ROOT / "tests" / "subtitle" / "data" / "librivox_sense_and_sensibility.flac"
REFERENCE = SPEECH.with_suffix(".txt")
PROSE = (
    "It was a bright cold day in April, and the clocks were striking thirteen. Winston Smith, "
    "his chin nuzzled into his breast in an effort to escape the vile wind, slipped quickly "
    "through the glass doors of Victory Mansions, though not quickly enough to prevent a swirl "
    "of gritty dust from entering along with him. The hallway smelt of boiled cabbage and old "
    "rag mats."
)


def _times(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def _wer(reference: list[str], hypothesis: list[str]) -> float:
    d = list(range(len(hypothesis) + 1))
    for i in range(1, len(reference) + 1):
        prev, d[0] = d[:], i
        for j in range(1, len(hypothesis) + 1):
            d[j] = min(
                prev[j] + 1, d[j - 1] + 1, prev[j - 1] + (reference[i - 1] != hypothesis[j - 1])
            )
    return d[-1] / len(reference)


def _words(count: int) -> list[Word]:
    """Timed words at about 150 words a minute, pauses after punctuation."""
    rnd = random.Random(0)
    tokens = PROSE.split()
    out, t = [], 0.3
    for k in range(count):
        tok = tokens[k % len(tokens)]
        dur = 0.12 + 0.055 * len(tok.strip(".,"))
        out.append(Word(tok, t, t + dur))
        t += (
            dur
            + 0.04
            + (0.35 if tok[-1] == "." else 0.15 if tok[-1] == "," else 0)
            + rnd.uniform(0, 0.05)
        )
    return out


def _transcript(items: list[object]) -> Transcript:
    last = items[-1]
    assert isinstance(last, Transcript)
    return last


def _decode_only(pcm: np.ndarray, script: str | None) -> tuple[float, Transcript]:
    """Wall time from the first audio chunk to the result, excluding the model load."""
    steps = align(pcm, script) if script else recognize(pcm)
    next(steps)  # the "loading" event comes before the decoder is built
    t0 = time.perf_counter()
    items = list(steps)
    return time.perf_counter() - t0, _transcript(items)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="runs per timing (best is shown)")
    args = parser.parse_args()
    reference = REFERENCE.read_text().split()
    pcm = load_audio(SPEECH)
    seconds = len(pcm) / 16000
    rows: list[tuple[str, str, str]] = []

    full = min(_times(lambda: list(recognize(pcm)), args.repeat))
    decode, transcript = min(
        (_decode_only(pcm, None) for _ in range(args.repeat)), key=lambda r: r[0]
    )
    hypothesis = [w.text.lower() for w in transcript.words]
    rows.append(
        ("recognise 26 s, real-time factor incl. model load", f"{full / seconds:.3f}", "< 0.5")
    )
    rows.append(
        ("recognise 26 s, real-time factor (decode only)", f"{decode / seconds:.3f}", "< 0.5")
    )
    long_pcm = np.tile(pcm, 4)
    long_decode, _ = _decode_only(long_pcm, None)
    rows.append(
        (
            f"recognise {len(long_pcm) / 16000:.0f} s, real-time factor (decode only)",
            f"{long_decode / (len(long_pcm) / 16000):.3f}",
            "< 0.5",
        )
    )
    rows.append(
        ("word error rate, recognition vs reference", f"{_wer(reference, hypothesis):.3f}", "")
    )
    align_time, aligned = min(
        (_decode_only(pcm, " ".join(reference)) for _ in range(args.repeat)), key=lambda r: r[0]
    )
    rows.append(
        ("align script to 26 s, real-time factor (decode only)", f"{align_time / seconds:.3f}", "")
    )
    assert [w.text for w in aligned.words] == reference

    words = _words(1600)
    segment(words)  # imports and caches warm
    seg_times = _times(lambda: segment(words), max(5, args.repeat))
    cues = segment(words)
    rows.append(
        (
            f"segment {words[-1].end / 60:.1f} min, {len(words)} words -> {len(cues)} cues, best ms",
            f"{min(seg_times) * 1000:.1f}",
            "< 100",
        )
    )
    rows.append(("  same, median ms", f"{statistics.median(seg_times) * 1000:.1f}", "< 100"))
    for fmt in formats.SubtitleFormat:
        t = min(_times(lambda fmt=fmt: formats.write(cues, fmt, karaoke=True), args.repeat))  # type: ignore[misc]
        rows.append((f"write {fmt.value.upper()} of those cues, ms", f"{t * 1000:.2f}", ""))

    cpus = len(os.sched_getaffinity(0))
    print(f"\nvo subtitles benchmark ({cpus} CPUs, best of {args.repeat})\n")
    width = max(len(r[0]) for r in rows)
    print(f"{'measure':<{width}}  {'value':>9}  target")
    print(f"{'-' * width}  {'-' * 9}  ------")
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:>9}  {target}")
    print(f"\nrecognised: {transcript.text}")


if __name__ == "__main__":
    main()
