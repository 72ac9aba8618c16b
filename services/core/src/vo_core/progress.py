"""Progress events: the type engines yield (shared with the clients), with throttling and fps/eta.

Engines yield :class:`ProgressEvent` (defined once, in ``vo.events``); servicers turn them into ``vo.common.v1.Progress``.
:class:`ProgressMeter` decides when an event is worth sending (every N frames or every
interval, whichever comes first, and always the last one) and computes fps and eta from a
recent window, so a slow start does not skew the estimate for the rest of the run.
"""

from __future__ import annotations

import time
from collections import deque

from vo.events import ProgressEvent, duration_to_seconds, seconds_to_duration

__all__ = ["ProgressEvent", "ProgressMeter", "duration_to_seconds", "seconds_to_duration"]


class ProgressMeter:
    """Counts units of work in one stage and says when a progress event is due.

    ``fraction_span`` maps this stage into an overall fraction, e.g. ``(0.1, 1.0)`` for a
    render after a 10% analysis pass, so the overall fraction never goes backwards.
    """

    def __init__(
        self,
        stage: str,
        total: int,
        *,
        every_frames: int = 30,
        every_seconds: float = 0.25,
        fraction_span: tuple[float, float] = (0.0, 1.0),
        counts_frames: bool = True,
    ) -> None:
        self.stage = stage
        self.total = max(0, total)
        self.done = 0
        self.every_frames = every_frames
        self.every_seconds = every_seconds
        self.span = fraction_span
        self.counts_frames = counts_frames
        self._start = time.monotonic()
        self._last_emit_time = float("-inf")
        self._last_emit_done = -1
        # (time, done) samples for a windowed rate; a few seconds of history is plenty.
        self._window: deque[tuple[float, int]] = deque(maxlen=64)
        self._window.append((self._start, 0))

    def advance(self, n: int = 1, message: str = "") -> ProgressEvent | None:
        """Count ``n`` more units; return an event when one is due, else None."""
        self.done += n
        now = time.monotonic()
        if (
            self.done - self._last_emit_done >= self.every_frames
            or now - self._last_emit_time >= self.every_seconds
        ):
            return self._emit(now, message)
        return None

    def finish(self, message: str = "") -> ProgressEvent:
        """The last event of the stage; always sent."""
        if self.total and self.done < self.total:
            self.done = self.total
        return self._emit(time.monotonic(), message)

    def event(self, message: str = "") -> ProgressEvent:
        """An event for the current state, regardless of throttling."""
        return self._emit(time.monotonic(), message)

    def _emit(self, now: float, message: str) -> ProgressEvent:
        self._last_emit_time = now
        self._last_emit_done = self.done
        self._window.append((now, self.done))
        # Estimates of the total (from container durations) can be a frame short: never show
        # more done than total.
        self.total = max(self.total, self.done)
        t0, d0 = self._window[0]
        rate = (self.done - d0) / (now - t0) if now > t0 else 0.0
        local = min(1.0, self.done / self.total) if self.total else 0.0
        lo, hi = self.span
        eta = (self.total - self.done) / rate if rate > 0 and self.total else None
        frames = (self.done, self.total) if self.counts_frames else (0, 0)
        steps = (0, 0) if self.counts_frames else (self.done, self.total)
        return ProgressEvent(
            stage=self.stage,
            frames_done=frames[0],
            frames_total=frames[1],
            steps_done=steps[0],
            steps_total=steps[1],
            fraction=lo + (hi - lo) * local,
            fps=rate,
            eta_seconds=max(0.0, eta) if eta is not None else None,
            elapsed_seconds=now - self._start,
            message=message,
        )
