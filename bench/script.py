"""Latency of the extractive script engine on a few article sizes.

    .venv/bin/python bench/script.py [--repeat 5] [--seconds 30]

The source is the ~770-word test article (tests/script/data), alone and repeated up to the
default 200,000-character limit. Repetition is a worst case for the ranking: duplicate
sentences make PageRank converge slowly, so real articles of the same size rank faster.
For each size it prints the median wall time of the steps and of the whole engine, the
PageRank iterations, and how close the spoken length came to the target.

The peers (MoneyPrinterTurbo, ShortGPT) only write scripts with an LLM, which takes seconds
per call and a network round trip; the figure to beat here is "well under a second" for a
normal article, so the offline path costs nothing next to TTS and rendering.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from vo_core.threads import CancelToken
from vo_script.engine import Script, ScriptRequest
from vo_script.extractive import ExtractiveEngine, extract_keywords, rank_sentences, split_sentences

ARTICLE = (
    Path(__file__).resolve().parent.parent / "tests" / "script" / "data" / "article_urban_bees.txt"
).read_text(encoding="utf-8")


def median_ms(fn: Callable[[], object], repeat: int) -> float:
    """Median wall time of ``fn`` in milliseconds."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def run_engine(engine: ExtractiveEngine, request: ScriptRequest) -> Script:
    """The whole engine: split, keywords, rank, fit, compose."""
    script = list(engine.write(request, CancelToken()))[-1]
    assert isinstance(script, Script)
    return script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="runs per size (median reported)")
    parser.add_argument("--seconds", type=float, default=30.0, help="target duration")
    args = parser.parse_args()

    engine = ExtractiveEngine()
    print(
        f"{'copies':>6} {'chars':>8} {'sents':>6} {'split ms':>9} {'keywords ms':>12} "
        f"{'rank ms':>8} {'iters':>6} {'engine ms':>10} {'spoken s':>9}"
    )
    for copies in (1, 4, 16, 43):
        source = "\n\n".join([ARTICLE] * copies)[:200_000]
        sentences = split_sentences(source)
        request = ScriptRequest(
            topic="urban beekeeping", source_text=source, target_seconds=args.seconds
        )
        split = median_ms(functools.partial(split_sentences, source), args.repeat)
        keywords = median_ms(functools.partial(extract_keywords, sentences), args.repeat)
        _, iterations = rank_sentences(sentences, topic=request.topic)
        rank = median_ms(
            functools.partial(rank_sentences, sentences, topic=request.topic), args.repeat
        )
        whole = median_ms(functools.partial(run_engine, engine, request), args.repeat)
        script = run_engine(engine, request)
        print(
            f"{copies:>6} {len(source):>8} {len(sentences):>6} {split:>9.1f} {keywords:>12.1f} "
            f"{rank:>8.1f} {iterations:>6} {whole:>10.1f} {script.estimated_seconds:>9.1f}"
        )


if __name__ == "__main__":
    main()
