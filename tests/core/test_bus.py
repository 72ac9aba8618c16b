"""The in-process progress bus: replay of the last event, fan-out, slow subscribers, close."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

import pytest
from vo_core.bus import InProcessProgressBus


async def collect(bus: InProcessProgressBus, job_id: str) -> list[bytes]:
    return [event async for event in bus.subscribe(job_id)]


async def wait_for_subscribers(bus: InProcessProgressBus, job_id: str, n: int) -> None:
    # The bus has no event for "subscribed"; polling a counter is fine in a test.
    while bus.subscriber_count(job_id) < n:  # noqa: ASYNC110
        await asyncio.sleep(0.001)


async def test_a_late_subscriber_gets_the_last_event_first_then_new_ones() -> None:
    bus = InProcessProgressBus()
    assert bus.last("j") is None
    bus.publish("j", b"1")
    bus.publish("j", b"2")
    assert bus.last("j") == b"2"

    task = asyncio.create_task(collect(bus, "j"))
    await wait_for_subscribers(bus, "j", 1)
    bus.publish("j", b"3")
    bus.publish("j", b"4")
    bus.close_job("j")
    assert await asyncio.wait_for(task, 5) == [b"2", b"3", b"4"]
    assert bus.subscriber_count("j") == 0


async def test_close_ends_iteration_and_later_subscribers_get_the_final_event() -> None:
    bus = InProcessProgressBus()
    watchers = [asyncio.create_task(collect(bus, "j")) for _ in range(3)]
    await wait_for_subscribers(bus, "j", 3)
    bus.publish("j", b"final")
    bus.close_job("j")
    assert await asyncio.wait_for(asyncio.gather(*watchers), 5) == [[b"final"]] * 3

    # After the end: the final event, then the iteration stops at once.
    assert await asyncio.wait_for(collect(bus, "j"), 5) == [b"final"]
    bus.publish("j", b"straggler")  # dropped: the job has ended
    assert bus.last("j") == b"final"
    # Other jobs are untouched.
    bus.publish("k", b"k1")
    assert bus.last("k") == b"k1"


async def test_a_job_closed_without_events_ends_its_subscribers() -> None:
    bus = InProcessProgressBus()
    task = asyncio.create_task(collect(bus, "j"))
    await wait_for_subscribers(bus, "j", 1)
    bus.close_job("j")
    assert await asyncio.wait_for(task, 5) == []


@pytest.mark.timeout(30)
async def test_a_slow_subscriber_never_blocks_publishers_and_keeps_the_final_event() -> None:
    bus = InProcessProgressBus(max_queue=4)
    bus.publish("j", b"start")
    slow = bus.subscribe("j")
    assert await anext(slow) == b"start"  # subscribed; from now on it does not read

    fast_events: list[bytes] = []

    async def fast() -> None:
        async for event in bus.subscribe("j"):
            fast_events.append(event)

    fast_task = asyncio.create_task(fast())
    await wait_for_subscribers(bus, "j", 2)

    def publish_many() -> float:
        t0 = time.perf_counter()
        for i in range(20_000):
            bus.publish("j", b"%d" % i)
        bus.publish("j", b"final")
        bus.close_job("j")
        return time.perf_counter() - t0

    # From another thread, as worker-pool reader threads do; the slow reader does not
    # hold it up (20k events well under the timeout even on a loaded machine).
    elapsed = await asyncio.to_thread(publish_many)
    assert elapsed < 10

    rest = [event async for event in slow]
    # Only the newest four survived, in order, ending on the final event.
    assert rest == [b"19997", b"19998", b"19999", b"final"]
    await asyncio.wait_for(fast_task, 10)
    assert fast_events[-1] == b"final"
    assert fast_events[0] == b"start"


@pytest.mark.timeout(30)
async def test_events_from_many_threads_arrive_in_order_per_publisher() -> None:
    bus = InProcessProgressBus(max_queue=100_000)
    task = asyncio.create_task(collect(bus, "j"))
    await wait_for_subscribers(bus, "j", 1)

    def publisher(name: str) -> None:
        for i in range(500):
            bus.publish("j", f"{name}:{i}".encode())

    threads = [threading.Thread(target=publisher, args=(f"t{n}",)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        await asyncio.to_thread(t.join)
    bus.publish("j", b"final")  # from the loop thread itself, too
    bus.close_job("j")
    events = await asyncio.wait_for(task, 10)
    assert events[-1] == b"final" and len(events) == 2001
    for n in range(4):
        mine = [int(e.split(b":")[1]) for e in events if e.startswith(f"t{n}:".encode())]
        assert mine == list(range(500))


async def test_a_subscriber_that_stops_early_is_unregistered() -> None:
    bus = InProcessProgressBus()
    bus.publish("j", b"a")
    # aclosing: leaving the loop early closes the generator now, not when it is collected.
    async with contextlib.aclosing(bus.subscribe("j")) as events:
        async for event in events:
            assert event == b"a"
            assert bus.subscriber_count("j") == 1
            break
    assert bus.subscriber_count("j") == 0
    bus.publish("j", b"b")  # no subscriber, no error
    assert bus.last("j") == b"b"


async def test_subscribers_on_another_event_loop_are_woken() -> None:
    bus = InProcessProgressBus()
    ready = threading.Event()
    result: list[bytes] = []

    def other_loop() -> None:
        async def main() -> None:
            gen = bus.subscribe("j")
            # Start iterating (registers), then signal the publisher.
            first = asyncio.ensure_future(anext(gen))
            await wait_for_subscribers(bus, "j", 1)
            ready.set()
            result.append(await first)
            result.extend([e async for e in gen])

        asyncio.run(main())

    thread = threading.Thread(target=other_loop)
    thread.start()
    await asyncio.to_thread(ready.wait, 5)
    bus.publish("j", b"x")
    bus.publish("j", b"y")
    bus.close_job("j")
    await asyncio.to_thread(thread.join, 5)
    assert result == [b"x", b"y"]


async def test_closed_jobs_are_forgotten_beyond_the_bound() -> None:
    bus = InProcessProgressBus(max_closed_jobs=2)
    for job in ("a", "b", "c"):
        bus.publish(job, job.encode())
        bus.close_job(job)
    assert bus.last("a") is None
    assert bus.last("b") == b"b" and bus.last("c") == b"c"
    bus.forget("c")
    assert bus.last("c") is None
    bus.publish("c", b"again")  # a forgotten id is usable afresh
    assert bus.last("c") == b"again"
