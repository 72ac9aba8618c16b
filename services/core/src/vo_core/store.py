"""The job store: durable jobs, claimed by workers under a lease, checkpointed per step.

:class:`JobStore` is the interface the PipelineService and its worker pool use;
:class:`SqliteJobStore` is the embedded implementation (one SQLite file in WAL mode, safe for
several worker processes on one host). A Postgres implementation, sharded by project id,
drops in behind the same methods.

Claiming is lease-based: a worker that claims a job owns it until ``lease_expires`` and must
renew the lease while it works. A worker that dies stops renewing, and the next ``claim``
takes the job back (attempts + 1), keeping the steps it had checkpointed, so the job resumes
after its last finished step.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import concurrent.futures
import fcntl
import functools
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from typing import Any, Protocol, TypeVar

from vo_core.errors import FailedPrecondition, InvalidInput, NotFound, Unavailable
from vo_core.jobs import JobRecord, JobState, StepRecord, StepState, new_job_id

__all__ = ["DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "JobStore", "SqliteJobStore", "migrations"]

DEFAULT_PAGE_SIZE = 50
"""Jobs per page when the caller asks for 0 (ListJobsRequest.page_size)."""
MAX_PAGE_SIZE = 1000
"""The most jobs one page returns; larger requests are clamped."""

T = TypeVar("T")


class JobStore(Protocol):
    """Durable jobs. Every method is a coroutine; implementations never block the loop.

    State moves QUEUED → RUNNING → SUCCEEDED | FAILED | CANCELLED; RUNNING → QUEUED on
    :meth:`requeue` or when a lease expires and another worker claims the job. Terminal
    states are final: later ``finish`` or ``cancel`` calls leave the job as it is.
    """

    async def create_job(
        self, project_id: str, request_id: str, spec: bytes, steps: list[str]
    ) -> tuple[JobRecord, bool]:
        """Queue a job with ``steps`` all PENDING; return it and True.

        A non-empty ``request_id`` already used in ``project_id`` returns the original job and
        False instead (race-safe: a unique constraint decides). The project is created if new.
        """
        ...

    async def get_job(self, job_id: str) -> JobRecord | None:
        """The job, or None when there is no such job."""
        ...

    async def list_jobs(
        self,
        project_id: str | None = None,
        state: JobState | None = None,
        page_size: int = 0,
        page_token: str = "",
    ) -> tuple[list[JobRecord], str]:
        """One page of jobs, newest first, and the token of the next page ("" on the last).

        ``page_size`` 0 means :data:`DEFAULT_PAGE_SIZE`; more than :data:`MAX_PAGE_SIZE` is
        clamped. Pages are keyset-paginated, so jobs created while paging never shift rows
        between pages. A token that is malformed or was issued for other filters raises
        :class:`~vo_core.errors.InvalidInput`.
        """
        ...

    async def claim(
        self, owner: str, lease_seconds: float, job_id: str | None = None
    ) -> JobRecord | None:
        """Take a job for ``owner``: RUNNING, leased for ``lease_seconds``, attempts + 1.

        Takes the oldest job that is QUEUED or RUNNING with an expired lease (its worker
        died), or only ``job_id`` when given. None when there is nothing to take. Atomic
        across processes: two workers never get the same job under one lease.
        """
        ...

    async def renew_lease(self, job_id: str, owner: str, lease_seconds: float) -> bool:
        """Extend ``owner``'s lease; False when the job ended or someone else owns it now."""
        ...

    async def checkpoint(
        self,
        job_id: str,
        step: str,
        state: StepState,
        elapsed: float,
        checkpoint: dict[str, Any] | None = None,
        *,
        owner: str | None = None,
    ) -> JobRecord:
        """Record a step's state, wall time and checkpoint data (replacing the step's old one).

        With ``owner``, raise :class:`~vo_core.errors.FailedPrecondition` unless ``owner``
        still holds the job's lease: a worker that lost its job must stop.
        """
        ...

    async def set_progress(self, job_id: str, progress: bytes) -> None:
        """Keep the job's last serialized ``vo.common.v1.Progress``; cheap, call it often."""
        ...

    async def finish(
        self,
        job_id: str,
        state: JobState,
        *,
        output: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
        owner: str | None = None,
    ) -> JobRecord:
        """End the job in terminal ``state`` with its output or error; clear the lease.

        A job already terminal (cancelled meanwhile) is returned unchanged: compare the
        returned state. With ``owner``, raise :class:`~vo_core.errors.FailedPrecondition`
        when another worker has taken the job over.
        """
        ...

    async def cancel(self, job_id: str) -> JobRecord:
        """QUEUED or RUNNING → CANCELLED (the lease is cleared, so its worker's next renewal
        fails); terminal jobs are returned unchanged. :class:`NotFound` for unknown ids."""
        ...

    async def requeue(self, job_id: str, *, owner: str | None = None) -> JobRecord:
        """RUNNING → QUEUED after a failed attempt, keeping finished steps' checkpoints.

        Other states are returned unchanged; with ``owner``, only that owner's job moves.
        """
        ...

    async def counts_by_state(self) -> dict[JobState, int]:
        """How many jobs are in each state (every state present, 0 when none)."""
        ...

    async def queue_depth(self) -> int:
        """How many jobs wait for a worker."""
        ...

    async def unfinished(self) -> list[JobRecord]:
        """QUEUED and RUNNING jobs, oldest first: what a restarted pool must pick up."""
        ...

    async def close(self) -> None:
        """Release connections; the store is unusable afterwards."""
        ...


# --- migrations -------------------------------------------------------------------------


def migrations() -> list[tuple[int, str, str]]:
    """The packaged migrations as (version, name, sql), in order.

    Files are ``migrations/NNNN_name.sql``; the number is the schema version they bring the
    database to. Shipped inside the package, so an installed wheel migrates its database.
    """
    found: list[tuple[int, str, str]] = []
    for entry in resources.files("vo_core").joinpath("migrations").iterdir():
        name = entry.name
        if not name.endswith(".sql"):
            continue
        number, _, _ = name.partition("_")
        if not number.isdigit():
            raise RuntimeError(f"migration {name!r} must be named NNNN_description.sql")
        found.append((int(number), name, entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _, _ in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a version: {sorted(versions)}")
    return found


def _statements(script: str) -> Iterator[str]:
    """Split a SQL script into statements (``executescript`` would commit our transaction)."""
    buf = ""
    for line in script.splitlines(keepends=True):
        buf += line
        # complete_statement understands string literals, comments and trigger bodies.
        if sqlite3.complete_statement(buf):
            if buf.strip():
                yield buf
            buf = ""
    leftover = [ln for ln in buf.splitlines() if ln.strip() and not ln.strip().startswith("--")]
    if leftover:
        raise RuntimeError(f"incomplete SQL statement at the end of a migration: {buf!r}")


def _migrate(conn: sqlite3.Connection) -> int:
    """Apply pending migrations, each in one transaction; return the schema version.

    Safe when several processes open the same file at once: each migration re-reads the
    version under the write lock (BEGIN IMMEDIATE), so it is applied exactly once.
    """
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations ("
        " version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at REAL NOT NULL)"
    )
    version = 0
    for number, name, sql in migrations():
        conn.execute("BEGIN IMMEDIATE")
        try:
            done = conn.execute(
                "SELECT 1 FROM schema_migrations WHERE version = ?", (number,)
            ).fetchone()
            if done is None:
                for statement in _statements(sql):
                    conn.execute(statement)
                conn.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (number, name, time.time()),
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        version = number
    newest = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0] or 0
    if newest > version:
        # A newer vo migrated this file; running old code against it could corrupt data.
        raise FailedPrecondition(
            f"the job database is at schema version {newest}, newer than this vo knows "
            f"({version}); upgrade vo"
        )
    return version


# --- the SQLite store -------------------------------------------------------------------

_COLUMNS = (
    "j.id, j.project_id, j.request_id, j.spec, j.state, j.steps, j.attempts, j.lease_owner,"
    " j.lease_expires, j.error, j.output, j.created_at, j.updated_at, p.progress"
)
_SELECT = f"SELECT {_COLUMNS} FROM jobs AS j LEFT JOIN job_progress AS p ON p.job_id = j.id"


def _record(row: sqlite3.Row | tuple[Any, ...]) -> JobRecord:
    (
        job_id,
        project_id,
        request_id,
        spec,
        state,
        steps,
        attempts,
        lease_owner,
        lease_expires,
        error,
        output,
        created_at,
        updated_at,
        progress,
    ) = row
    return JobRecord(
        id=job_id,
        project_id=project_id,
        request_id=request_id,
        spec=bytes(spec),
        state=JobState(state),
        steps={name: StepRecord.from_json(s) for name, s in json.loads(steps).items()},
        attempts=attempts,
        lease_owner=lease_owner,
        lease_expires=lease_expires,
        error=json.loads(error) if error else None,
        output=json.loads(output) if output else None,
        created_at=created_at,
        updated_at=updated_at,
        progress=bytes(progress) if progress is not None else None,
    )


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=False)


def _steps_json(steps: dict[str, StepRecord]) -> str:
    return _dumps({name: s.to_json() for name, s in steps.items()})


def _encode_token(created_at: float, job_id: str, filters: list[str | None]) -> str:
    raw = _dumps([created_at, job_id, filters]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str, filters: list[str | None]) -> tuple[float, str]:
    bad = InvalidInput(
        "page_token is not valid: pass the next_page_token of the previous page unchanged, "
        "with the same filters"
    )
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        created_at, job_id, token_filters = json.loads(raw)
    except (binascii.Error, ValueError, TypeError):
        raise bad from None
    if (
        not isinstance(created_at, int | float)
        or isinstance(created_at, bool)
        or not isinstance(job_id, str)
        or token_filters != filters
    ):
        raise bad
    return float(created_at), job_id


class SqliteJobStore:
    """:class:`JobStore` on one SQLite file (WAL, ``synchronous=NORMAL``).

    One connection lives in one dedicated thread, and every call runs there
    (``run_in_executor``), so the event loop never blocks on the disk or on a lock held by
    another process, and the connection needs no lock of its own. Writes that read first
    use ``BEGIN IMMEDIATE``, which takes SQLite's write lock up front: two processes cannot
    both read the same QUEUED job and both claim it, and no transaction fails half-way on a
    lock upgrade. ``busy_timeout`` makes a contended writer wait instead of failing.

    With ``synchronous=NORMAL`` in WAL mode a commit survives a crash of the process but
    the last commits may be lost on a power cut; a job then reappears QUEUED or RUNNING and
    is redone from its last surviving checkpoint.

    The constructor opens the file and migrates it (blocking, fine at startup);
    ``await SqliteJobStore.open(path)`` does the same off the loop.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        busy_timeout_s: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = Path(path)
        self._busy_timeout_ms = int(busy_timeout_s * 1000)
        self._clock = clock
        self._last_created = 0.0
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="vo-job-store"
        )
        try:
            self.schema_version = self._executor.submit(self._open).result()
        except BaseException:
            self._executor.shutdown(wait=False)
            raise

    @classmethod
    async def open(cls, path: str | Path, **kwargs: Any) -> SqliteJobStore:
        """Open (and migrate) without blocking the event loop."""
        return await asyncio.to_thread(functools.partial(cls, path, **kwargs))

    # -- plumbing ----------------------------------------------------------------------

    def _open(self) -> int:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Openers take turns on a sidecar lock file: SQLite answers two connections switching a
        # new file to WAL at once with "database is locked" at once, without waiting out
        # busy_timeout, so replicas or worker processes starting together would fail.
        with open(self.path.with_name(self.path.name + ".open-lock"), "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            return self._connect_and_migrate()

    def _connect_and_migrate(self) -> int:
        # isolation_level=None: no implicit transactions; we say BEGIN where we mean it.
        conn = sqlite3.connect(
            self.path, isolation_level=None, timeout=self._busy_timeout_ms / 1000
        )
        try:
            conn.execute(f"PRAGMA busy_timeout = {self._busy_timeout_ms}")
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise Unavailable(f"{self.path}: cannot use WAL mode (got {mode!r})")
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute("PRAGMA foreign_keys = ON")
            version = _migrate(conn)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return version

    async def _run(self, fn: Callable[..., T], *args: Any) -> T:
        if self._closed:
            raise FailedPrecondition("the job store is closed")
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise FailedPrecondition("the job store is closed")
        return self._conn

    def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in one write transaction, taking the write lock first."""
        conn = self._db
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            # busy_timeout ran out: another process held the write lock all that time.
            raise Unavailable(f"the job database {self.path} is busy: {exc}") from exc
        try:
            result = fn(conn)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return result

    def _get(self, conn: sqlite3.Connection, job_id: str) -> JobRecord:
        row = conn.execute(f"{_SELECT} WHERE j.id = ?", (job_id,)).fetchone()
        if row is None:
            raise NotFound(f"no job with id {job_id!r}")
        return _record(row)

    def _now_created(self) -> float:
        # Strictly increasing within this store, so jobs created back to back list and
        # claim in creation order even when the clock does not move between them.
        now = max(self._clock(), self._last_created + 1e-6)
        self._last_created = now
        return now

    # -- JobStore --------------------------------------------------------------------------

    async def create_job(
        self, project_id: str, request_id: str, spec: bytes, steps: list[str]
    ) -> tuple[JobRecord, bool]:
        """See :meth:`JobStore.create_job`."""
        if not project_id:
            raise InvalidInput("project_id must not be empty")
        if len(set(steps)) != len(steps):
            raise InvalidInput(f"step names must be unique: {steps}")
        step_json = _steps_json({name: StepRecord() for name in steps})
        return await self._run(self._create_job, project_id, request_id, bytes(spec), step_json)

    def _create_job(
        self, project_id: str, request_id: str, spec: bytes, step_json: str
    ) -> tuple[JobRecord, bool]:
        def tx(conn: sqlite3.Connection) -> tuple[JobRecord, bool]:
            now = self._now_created()
            conn.execute(
                "INSERT INTO projects (id, name, status, assets, created_at, updated_at)"
                " VALUES (?, ?, 'active', '{}', ?, ?)"
                " ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at",
                (project_id, project_id, now, now),
            )
            job_id = new_job_id()
            cur = conn.execute(
                "INSERT INTO jobs (id, project_id, request_id, spec, state, steps, attempts,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, 'QUEUED', ?, 0, ?, ?)"
                " ON CONFLICT DO NOTHING",
                (job_id, project_id, request_id, spec, step_json, now, now),
            )
            if cur.rowcount == 1:
                return self._get(conn, job_id), True
            # The partial unique index on (project_id, request_id) said no: a retry.
            row = conn.execute(
                f"{_SELECT} WHERE j.project_id = ? AND j.request_id = ?",
                (project_id, request_id),
            ).fetchone()
            if row is None:  # pragma: no cover - only a uuid4 collision gets here
                raise FailedPrecondition(f"job id {job_id} collided; retry")
            return _record(row), False

        return self._write(tx)

    async def get_job(self, job_id: str) -> JobRecord | None:
        """See :meth:`JobStore.get_job`."""
        return await self._run(self._get_job, job_id)

    def _get_job(self, job_id: str) -> JobRecord | None:
        row = self._db.execute(f"{_SELECT} WHERE j.id = ?", (job_id,)).fetchone()
        return _record(row) if row is not None else None

    async def list_jobs(
        self,
        project_id: str | None = None,
        state: JobState | None = None,
        page_size: int = 0,
        page_token: str = "",
    ) -> tuple[list[JobRecord], str]:
        """See :meth:`JobStore.list_jobs`."""
        if page_size < 0:
            raise InvalidInput(f"page_size must be 0 or more, not {page_size}")
        size = min(page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        state = JobState(state) if state is not None else None
        filters = [project_id or None, state.value if state else None]
        after = _decode_token(page_token, filters) if page_token else None
        return await self._run(self._list_jobs, filters, size, after)

    def _list_jobs(
        self, filters: list[str | None], size: int, after: tuple[float, str] | None
    ) -> tuple[list[JobRecord], str]:
        project_id, state = filters
        where: list[str] = []
        params: list[Any] = []
        if project_id is not None:
            where.append("j.project_id = ?")
            params.append(project_id)
        if state is not None:
            where.append("j.state = ?")
            params.append(state)
        if after is not None:
            where.append("(j.created_at, j.id) < (?, ?)")
            params.extend(after)
        sql = _SELECT
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY j.created_at DESC, j.id DESC LIMIT ?"
        # One more than a page tells whether a next page exists without a COUNT.
        rows = self._db.execute(sql, (*params, size + 1)).fetchall()
        jobs = [_record(r) for r in rows[:size]]
        token = ""
        if len(rows) > size:
            token = _encode_token(jobs[-1].created_at, jobs[-1].id, filters)
        return jobs, token

    async def claim(
        self, owner: str, lease_seconds: float, job_id: str | None = None
    ) -> JobRecord | None:
        """See :meth:`JobStore.claim`."""
        if not owner:
            raise InvalidInput("owner must not be empty")
        return await self._run(self._claim, owner, float(lease_seconds), job_id)

    def _claim(self, owner: str, lease_seconds: float, job_id: str | None) -> JobRecord | None:
        def tx(conn: sqlite3.Connection) -> JobRecord | None:
            now = self._clock()
            if job_id is not None:
                row = conn.execute(
                    "SELECT id, state FROM jobs WHERE id = ? AND (state = 'QUEUED'"
                    " OR (state = 'RUNNING' AND lease_expires < ?))",
                    (job_id, now),
                ).fetchone()
            else:
                # Two index range scans beat one OR query that SQLite cannot index.
                candidates = [
                    conn.execute(
                        "SELECT id, state, created_at FROM jobs WHERE state = 'QUEUED'"
                        " ORDER BY created_at, id LIMIT 1"
                    ).fetchone(),
                    conn.execute(
                        "SELECT id, state, created_at FROM jobs WHERE state = 'RUNNING'"
                        " AND lease_expires < ? ORDER BY created_at, id LIMIT 1",
                        (now,),
                    ).fetchone(),
                ]
                present = [c for c in candidates if c is not None]
                row = min(present, key=lambda c: (c[2], c[0])) if present else None
            if row is None:
                return None
            claimed_id, previous = row[0], row[1]
            job = self._get(conn, claimed_id)
            steps_sql = ""
            params: tuple[str, ...] = ()
            if previous == JobState.RUNNING.value:
                # A dead worker's job: its step in flight starts over.
                steps_sql, params = ", steps = ?", (_steps_json(_reset_running(job.steps)),)
            conn.execute(
                "UPDATE jobs SET state = 'RUNNING', lease_owner = ?, lease_expires = ?,"
                f" attempts = attempts + 1, updated_at = ?{steps_sql} WHERE id = ?",
                (owner, now + lease_seconds, now, *params, claimed_id),
            )
            return self._get(conn, claimed_id)

        return self._write(tx)

    async def renew_lease(self, job_id: str, owner: str, lease_seconds: float) -> bool:
        """See :meth:`JobStore.renew_lease`."""
        return await self._run(self._renew_lease, job_id, owner, float(lease_seconds))

    def _renew_lease(self, job_id: str, owner: str, lease_seconds: float) -> bool:
        now = self._clock()
        # One statement is its own transaction; the WHERE makes it a compare-and-set.
        cur = self._db.execute(
            "UPDATE jobs SET lease_expires = ? WHERE id = ? AND lease_owner = ?"
            " AND state = 'RUNNING'",
            (now + lease_seconds, job_id, owner),
        )
        return cur.rowcount == 1

    async def checkpoint(
        self,
        job_id: str,
        step: str,
        state: StepState,
        elapsed: float,
        checkpoint: dict[str, Any] | None = None,
        *,
        owner: str | None = None,
    ) -> JobRecord:
        """See :meth:`JobStore.checkpoint`."""
        record = StepRecord(StepState(state), float(elapsed), dict(checkpoint or {}))
        # Fail here, not in the store thread, when the checkpoint is not JSON.
        _dumps(record.checkpoint)
        return await self._run(self._checkpoint, job_id, step, record, owner)

    def _checkpoint(
        self, job_id: str, step: str, record: StepRecord, owner: str | None
    ) -> JobRecord:
        def tx(conn: sqlite3.Connection) -> JobRecord:
            job = self._get(conn, job_id)
            if owner is not None and job.lease_owner != owner:
                raise FailedPrecondition(
                    f"job {job_id} is no longer owned by {owner} (it is {job.state.value})"
                )
            job.steps[step] = record
            now = self._clock()
            conn.execute(
                "UPDATE jobs SET steps = ?, updated_at = ? WHERE id = ?",
                (_steps_json(job.steps), now, job_id),
            )
            job.updated_at = now
            return job

        return self._write(tx)

    async def set_progress(self, job_id: str, progress: bytes) -> None:
        """See :meth:`JobStore.set_progress`."""
        await self._run(self._set_progress, job_id, bytes(progress))

    def _set_progress(self, job_id: str, progress: bytes) -> None:
        try:
            self._db.execute(
                "INSERT INTO job_progress (job_id, progress, updated_at) VALUES (?, ?, ?)"
                " ON CONFLICT (job_id) DO UPDATE SET progress = excluded.progress,"
                " updated_at = excluded.updated_at",
                (job_id, progress, self._clock()),
            )
        except sqlite3.IntegrityError:
            raise NotFound(f"no job with id {job_id!r}") from None

    async def finish(
        self,
        job_id: str,
        state: JobState,
        *,
        output: dict[str, Any] | None = None,
        error: dict[str, Any] | None = None,
        owner: str | None = None,
    ) -> JobRecord:
        """See :meth:`JobStore.finish`."""
        state = JobState(state)
        if not state.terminal:
            raise ValueError(f"finish() needs a terminal state, not {state.value}")
        return await self._run(self._finish, job_id, state, output, error, owner)

    def _finish(
        self,
        job_id: str,
        state: JobState,
        output: dict[str, Any] | None,
        error: dict[str, Any] | None,
        owner: str | None,
    ) -> JobRecord:
        def tx(conn: sqlite3.Connection) -> JobRecord:
            job = self._get(conn, job_id)
            if job.state.terminal:
                return job
            if owner is not None and job.lease_owner != owner:
                raise FailedPrecondition(
                    f"job {job_id} is no longer owned by {owner}; another worker took it over"
                )
            return self._end(conn, job, state, output, error)

        return self._write(tx)

    def _end(
        self,
        conn: sqlite3.Connection,
        job: JobRecord,
        state: JobState,
        output: dict[str, Any] | None,
        error: dict[str, Any] | None,
    ) -> JobRecord:
        """Move ``job`` to terminal ``state`` and record the finished operation in ``videos``."""
        now = self._clock()
        conn.execute(
            "UPDATE jobs SET state = ?, output = ?, error = ?, lease_owner = NULL,"
            " lease_expires = NULL, updated_at = ? WHERE id = ?",
            (
                state.value,
                _dumps(output) if output is not None else None,
                _dumps(error) if error is not None else None,
                now,
                job.id,
            ),
        )
        output_path = str(output.get("uri", "")) if output else None
        conn.execute(
            "INSERT INTO videos (id, project_id, input_path, output_path, operation_type,"
            " status, result, created_at, completed_at)"
            " VALUES (?, ?, NULL, ?, 'render', ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING",
            (
                job.id,
                job.project_id,
                output_path or None,
                state.value.lower(),
                _dumps({"output": output, "error": error}),
                job.created_at,
                now,
            ),
        )
        return self._get(conn, job.id)

    async def cancel(self, job_id: str) -> JobRecord:
        """See :meth:`JobStore.cancel`."""
        return await self._run(self._cancel, job_id)

    def _cancel(self, job_id: str) -> JobRecord:
        def tx(conn: sqlite3.Connection) -> JobRecord:
            job = self._get(conn, job_id)
            if job.state.terminal:
                return job
            return self._end(conn, job, JobState.CANCELLED, None, None)

        return self._write(tx)

    async def requeue(self, job_id: str, *, owner: str | None = None) -> JobRecord:
        """See :meth:`JobStore.requeue`."""
        return await self._run(self._requeue, job_id, owner)

    def _requeue(self, job_id: str, owner: str | None) -> JobRecord:
        def tx(conn: sqlite3.Connection) -> JobRecord:
            job = self._get(conn, job_id)
            if job.state is not JobState.RUNNING or (
                owner is not None and job.lease_owner != owner
            ):
                return job
            conn.execute(
                "UPDATE jobs SET state = 'QUEUED', lease_owner = NULL, lease_expires = NULL,"
                " steps = ?, updated_at = ? WHERE id = ?",
                (_steps_json(_reset_running(job.steps)), self._clock(), job_id),
            )
            return self._get(conn, job_id)

        return self._write(tx)

    async def counts_by_state(self) -> dict[JobState, int]:
        """See :meth:`JobStore.counts_by_state`."""
        return await self._run(self._counts)

    def _counts(self) -> dict[JobState, int]:
        counts = dict.fromkeys(JobState, 0)
        # GROUP BY over the (state, ...) index: no table scan.
        for state, n in self._db.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state"):
            counts[JobState(state)] = n
        return counts

    async def queue_depth(self) -> int:
        """See :meth:`JobStore.queue_depth`."""
        return await self._run(self._queue_depth)

    def _queue_depth(self) -> int:
        row = self._db.execute("SELECT COUNT(*) FROM jobs WHERE state = 'QUEUED'").fetchone()
        return int(row[0])

    async def unfinished(self) -> list[JobRecord]:
        """See :meth:`JobStore.unfinished`."""
        return await self._run(self._unfinished)

    def _unfinished(self) -> list[JobRecord]:
        rows = self._db.execute(
            f"{_SELECT} WHERE j.state IN ('QUEUED', 'RUNNING') ORDER BY j.created_at, j.id"
        ).fetchall()
        return [_record(r) for r in rows]

    async def close(self) -> None:
        """See :meth:`JobStore.close`. Idempotent."""
        if self._closed:
            return
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self._close_conn)
        self._closed = True
        self._executor.shutdown(wait=False)

    def _close_conn(self) -> None:
        if self._conn is not None:
            # A clean close checkpoints the WAL back into the database file.
            self._conn.close()
            self._conn = None


def _reset_running(steps: dict[str, StepRecord]) -> dict[str, StepRecord]:
    """Steps of an interrupted attempt: the one in flight goes back to PENDING; finished
    steps keep their state and checkpoints, so the next attempt resumes after them."""
    return {
        name: StepRecord(StepState.PENDING, s.elapsed, s.checkpoint)
        if s.state is StepState.RUNNING
        else s
        for name, s in steps.items()
    }


def _check_protocol(store: SqliteJobStore) -> JobStore:
    # mypy proves here that SqliteJobStore satisfies the JobStore protocol.
    return store
