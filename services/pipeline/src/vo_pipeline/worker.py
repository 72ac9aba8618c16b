"""A pipeline worker: claims jobs from the store and runs their DAG through the services.

A worker runs in its own process (``worker_mode=process``: renders never share a GIL) or in a
thread of the server (``thread``: one process, for the CLI and tests), with its own event loop,
store connection and in-process services on a private Unix socket. It tells the pool what
happens through an :class:`EventSink`: ``claimed``, ``progress``, ``changed``, ``ended``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import grpc
from vo.client.channel import open_aio_channel
from vo.client.errors import VoClientError
from vo.client.script import AsyncScriptClient
from vo.client.subtitle import AsyncSubtitleClient
from vo.client.tts import AsyncTtsClient
from vo.client.video import AsyncVideoClient
from vo.events import ProgressEvent
from vo_core import metrics
from vo_core.cache import Cache
from vo_core.config import ServerSettings
from vo_core.errors import FailedPrecondition, VoError
from vo_core.jobs import JobRecord, JobState, StepState
from vo_core.store import JobStore, SqliteJobStore
from vo_core.telemetry import aio_client_interceptors, traced

from vo_pipeline.config import SERVICES
from vo_pipeline.dag import Clients, JobRunner

log = logging.getLogger(__name__)

PROGRESS_PERSIST_SECONDS = 1.0
STEP_DEADLINE_SECONDS = 600.0  # script, speech, cues and recognition of a long input
RENDER_DEADLINE_SECONDS = (
    6 * 3600.0
)  # a render of the longest accepted input (4 h) on a slow CPU  # how often a running job's last progress is written to the store


class EventSink(Protocol):
    """Where a worker reports: ``kind`` is claimed, progress, changed or ended."""

    def __call__(self, worker: str, kind: str, job_id: str, payload: bytes) -> None: ...


@dataclass(frozen=True)
class WorkerConfig:
    """What a worker needs; plain data, so it crosses a process boundary."""

    name: str
    store_path: str
    data_dir: str
    input_roots: tuple[str, ...]
    lease_seconds: float
    max_attempts: int
    poll_seconds: float = 0.25
    cache_memory_bytes: int = 16 << 20
    cache_disk_bytes: int = 64 << 20
    service_targets: tuple[tuple[str, str], ...] = ()
    """(service, gRPC target) for the services that run elsewhere; the rest run in here."""


class Worker:
    """Claims and runs jobs until stopped."""

    def __init__(self, config: WorkerConfig, sink: EventSink) -> None:
        self.config = config
        self.sink = sink
        self.owner = f"{config.name}:{uuid.uuid4().hex[:8]}"
        self.loop: asyncio.AbstractEventLoop | None = None
        self.current: tuple[str, asyncio.Task[Any]] | None = None
        self._stop = threading.Event()
        self._wake: asyncio.Event | None = None

    # -- control, callable from any thread -------------------------------------------------

    def stop(self) -> None:
        """Finish the current job's cancellation and exit the loop."""
        self._stop.set()
        self.wake()

    def wake(self) -> None:
        """Look for a job now instead of at the next poll."""
        if self.loop is not None and self._wake is not None:
            self.loop.call_soon_threadsafe(self._wake.set)

    def cancel(self, job_id: str) -> None:
        """Stop ``job_id`` if this worker runs it (the gRPC calls are cancelled, the engines stop)."""
        if self.loop is None:
            return

        def do() -> None:
            if self.current and self.current[0] == job_id:
                self.current[1].cancel()

        self.loop.call_soon_threadsafe(do)

    # -- the loop -------------------------------------------------------------------------

    def run(self) -> None:
        """Run the worker's event loop in the calling thread until stopped."""
        asyncio.run(self._main())

    async def _main(self) -> None:
        from vo_pipeline.mesh import local_mesh

        self.loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        store = await SqliteJobStore.open(self.config.store_path)
        socket_dir = Path(tempfile.mkdtemp(prefix="vo-worker-"))
        shared = ServerSettings(
            data_dir=Path(self.config.data_dir),
            input_roots=tuple(Path(p) for p in self.config.input_roots),
            output_roots=(Path(self.config.data_dir),),
        )
        remote = dict(self.config.service_targets)
        server: grpc.aio.Server | None = None
        local = ""
        if set(SERVICES) - remote.keys():  # some service runs here: start the private mesh
            server, local = await local_mesh(shared, socket_dir / "mesh.sock")

        # Traced channels: each call carries the job's trace context to the service. Deadlines
        # bound a stuck call; renders get hours, as inputs may be hours long.
        def channel(service: str) -> grpc.aio.Channel:
            return open_aio_channel(remote.get(service, local), aio_client_interceptors())

        clients = Clients(
            video=AsyncVideoClient(channel("video"), timeout=RENDER_DEADLINE_SECONDS),
            tts=AsyncTtsClient(channel("tts"), timeout=STEP_DEADLINE_SECONDS),
            subtitle=AsyncSubtitleClient(channel("subtitle"), timeout=STEP_DEADLINE_SECONDS),
            script=AsyncScriptClient(channel("script"), timeout=STEP_DEADLINE_SECONDS),
        )
        cache = Cache.memory_and_disk(
            self.config.cache_memory_bytes,
            Path(self.config.data_dir) / "cache" / "pipeline",
            self.config.cache_disk_bytes,
        )
        try:
            while not self._stop.is_set():
                job = await store.claim(self.owner, self.config.lease_seconds)
                if job is None:
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), self.config.poll_seconds)
                    continue
                if job.attempts > self.config.max_attempts:
                    # Claimed back from workers that kept dying on it: stop trying.
                    await store.finish(
                        job.id,
                        JobState.FAILED,
                        error={
                            "step": next(
                                (n for n, st in job.steps.items() if not st.state.done), ""
                            ),
                            "code": "ABORTED",
                            "message": f"gave up after {job.attempts - 1} attempts; workers "
                            "running it stopped without finishing (crashed or killed)",
                        },
                        owner=self.owner,
                    )
                    self.sink(self.config.name, "ended", job.id, b"")
                    continue
                await self._run_job(store, clients, cache, job)
        finally:
            for client in (clients.video, clients.tts, clients.subtitle, clients.script):
                await client.close()
            if server is not None:
                await server.stop(None)
            await store.close()

    async def _run_job(
        self, store: JobStore, clients: Clients, cache: Cache, job: JobRecord
    ) -> None:
        name = self.config.name
        self.sink(name, "claimed", job.id, b"")
        last_persist = 0.0
        pending: set[asyncio.Future[None]] = set()  # progress writes in flight (kept referenced)

        def on_progress(event: ProgressEvent) -> None:
            nonlocal last_persist
            data = event.to_proto().SerializeToString()
            self.sink(name, "progress", job.id, data)
            now = time.monotonic()
            if now - last_persist >= PROGRESS_PERSIST_SECONDS:
                last_persist = now
                pending.add(asyncio.ensure_future(store.set_progress(job.id, data)))

        async def on_step(
            step: str, state: StepState, elapsed: float, checkpoint: dict[str, Any]
        ) -> None:
            await store.checkpoint(job.id, step, state, elapsed, checkpoint, owner=self.owner)
            self.sink(name, "changed", job.id, b"")

        runner = JobRunner(clients, cache, on_step, on_progress)

        async def run() -> dict[str, Any]:
            with (
                traced(
                    "pipeline job", attributes={"vo.job_id": job.id, "vo.attempt": job.attempts}
                ),
                metrics.observe_operation("pipeline"),
            ):
                return await runner.run(job)

        task = asyncio.ensure_future(run())
        self.current = (job.id, task)
        renewer = asyncio.ensure_future(self._renew(store, job.id, task))
        try:
            output = await task
            await store.finish(job.id, JobState.SUCCEEDED, output=output, owner=self.owner)
        except asyncio.CancelledError:
            # Cancelled on request (the store already says CANCELLED) or the lease was lost.
            log.info("job %s stopped", job.id)
        except (VoError, VoClientError) as exc:
            await self._fail(store, job, exc)
        except Exception as exc:  # a bug: fail the job with the reason rather than retry blindly
            log.exception("job %s failed", job.id)
            await self._fail(store, job, exc)
        finally:
            renewer.cancel()
            self.current = None
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)
            self.sink(name, "ended", job.id, b"")

    async def _fail(self, store: JobStore, job: JobRecord, exc: BaseException) -> None:
        record = await store.get_job(job.id)
        step = ""
        if record is not None:
            step = next((n for n, s in record.steps.items() if s.state == StepState.RUNNING), "")
            if step:
                await store.checkpoint(job.id, step, StepState.FAILED, 0.0, None)
        code = exc.code.name if isinstance(exc, (VoError, VoClientError)) else "INTERNAL"
        message = str(exc) or type(exc).__name__
        # FailedPrecondition: another worker owns the job now and reports it.
        with contextlib.suppress(FailedPrecondition):
            await store.finish(
                job.id,
                JobState.FAILED,
                error={"step": step, "code": code, "message": message},
                owner=self.owner,
            )

    async def _renew(self, store: JobStore, job_id: str, task: asyncio.Task[Any]) -> None:
        """Keep the lease; a lost lease (cancelled, or taken over) stops the job here."""
        while True:
            await asyncio.sleep(self.config.lease_seconds / 3)
            if not await store.renew_lease(job_id, self.owner, self.config.lease_seconds):
                task.cancel()
                return


def process_main(config: WorkerConfig, events: Any, control: Any) -> None:
    """Entry point of a worker process: report through ``events``, obey ``control``.

    ``control`` carries ("cancel", job_id), ("wake", "") and ("stop", ""). When the server
    process dies the control pipe breaks; the worker then exits at once, so an orphan never
    finishes a job the restarted server will resume.
    """
    from vo_core.logs import configure_logging

    configure_logging()

    def sink(worker: str, kind: str, job_id: str, payload: bytes) -> None:
        events.put((worker, kind, job_id, payload))

    worker = Worker(config, sink)

    def listen() -> None:
        while True:
            try:
                kind, arg = control.recv()
            except (EOFError, OSError):
                os._exit(3)  # the server is gone
            if kind == "cancel":
                worker.cancel(arg)
            elif kind == "wake":
                worker.wake()
            elif kind == "stop":
                worker.stop()
                return

    threading.Thread(target=listen, name="vo-worker-control", daemon=True).start()
    worker.run()


def thread_worker(config: WorkerConfig, sink: EventSink) -> tuple[Worker, threading.Thread]:
    """A worker in a thread of this process (``worker_mode=thread``)."""
    worker = Worker(config, sink)
    thread = threading.Thread(target=worker.run, name=f"vo-{config.name}", daemon=True)
    return worker, thread
