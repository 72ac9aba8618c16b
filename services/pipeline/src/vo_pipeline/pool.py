"""The worker pool: between ``min_workers`` and ``max_workers`` workers, scaled by queue depth.

Workers report through one event channel; the pool relays their events to the progress bus
(and so to every WatchJob stream), notices a worker that died, retries its job up to
``max_attempts`` and replaces it, and retires workers idle for longer than ``idle_timeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import queue
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from vo_core import metrics
from vo_core.jobs import JobState
from vo_core.store import JobStore

from vo_pipeline.config import Settings
from vo_pipeline.worker import Worker, WorkerConfig, process_main, thread_worker

log = logging.getLogger(__name__)

MONITOR_SECONDS = 0.25


@dataclass
class _Handle:
    """The pool's view of one worker."""

    name: str
    job: str | None = None
    idle_since: float = field(default_factory=time.monotonic)
    process: Any = None  # multiprocessing.Process in process mode
    control: Any = None  # the parent's end of the control pipe
    thread_worker: Worker | None = None
    thread: threading.Thread | None = None
    stopping: bool = False

    def alive(self) -> bool:
        if self.process is not None:
            return bool(self.process.is_alive())
        return self.thread is not None and self.thread.is_alive()

    def send(self, kind: str, arg: str = "") -> None:
        if self.control is not None:
            with contextlib.suppress(BrokenPipeError, OSError):
                self.control.send((kind, arg))
        elif self.thread_worker is not None:
            if kind == "cancel":
                self.thread_worker.cancel(arg)
            elif kind == "wake":
                self.thread_worker.wake()
            elif kind == "stop":
                self.thread_worker.stop()


JobEvent = Callable[[str, str, bytes], Awaitable[None]]  # (kind, job_id, payload)


class WorkerPool:
    """Starts, scales, watches and stops the workers."""

    def __init__(self, settings: Settings, store: JobStore, on_event: JobEvent) -> None:
        self.settings = settings
        self.store = store
        self.on_event = on_event
        self.workers: dict[str, _Handle] = {}
        self._counter = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._monitor: asyncio.Task[None] | None = None
        self._ctx = multiprocessing.get_context("spawn")
        self._events: Any = None
        self._reader: threading.Thread | None = None
        self._closing = False
        self._tasks: set[asyncio.Future[None]] = set()

    def _config(self, name: str) -> WorkerConfig:
        s = self.settings
        return WorkerConfig(
            name=name,
            store_path=str(s.store_path),
            data_dir=str(s.server.data_dir),
            input_roots=tuple(str(p) for p in (s.server.input_roots or (s.server.data_dir,))),
            lease_seconds=s.lease_seconds,
            max_attempts=s.max_attempts,
            cache_memory_bytes=s.cache_memory_bytes,
            cache_disk_bytes=s.cache_disk_bytes,
            service_targets=tuple(s.service_targets.items()),
        )

    async def start(self) -> None:
        """Requeue what a previous server left running, then start ``min_workers``."""
        self._loop = asyncio.get_running_loop()
        # One server owns a SQLite store; anything RUNNING now was left by a dead one.
        for job in await self.store.unfinished():
            if job.state == JobState.RUNNING:
                log.info("resuming job %s from its last finished step", job.id)
                await self.store.requeue(job.id)
        if self.settings.worker_mode == "process":
            self._events = self._ctx.Queue()
            self._reader = threading.Thread(
                target=self._read_events, name="vo-pool-events", daemon=True
            )
            self._reader.start()
        for _ in range(self.settings.min_workers):
            self._spawn()
        self._monitor = asyncio.create_task(self._watch())

    def _spawn(self) -> _Handle:
        self._counter += 1
        name = f"worker-{self._counter}"
        handle = _Handle(name)
        config = self._config(name)
        if self.settings.worker_mode == "process":
            parent, child = self._ctx.Pipe()
            handle.process = self._ctx.Process(
                target=process_main,
                args=(config, self._events, child),
                name=f"vo-{name}",
                daemon=True,
            )
            handle.process.start()
            child.close()
            handle.control = parent
        else:
            worker, thread = thread_worker(config, self._thread_sink)
            handle.thread_worker, handle.thread = worker, thread
            thread.start()
        self.workers[name] = handle
        log.info("started %s (%s)", name, self.settings.worker_mode)
        return handle

    def _thread_sink(self, worker: str, kind: str, job_id: str, payload: bytes) -> None:
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._handle_event, worker, kind, job_id, payload)

    def _read_events(self) -> None:
        while not self._closing:
            try:
                worker, kind, job_id, payload = self._events.get(timeout=0.5)
            except queue.Empty:
                continue
            except (EOFError, OSError):
                return
            if self._loop is not None:
                self._loop.call_soon_threadsafe(self._handle_event, worker, kind, job_id, payload)

    def _handle_event(self, worker: str, kind: str, job_id: str, payload: bytes) -> None:
        handle = self.workers.get(worker)
        if handle is not None:
            if kind == "claimed":
                handle.job = job_id
            elif kind == "ended":
                handle.job = None
                handle.idle_since = time.monotonic()
        task = asyncio.ensure_future(self.on_event(kind, job_id, payload))
        self._tasks.add(task)  # keep a reference until done, or the task may vanish mid-run
        task.add_done_callback(self._tasks.discard)

    def notify(self) -> None:
        """A job was queued: wake an idle worker now (the monitor scales up if none is idle)."""
        for handle in self.workers.values():
            if handle.job is None and not handle.stopping:
                handle.send("wake")
                return

    def cancel(self, job_id: str) -> None:
        """Tell the worker running ``job_id`` to stop it."""
        for handle in self.workers.values():
            if handle.job == job_id:
                handle.send("cancel", job_id)

    async def _watch(self) -> None:
        while True:
            try:
                await self._tick()
            except Exception:  # the monitor must survive anything a tick meets
                log.exception("worker pool monitor")
            await asyncio.sleep(MONITOR_SECONDS)

    async def _tick(self) -> None:
        s = self.settings
        for name, handle in list(self.workers.items()):
            if handle.alive():
                continue
            del self.workers[name]
            if handle.stopping:
                continue
            code = handle.process.exitcode if handle.process is not None else None
            log.warning("%s died (exit code %s)", name, code)
            if handle.job is not None:
                await self._recover(handle.job, f"worker process died (exit code {code})")
        depth = await self.store.queue_depth()
        metrics.set_queue_depth("pipeline", depth)
        idle = [h for h in self.workers.values() if h.job is None and not h.stopping]
        live = [h for h in self.workers.values() if not h.stopping]
        # Enough workers for what waits, never fewer than min_workers (dead ones are replaced).
        wanted = max(min(s.max_workers - len(live), depth - len(idle)), s.min_workers - len(live))
        for _ in range(max(0, wanted)):
            self._spawn()
        if depth == 0 and len(live) > s.min_workers:
            now = time.monotonic()
            for handle in idle[: len(live) - s.min_workers]:
                if now - handle.idle_since > s.idle_timeout:
                    log.info("retiring idle %s", handle.name)
                    handle.stopping = True
                    handle.send("stop")

    async def _recover(self, job_id: str, reason: str) -> None:
        """Retry the job of a dead worker, or fail it once it has used its attempts."""
        job = await self.store.get_job(job_id)
        if job is None or job.state != JobState.RUNNING:
            return
        if job.attempts >= self.settings.max_attempts:
            step = next((n for n, st in job.steps.items() if st.state.value == "RUNNING"), "")
            await self.store.finish(
                job_id,
                JobState.FAILED,
                error={
                    "step": step,
                    "code": "ABORTED",
                    "message": f"{reason}; gave up after {job.attempts} attempts",
                },
            )
            await self.on_event("ended", job_id, b"")
        else:
            await self.store.requeue(job_id)
            await self.on_event("changed", job_id, b"")

    async def stop(self) -> None:
        """Stop every worker (running jobs stay RUNNING and resume on the next start)."""
        self._closing = True
        if self._monitor is not None:
            self._monitor.cancel()
        for handle in self.workers.values():
            handle.stopping = True
            handle.send("stop")
        for handle in self.workers.values():
            if handle.job is not None:
                handle.send("cancel", handle.job)  # it stays RUNNING and resumes at the next start
            joined = handle.process.join if handle.process is not None else handle.thread.join  # type: ignore[union-attr]
            await asyncio.to_thread(joined, 5)
            if handle.process is not None and handle.process.is_alive():
                handle.process.kill()
        self.workers.clear()
