"""ProgressMeter: an event at least every 30 units and every 250 ms, with fps, eta and spans."""

from __future__ import annotations

import itertools
import time

import pytest
from vo_core.progress import ProgressMeter


def test_an_event_at_least_every_30_frames_when_frames_come_fast() -> None:
    meter = ProgressMeter("render", 1000)
    events = [e for _ in range(1000) if (e := meter.advance(1)) is not None]
    done = [0] + [e.frames_done for e in events]
    assert all(b - a <= 30 for a, b in itertools.pairwise(done))
    assert 1000 / 30 <= len(events) <= 1000 / 30 + 5, "throttled, not one event per frame"
    last = meter.finish("done")
    assert (last.frames_done, last.frames_total, last.fraction) == (1000, 1000, 1.0)


def test_an_event_every_250_ms_when_frames_come_slowly() -> None:
    meter = ProgressMeter("render", 100)
    meter.advance(1)  # the first always reports
    emitted = []
    for _ in range(3):
        time.sleep(0.27)
        emitted.append(meter.advance(1))
    assert all(e is not None for e in emitted), "a slow stage must still report every 250 ms"
    assert [e.frames_done for e in emitted if e] == [2, 3, 4]
    assert meter.advance(1) is None, "and not more often than that"


def test_fps_eta_and_the_stage_span() -> None:
    meter = ProgressMeter("render", 300, fraction_span=(0.2, 1.0))
    for _ in range(100):
        time.sleep(0.001)
        meter.advance(1)
    event = meter.event()
    assert event.fraction == pytest.approx(0.2 + 0.8 * 100 / 300)
    assert 50 < event.fps < 1100  # about 1 frame per ms, however busy the machine
    assert event.eta_seconds == pytest.approx(200 / event.fps, rel=0.01)


def test_a_stage_without_frames_counts_steps() -> None:
    meter = ProgressMeter("script", 4, counts_frames=False)
    event = meter.advance(1)
    assert event is not None
    assert (event.frames_total, event.steps_done, event.steps_total) == (0, 1, 4)
