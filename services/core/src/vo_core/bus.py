"""The progress bus: a job's events fanned out to whoever watches it, on any replica.

Workers publish opaque events (serialized ``WatchJobResponse`` messages) per job; a watcher
subscribes and first gets the last event published for the job (so a late ``WatchJob``
starts from the current state, not from nothing), then every new one, until the job is
closed. :class:`InProcessProgressBus` serves the embedded mode; a Redis implementation
(pub/sub plus a last-event key per job) drops in behind :class:`ProgressBus`.

Publishers never wait for watchers: each subscriber has a bounded queue, and a subscriber
that falls behind loses its oldest events, never the newest, so it always ends on the
job's final event. Progress events supersede one another, so skipping some is harmless.
"""

from __future__ import annotations

import asyncio
import collections
import threading
from collections.abc import AsyncGenerator
from typing import Protocol

__all__ = ["InProcessProgressBus", "ProgressBus"]


class ProgressBus(Protocol):
    """Per-job event fan-out with a replay of the last event."""

    def publish(self, job_id: str, event: bytes) -> None:
        """Send ``event`` to the job's subscribers and keep it as the job's last event.

        Thread-safe and non-blocking: callable from worker threads and from the loop.
        Events published after :meth:`close_job` are dropped.
        """
        ...

    def subscribe(self, job_id: str) -> AsyncGenerator[bytes, None]:
        """The job's last event (if any), then each new one; ends after the job is closed.

        Subscribing to a job that is already closed yields its final event and ends. A
        watcher that stops early should close the iterator (``contextlib.aclosing``, or
        cancellation of the task iterating it) so it unregisters at once, not when collected.
        """
        ...

    def last(self, job_id: str) -> bytes | None:
        """The last event published for the job, or None."""
        ...

    def close_job(self, job_id: str) -> None:
        """The job ended: its subscribers get what is queued (the final event included)
        and stop. Call it after publishing the final event."""
        ...


class _Subscriber:
    """One subscriber's bounded queue; touched only under the bus lock."""

    __slots__ = ("closed", "dropped", "items", "loop", "maxsize", "wake_pending", "wakeup")

    def __init__(self, loop: asyncio.AbstractEventLoop, maxsize: int) -> None:
        self.loop = loop
        self.maxsize = maxsize
        self.items: collections.deque[bytes] = collections.deque()
        self.closed = False
        self.dropped = 0
        self.wakeup = asyncio.Event()
        # True while a wakeup callback is scheduled: one callback per burst, not per event.
        self.wake_pending = False

    def push(self, event: bytes) -> None:
        if len(self.items) >= self.maxsize:
            # Drop the oldest: the newest event is the current state, and after close_job
            # nothing more arrives, so the final event is never the one dropped.
            self.items.popleft()
            self.dropped += 1
        self.items.append(event)


class InProcessProgressBus:
    """:class:`ProgressBus` within one process, for any number of event loops and threads.

    State sits behind one ``threading.Lock`` held for microseconds; a publisher appends to
    each subscriber's deque and schedules a wakeup on that subscriber's loop with
    ``call_soon_threadsafe``, so it never waits for a subscriber or for the loop.

    ``max_closed_jobs`` bounds memory: the last events of that many ended jobs are kept for
    late watchers, older ones are forgotten.
    """

    def __init__(self, *, max_queue: int = 256, max_closed_jobs: int = 10_000) -> None:
        if max_queue < 1:
            raise ValueError("max_queue must be at least 1")
        self.max_queue = max_queue
        self.max_closed_jobs = max_closed_jobs
        self._lock = threading.Lock()
        self._last: dict[str, bytes] = {}
        self._subscribers: dict[str, set[_Subscriber]] = {}
        # Ended jobs, oldest first; the value is unused (an ordered set).
        self._closed: collections.OrderedDict[str, None] = collections.OrderedDict()

    def publish(self, job_id: str, event: bytes) -> None:
        """See :meth:`ProgressBus.publish`."""
        event = bytes(event)
        with self._lock:
            if job_id in self._closed:
                return
            self._last[job_id] = event
            for sub in self._subscribers.get(job_id, ()):
                sub.push(event)
                self._wake(sub)

    def close_job(self, job_id: str) -> None:
        """See :meth:`ProgressBus.close_job`. Idempotent."""
        with self._lock:
            if job_id in self._closed:
                return
            self._closed[job_id] = None
            for sub in self._subscribers.get(job_id, ()):
                sub.closed = True
                self._wake(sub)
            while len(self._closed) > self.max_closed_jobs:
                old, _ = self._closed.popitem(last=False)
                self._last.pop(old, None)

    def last(self, job_id: str) -> bytes | None:
        """See :meth:`ProgressBus.last`."""
        with self._lock:
            return self._last.get(job_id)

    def forget(self, job_id: str) -> None:
        """Drop everything kept for the job (its id may then be used afresh)."""
        with self._lock:
            self._closed.pop(job_id, None)
            self._last.pop(job_id, None)
            for sub in self._subscribers.pop(job_id, ()):
                sub.closed = True
                self._wake(sub)

    def subscriber_count(self, job_id: str) -> int:
        """How many subscribers the job has now (for tests and metrics)."""
        with self._lock:
            return len(self._subscribers.get(job_id, ()))

    async def subscribe(self, job_id: str) -> AsyncGenerator[bytes, None]:
        """See :meth:`ProgressBus.subscribe`."""
        sub = _Subscriber(asyncio.get_running_loop(), self.max_queue)
        with self._lock:
            # Under the lock, so no event falls between the replay and the live stream.
            last = self._last.get(job_id)
            if last is not None:
                sub.push(last)
            if job_id in self._closed:
                sub.closed = True
            else:
                self._subscribers.setdefault(job_id, set()).add(sub)
        try:
            while True:
                with self._lock:
                    if sub.items:
                        item: bytes | None = sub.items.popleft()
                    elif sub.closed:
                        return
                    else:
                        item = None
                        # Cleared under the lock: a publish after this point sets it again.
                        sub.wakeup.clear()
                if item is None:
                    await sub.wakeup.wait()
                else:
                    yield item
        finally:
            with self._lock:
                subs = self._subscribers.get(job_id)
                if subs is not None:
                    subs.discard(sub)
                    if not subs:
                        del self._subscribers[job_id]

    def _wake(self, sub: _Subscriber) -> None:
        """Schedule ``sub``'s wakeup on its loop; called with the lock held."""
        if sub.wake_pending:
            return
        sub.wake_pending = True
        try:
            sub.loop.call_soon_threadsafe(self._do_wake, sub)
        except RuntimeError:
            # The subscriber's loop is closed; nobody is left to read its queue.
            sub.closed = True

    def _do_wake(self, sub: _Subscriber) -> None:
        with self._lock:
            sub.wake_pending = False
        sub.wakeup.set()


def _check_protocol(bus: InProcessProgressBus) -> ProgressBus:
    # mypy proves here that InProcessProgressBus satisfies the ProgressBus protocol.
    return bus
