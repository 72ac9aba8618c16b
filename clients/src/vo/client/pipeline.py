"""Typed clients for vo.pipeline.v1.PipelineService: durable render jobs.

``watch`` and ``render`` yield :class:`~vo.events.ProgressEvent` for progress and the
``Job`` snapshot whenever a step changes; the last item is the job in its final state.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

from vo.client.base import AsyncServiceClient, ServiceClient, stream_event
from vo.client.channel import upload_chunks, write_download
from vo.common.v1 import common_pb2
from vo.events import ProgressEvent
from vo.pipeline.v1 import pipeline_service_pb2 as pb
from vo.pipeline.v1 import pipeline_service_pb2_grpc

JobEvent = ProgressEvent | pb.Job

TERMINAL_STATES = frozenset({pb.Job.STATE_SUCCEEDED, pb.Job.STATE_FAILED, pb.Job.STATE_CANCELLED})


def state_name(state: int) -> str:
    """``STATE_SUCCEEDED`` as ``succeeded``."""
    return pb.Job.State.Name(state).removeprefix("STATE_").lower()  # type: ignore[arg-type]


class PipelineClient(ServiceClient[pipeline_service_pb2_grpc.PipelineServiceStub]):
    """Blocking client for the PipelineService."""

    stub_type = pipeline_service_pb2_grpc.PipelineServiceStub

    def upload(self, path: Path) -> common_pb2.Artifact:
        """Upload an input; use ``MediaSource(upload_sha256=artifact.sha256)`` in the spec."""
        requests = (pb.UploadInputRequest(chunk=c) for c in upload_chunks(path))
        return self._unary(self._stub.UploadInput, requests).artifact

    def download(self, sha256: str, dest: Path) -> common_pb2.Artifact:
        """Download a job's output to ``dest`` atomically."""
        request = pb.DownloadArtifactRequest(sha256=sha256)
        return write_download(
            (r.chunk for r in self._stream(self._stub.DownloadArtifact, request)), dest
        )

    def create(self, spec: pb.JobSpec, *, project_id: str = "", request_id: str = "") -> pb.Job:
        """Queue a job; a repeated ``request_id`` returns the original job."""
        request = pb.CreateJobRequest(spec=spec, project_id=project_id, request_id=request_id)
        return self._unary(self._stub.CreateJob, request).job

    def get(self, job_id: str) -> pb.Job:
        """A job's current state."""
        return self._unary(self._stub.GetJob, pb.GetJobRequest(id=job_id)).job

    def list(
        self, *, project_id: str = "", state: int = 0, page_size: int = 0, page_token: str = ""
    ) -> pb.ListJobsResponse:
        """One page of jobs, newest first."""
        request = pb.ListJobsRequest(
            project_id=project_id,
            state=state,  # type: ignore[arg-type]
            page_size=page_size,
            page_token=page_token,
        )
        return self._unary(self._stub.ListJobs, request)

    def cancel(self, job_id: str) -> pb.Job:
        """Stop a queued or running job."""
        return self._unary(self._stub.CancelJob, pb.CancelJobRequest(id=job_id)).job

    def watch(self, job_id: str) -> Iterator[JobEvent]:
        """The job's current state, then every event until it ends."""
        return (
            stream_event(m)
            for m in self._stream(self._stub.WatchJob, pb.WatchJobRequest(id=job_id))
        )

    def render(
        self, spec: pb.JobSpec, *, project_id: str = "", request_id: str = ""
    ) -> Iterator[JobEvent]:
        """Create a job and watch it in one call."""
        request = pb.RenderRequest(spec=spec, project_id=project_id, request_id=request_id)
        return (stream_event(m) for m in self._stream(self._stub.Render, request))


class AsyncPipelineClient(AsyncServiceClient["pipeline_service_pb2_grpc.PipelineServiceAsyncStub"]):
    """Asyncio client for the PipelineService."""

    stub_type = pipeline_service_pb2_grpc.PipelineServiceStub

    async def create(
        self, spec: pb.JobSpec, *, project_id: str = "", request_id: str = ""
    ) -> pb.Job:
        """Queue a job; a repeated ``request_id`` returns the original job."""
        request = pb.CreateJobRequest(spec=spec, project_id=project_id, request_id=request_id)
        response: pb.CreateJobResponse = await self._unary(self._stub.CreateJob, request)
        return response.job

    async def get(self, job_id: str) -> pb.Job:
        """A job's current state."""
        response: pb.GetJobResponse = await self._unary(
            self._stub.GetJob, pb.GetJobRequest(id=job_id)
        )
        return response.job

    async def cancel(self, job_id: str) -> pb.Job:
        """Stop a queued or running job."""
        response: pb.CancelJobResponse = await self._unary(
            self._stub.CancelJob, pb.CancelJobRequest(id=job_id)
        )
        return response.job

    async def watch(self, job_id: str) -> AsyncIterator[JobEvent]:
        """The job's current state, then every event until it ends."""
        async for msg in self._stream(self._stub.WatchJob, pb.WatchJobRequest(id=job_id)):
            yield stream_event(msg)

    async def render(
        self, spec: pb.JobSpec, *, project_id: str = "", request_id: str = ""
    ) -> AsyncIterator[JobEvent]:
        """Create a job and watch it in one call."""
        request = pb.RenderRequest(spec=spec, project_id=project_id, request_id=request_id)
        async for msg in self._stream(self._stub.Render, request):
            yield stream_event(msg)
