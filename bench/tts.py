"""TTS benchmark: speed, word-timing accuracy, and lock vs worker processes under load.

Run: ``.venv/bin/python bench/tts.py`` (about a minute on two cores). Prints a table:

- real-time factor: seconds of speech per second of wall time for English prose (goal >= 100x);
- word-start error: median |ours - PocketSphinx's forced alignment| (goal < 30 ms);
- throughput with several requests at once, eSpeak NG in-process behind a lock versus in
  worker processes, which is how ``VO_TTS_WORKERS`` was chosen.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import ModuleType

from vo_core.threads import CancelToken
from vo_tts.audio import encode_flac
from vo_tts.engine import AudioFormat, Speech, SynthesisRequest, Synthesizer
from vo_tts.espeak import EspeakEngine


def _load_aligner() -> ModuleType:
    # The tests' PocketSphinx helper, loaded by path: this script is itself named "tts",
    # which would shadow the tests' "tts" package on sys.path.
    path = Path(__file__).resolve().parents[1] / "tests" / "tts" / "sphinx_align.py"
    spec = importlib.util.spec_from_file_location("sphinx_align", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


sphinx_align = _load_aligner()

PROSE = """\
The history of the city begins on a small island in the middle of the river. Traders came \
from the north and the south, and they built a market near the water. Over many years the \
market grew into a town, and the town grew into a city with bridges, churches and a great \
wall. Today most of the wall is gone, but you can still walk along the old streets and see \
the houses where the merchants lived.
In the spring the river rises and the lower streets flood for a few days. People move their \
goods to the upper floors and wait for the water to go down. Nobody seems to mind very much; \
it has happened every year for as long as anyone can remember.
The best time to visit is early in the morning, before the crowds arrive. The light is soft, \
the cafes are just opening, and the only sound is the bells from the church on the hill. \
Take a map, but do not worry about getting lost. Every street leads back to the river sooner \
or later, and the river always leads back to the market.
"""


def speak(synth: Synthesizer, text: str, **kw: object) -> Speech:
    """The final Speech of one synthesis."""
    events = list(synth.synthesize(SynthesisRequest(text=text, **kw), CancelToken()))  # type: ignore[arg-type]
    speech = events[-1]
    assert isinstance(speech, Speech)
    return speech


def real_time_factor(synth: Synthesizer, text: str, repeats: int) -> tuple[float, float, float]:
    """(audio seconds, best wall seconds, audio/wall) for WAV output."""
    best = float("inf")
    duration = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        duration = speak(synth, text).duration
        best = min(best, time.perf_counter() - t0)
    return duration, best, duration / best


def timing_error(synth: Synthesizer, text: str, rate: int) -> tuple[float, float, float, int]:
    """(median, 90th percentile, fraction placed, words) of word-start error vs PocketSphinx."""
    speech = speak(synth, text, rate=rate)
    samples, sample_rate = sphinx_align.read_wav(speech.audio)
    ours = [(w.text, w.start, w.end) for w in speech.words]
    errors = sphinx_align.start_errors(ours, sphinx_align.align_chunked(samples, sample_rate, ours))
    if not errors:
        return float("nan"), float("nan"), 0.0, len(ours)
    p90 = sorted(errors)[int(0.9 * (len(errors) - 1))]
    return statistics.median(errors), p90, len(errors) / len(ours), len(ours)


def throughput(workers: int, requests: int, concurrency: int, text: str) -> tuple[float, float]:
    """(wall seconds, speech seconds per wall second) for ``requests`` at ``concurrency``."""
    engine = EspeakEngine(workers=workers)
    synth = Synthesizer([engine])  # no cache: every request is spoken
    try:
        speak(synth, "Warm up.")
        t0 = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            # Distinct texts, as distinct users would send.
            futures = [pool.submit(speak, synth, f"Request {i}. {text}") for i in range(requests)]
            audio = sum(f.result().duration for f in futures)
        wall = time.perf_counter() - t0
    finally:
        engine.close()
    return wall, audio / wall


def main() -> None:
    """Run every measurement and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="best of N for the speed runs")
    parser.add_argument("--requests", type=int, default=8, help="requests in the load test")
    args = parser.parse_args()

    synth = Synthesizer([EspeakEngine()])
    rows: list[tuple[str, str, str]] = []

    long_text = "\n".join([PROSE] * 4)
    duration, wall, rtf = real_time_factor(synth, long_text, args.repeats)
    rows.append(
        (f"real-time factor, {len(long_text):,} chars prose, WAV", f"{rtf:,.0f}x", ">= 100x")
    )
    rows.append(("  speech / wall", f"{duration:.1f} s / {wall * 1000:.0f} ms", ""))
    speech = speak(synth, long_text)
    samples, sample_rate = sphinx_align.read_wav(speech.audio)
    t0 = time.perf_counter()
    flac = encode_flac(samples, sample_rate)
    flac_s = time.perf_counter() - t0
    rows.append(
        (
            "FLAC encode (pure numpy)",
            f"{duration / flac_s:,.0f}x real time, {len(flac) / len(speech.audio):.0%} of WAV",
            "",
        )
    )
    t0 = time.perf_counter()
    list(synth.synthesize(SynthesisRequest(text=PROSE, format=AudioFormat.WAV), CancelToken()))
    rows.append(
        (
            "first call after a different text (no cache)",
            f"{(time.perf_counter() - t0) * 1000:.0f} ms",
            "",
        )
    )

    for rate in (165, 250, 120):
        median, p90, placed, n = timing_error(synth, PROSE, rate)
        rows.append(
            (
                f"word-start error vs PocketSphinx, {rate} wpm",
                f"median {median * 1000:.1f} ms, p90 {p90 * 1000:.0f} ms ({placed:.0%} of {n} words placed)",
                "< 30 ms" if rate == 165 else "",
            )
        )

    for concurrency in (1, 4):
        for workers in (0, 2):
            wall, speech_rate = throughput(workers, args.requests, concurrency, PROSE)
            mode = "lock, in-process" if workers == 0 else f"{workers} worker processes"
            rows.append(
                (
                    f"{args.requests} requests x {len(PROSE):,} chars, {concurrency} at a time, {mode}",
                    f"{wall:.2f} s, {speech_rate:,.0f} s speech/s",
                    "",
                )
            )

    width = max(len(r[0]) for r in rows)
    value_width = max(len(r[1]) for r in rows)
    print(f"{'measure':<{width}}  {'result':<{value_width}}  target")
    print("-" * (width + value_width + 10))
    for name, value, target in rows:
        print(f"{name:<{width}}  {value:<{value_width}}  {target}")


if __name__ == "__main__":
    main()
