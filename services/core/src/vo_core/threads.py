"""Running blocking generators in a thread of their own.

Media and speech engines are plain (blocking) generators of progress events. Servicers stream
them with :func:`stream_in_thread` (to asyncio); :func:`iterate_in_thread` is its blocking
twin, for a stage inside an engine (decode and filter while the encoder works). In both, the
generator runs in a worker thread, items cross over a bounded queue, and when the consumer goes
away the :class:`CancelToken` tells the producer to stop at its next check, so a cancelled
render frees its thread within one frame.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator, Callable, Generator, Iterator
from typing import TypeVar

from vo_core.errors import Cancelled

T = TypeVar("T")

_DONE = object()


class CancelToken:
    """A flag an engine checks between units of work.

    A token made with a ``parent`` is cancelled with it, or on its own: a helper thread
    inside an engine stops when the whole operation is cancelled, and also when the engine
    no longer needs it.
    """

    def __init__(self, parent: CancelToken | None = None) -> None:
        self._event = threading.Event()
        self._parent = parent

    def cancel(self) -> None:
        """Ask the engine to stop."""
        self._event.set()

    @property
    def cancelled(self) -> bool:
        """True once cancel() was called, here or on the parent."""
        return self._event.is_set() or (self._parent is not None and self._parent.cancelled)

    def check(self) -> None:
        """Raise :class:`Cancelled` when cancelled; engines call this once per frame or step."""
        if self.cancelled:
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


def iterate_in_thread(
    items: Iterator[T], token: CancelToken, depth: int = 8
) -> Generator[T, None, None]:
    """Run ``items`` in a producer thread; yield them here, in order, with its exceptions.

    PyAV releases the GIL while decoding and filtering, so the producer's work overlaps the
    consumer's. The queue is bounded (``depth`` items), keeping memory flat. When the consumer
    stops early the token stops the producer at its next item, and closing this generator
    waits for the producer to end: callers close resources it reads only after that.
    """
    buffer: queue.Queue[object] = queue.Queue(maxsize=depth)

    def put(item: object) -> bool:
        while not token.cancelled:
            try:
                buffer.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put(item):
                    return
            put(_DONE)
        except BaseException as exc:  # handed to the consumer, raised there
            put(exc)

    thread = threading.Thread(target=work, name="vo-producer", daemon=True)
    thread.start()
    try:
        while True:
            try:
                item = buffer.get(timeout=0.1)
            except queue.Empty:
                # A cancelled producer stops without a word (its queue may be full of items
                # nobody will take): once it is gone and nothing is left, stop here too.
                if not thread.is_alive() and buffer.empty():
                    token.check()
                    raise RuntimeError("the producer thread ended without finishing") from None
                continue
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        if thread.is_alive():
            token.cancel()
            thread.join()
