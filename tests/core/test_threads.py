"""Engine threads: a cancelled producer never leaves its consumer waiting forever."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
from vo_core.errors import Cancelled
from vo_core.threads import CancelToken, iterate_in_thread


def test_a_cancelled_producer_wakes_its_waiting_consumer() -> None:
    token = CancelToken()
    started = threading.Event()

    def slow() -> Iterator[int]:
        yield 1
        started.set()
        while True:  # like a decoder between frames: checks the token, yields nothing yet
            token.check()
            time.sleep(0.01)

    items = iterate_in_thread(slow(), token)
    assert next(items) == 1
    started.wait(5)
    threading.Timer(0.2, token.cancel).start()
    t0 = time.monotonic()
    with pytest.raises(Cancelled):
        next(items)  # waits on an empty queue until the producer is gone
    assert time.monotonic() - t0 < 2
    assert not any(t.name == "vo-producer" and t.is_alive() for t in threading.enumerate())


def test_items_and_errors_arrive_in_order() -> None:
    def produce() -> Iterator[int]:
        yield from range(50)
        raise ValueError("bad frame 50")

    got = []
    with pytest.raises(ValueError, match="bad frame 50"):
        for item in iterate_in_thread(produce(), CancelToken(), depth=4):
            got.append(item)
    assert got == list(range(50))
