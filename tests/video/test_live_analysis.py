"""Smart framing's analysis thread: low priority, promoted when it falls behind, same path."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from vo.events import ProgressEvent
from vo_core.media import probe
from vo_core.progress import ProgressMeter
from vo_core.threads import CancelToken
from vo_video import engine
from vo_video.engine import BackgroundAnalysis
from vo_video.framing import (
    AnalysisState,
    CropGeometry,
    LivePath,
    Sample,
    analyse,
    analyse_from,
    smart_path,
)
from vo_video.samples import write_sample
from vo_video.spec import ReframeOptions, RenderJob

GEO = CropGeometry.for_aspect(640, 360, (9, 16))


def _nice_of(thread_name: str) -> int:
    for thread in threading.enumerate():
        if thread.name == thread_name and thread.native_id is not None:
            return os.getpriority(os.PRIO_PROCESS, thread.native_id)
    raise AssertionError(f"no {thread_name} thread")


def test_promoted_analysis_carries_on_to_the_same_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The first (low-priority) thread is slowed down, so the promotion lands mid-way through.
    starts: list[AnalysisState] = []

    def slow_first(*args: Any) -> Iterator[Any]:
        state = args[-1]
        starts.append(state)
        for item in analyse_from(*args):
            if state.index == 0 and not isinstance(item, ProgressEvent):
                time.sleep(0.02)
            yield item

    monkeypatch.setattr(engine, "analyse_from", slow_first)
    src = tmp_path / "walk.mp4"
    write_sample(src, duration=12.0, width=640, height=360, audio=False, preset="ultrafast")
    info = probe(src)
    meter = ProgressMeter("analyse", 360)
    samples = [s for s in analyse(src, info, CancelToken(), meter) if isinstance(s, Sample)]
    whole = smart_path(GEO, samples)

    job = RenderJob(src, info, None, ReframeOptions(mode="smart", width=360, height=640))
    analysis = BackgroundAnalysis(job, GEO, CancelToken())
    try:
        assert _nice_of("vo-analyse") == 19, "the analysis starts at the lowest priority"
        times = np.arange(0, 12, 1 / 30)
        first = [analysis.path.at(t) for t in times[:60]]
        analysis._promote()  # as the render does when the analysis falls behind
        rest = [analysis.path.at(t) for t in times[60:]]
    finally:
        analysis.close()
    assert first + rest == [whole.at(t) for t in times], "the hand-over changed the path"
    assert len(starts) == 2 and 10 < starts[1].index < len(samples), "carried on mid-way"
    names = [t.name for t in threading.enumerate() if t.is_alive()]
    assert "vo-analyse" not in names


def test_a_waiting_reader_raises_the_alarm_once() -> None:
    alarms: list[float] = []
    live = LivePath(GEO, on_falling_behind=lambda: alarms.append(time.monotonic()))

    def slow_analysis() -> None:
        time.sleep(1.2)  # longer than a reader will wait before calling for help
        for i in range(60):
            live.add(Sample(i / 6, (320.0, 180.0), "motion", False))
        live.finish()

    threading.Thread(target=slow_analysis).start()
    started = time.monotonic()
    assert live.at(0.0) == smart_path(GEO, [Sample(0, (320.0, 180.0), "motion", False)]).at(0)
    assert len(alarms) == 1 and alarms[0] - started >= 0.4
    assert live.at(9.0) is not None and len(alarms) == 1


def test_a_lead_that_shrinks_raises_the_alarm() -> None:
    alarms: list[str] = []
    live = LivePath(GEO, on_falling_behind=lambda: alarms.append("behind"))
    for i in range(40):  # decided up to about 6 s
        live.add(Sample(i / 6, (320.0, 180.0), "motion", False))
    live.at(0.0)  # 6 s ahead: fine
    live.at(3.0)  # 3 s ahead: still fine
    assert alarms == []
    live.at(4.5)  # under 2 s ahead, after having been 4 s or more: call for help
    assert alarms == ["behind"]
