"""A job's DAG: script → TTS → cues (or transcribe) → one-pass render, through the services.

Every step calls its service over gRPC with the typed asyncio clients (the channel is
in-process in embedded mode, the network when services are remote), checkpoints what it
produced, and is skipped on a retry when its checkpoint is there. Progress of every step is
folded into one overall fraction that never goes backwards.
"""

from __future__ import annotations

import base64
import dataclasses
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from vo.client.script import AsyncScriptClient
from vo.client.subtitle import AsyncSubtitleClient
from vo.client.tts import AsyncTtsClient
from vo.client.video import AsyncVideoClient
from vo.common.v1 import common_pb2
from vo.events import ProgressEvent, duration_to_seconds, seconds_to_duration
from vo.pipeline.v1 import pipeline_service_pb2 as ppb
from vo.script.v1 import script_service_pb2 as spb
from vo.subtitle.v1 import subtitle_service_pb2 as subpb
from vo.tts.v1 import tts_service_pb2 as tpb
from vo.video.v1 import video_service_pb2 as vpb
from vo_core.cache import Cache, cache_key
from vo_core.errors import InvalidInput, Unavailable
from vo_core.jobs import JobRecord, StepState
from vo_core.telemetry import traced
from vo_video.ramp import SpeedCurve

T = TypeVar("T")

ENGINE_VERSION = "pipeline-1"
DEFAULT_RATE = 165  # words per minute, the TTS default the scripts are fitted to
MAX_RATE = 260  # faster than this, synthetic speech stops being easy to follow
VOICE_MARGIN_SECONDS = 0.3  # the voice-over ends at least this long before the video

# Share of the overall fraction each step gets when it runs (normalised over the job's steps).
STEP_WEIGHTS = {"script": 0.04, "tts": 0.08, "cues": 0.02, "transcribe": 0.2, "render": 0.66}


# Burned-in captions on a vertical short: the font is 1/16 of the width, so about 22
# characters fit a line of the safe area; short lines also read faster on a phone.
CAPTION_RULES = subpb.SegmentationRules(max_chars_per_line=22, max_lines=2)


def plan_steps(spec: ppb.JobSpec) -> list[str]:
    """The steps a job runs, in order."""
    if spec.topic or spec.script_text or spec.source_text:
        steps = [] if spec.script_text else ["script"]
        return [*steps, "tts", "cues", "render"]
    if spec.render.HasField("captions"):
        return ["transcribe", "render"]  # caption the video's own speech
    return ["render"]


@dataclass
class Clients:
    """The typed clients a job uses, one per service."""

    video: AsyncVideoClient
    tts: AsyncTtsClient
    subtitle: AsyncSubtitleClient
    script: AsyncScriptClient


StepReporter = Callable[[str, StepState, float, dict[str, Any]], Awaitable[None]]
ProgressReporter = Callable[[ProgressEvent], None]


class OverallProgress:
    """Folds step-local progress into one job-wide fraction that never decreases."""

    def __init__(self, steps: list[str]) -> None:
        total = sum(STEP_WEIGHTS[s] for s in steps)
        self.spans: dict[str, tuple[float, float]] = {}
        at = 0.0
        for step in steps:
            width = STEP_WEIGHTS[step] / total
            self.spans[step] = (at, at + width)
            at += width
        self.best = 0.0

    def fold(self, step: str, event: ProgressEvent) -> ProgressEvent:
        """The event with its fraction mapped into the job's span for ``step``."""
        lo, hi = self.spans[step]
        self.best = max(self.best, min(1.0, lo + (hi - lo) * event.fraction))
        stage = event.stage if event.stage == step else f"{step}:{event.stage}"
        return dataclasses.replace(event, stage=stage, fraction=self.best)

    def step_done(self, step: str) -> ProgressEvent:
        """An event at the end of ``step``'s span."""
        self.best = max(self.best, self.spans[step][1])
        return ProgressEvent(
            stage=step, fraction=self.best, steps_done=1, steps_total=1, message=f"{step} done"
        )


async def _drain(events: AsyncIterator[object], kind: type[T], report: ProgressReporter) -> T:
    """Report a call's progress events; return its one result of ``kind``."""
    result: T | None = None
    async for event in events:
        if isinstance(event, ProgressEvent):
            report(event)
        elif isinstance(event, kind):
            result = event
    if result is None:
        raise Unavailable(f"the service ended the call without a {kind.__name__}")
    return result


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.b64decode(text.encode("ascii"))


class JobRunner:
    """Runs one job's remaining steps; the caller owns the lease and the store."""

    def __init__(
        self,
        clients: Clients,
        cache: Cache | None,
        on_step: StepReporter,
        on_progress: ProgressReporter,
    ) -> None:
        self.clients = clients
        self.cache = cache
        self.on_step = on_step
        self.on_progress = on_progress

    async def run(self, job: JobRecord) -> dict[str, Any]:
        """Run every step not yet done; return the output artifact as a dict."""
        spec = ppb.JobSpec.FromString(job.spec)
        steps = list(job.steps) or plan_steps(spec)
        progress = OverallProgress(steps)
        results: dict[str, dict[str, Any]] = {
            name: record.checkpoint for name, record in job.steps.items() if record.state.done
        }
        for step in steps:
            if step in results:
                self.on_progress(progress.step_done(step))
                continue
            started = time.monotonic()
            await self.on_step(step, StepState.RUNNING, 0.0, {})
            runner = getattr(self, f"_{step}")
            with traced(f"step {step}"):
                checkpoint, state = await runner(
                    spec, results, lambda e, s=step: self.on_progress(progress.fold(s, e))
                )
            results[step] = checkpoint
            await self.on_step(step, state, time.monotonic() - started, checkpoint)
            self.on_progress(progress.step_done(step))
        output = results["render"]["artifact"]
        return dict(output)

    # -- steps: each returns (checkpoint, state) ------------------------------------------

    async def _script(
        self, spec: ppb.JobSpec, done: dict[str, dict[str, Any]], report: ProgressReporter
    ) -> tuple[dict[str, Any], StepState]:
        request = spb.WriteScriptRequest(
            topic=spec.topic,
            source_text=spec.source_text,
            engine=spec.script_engine,
        )
        if spec.HasField("target_duration"):
            request.target_duration.CopyFrom(spec.target_duration)
        # Streamed tokens (LLM engines) are not shown in a job's progress.
        script = await _drain(self.clients.script.write_request(request), spb.Script, report)
        if not script.text:
            raise InvalidInput("the script writer returned no text")
        return {"text": script.text, "title": script.title}, StepState.SUCCEEDED

    async def _tts(
        self, spec: ppb.JobSpec, done: dict[str, dict[str, Any]], report: ProgressReporter
    ) -> tuple[dict[str, Any], StepState]:
        text = spec.script_text or done["script"]["text"]
        room = await self._video_seconds(spec) - VOICE_MARGIN_SECONDS
        result = await self._speak(tpb.SynthesizeRequest(text=text, voice=spec.voice), report)
        spoken = duration_to_seconds(result.duration)
        if spoken > room:
            # A script fitted by word count can still run long (pauses, numbers): speak faster
            # rather than fail, up to a rate that stays intelligible.
            rate = math.ceil(DEFAULT_RATE * spoken / room)
            if rate > MAX_RATE:
                raise InvalidInput(
                    f"the voice-over lasts {spoken:.1f} s but the video only {room:.1f} s; "
                    "shorten the script or use a longer video"
                )
            request = tpb.SynthesizeRequest(text=text, voice=spec.voice, rate=rate)
            result = await self._speak(request, report)
        words = tpb.SynthesizeResult(words=result.words)
        checkpoint = {"audio": result.audio.sha256, "words": _b64(words.SerializeToString())}
        return checkpoint, StepState.CACHED if result.cached else StepState.SUCCEEDED

    async def _speak(
        self, request: tpb.SynthesizeRequest, report: ProgressReporter
    ) -> tpb.SynthesizeResult:
        return await _drain(
            self.clients.tts.synthesize_request(request), tpb.SynthesizeResult, report
        )

    async def _video_seconds(self, spec: ppb.JobSpec) -> float:
        """How long the rendered video lasts (after the speed ramp)."""
        info = await self.clients.video.probe(spec.input)
        seconds = duration_to_seconds(info.duration)
        if spec.render.HasField("ramp"):
            seconds = SpeedCurve.from_proto(spec.render.ramp).output_duration(seconds)
        return seconds

    async def _cues(
        self, spec: ppb.JobSpec, done: dict[str, dict[str, Any]], report: ProgressReporter
    ) -> tuple[dict[str, Any], StepState]:
        words = tpb.SynthesizeResult.FromString(_unb64(done["tts"]["words"])).words
        cues = await self.clients.subtitle.build_cues(list(words), CAPTION_RULES)
        message = subpb.BuildCuesResponse(cues=cues)
        return {"cues": _b64(message.SerializeToString())}, StepState.SUCCEEDED

    async def _transcribe(
        self, spec: ppb.JobSpec, done: dict[str, dict[str, Any]], report: ProgressReporter
    ) -> tuple[dict[str, Any], StepState]:
        request = subpb.TranscribeRequest(input=spec.input, rules=CAPTION_RULES)
        result = await _drain(
            self.clients.subtitle.transcribe_request(request), subpb.TranscribeResult, report
        )
        message = subpb.BuildCuesResponse(cues=result.cues)
        return {"cues": _b64(message.SerializeToString())}, StepState.SUCCEEDED

    def render_request(
        self, spec: ppb.JobSpec, done: dict[str, dict[str, Any]]
    ) -> vpb.RenderRequest:
        """The Render call: the job's render spec with the cues and voice-over filled in."""
        render = vpb.RenderSpec()
        render.CopyFrom(spec.render)
        cues_step = done.get("cues") or done.get("transcribe")
        if cues_step and render.HasField("captions"):
            cues = subpb.BuildCuesResponse.FromString(_unb64(cues_step["cues"])).cues
            del render.captions.cues[:]
            render.captions.cues.extend(cues)
        if "tts" in done:
            render.audio.voice.CopyFrom(common_pb2.MediaSource(upload_sha256=done["tts"]["audio"]))
            render.audio.normalize = True
        return vpb.RenderRequest(input=spec.input, spec=render)

    async def _render(
        self, spec: ppb.JobSpec, done: dict[str, dict[str, Any]], report: ProgressReporter
    ) -> tuple[dict[str, Any], StepState]:
        request = self.render_request(spec, done)
        key = cache_key(
            "render",
            ENGINE_VERSION,
            request.SerializeToString(deterministic=True),
            self._input_identity(spec),
        )
        if self.cache is not None and (hit := self.cache.get(key)) is not None:
            artifact = common_pb2.Artifact.FromString(hit)
            if await self._artifact_exists(artifact.sha256):
                return {"artifact": _artifact_dict(artifact)}, StepState.CACHED
        result = await _drain(self.clients.video.render(request), vpb.RenderResult, report)
        if self.cache is not None:
            self.cache.put(key, result.artifact.SerializeToString())
        return {"artifact": _artifact_dict(result.artifact)}, StepState.SUCCEEDED

    @staticmethod
    def _input_identity(spec: ppb.JobSpec) -> str:
        """What names the input's content: its sha256 (uploads) or path, size and mtime."""
        source = spec.input
        if source.WhichOneof("kind") == "upload_sha256":
            return source.upload_sha256
        path = Path(source.uri.removeprefix("file://"))
        stat = path.stat()
        return f"{path}:{stat.st_size}:{stat.st_mtime_ns}"

    async def _artifact_exists(self, sha256: str) -> bool:
        try:
            await self.clients.video.probe(common_pb2.MediaSource(upload_sha256=sha256))
        except Exception:
            return False
        return True


def _artifact_dict(artifact: common_pb2.Artifact) -> dict[str, Any]:
    return {
        "sha256": artifact.sha256,
        "size_bytes": artifact.size_bytes,
        "media_type": artifact.media_type,
        "uri": artifact.uri,
    }


MIN_SCRIPT_SECONDS = 5.0  # the script writer's shortest target


MIN_SCRIPT_SECONDS = 5.0  # the script writer's shortest target
TARGET_SHARE = 0.7  # of the video's length, for the voice-over of a short video


def default_target_duration(spec: ppb.JobSpec, video_seconds: float) -> None:
    """Aim the voice-over at 30 s, or well under the (retimed) video when that is shorter.

    The script is fitted to within about 15% of its target and the voice must not outlast the
    video, so a short video gets a target of 70% of its length; one too short for even the
    shortest script is refused here, before any work.
    """
    if (spec.topic or spec.source_text) and not spec.script_text:
        shortest = MIN_SCRIPT_SECONDS / TARGET_SHARE
        if video_seconds < shortest:
            raise InvalidInput(
                f"the video lasts {video_seconds:.1f} s (after the ramp); a written voice-over "
                f"needs at least {shortest:.1f} s of video; use a longer clip or no topic"
            )
    if not spec.HasField("target_duration"):
        target = max(MIN_SCRIPT_SECONDS, min(30.0, video_seconds * TARGET_SHARE))
        spec.target_duration.CopyFrom(seconds_to_duration(target))
