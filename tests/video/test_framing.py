"""The smart camera path: holds still, never jitters, follows, cuts at scene changes."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from vo_video.framing import (
    CropGeometry,
    CropPath,
    LivePath,
    PathPlanner,
    Sample,
    find_subject,
    smart_path,
)

GEO = CropGeometry.for_aspect(1920, 1080, (9, 16))


def _samples(xs: list[float], cuts: set[int] = frozenset()) -> list[Sample]:  # type: ignore[assignment]
    return [Sample(i / 6, (x, 540.0), "motion", i in cuts) for i, x in enumerate(xs)]


def test_geometry_is_even_and_fits() -> None:
    assert (GEO.crop_width, GEO.crop_height) == (606, 1080)
    g = CropGeometry.for_aspect(1280, 720, (4, 5))
    assert g.crop_height == 720 and g.crop_width == 576
    g = CropGeometry.for_aspect(720, 1280, (16, 9))  # portrait source to landscape: full width
    assert g.crop_width == 720 and g.crop_height == 404


def test_holds_still_when_the_subject_wobbles_inside_the_dead_zone() -> None:
    rng = np.random.default_rng(1)
    xs = list(960 + rng.normal(0, 25, 120))  # detections jitter by ±25 px around a still subject
    path = smart_path(GEO, _samples(xs))
    lefts = [path.at(t)[0] for t in np.arange(0, 20, 1 / 30)]
    assert max(lefts) - min(lefts) <= 4, "the camera must hold still"


def test_follows_a_moving_subject_smoothly_and_keeps_it_in_view() -> None:
    xs = [300 + 1300 * (i / 60) for i in range(61)]  # 10 s walk across the frame
    path = smart_path(GEO, _samples(xs))
    times = np.arange(0, 10, 1 / 30)
    lefts = np.array([path.at(t)[0] for t in times], dtype=float)
    subject = np.interp(times, [i / 6 for i in range(61)], xs)
    assert np.all((subject > lefts) & (subject < lefts + GEO.crop_width)), "subject left the window"
    # No jitter: each eased move (about 0.6 of the window in 0.6 s) peaks near 32 px/frame
    # (±2 from even-pixel rounding), and the camera holds still between moves.
    steps = np.diff(lefts)
    assert np.abs(steps).max() <= 36
    assert (steps == 0).mean() > 0.7, "the camera moves more than it holds"
    assert np.abs(np.diff(lefts, 2)).max() <= 12
    assert np.all(steps >= 0), "the camera turned back on a subject walking one way"
    # Lead room: when a move ends, the walker is behind the centre, with room ahead.
    ends = [k + 1 for k in range(1, len(steps)) if steps[k - 1] != 0 and steps[k] == 0]
    assert len(ends) >= 2
    offsets = subject[ends] - (lefts[ends] + GEO.crop_width / 2)
    assert np.all(offsets < -0.1 * GEO.crop_width), offsets


def test_cuts_at_scene_changes_instead_of_panning() -> None:
    xs = [400.0] * 30 + [1500.0] * 30
    path = smart_path(GEO, _samples(xs, cuts={30}))
    before, after = path.at(30 / 6 - 0.05)[0], path.at(30 / 6 + 0.01)[0]
    assert before + GEO.crop_width / 2 == pytest.approx(400, abs=4)
    assert after + GEO.crop_width / 2 == pytest.approx(1500, abs=4) or after == GEO.max_x


def test_centre_path_is_static_and_centred() -> None:
    path = CropPath.centered(GEO)
    assert path.is_static and path.at(3.0) == (656, 0)  # even, for yuv420p chroma


def test_finds_a_bright_subject_by_saliency_and_motion() -> None:
    frame = np.full((180, 320), 60, np.uint8)
    frame[80:100, 240:260] = 230
    (x, y), source = find_subject(frame, None)
    assert source == "saliency" and abs(x - 250) < 8 and abs(y - 90) < 8
    moved = np.full((180, 320), 60, np.uint8)
    moved[80:100, 40:60] = 230
    import cv2

    (x, _), source = find_subject(moved, cv2.GaussianBlur(frame, (5, 5), 0))
    assert source == "motion" and x < 160


def _walk_with_cut() -> list[Sample]:
    """20 s: a walk right, then (after a cut) a subject that wanders and is sometimes lost."""
    rng = np.random.default_rng(7)
    walk = [Sample(i / 6, (300 + 80 * i / 6, 500.0), "motion", False) for i in range(60)]
    wander = [
        Sample(
            10 + i / 6, None if i % 7 == 3 else (1400 + 300 * np.sin(i / 9), 560.0), "face", i == 0
        )
        for i in range(60)
    ]
    wander += [
        Sample(20 + i / 6, (float(rng.uniform(200, 1700)), 540.0), "motion", False)
        for i in range(3)
    ]
    return walk + wander


def test_planning_as_samples_arrive_gives_the_same_path() -> None:
    samples = _walk_with_cut()
    whole = smart_path(GEO, samples)
    planner = PathPlanner(GEO)
    checked = 0
    for k, sample in enumerate(samples):
        planner.add(sample)
        until, partial = planner.decided_until(), planner.path()
        assert until <= sample.time, "decided past what the analysis has seen"
        if k % 10 == 9:
            times = [t for t in np.arange(0, 21, 1 / 30) if t <= until]
            assert [partial.at(t) for t in times] == [whole.at(t) for t in times]
            checked += len(times)
    assert checked > 1000
    planner.finish()
    assert planner.decided_until() == float("inf")


def test_live_path_waits_for_the_analysis_and_hands_on_its_failure() -> None:
    samples = _walk_with_cut()
    whole = smart_path(GEO, samples)
    live = LivePath(GEO)

    def analysis() -> None:
        for sample in samples:
            time.sleep(0.002)
            live.add(sample)
        live.finish()

    thread = threading.Thread(target=analysis)
    thread.start()
    times = np.arange(0, 21, 1 / 30)
    # Read as fast as possible while the samples trickle in: only waiting gives the same path.
    assert [live.at(t) for t in times] == [whole.at(t) for t in times]
    thread.join()

    failing = LivePath(GEO)
    threading.Timer(0.05, failing.fail, [ValueError("bad frame at 3 s")]).start()
    with pytest.raises(ValueError, match="bad frame"):
        failing.at(1.0)
