"""PipelineService servicer: durable jobs over the store, the worker pool and the progress bus."""

from __future__ import annotations

import asyncio
import logging
import shutil
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Sequence
from typing import cast

import grpc
from vo.common.v1 import common_pb2
from vo.pipeline.v1 import pipeline_service_pb2 as pb
from vo.pipeline.v1 import pipeline_service_pb2_grpc
from vo.video.v1 import video_service_pb2 as vpb
from vo_core import metrics
from vo_core.bus import InProcessProgressBus
from vo_core.errors import InvalidInput, NotFound, ResourceExhausted
from vo_core.jobs import JobRecord, JobState
from vo_core.store import JobStore, SqliteJobStore
from vo_video.config import Settings as VideoSettings
from vo_video.spec import render_job_from_proto

from vo_pipeline.config import Settings
from vo_pipeline.dag import default_target_duration, plan_steps
from vo_pipeline.pool import WorkerPool

log = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
SCRIPT_ENGINES = ("", "extractive", "openai")


class PipelineServicer(pipeline_service_pb2_grpc.PipelineServiceServicer):
    """Implements vo.pipeline.v1.PipelineService."""

    def __init__(self, settings: Settings, voice_names: Callable[[], Sequence[str]]) -> None:
        self.settings = settings
        self.voice_names = voice_names
        self.artifacts = settings.server.artifact_store()
        self.policy = settings.server.path_policy()
        self.bus = InProcessProgressBus()
        self.store: JobStore | None = None
        self.pool: WorkerPool | None = None

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self) -> None:
        """Open the store and start the workers (resuming unfinished jobs)."""
        # This server owns its data folder: scratch files left there were being written when a
        # previous server died, and nothing will finish them.
        for leftover in self.artifacts.tmp_dir.iterdir():
            if leftover.is_dir():  # a render's soundtrack spill folder
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink(missing_ok=True)
        self.store = await SqliteJobStore.open(self.settings.store_path)
        self.pool = WorkerPool(self.settings, self.store, self._on_event)
        await self.pool.start()
        await self._update_gauges()

    async def stop(self) -> None:
        """Stop the workers and close the store; running jobs resume at the next start."""
        if self.pool is not None:
            await self.pool.stop()
        if self.store is not None:
            await self.store.close()

    def _ready(self) -> tuple[JobStore, WorkerPool]:
        if self.store is None or self.pool is None:
            raise InvalidInput("the pipeline is starting; retry in a moment")
        return self.store, self.pool

    # -- events from the workers ---------------------------------------------------------

    async def _on_event(self, kind: str, job_id: str, payload: bytes) -> None:
        store, _ = self._ready()
        if kind == "progress":
            progress = common_pb2.Progress.FromString(payload)
            self.bus.publish(job_id, pb.WatchJobResponse(progress=progress).SerializeToString())
            return
        record = await store.get_job(job_id)
        if record is None:
            return
        ended = kind == "ended" and record.state.terminal
        if ended:
            # Count before telling watchers: a client that sees the end may scrape at once.
            await self._update_gauges()
        self.bus.publish(job_id, pb.WatchJobResponse(job=record.to_proto()).SerializeToString())
        if ended:
            self.bus.close_job(job_id)

    async def _update_gauges(self) -> None:
        store, _ = self._ready()
        counts = await store.counts_by_state()
        metrics.set_job_counts({state.value.lower(): n for state, n in counts.items()})
        metrics.set_queue_depth("pipeline", counts.get(JobState.QUEUED, 0))

    # -- validation ----------------------------------------------------------------------

    def _validate(self, spec: pb.JobSpec) -> pb.JobSpec:
        """Reject a bad spec before any work; return it with defaults filled in."""
        spec = pb.JobSpec.FromString(spec.SerializeToString())
        if not spec.HasField("input"):
            raise InvalidInput("spec.input is missing; upload the video or give its path")
        if spec.topic and spec.script_text:
            raise InvalidInput("spec.topic and spec.script_text conflict; give one of them")
        if spec.script_engine not in SCRIPT_ENGINES:
            raise InvalidInput(
                f"spec.script_engine {spec.script_engine!r} is unknown; use extractive or openai"
            )
        if spec.voice and not (spec.topic or spec.script_text or spec.source_text):
            raise InvalidInput(
                "spec.voice is set but there is nothing to say; add a topic or script"
            )
        if spec.voice:
            names = list(self.voice_names())
            if spec.voice not in names:
                shown = ", ".join(sorted(names)[:20])
                raise InvalidInput(
                    f"spec.voice {spec.voice!r} is unknown; valid voices include {shown}"
                )
        # The video service's own checks, on everything the pipeline does not fill in itself.
        render = vpb.RenderSpec()
        render.CopyFrom(spec.render)
        render.ClearField("captions")
        if render.HasField("audio"):
            render.audio.ClearField("voice")
        video_settings = VideoSettings(server=self.settings.server)
        job = render_job_from_proto(
            spec.input, "", render, video_settings, self.policy, self.artifacts
        )
        default_target_duration(spec, job.output_duration)
        return spec

    # -- RPCs ----------------------------------------------------------------------------

    async def UploadInput(
        self,
        request_iterator: AsyncIterator[pb.UploadInputRequest],
        context: grpc.aio.ServicerContext,
    ) -> pb.UploadInputResponse:
        artifact = await self.artifacts.receive_upload(request_iterator)
        return pb.UploadInputResponse(artifact=artifact.to_proto())

    async def DownloadArtifact(
        self, request: pb.DownloadArtifactRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.DownloadArtifactResponse]:
        for chunk in self.artifacts.iter_download(request.sha256):
            yield pb.DownloadArtifactResponse(chunk=chunk)

    async def _create(
        self, spec: pb.JobSpec, project_id: str, request_id: str, context: grpc.aio.ServicerContext
    ) -> JobRecord:
        store, pool = self._ready()
        project = project_id or "default"
        spec = await asyncio.to_thread(self._validate, spec)
        if await store.queue_depth() >= self.settings.max_queue_size:
            await context.send_initial_metadata(())
            context.set_trailing_metadata((("retry-after", str(RETRY_AFTER_SECONDS)),))
            raise ResourceExhausted(
                f"the job queue is full ({self.settings.max_queue_size} jobs waiting); "
                f"retry in {RETRY_AFTER_SECONDS} s"
            )
        record, created = await store.create_job(
            project, request_id, spec.SerializeToString(), plan_steps(spec)
        )
        if created:
            pool.notify()  # the gauges follow within a monitor tick; counting here costs a scan
        return record

    async def CreateJob(
        self, request: pb.CreateJobRequest, context: grpc.aio.ServicerContext
    ) -> pb.CreateJobResponse:
        record = await self._create(request.spec, request.project_id, request.request_id, context)
        return pb.CreateJobResponse(job=record.to_proto())

    async def _get(self, job_id: str) -> JobRecord:
        store, _ = self._ready()
        if not job_id:
            raise InvalidInput("id is empty; give a job id")
        record = await store.get_job(job_id)
        if record is None:
            raise NotFound(f"no job with id {job_id!r}")
        return record

    async def GetJob(
        self, request: pb.GetJobRequest, context: grpc.aio.ServicerContext
    ) -> pb.GetJobResponse:
        return pb.GetJobResponse(job=(await self._get(request.id)).to_proto())

    async def ListJobs(
        self, request: pb.ListJobsRequest, context: grpc.aio.ServicerContext
    ) -> pb.ListJobsResponse:
        store, _ = self._ready()
        if request.page_size < 0:
            raise InvalidInput(f"page_size {request.page_size} is negative")
        jobs, token = await store.list_jobs(
            request.project_id or None,
            JobState.from_proto(request.state),
            request.page_size,
            request.page_token,
        )
        return pb.ListJobsResponse(
            jobs=[j.to_proto(with_spec=False) for j in jobs], next_page_token=token
        )

    async def CancelJob(
        self, request: pb.CancelJobRequest, context: grpc.aio.ServicerContext
    ) -> pb.CancelJobResponse:
        store, pool = self._ready()
        await self._get(request.id)
        record = await store.cancel(request.id)
        pool.cancel(request.id)
        await self._update_gauges()
        self.bus.publish(request.id, pb.WatchJobResponse(job=record.to_proto()).SerializeToString())
        if record.state.terminal:
            self.bus.close_job(request.id)
        return pb.CancelJobResponse(job=record.to_proto())

    async def _watch(self, job_id: str) -> AsyncIterator[pb.WatchJobResponse]:
        # Subscribe before reading the snapshot, so nothing between the two is missed.
        events = self.bus.subscribe(job_id)
        try:
            record = await self._get(job_id)
            yield pb.WatchJobResponse(job=record.to_proto())
            if record.state.terminal:
                return
            async for data in events:
                message = pb.WatchJobResponse.FromString(data)
                yield message
                if message.HasField("job") and JobState.from_proto(message.job.state) in (
                    JobState.SUCCEEDED,
                    JobState.FAILED,
                    JobState.CANCELLED,
                ):
                    return
        finally:
            await cast(AsyncGenerator[bytes, None], events).aclose()

    async def WatchJob(
        self, request: pb.WatchJobRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.WatchJobResponse]:
        async for message in self._watch(request.id):
            yield message

    async def Render(
        self, request: pb.RenderRequest, context: grpc.aio.ServicerContext
    ) -> AsyncIterator[pb.RenderResponse]:
        record = await self._create(request.spec, request.project_id, request.request_id, context)
        async for message in self._watch(record.id):
            if message.HasField("job"):
                yield pb.RenderResponse(job=message.job)
            else:
                yield pb.RenderResponse(progress=message.progress)
