"""The worker pool on its own: it grows with the queue and shrinks back when idle."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from vo.common.v1 import common_pb2
from vo.pipeline.v1 import pipeline_service_pb2 as pb
from vo_core.config import ServerSettings
from vo_core.jobs import JobState
from vo_core.store import SqliteJobStore
from vo_pipeline.config import Settings
from vo_pipeline.dag import plan_steps
from vo_pipeline.pool import WorkerPool


async def wait_for(condition, seconds: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


async def test_workers_scale_with_the_queue_and_idle_ones_retire(tmp_path: Path) -> None:
    settings = Settings(
        server=ServerSettings(data_dir=tmp_path, input_roots=(tmp_path,)),
        worker_mode="thread",
        min_workers=1,
        max_workers=3,
        idle_timeout=0.5,
    )
    store = await SqliteJobStore.open(settings.store_path)
    events: list[tuple[str, str]] = []

    async def on_event(kind: str, job_id: str, payload: bytes) -> None:
        events.append((kind, job_id))

    # Jobs that fail at once (their input does not exist), so the test is about the pool.
    spec = pb.JobSpec(
        input=common_pb2.MediaSource(uri=str(tmp_path / "missing.mp4")), script_text="Hello."
    )
    ids = [
        (await store.create_job("p", "", spec.SerializeToString(), plan_steps(spec)))[0].id
        for _ in range(6)
    ]
    pool = WorkerPool(settings, store, on_event)
    most = 0
    try:
        await pool.start()
        deadline = time.monotonic() + 60
        while (await store.counts_by_state())[JobState.FAILED] < len(ids):
            most = max(most, len(pool.workers))
            assert time.monotonic() < deadline, "the jobs did not finish"
            await asyncio.sleep(0.02)
        assert most == 3, f"six queued jobs should start max_workers (3) workers, saw {most}"
        # Idle for longer than idle_timeout: back to min_workers, never below.
        await wait_for(lambda: len(pool.workers) == 1, 10, "idle workers to retire")
        await asyncio.sleep(1.0)
        assert len(pool.workers) == 1
        for job_id in ids:
            job = await store.get_job(job_id)
            assert job is not None and job.error and "missing.mp4" in job.error["message"]
    finally:
        await pool.stop()
        await store.close()
    assert {kind for kind, _ in events} >= {"claimed", "ended"}
