"""Durable job domain types: what a job store keeps, free of any database or gRPC server.

A :class:`JobRecord` is the store's view of a ``vo.pipeline.v1.Job``: the spec stays a
serialized ``JobSpec`` (the store never parses it), steps carry their checkpoints (the
artifacts a finished step produced, so a retry resumes after it), and the lease says which
worker owns a running job until when. :meth:`JobRecord.to_proto` builds the wire form.
"""

from __future__ import annotations

import enum
import uuid
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import duration_pb2, timestamp_pb2
from vo.common.v1 import common_pb2
from vo.pipeline.v1 import pipeline_service_pb2

__all__ = ["JobRecord", "JobState", "StepRecord", "StepState", "new_job_id"]


class JobState(enum.StrEnum):
    """Where a job stands; the values are what the store writes."""

    QUEUED = "QUEUED"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def terminal(self) -> bool:
        """True for states a job never leaves."""
        return self in _TERMINAL_JOB_STATES

    def to_proto(self) -> pipeline_service_pb2.Job.State.ValueType:
        """The ``vo.pipeline.v1.Job.State`` value."""
        return pipeline_service_pb2.Job.State.Value(f"STATE_{self.value}")

    @classmethod
    def from_proto(cls, value: int) -> JobState | None:
        """The state for a ``Job.State`` value; None for ``STATE_UNSPECIFIED`` (no filter)."""
        if value == pipeline_service_pb2.Job.STATE_UNSPECIFIED:
            return None
        state = pipeline_service_pb2.Job.State.ValueType(value)
        return cls(pipeline_service_pb2.Job.State.Name(state).removeprefix("STATE_"))


_TERMINAL_JOB_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})


class StepState(enum.StrEnum):
    """Where one step of a job's DAG stands."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    SKIPPED = "SKIPPED"
    CACHED = "CACHED"

    @property
    def done(self) -> bool:
        """True when a retry of the job need not run this step again."""
        return self in (StepState.SUCCEEDED, StepState.SKIPPED, StepState.CACHED)

    def to_proto(self) -> pipeline_service_pb2.Step.State.ValueType:
        """The ``vo.pipeline.v1.Step.State`` value."""
        return pipeline_service_pb2.Step.State.Value(f"STATE_{self.value}")


def new_job_id() -> str:
    """A fresh job id: 32 lowercase hex digits of a random uuid4."""
    return uuid.uuid4().hex


@dataclass
class StepRecord:
    """One step's state, wall time and checkpoint.

    ``checkpoint`` is JSON-able data the step left for a retry, typically the sha256s of the
    artifacts it produced; a step whose state is ``done`` and whose checkpoint artifacts still
    exist is skipped when the job resumes.
    """

    state: StepState = StepState.PENDING
    elapsed: float = 0.0
    checkpoint: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The form stored in the ``steps`` JSON column."""
        return {"state": self.state.value, "elapsed": self.elapsed, "checkpoint": self.checkpoint}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StepRecord:
        """Inverse of :meth:`to_json`."""
        return cls(
            state=StepState(data.get("state", StepState.PENDING.value)),
            elapsed=float(data.get("elapsed", 0.0)),
            checkpoint=dict(data.get("checkpoint") or {}),
        )


@dataclass
class JobRecord:
    """A job as the store keeps it.

    ``steps`` keeps the DAG's order (dicts keep insertion order, and so does the JSON column).
    ``error`` is ``{"step", "code", "message"}``; ``output`` is ``{"sha256", "size_bytes",
    "media_type", "uri"}``; ``progress`` is the last serialized ``vo.common.v1.Progress``.
    """

    id: str
    project_id: str
    request_id: str
    spec: bytes
    state: JobState
    steps: dict[str, StepRecord]
    attempts: int
    lease_owner: str | None
    lease_expires: float | None
    error: dict[str, Any] | None
    output: dict[str, Any] | None
    created_at: float
    updated_at: float
    progress: bytes | None = None

    def to_proto(self, *, with_spec: bool = True) -> pipeline_service_pb2.Job:
        """The ``vo.pipeline.v1.Job`` wire form; ``with_spec=False`` leaves the spec out."""
        job = pipeline_service_pb2.Job(
            id=self.id,
            project_id=self.project_id,
            request_id=self.request_id,
            state=self.state.to_proto(),
            attempts=self.attempts,
            create_time=_timestamp(self.created_at),
            update_time=_timestamp(self.updated_at),
        )
        if with_spec and self.spec:
            job.spec.ParseFromString(self.spec)
        for name, step in self.steps.items():
            elapsed = duration_pb2.Duration()
            elapsed.FromNanoseconds(round(step.elapsed * 1e9))
            job.steps.append(
                pipeline_service_pb2.Step(name=name, state=step.state.to_proto(), elapsed=elapsed)
            )
        if self.progress:
            job.progress.ParseFromString(self.progress)
        if self.output:
            job.output.CopyFrom(
                common_pb2.Artifact(
                    sha256=str(self.output.get("sha256", "")),
                    size_bytes=int(self.output.get("size_bytes", 0)),
                    media_type=str(self.output.get("media_type", "")),
                    uri=str(self.output.get("uri", "")),
                )
            )
        if self.error:
            job.error.CopyFrom(
                pipeline_service_pb2.JobError(
                    step=str(self.error.get("step", "")),
                    code=str(self.error.get("code", "")),
                    message=str(self.error.get("message", "")),
                )
            )
        return job


def _timestamp(epoch: float) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(round(epoch * 1e9))
    return ts
