"""The SQLite job store, on real database files: idempotency, claiming, leases, paging."""

from __future__ import annotations

import asyncio
import multiprocessing
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from vo.pipeline.v1 import pipeline_service_pb2
from vo_core.errors import FailedPrecondition, InvalidInput, NotFound
from vo_core.jobs import JobState, StepState
from vo_core.store import SqliteJobStore, migrations

STEPS = ["tts", "cues", "render"]
SPEC = pipeline_service_pb2.JobSpec(topic="otters").SerializeToString()


class FakeClock:
    """A clock the test moves, for lease expiry without sleeping."""

    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteJobStore]:
    s = await SqliteJobStore.open(tmp_path / "jobs.db")
    yield s
    await s.close()


async def test_create_is_idempotent_per_project_and_request_id(store: SqliteJobStore) -> None:
    job, created = await store.create_job("p1", "req-1", SPEC, STEPS)
    assert created
    assert job.state is JobState.QUEUED
    assert list(job.steps) == STEPS
    assert all(s.state is StepState.PENDING for s in job.steps.values())
    assert job.spec == SPEC and job.attempts == 0 and len(job.id) == 32

    again, created = await store.create_job("p1", "req-1", b"other", ["x"])
    assert not created
    assert again.id == job.id and again.spec == SPEC

    # The key is per project, and an empty request_id never deduplicates.
    other, created = await store.create_job("p2", "req-1", SPEC, STEPS)
    assert created and other.id != job.id
    a, _ = await store.create_job("p1", "", SPEC, STEPS)
    b, _ = await store.create_job("p1", "", SPEC, STEPS)
    assert a.id != b.id


async def test_concurrent_duplicates_make_exactly_one_job(tmp_path: Path) -> None:
    # Two stores on one file stand for two replicas racing on a client's retry.
    first = await SqliteJobStore.open(tmp_path / "jobs.db")
    second = await SqliteJobStore.open(tmp_path / "jobs.db")
    try:
        results = await asyncio.gather(
            *((first if i % 2 else second).create_job("p", "same", SPEC, STEPS) for i in range(40))
        )
        assert sum(created for _, created in results) == 1
        assert len({job.id for job, _ in results}) == 1
        assert (await first.counts_by_state())[JobState.QUEUED] == 1
    finally:
        await first.close()
        await second.close()


async def test_create_upserts_the_project(store: SqliteJobStore) -> None:
    await store.create_job("proj", "", SPEC, STEPS)
    await store.create_job("proj", "", SPEC, STEPS)
    conn = sqlite3.connect(store.path)
    try:
        assert conn.execute("SELECT id, status FROM projects").fetchall() == [("proj", "active")]
    finally:
        conn.close()


async def test_claim_takes_the_oldest_queued_job_first(store: SqliteJobStore) -> None:
    ids = [(await store.create_job("p", "", SPEC, STEPS))[0].id for _ in range(3)]
    first = await store.claim("w1", 30)
    assert first is not None and first.id == ids[0]
    assert first.state is JobState.RUNNING
    assert first.lease_owner == "w1" and first.attempts == 1
    assert first.lease_expires is not None and first.lease_expires > first.updated_at

    # A named job jumps the queue; a running one cannot be claimed again.
    third = await store.claim("w2", 30, job_id=ids[2])
    assert third is not None and third.id == ids[2]
    assert await store.claim("w2", 30, job_id=ids[0]) is None

    second = await store.claim("w3", 30)
    assert second is not None and second.id == ids[1]
    assert await store.claim("w4", 30) is None
    assert await store.queue_depth() == 0


def _claim_worker(db: str, owner: str, start: object, results: object) -> None:
    """Child process: claim jobs until none is left, report their ids."""

    async def run() -> list[str]:
        store = await SqliteJobStore.open(db)
        got: list[str] = []
        # Both children are up and connected before either claims: a real race.
        start.wait()  # type: ignore[attr-defined]
        try:
            while (job := await store.claim(owner, 60)) is not None:
                got.append(job.id)
                await store.checkpoint(job.id, "tts", StepState.SUCCEEDED, 0.0, owner=owner)
                await store.finish(job.id, JobState.SUCCEEDED, owner=owner)
        finally:
            await store.close()
        return got

    results.put((owner, asyncio.run(run())))  # type: ignore[attr-defined]


@pytest.mark.timeout(120)
async def test_processes_claiming_concurrently_never_share_a_job(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Spawned children import this module by its dotted name, tests.core.test_store.
    monkeypatch.syspath_prepend(str(Path(__file__).resolve().parents[2]))
    db = tmp_path / "jobs.db"
    store = await SqliteJobStore.open(db)
    ids = {(await store.create_job("p", "", SPEC, STEPS))[0].id for _ in range(40)}

    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(2)
    results = ctx.Queue()
    procs = [
        ctx.Process(target=_claim_worker, args=(str(db), f"w{i}", start, results)) for i in range(2)
    ]
    for p in procs:
        p.start()
    got = dict(await asyncio.to_thread(lambda: [results.get(timeout=60) for _ in procs]))
    for p in procs:
        await asyncio.to_thread(p.join, 30)
        assert p.exitcode == 0

    claimed = [job_id for ids_ in got.values() for job_id in ids_]
    assert len(claimed) == len(set(claimed)), "a job was claimed twice"
    assert set(claimed) == ids
    counts = await store.counts_by_state()
    assert counts[JobState.SUCCEEDED] == 40
    # Every job ran exactly once.
    assert {j.attempts for j in (await store.list_jobs(page_size=100))[0]} == {1}
    await store.close()


async def test_an_expired_lease_is_reclaimed_and_the_old_owner_is_fenced(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    store = await SqliteJobStore.open(tmp_path / "jobs.db", clock=clock)
    try:
        job, _ = await store.create_job("p", "", SPEC, STEPS)
        claimed = await store.claim("dead-worker", 10)
        assert claimed is not None
        await store.checkpoint(job.id, "tts", StepState.SUCCEEDED, 1.5, {"voice": "ab" * 32})
        await store.checkpoint(job.id, "cues", StepState.RUNNING, 0.0)

        clock.now += 5
        assert await store.claim("w2", 10) is None  # still leased
        assert await store.renew_lease(job.id, "dead-worker", 10)
        clock.now += 11
        assert await store.claim("w2", 10, job_id=job.id) is not None

        taken = await store.get_job(job.id)
        assert taken is not None
        assert taken.lease_owner == "w2" and taken.attempts == 2
        assert taken.lease_expires == clock.now + 10
        # Finished work survives; the step that was in flight starts over.
        assert taken.steps["tts"].state is StepState.SUCCEEDED
        assert taken.steps["tts"].checkpoint == {"voice": "ab" * 32}
        assert taken.steps["cues"].state is StepState.PENDING

        # The old worker wakes up: it can no longer renew, checkpoint or finish.
        assert not await store.renew_lease(job.id, "dead-worker", 10)
        with pytest.raises(FailedPrecondition):
            await store.checkpoint(job.id, "cues", StepState.SUCCEEDED, 1, owner="dead-worker")
        with pytest.raises(FailedPrecondition):
            await store.finish(job.id, JobState.FAILED, owner="dead-worker")
        done = await store.finish(job.id, JobState.SUCCEEDED, owner="w2")
        assert done.state is JobState.SUCCEEDED
    finally:
        await store.close()


async def test_checkpoints_and_progress_survive_reopen(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    store = await SqliteJobStore.open(db)
    job, _ = await store.create_job("p", "r", SPEC, STEPS)
    await store.claim("w", 30)
    await store.checkpoint(job.id, "tts", StepState.CACHED, 0.25, {"audio": "f" * 64})
    await store.checkpoint(job.id, "cues", StepState.RUNNING, 0.0)
    await store.set_progress(job.id, b"progress-1")
    await store.set_progress(job.id, b"progress-2")
    await store.close()

    store = await SqliteJobStore.open(db)
    try:
        back = await store.get_job(job.id)
        assert back is not None
        assert back.state is JobState.RUNNING
        assert list(back.steps) == STEPS  # DAG order kept
        assert back.steps["tts"].state is StepState.CACHED
        assert back.steps["tts"].elapsed == 0.25
        assert back.steps["tts"].checkpoint == {"audio": "f" * 64}
        assert back.progress == b"progress-2"
        assert [j.id for j in await store.unfinished()] == [job.id]

        requeued = await store.requeue(job.id)
        assert requeued.state is JobState.QUEUED and requeued.lease_owner is None
        assert requeued.steps["tts"].checkpoint == {"audio": "f" * 64}
        assert requeued.steps["cues"].state is StepState.PENDING
    finally:
        await store.close()


async def test_pagination_covers_every_job_exactly_once(store: SqliteJobStore) -> None:
    made = [(await store.create_job(f"p{i % 2}", "", SPEC, STEPS))[0] for i in range(23)]
    newest_first = [j.id for j in reversed(made)]

    async def all_pages(**filters: object) -> list[str]:
        seen: list[str] = []
        token = ""
        while True:
            page, token = await store.list_jobs(page_size=5, page_token=token, **filters)  # type: ignore[arg-type]
            assert len(page) <= 5
            seen += [j.id for j in page]
            if not token:
                return seen

    assert await all_pages() == newest_first
    assert await all_pages(project_id="p1") == [
        j.id for j in reversed(made) if j.project_id == "p1"
    ]

    # Jobs created while paging do not shift rows between pages.
    page, token = await store.list_jobs(page_size=10)
    for _ in range(5):
        await store.create_job("p0", "", SPEC, STEPS)
    rest, _ = await store.list_jobs(page_size=100, page_token=token)
    assert [j.id for j in page + rest] == newest_first

    claimed = await store.claim("w", 30)
    assert claimed is not None
    running, token = await store.list_jobs(state=JobState.RUNNING)
    assert [j.id for j in running] == [claimed.id] and token == ""
    everything, _ = await store.list_jobs(page_size=0)
    assert len(everything) == 28  # 0 means the default page of 50


async def test_a_bad_page_token_is_invalid_input(store: SqliteJobStore) -> None:
    for _ in range(3):
        await store.create_job("p", "", SPEC, STEPS)
    _, token = await store.list_jobs(project_id="p", page_size=1)
    assert token
    for bad in ("garbage!", "bm90IGpzb24", token[:-3]):
        with pytest.raises(InvalidInput, match="page_token"):
            await store.list_jobs(project_id="p", page_size=1, page_token=bad)
    # A token is bound to the filters it was issued for.
    with pytest.raises(InvalidInput, match="page_token"):
        await store.list_jobs(project_id="other", page_size=1, page_token=token)
    with pytest.raises(InvalidInput, match="page_size"):
        await store.list_jobs(page_size=-1)


async def test_migrations_are_applied_once_and_reopen_is_idempotent(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    newest = migrations()[-1][0]
    for _ in range(3):
        store = await SqliteJobStore.open(db)
        assert store.schema_version == newest
        await store.close()
    conn = sqlite3.connect(db)
    try:
        versions = [v for (v,) in conn.execute("SELECT version FROM schema_migrations")]
        assert versions == [v for v, _, _ in migrations()]
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        # A database migrated by a newer vo is refused rather than misread.
        conn.execute("INSERT INTO schema_migrations VALUES (?, 'future.sql', 0)", (newest + 1,))
        conn.commit()
    finally:
        conn.close()
    with pytest.raises(FailedPrecondition, match="newer"):
        await SqliteJobStore.open(db)


async def test_concurrent_opens_migrate_once(tmp_path: Path) -> None:
    db = tmp_path / "jobs.db"
    stores = await asyncio.gather(*(SqliteJobStore.open(db) for _ in range(4)))
    for s in stores:
        await s.close()
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()[0] == len(
            migrations()
        )
    finally:
        conn.close()


async def test_counts_finish_cancel_and_the_videos_record(store: SqliteJobStore) -> None:
    jobs = [(await store.create_job("p", "", SPEC, STEPS))[0] for _ in range(5)]
    await store.claim("w", 30)
    await store.claim("w", 30)
    output = {"sha256": "a" * 64, "size_bytes": 10, "media_type": "video/mp4", "uri": "file:///o"}
    await store.finish(jobs[0].id, JobState.SUCCEEDED, output=output, owner="w")
    error = {"step": "render", "code": "INVALID_ARGUMENT", "message": "bad input"}
    failed = await store.finish(jobs[1].id, JobState.FAILED, error=error)
    assert failed.error == error and failed.lease_owner is None

    cancelled = await store.cancel(jobs[2].id)
    assert cancelled.state is JobState.CANCELLED
    # Terminal states are final.
    assert (await store.cancel(jobs[0].id)).state is JobState.SUCCEEDED
    assert (await store.finish(jobs[2].id, JobState.SUCCEEDED)).state is JobState.CANCELLED
    assert (await store.requeue(jobs[3].id)).state is JobState.QUEUED  # not running: unchanged

    assert await store.counts_by_state() == {
        JobState.QUEUED: 2,
        JobState.RUNNING: 0,
        JobState.SUCCEEDED: 1,
        JobState.FAILED: 1,
        JobState.CANCELLED: 1,
    }
    assert await store.queue_depth() == 2
    assert [j.id for j in await store.unfinished()] == [jobs[3].id, jobs[4].id]

    conn = sqlite3.connect(store.path)
    try:
        rows = conn.execute(
            "SELECT id, operation_type, status, output_path FROM videos ORDER BY completed_at"
        ).fetchall()
    finally:
        conn.close()
    assert rows == [
        (jobs[0].id, "render", "succeeded", "file:///o"),
        (jobs[1].id, "render", "failed", None),
        (jobs[2].id, "render", "cancelled", None),
    ]

    with pytest.raises(ValueError):
        await store.finish(jobs[3].id, JobState.RUNNING)
    with pytest.raises(NotFound):
        await store.cancel("nope")
    with pytest.raises(NotFound):
        await store.set_progress("nope", b"x")
    assert await store.get_job("nope") is None


async def test_a_record_converts_to_the_job_proto(store: SqliteJobStore) -> None:
    job, _ = await store.create_job("p", "r", SPEC, STEPS)
    await store.claim("w", 30)
    await store.checkpoint(job.id, "tts", StepState.SUCCEEDED, 1.5)
    from vo.common.v1 import common_pb2

    await store.set_progress(job.id, common_pb2.Progress(stage="tts").SerializeToString())
    record = await store.get_job(job.id)
    assert record is not None
    proto = record.to_proto()
    assert proto.id == job.id and proto.request_id == "r"
    assert proto.state == pipeline_service_pb2.Job.STATE_RUNNING
    assert proto.spec.topic == "otters"
    assert (proto.steps[0].name, proto.steps[0].state) == (
        "tts",
        pipeline_service_pb2.Step.STATE_SUCCEEDED,
    )
    assert proto.steps[0].elapsed.ToMilliseconds() == 1500
    assert proto.progress.stage == "tts" and proto.attempts == 1
    assert abs(proto.create_time.ToNanoseconds() / 1e9 - record.created_at) < 1e-6
    assert JobState.from_proto(proto.state) is JobState.RUNNING
    assert JobState.from_proto(pipeline_service_pb2.Job.STATE_UNSPECIFIED) is None
