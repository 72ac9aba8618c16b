"""Shared pieces of the pipeline tests: a source article, job specs, and a watcher."""

from __future__ import annotations

from pathlib import Path

import grpc
from vo.client.channel import write_download_async
from vo.common.v1 import common_pb2
from vo.pipeline.v1 import pipeline_service_pb2 as pb
from vo.pipeline.v1 import pipeline_service_pb2_grpc
from vo.video.v1 import video_service_pb2 as vpb

ARTICLE = (
    "Honeybees are thriving on city rooftops. Beekeepers in several European cities report "
    "that urban hives produce more honey than rural ones. The reason is diversity: parks, "
    "gardens and balconies flower from early spring to late autumn, while farmland often "
    "offers a single crop. Pesticide use is also lower in cities. Still, too many hives can "
    "crowd out wild bees, which pollinate many plants that honeybees ignore. Planners now "
    "count flowers as well as hives. A city that plants native species helps both kinds of "
    "bee, and the residents get greener streets in return."
)


def job_spec(video: Path, *, topic: str = "urban bees", **render: object) -> pb.JobSpec:
    """A job on ``video``: script from the article, voice-over, karaoke captions, small output."""
    spec = pb.JobSpec(
        input=common_pb2.MediaSource(uri=str(video)),
        topic=topic,
        source_text=ARTICLE,
        render=vpb.RenderSpec(
            reframe=vpb.ReframeSpec(mode=vpb.ReframeSpec.MODE_CENTER, width=360, height=640),
            captions=vpb.CaptionSpec(style=vpb.CaptionSpec.STYLE_KARAOKE),
            encoder=vpb.EncoderSpec(preset="ultrafast"),
        ),
    )
    for name, value in render.items():
        getattr(spec.render, name).CopyFrom(value)
    return spec


def stub(channel: grpc.aio.Channel) -> pipeline_service_pb2_grpc.PipelineServiceStub:
    return pipeline_service_pb2_grpc.PipelineServiceStub(channel)


TERMINAL = (pb.Job.STATE_SUCCEEDED, pb.Job.STATE_FAILED, pb.Job.STATE_CANCELLED)


async def watch(channel: grpc.aio.Channel, job_id: str) -> list[pb.WatchJobResponse]:
    """Every event of a WatchJob stream until it ends."""
    return [m async for m in stub(channel).WatchJob(pb.WatchJobRequest(id=job_id))]


async def download(channel: grpc.aio.Channel, sha256: str, out: Path) -> Path:
    """Fetch an artifact through PipelineService.DownloadArtifact into ``out``."""

    async def chunks():  # type: ignore[no-untyped-def]
        async for m in stub(channel).DownloadArtifact(pb.DownloadArtifactRequest(sha256=sha256)):
            yield m.chunk

    await write_download_async(chunks(), out)
    return out
