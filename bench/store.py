"""Benchmark: the SQLite job store's write paths under concurrent asyncio clients.

Run: .venv/bin/python bench/store.py [--clients 8] [--jobs 4000] [--repeat 3]

Measures, on a fresh database file in a temporary folder:
- ``create_job`` from N concurrent asyncio clients (target: at least 200 jobs/s with 8
  clients on a 2-core machine), half of them with a request_id;
- ``claim`` + ``checkpoint`` + ``finish``, the per-job cost of a worker, from N clients;
- ``set_progress``, the hot path while a job renders;
- ``list_jobs`` paging through every job, 100 per page.
Each figure is the best and the median of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from vo.pipeline.v1 import pipeline_service_pb2
from vo_core.jobs import JobState, StepState
from vo_core.store import SqliteJobStore

STEPS = ["script", "tts", "cues", "render"]
# A realistic spec: a topic and a paragraph of source text (about 2 KB serialized).
SPEC = pipeline_service_pb2.JobSpec(
    topic="otters", source_text="Otters hold hands while they sleep. " * 60
).SerializeToString()


async def _fan_out(clients: int, total: int, one: Callable[[int], Awaitable[None]]) -> float:
    """Run ``one(i)`` for i in range(total) from ``clients`` concurrent tasks; return seconds."""
    counter = iter(range(total))

    async def client() -> None:
        for i in counter:
            await one(i)

    t0 = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return time.perf_counter() - t0


async def run_once(folder: Path, clients: int, jobs: int) -> dict[str, float]:
    """One round on a fresh database; per-operation rates per second."""
    store = await SqliteJobStore.open(folder / f"jobs-{time.monotonic_ns()}.db")
    rates: dict[str, float] = {}
    try:

        async def create(i: int) -> None:
            await store.create_job(f"p{i % 16}", f"r{i}" if i % 2 else "", SPEC, STEPS)

        rates["create_job"] = jobs / await _fan_out(clients, jobs, create)

        async def work(i: int) -> None:
            job = await store.claim(f"w{i % clients}", 60)
            assert job is not None
            await store.checkpoint(job.id, "tts", StepState.SUCCEEDED, 1.0, {"audio": "a" * 64})
            await store.finish(job.id, JobState.SUCCEEDED, output={"sha256": "b" * 64})

        rates["claim+checkpoint+finish"] = jobs / await _fan_out(clients, jobs, work)

        some, _ = await store.list_jobs(page_size=clients)
        progress = b"\x0a\x06render\x10\x64" * 4

        async def tick(i: int) -> None:
            await store.set_progress(some[i % len(some)].id, progress)

        rates["set_progress"] = jobs / await _fan_out(clients, jobs, tick)

        t0 = time.perf_counter()
        token, listed = "", 0
        while True:
            page, token = await store.list_jobs(page_size=100, page_token=token)
            listed += len(page)
            if not token:
                break
        rates["list_jobs (rows)"] = listed / (time.perf_counter() - t0)
    finally:
        await store.close()
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8, help="concurrent asyncio clients")
    parser.add_argument("--jobs", type=int, default=4000, help="jobs per round")
    parser.add_argument("--repeat", type=int, default=3, help="rounds")
    args = parser.parse_args()

    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="vo-bench-store-") as tmp:
        for _ in range(args.repeat):
            for name, rate in asyncio.run(run_once(Path(tmp), args.clients, args.jobs)).items():
                results.setdefault(name, []).append(rate)

    print(
        f"SqliteJobStore, {args.clients} concurrent clients, {args.jobs} jobs, {args.repeat} rounds"
    )
    for name, rates in results.items():
        print(f"  {name:26s} best {max(rates):8.0f}/s   median {statistics.median(rates):8.0f}/s")
    create = statistics.median(results["create_job"])
    verdict = "meets" if create >= 200 else "MISSES"
    print(f"create_job median {create:.0f} jobs/s {verdict} the 200 jobs/s target")


if __name__ == "__main__":
    main()
