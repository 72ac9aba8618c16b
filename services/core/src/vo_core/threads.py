"""Running blocking engine generators from asyncio servicers.

Media and speech engines are plain (blocking) generators of progress events. Servicers stream
them with :func:`stream_in_thread`: the generator runs in a worker thread, items cross over a
queue, and when the client goes away the :class:`CancelToken` tells the engine to stop at its
next check, so a cancelled render frees its thread within one frame.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TypeVar

from vo_core.errors import Cancelled

T = TypeVar("T")

_DONE = object()


class CancelToken:
    """A flag an engine checks between units of work."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        """Ask the engine to stop."""
        self._event.set()

    @property
    def cancelled(self) -> bool:
        """True once cancel() was called."""
        return self._event.is_set()

    def check(self) -> None:
        """Raise :class:`Cancelled` when cancelled; engines call this once per frame or step."""
        if self._event.is_set():
            raise Cancelled("the operation was cancelled")


async def stream_in_thread(
    make: Callable[[CancelToken], Iterator[T]], *, max_buffer: int = 64
) -> AsyncIterator[T]:
    """Run ``make(token)`` in a thread and yield what it yields, preserving exceptions."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue(maxsize=max_buffer)
    token = CancelToken()

    def put(item: object) -> None:
        # Block the worker thread (not the loop) while the consumer is behind.
        asyncio.run_coroutine_threadsafe(queue.put(item), loop).result()

    def worker() -> None:
        try:
            for item in make(token):
                if token.cancelled:
                    break
                put(item)
            put(_DONE)
        except BaseException as exc:  # delivered to the consumer, re-raised there
            if not token.cancelled:
                put(exc)

    thread = threading.Thread(target=worker, name="vo-engine", daemon=True)
    thread.start()
    try:
        while True:
            item = await queue.get()
            if item is _DONE:
                break
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        token.cancel()
        # Unblock a worker waiting on a full queue so it can see the token and exit.
        while not queue.empty():
            queue.get_nowait()
