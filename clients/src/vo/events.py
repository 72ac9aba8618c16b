"""Typed progress events, shared by the clients and the services' engines."""

from __future__ import annotations

from dataclasses import dataclass

from google.protobuf import duration_pb2

from vo.common.v1 import common_pb2


def seconds_to_duration(seconds: float) -> duration_pb2.Duration:
    """A protobuf Duration from float seconds (nanosecond precision)."""
    d = duration_pb2.Duration()
    d.FromNanoseconds(round(seconds * 1e9))
    return d


def duration_to_seconds(d: duration_pb2.Duration) -> float:
    """Float seconds from a protobuf Duration."""
    return d.seconds + d.nanos / 1e9


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """One progress report of a long-running operation."""

    stage: str
    """The work being done now, such as "analyse" or "render"."""
    frames_done: int = 0
    """Output frames finished in this stage."""
    frames_total: int = 0
    """Output frames this stage will produce, 0 when unknown."""
    fraction: float = 0.0
    """Overall completion from 0 to 1, never decreasing."""
    fps: float = 0.0
    """Recent speed in frames (or steps) per second."""
    eta_seconds: float | None = None
    """Estimated seconds left in this stage, None when unknown."""
    elapsed_seconds: float = 0.0
    """Seconds since the call started."""
    message: str = ""
    """A short human-readable note."""
    steps_done: int = 0
    """Finished units of a stage that does not count frames (sentences, tokens)."""
    steps_total: int = 0
    """Units of such a stage, 0 when unknown."""

    def to_proto(self) -> common_pb2.Progress:
        """The wire form of this event."""
        msg = common_pb2.Progress(
            stage=self.stage,
            frames_done=self.frames_done,
            frames_total=self.frames_total,
            fraction=self.fraction,
            fps=self.fps,
            message=self.message,
            steps_done=self.steps_done,
            steps_total=self.steps_total,
        )
        msg.elapsed.CopyFrom(seconds_to_duration(self.elapsed_seconds))
        if self.eta_seconds is not None:
            msg.eta.CopyFrom(seconds_to_duration(self.eta_seconds))
        return msg

    @classmethod
    def from_proto(cls, msg: common_pb2.Progress) -> ProgressEvent:
        """The typed form of a wire event."""
        return cls(
            stage=msg.stage,
            frames_done=msg.frames_done,
            frames_total=msg.frames_total,
            fraction=msg.fraction,
            fps=msg.fps,
            eta_seconds=duration_to_seconds(msg.eta) if msg.HasField("eta") else None,
            elapsed_seconds=duration_to_seconds(msg.elapsed),
            message=msg.message,
            steps_done=msg.steps_done,
            steps_total=msg.steps_total,
        )
