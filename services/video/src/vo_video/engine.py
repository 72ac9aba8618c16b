"""The one-pass renderer: demux → decode → crop/scale (a filter graph) → encode → mux.

Nothing holds more than a frame or two of video in memory. Output is constant frame rate: each
output frame takes the source frame nearest its source time (which drops or repeats frames for
variable-frame-rate input), and audio is resampled, re-timed by sample count and trimmed or
padded so it ends with the video.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import queue
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field, replace
from fractions import Fraction
from pathlib import Path
from typing import Any, Protocol, cast

import av
import numpy as np
from vo.video.v1 import video_service_pb2 as pb
from vo_core.media import probe
from vo_core.progress import ProgressEvent, ProgressMeter, seconds_to_duration
from vo_core.storage import ArtifactStore, atomic_output
from vo_core.threads import CancelToken, iterate_in_thread

from vo_video.audio import MixedFile, MixSpec, decode_audio, mix_stream, open_audio
from vo_video.captions import CaptionTrack
from vo_video.framing import AnalysisState, CropGeometry, CropPath, LivePath, analyse_from
from vo_video.hardware import EncoderChoice, choose_encoder
from vo_video.ramp import retime_blocks
from vo_video.spec import RenderJob, output_geometry

AUDIO_RATE = 48_000
ANALYSIS_SHARE = 0.15  # share of the overall fraction given to smart framing's analysis pass


@dataclass
class RenderOutcome:
    """What the engine produced; :meth:`finish` stores it and builds the wire result."""

    path: Path
    frames: int
    elapsed: float
    hardware_path: str
    notes: list[str] = field(default_factory=list)
    loudness_lufs: float | None = None
    true_peak_dbtp: float | None = None

    def finish(self, job: RenderJob, store: ArtifactStore) -> pb.RenderResult:
        """Store the output as an artifact, copy it to the requested path, probe it."""
        artifact = store.put_file(self.path, media_type="video/mp4", move=True)
        result = pb.RenderResult(
            artifact=artifact.to_proto(),
            frames=self.frames,
            hardware_path=self.hardware_path,
            notes=self.notes,
        )
        if self.loudness_lufs is not None and self.true_peak_dbtp is not None:
            result.loudness_lufs = self.loudness_lufs
            result.true_peak_dbtp = self.true_peak_dbtp
        result.elapsed.CopyFrom(seconds_to_duration(self.elapsed))
        if job.output is not None:
            with (
                atomic_output(job.output) as tmp,
                artifact.path.open("rb") as src,
                tmp.open("wb") as dst,
            ):
                while block := src.read(1 << 20):
                    dst.write(block)
            result.output_uri = str(job.output)
        result.info.CopyFrom(probe(artifact.path).to_proto())
        return result


def _frame_rate(job: RenderJob) -> Fraction:
    """The output frame rate as a fraction (29.97 becomes 30000/1001)."""
    assert job.info.video is not None
    rate = job.encoder.frame_rate or job.info.video.frame_rate or 30.0
    return Fraction(rate).limit_denominator(1001)


def _rotation_filters(rotation: int) -> list[tuple[str, str]]:
    # Decoders return pictures as stored; players (and the ffmpeg CLI) apply the display matrix.
    return {
        90: [("transpose", "clock")],
        180: [("hflip", ""), ("vflip", "")],
        270: [("transpose", "cclock")],
    }.get(rotation, [])


class FrameTransform:
    """Rotation, crop and scale of each decoded frame, in one FFmpeg filter graph.

    The graph is built from the first frame (its real size and pixel format). A moving crop
    window is updated per frame with the crop filter's ``x``/``y`` commands, so smart framing
    costs the same per frame as a centre crop.
    """

    def __init__(
        self,
        rotation: int,
        crop: CropPath | LivePath | None,
        out_size: tuple[int, int],
        letterbox: bool,
    ) -> None:
        self.rotation = rotation
        self.crop = crop
        self.out_w, self.out_h = out_size
        self.letterbox = letterbox
        self.graph: Any = None
        self.crop_filter: Any = None
        self._last_xy: tuple[int, int] | None = None

    def _build(self, frame: av.VideoFrame, time_base: Fraction) -> None:
        g = av.filter.Graph()
        nodes = [
            g.add_buffer(
                width=frame.width,
                height=frame.height,
                format=frame.format,
                time_base=time_base,
            )
        ]
        for name, args in _rotation_filters(self.rotation):
            nodes.append(g.add(name, args))
        if self.crop is not None:
            geo = self.crop.geometry
            x, y = self.crop.at(0.0)
            self.crop_filter = g.add(
                "crop", f"w={geo.crop_width}:h={geo.crop_height}:x={x}:y={y}:exact=1"
            )
            self._last_xy = (x, y)
            nodes.append(self.crop_filter)
        if self.letterbox:
            nodes.append(
                g.add("scale", f"{self.out_w}:{self.out_h}:force_original_aspect_ratio=decrease")
            )
            nodes.append(g.add("pad", f"{self.out_w}:{self.out_h}:(ow-iw)/2:(oh-ih)/2"))
        else:
            nodes.append(g.add("scale", f"{self.out_w}:{self.out_h}"))
        nodes.append(g.add("format", "yuv420p"))
        nodes.append(g.add("buffersink"))
        for a, b in itertools.pairwise(nodes):
            a.link_to(b)
        g.configure()
        self.graph = g

    def __call__(self, frame: av.VideoFrame, source_time: float) -> av.VideoFrame:
        """The transformed frame for a source frame shown at ``source_time``."""
        if self.graph is None:
            self._build(frame, frame.time_base or Fraction(1, 90000))
        if self.crop_filter is not None and not self.crop.is_static:  # type: ignore[union-attr]
            xy = self.crop.at(source_time)  # type: ignore[union-attr]
            if xy != self._last_xy:
                self.crop_filter.process_command("x", str(xy[0]))
                self.crop_filter.process_command("y", str(xy[1]))
                self._last_xy = xy
        self.graph.vpush(frame)
        return self.graph.vpull()


class AudioTrack:
    """Resamples input audio to 48 kHz stereo and keeps it aligned to the video's clock.

    Samples are placed by their timestamps (gaps become silence, overlaps are dropped) into a
    short buffer that is encoded only up to the video written so far, so the audio can be cut
    exactly where the video ends without knowing that end in advance.
    """

    def __init__(self, stream: Any, bitrate: int) -> None:
        self.stream = stream
        self.resampler = av.AudioResampler(format="fltp", layout="stereo", rate=AUDIO_RATE)
        self.written = 0  # samples encoded
        self.buffer: list[np.ndarray] = []
        self.buffered = 0  # samples waiting in buffer
        self.soundtrack: MixedFile | None = None
        stream.bit_rate = bitrate

    def _encode(self, samples: np.ndarray, container: Any) -> None:
        if samples.shape[1] == 0:
            return
        frame = av.AudioFrame.from_ndarray(
            np.ascontiguousarray(samples), format="fltp", layout="stereo"
        )
        frame.sample_rate = AUDIO_RATE
        frame.pts = self.written
        frame.time_base = Fraction(1, AUDIO_RATE)
        self.written += samples.shape[1]
        for packet in self.stream.encode(frame):
            container.mux(packet)

    def _append(self, data: np.ndarray, pos: int) -> None:
        head = self.written + self.buffered
        if pos > head:  # a gap in the input audio: fill it with silence
            self.buffer.append(np.zeros((2, pos - head), np.float32))
            self.buffered += pos - head
        elif pos < head:  # overlap, or audio before the first video frame: drop it
            data = data[:, head - pos :]
        if data.shape[1]:
            self.buffer.append(data)
            self.buffered += data.shape[1]

    def push(self, frame: av.AudioFrame | None, start: float) -> None:
        """Add a decoded frame whose first sample plays at ``start`` s of output time."""
        for out in self.resampler.resample(frame):
            data = out.to_ndarray()
            self._append(data, round(start * AUDIO_RATE))
            start += data.shape[1] / AUDIO_RATE

    def preload(self, soundtrack: MixedFile) -> None:
        """Encode a finished soundtrack (48 kHz stereo, read from its file as the video
        advances) instead of decoded input audio."""
        self.soundtrack = soundtrack

    def drain(self, until: float, container: Any) -> None:
        """Encode buffered audio up to ``until`` s of output time."""
        if self.soundtrack is not None:
            stop = min(self.soundtrack.length, round(until * AUDIO_RATE))
            for start in range(self.written, stop, AUDIO_RATE):
                self._encode(self.soundtrack.read(start, min(start + AUDIO_RATE, stop)), container)
            return
        n = min(self.buffered, round(until * AUDIO_RATE) - self.written)
        if n <= 0:
            return
        joined = np.concatenate(self.buffer, axis=1) if len(self.buffer) > 1 else self.buffer[0]
        self._encode(joined[:, :n], container)
        rest = joined[:, n:]
        self.buffer = [rest] if rest.shape[1] else []
        self.buffered = rest.shape[1]

    def close(self, end: float, container: Any) -> None:
        """Cut or pad to exactly ``end`` s, then flush the encoder exactly once."""
        self.drain(end, container)
        missing = round(end * AUDIO_RATE) - self.written
        if missing > 0:
            self._encode(np.zeros((2, missing), np.float32), container)
        for packet in self.stream.encode(None):
            container.mux(packet)


def output_size(job: RenderJob) -> tuple[tuple[int, int], CropGeometry | None, bool]:
    """(output size, crop geometry or None, letterbox?) for the job."""
    size, display, letterbox = output_geometry(job)
    if display is None or job.reframe is None:
        return size, None, letterbox
    return size, CropGeometry.for_aspect(*display, job.reframe.aspect), letterbox


def render(
    job: RenderJob, out_path: Path, token: CancelToken
) -> Iterator[ProgressEvent | RenderOutcome]:
    """Render ``job`` into ``out_path``: progress events, then one :class:`RenderOutcome`.

    On any failure (or cancellation) the partial output is removed before the error propagates.
    """
    try:
        yield from _render(job, out_path, token)
    except BaseException:
        out_path.unlink(missing_ok=True)
        raise


class Timeline(Protocol):
    """Maps output time to source time and back (a speed ramp; identity by default)."""

    def source_time(self, output_t: float) -> float:
        """The source time shown at output time ``output_t``."""
        ...

    def output_time(self, source_t: float) -> float:
        """The output time at which source time ``source_t`` is shown."""
        ...


class IdentityTimeline:
    """Speed 1 everywhere."""

    def source_time(self, output_t: float) -> float:
        """Same time."""
        return output_t

    def output_time(self, source_t: float) -> float:
        """Same time."""
        return source_t


Overlay = Callable[[av.VideoFrame, float], None]
"""Draws onto an output frame in place at an output time (captions)."""


@dataclass
class RenderPlan:
    """Everything the encode pass needs beyond the job itself."""

    fps: Fraction
    size: tuple[int, int]
    encoder: EncoderChoice
    transform: FrameTransform
    timeline: Timeline = field(default_factory=IdentityTimeline)
    overlay: Overlay | None = None
    soundtrack: MixedFile | None = None  # 48 kHz stereo replacing the input audio


def _plane(plane: Any) -> np.ndarray:
    """A writable (height, line_size) view of a frame plane's bytes."""
    return np.frombuffer(memoryview(plane), np.uint8).reshape(plane.height, plane.line_size)


def _copy_frame(frame: av.VideoFrame) -> av.VideoFrame:
    """A deep copy of a yuv420p frame (reformat to the same format returns the same frame).

    Rows are copied pixel by pixel: the padding at the end of each row (line_size) differs
    between frames made by a filter graph and frames made here.
    """
    copy = av.VideoFrame(frame.width, frame.height, "yuv420p")
    for src, dst in zip(frame.planes, copy.planes, strict=True):
        _plane(dst)[:, : dst.width] = _plane(src)[: dst.height, : dst.width]
    return copy


def _blend(a: av.VideoFrame, b: av.VideoFrame, weight_b: float) -> av.VideoFrame:
    """A new yuv420p frame mixing ``a`` and ``b`` (slow-motion frame blending), in integers."""
    if weight_b <= 0.0:
        return _copy_frame(a)
    if weight_b >= 1.0:
        return _copy_frame(b)
    w = round(weight_b * 256)
    out = av.VideoFrame(a.width, a.height, "yuv420p")
    for plane_a, plane_b, plane_out in zip(a.planes, b.planes, out.planes, strict=True):
        # Rows carry padding (line_size >= width) that differs between frames: mix the pixels.
        h, width = plane_out.height, plane_out.width
        xa, xb, xo = _plane(plane_a), _plane(plane_b), _plane(plane_out)
        mixed = xa[:h, :width].astype(np.uint16) * np.uint16(256 - w)
        mixed += xb[:h, :width].astype(np.uint16) * np.uint16(w)
        mixed += np.uint16(128)
        xo[:, :width] = (mixed >> 8).astype(np.uint8)
    return out


_Item = tuple[av.AudioFrame | av.VideoFrame, float, av.VideoFrame | None]


class EncodePass:
    """Decode every frame, place it on the constant-rate output clock, transform, encode.

    Output slot k (at output time k/fps) takes the source frame nearest to the slot's source
    time, so frames are dropped or repeated as the timeline and the input's timing require.
    The last decoded frame is held until the next arrives, because its share of slots depends
    on when the next one is shown.
    """

    def __init__(
        self,
        job: RenderJob,
        out_path: Path,
        plan: RenderPlan,
        token: CancelToken,
        meter: ProgressMeter,
    ) -> None:
        self.job = job
        self.out_path = out_path
        self.plan = plan
        self.token = token
        self.meter = meter
        self.period = 1 / float(plan.fps)
        self.time_base = Fraction(1) / plan.fps
        self.next_out = 0
        # Blend neighbouring frames in slow segments when the speed ramp asks for it.
        self.blend = bool(getattr(plan.timeline, "blend_frames", False))
        # Without a speed ramp every decoded frame is shown: transform it in the producer
        # thread, overlapping the filter graph with the encoder (~10% faster on 2 cores).
        self.pretransform = isinstance(plan.timeline, IdentityTimeline)
        self._next_picture: tuple[float, av.VideoFrame] | None = None

    def run(self) -> Iterator[ProgressEvent]:
        """Do the pass, yielding progress; ``self.next_out`` is the frame count afterwards."""
        job, plan = self.job, self.plan
        with (
            av.open(str(job.input), metadata_errors="ignore") as src,
            av.open(
                str(self.out_path), "w", format="mp4", options={"movflags": "+faststart"}
            ) as dst,
        ):
            vin = src.streams.video[0]
            vin.thread_type = "AUTO"  # frame threads, as the ffmpeg CLI uses: ~20% faster here
            ain = src.streams.audio[0] if src.streams.audio else None
            vout = cast(Any, dst.add_stream(plan.encoder.codec, rate=plan.fps))
            vout.width, vout.height = plan.size
            vout.pix_fmt = "yuv420p"
            vout.options = dict(plan.encoder.options)
            vout.thread_type = "AUTO"
            vout.codec_context.time_base = Fraction(1) / plan.fps
            audio: AudioTrack | None = None
            if ain is not None or plan.soundtrack is not None:
                audio = AudioTrack(
                    dst.add_stream("aac", rate=AUDIO_RATE, layout="stereo"),
                    job.encoder.audio_bitrate,
                )
                if plan.soundtrack is not None:
                    audio.preload(plan.soundtrack)
                    ain = None  # the soundtrack replaces the input's audio
            yield from self._frames(src, dst, vin, ain, vout, audio)
            for packet in vout.encode(None):  # flush the encoder exactly once, or frames are lost
                dst.mux(packet)
            if audio is not None:
                audio.close(self.next_out * self.period, dst)

    def _decoded(self, src: Any, streams: list[Any]) -> Generator[_Item, None, None]:
        """Decoded frames on the output clock's origin: (frame, time, transformed or None).

        Time 0 is the first video frame; audio decoded before it waits for it. When every
        frame will be shown once or more (no speed ramp), the picture is transformed here too,
        so a producer thread can run decode and the filter graph while the encoder works.
        """
        origin: float | None = None
        pending_audio: list[av.AudioFrame] = []
        for packet in src.demux(*streams):
            self.token.check()
            for frame in packet.decode():
                if frame.time is None:
                    continue
                if isinstance(frame, av.AudioFrame):
                    if origin is None:
                        pending_audio.append(frame)
                    else:
                        yield frame, frame.time - origin, None
                    continue
                if not isinstance(frame, av.VideoFrame):
                    continue
                if origin is None:
                    origin = frame.time
                    for early in pending_audio:
                        yield early, (early.time or 0.0) - origin, None
                    pending_audio.clear()
                t = frame.time - origin
                picture = self.plan.transform(frame, t) if self.pretransform else None
                yield frame, t, picture

    def _frames(
        self, src: Any, dst: Any, vin: Any, ain: Any, vout: Any, audio: AudioTrack | None
    ) -> Iterator[ProgressEvent]:
        video_info = self.job.info.video
        fallback_period = 1 / ((video_info.frame_rate if video_info else 0.0) or 30.0)
        streams = [s for s in (vin, ain) if s is not None]
        items: Generator[_Item, None, None] = self._decoded(src, streams)
        if self.pretransform:
            items = iterate_in_thread(items, self.token)
        # Close the items explicitly on the way out (an error, a cancel): the producer thread
        # must stop before the containers close under it, or FFmpeg reads freed memory.
        with contextlib.closing(items):
            yield from self._place(items, vout, dst, audio, fallback_period)

    def _place(
        self,
        items: Iterator[_Item],
        vout: Any,
        dst: Any,
        audio: AudioTrack | None,
        fallback_period: float,
    ) -> Iterator[ProgressEvent]:
        """Put each decoded frame into the output slots it owns; audio into its track."""
        held: tuple[av.VideoFrame, float, av.VideoFrame | None] | None = None
        video_end = 0.0
        for frame, t, picture in items:
            if isinstance(frame, av.AudioFrame):
                if audio is not None:
                    audio.push(frame, t)
                continue
            shown = (
                float(frame.duration * frame.time_base)
                if frame.duration and frame.time_base
                else fallback_period
            )
            video_end = max(video_end, t + shown)
            if held is not None and self.blend:
                yield from self._emit_blended(held[:2], (frame, t), vout, dst, audio)
            elif held is not None:
                # Slots nearer the held frame than this one belong to the held frame.
                yield from self._emit(
                    held[0], held[1], (held[1] + t) / 2, vout, dst, audio, picture=held[2]
                )
            held = (frame, t, picture)
        if held is None:
            raise ValueError(f"{self.job.input}: no video frame could be decoded")
        end_output = self.plan.timeline.output_time(video_end)
        yield from self._emit(
            held[0], held[1], None, vout, dst, audio, end_output=end_output, picture=held[2]
        )

    def _emit(
        self,
        frame: av.VideoFrame,
        src_time: float,
        until_source: float | None,
        vout: Any,
        dst: Any,
        audio: AudioTrack | None,
        end_output: float = 0.0,
        picture: av.VideoFrame | None = None,
    ) -> Iterator[ProgressEvent]:
        """Encode ``frame`` into every output slot it owns (before ``until_source`` or the end).

        ``picture`` is the frame already transformed (by the producer thread), if it was.
        """
        timeline = self.plan.timeline
        copies = 0
        while True:
            slot_time = (self.next_out + copies) * self.period
            if until_source is not None:
                if timeline.source_time(slot_time) >= until_source - 1e-9:
                    break
            elif slot_time >= end_output - 1e-9:
                break
            copies += 1
        if not copies:
            return
        if picture is None:
            picture = self._transformed(frame, src_time)
        overlay = self.plan.overlay
        # Overlays draw in place; a repeated frame needs a clean copy for each slot.
        pristine = _copy_frame(picture) if overlay is not None and copies > 1 else None
        for i in range(copies):
            out = picture if i == 0 or pristine is None else _copy_frame(pristine)
            if (event := self._encode(out, vout, dst)) is not None:
                yield event
        if audio is not None:
            audio.drain(self.next_out * self.period, dst)

    def _transformed(self, frame: av.VideoFrame, src_time: float) -> av.VideoFrame:
        """The transformed picture of ``frame`` (already made when it was blended as "next")."""
        cached, self._next_picture = self._next_picture, None
        if cached is not None and cached[0] == src_time:
            return cached[1]
        return self.plan.transform(frame, src_time)

    def _encode(self, picture: av.VideoFrame, vout: Any, dst: Any) -> ProgressEvent | None:
        """Draw overlays, stamp the slot's pts, encode and mux one output frame."""
        self.token.check()
        if self.plan.overlay is not None:
            self.plan.overlay(picture, self.next_out * self.period)
        picture.pts = self.next_out
        picture.time_base = self.time_base
        for packet in vout.encode(picture):
            dst.mux(packet)
        self.next_out += 1
        return self.meter.advance(1)

    def _emit_blended(
        self,
        held: tuple[av.VideoFrame, float],
        following: tuple[av.VideoFrame, float],
        vout: Any,
        dst: Any,
        audio: AudioTrack | None,
    ) -> Iterator[ProgressEvent]:
        """Slots whose source time lies between two frames mix them by where it falls."""
        (frame, src_time), (next_frame, next_time) = held, following
        timeline = self.plan.timeline
        slots = 0
        while timeline.source_time((self.next_out + slots) * self.period) < next_time - 1e-9:
            slots += 1
        if not slots:
            return
        a = self._transformed(frame, src_time)
        b = self.plan.transform(next_frame, next_time)
        self._next_picture = (next_time, b)
        weights = cast(Any, timeline).frame_weights
        for _ in range(slots):
            _, w_next = weights(self.next_out * self.period, src_time, next_time)
            if (event := self._encode(_blend(a, b, w_next), vout, dst)) is not None:
                yield event
        if audio is not None:
            audio.drain(self.next_out * self.period, dst)


def _render(
    job: RenderJob, out_path: Path, token: CancelToken
) -> Iterator[ProgressEvent | RenderOutcome]:
    # The soundtrack is mixed into files beside the output (not in memory: its size grows
    # with the video's length); they go when the render ends, however it ends.
    with tempfile.TemporaryDirectory(dir=out_path.parent, prefix=".vo-audio-") as spill:
        yield from _render_with(job, out_path, token, Path(spill))


def _render_with(
    job: RenderJob, out_path: Path, token: CancelToken, spill_dir: Path
) -> Iterator[ProgressEvent | RenderOutcome]:
    _, geometry, _ = output_size(job)
    if geometry is not None and job.reframe is not None and job.reframe.mode == "smart":
        analysis = BackgroundAnalysis(job, geometry, token)
        try:
            yield from analysis.merged(_render_pass(job, out_path, token, spill_dir, analysis.path))
        finally:
            analysis.close()
    else:
        crop = CropPath.centered(geometry) if geometry is not None else None
        yield from _render_pass(job, out_path, token, spill_dir, crop)


def _render_pass(
    job: RenderJob,
    out_path: Path,
    token: CancelToken,
    spill_dir: Path,
    crop: CropPath | LivePath | None,
) -> Iterator[ProgressEvent | RenderOutcome]:
    started = time.monotonic()
    video = job.info.video
    assert video is not None
    fps = _frame_rate(job)
    size, _, letterbox = output_size(job)
    span_start = 0.0
    soundtrack: MixedAudio | None = None
    if job.ramp is not None or job.audio is not None:
        for step in build_soundtrack(job, token, span_start, spill_dir):
            if isinstance(step, ProgressEvent):
                yield step
            else:
                soundtrack = step
        span_start += AUDIO_SHARE
    encoder = choose_encoder(job.encoder.hardware, job.encoder.preset, job.encoder.crf)
    captions = (
        CaptionTrack(list(job.captions.cues), job.captions.style, *size) if job.captions else None
    )
    plan = RenderPlan(
        fps=fps,
        size=size,
        encoder=encoder,
        transform=FrameTransform(video.rotation, crop, size, letterbox),
        timeline=job.ramp or IdentityTimeline(),
        overlay=captions.apply if captions else None,
        soundtrack=soundtrack.track if soundtrack else None,
    )
    expected = max(1, round(plan.timeline.output_time(job.info.duration) * float(fps)))
    meter = ProgressMeter("render", expected, fraction_span=(span_start, 1.0))
    yield meter.event("starting render")
    encode = EncodePass(job, out_path, plan, token, meter)
    yield from encode.run()
    yield meter.finish(f"encoded {encode.next_out} frames")
    yield RenderOutcome(
        path=out_path,
        frames=encode.next_out,
        elapsed=time.monotonic() - started,
        hardware_path=encoder.path,
        notes=list(encoder.notes),
        loudness_lufs=soundtrack.loudness_lufs if soundtrack and soundtrack.normalized else None,
        true_peak_dbtp=soundtrack.true_peak_dbtp if soundtrack and soundtrack.normalized else None,
    )


AUDIO_SHARE = 0.05  # share of the overall fraction given to building the soundtrack


def _lower_this_thread_priority() -> None:
    """Nice 19 for the calling thread only (Linux gives each thread its own nice value;
    elsewhere setpriority would reach the whole process, so nothing is done)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


class BackgroundAnalysis:
    """Smart framing's analysis pass, in a thread running ahead of the render that reads its
    path (a :class:`LivePath`).

    The analysis decodes only reference frames, so it runs about five times faster than the
    render. Its thread runs at the lowest CPU priority (nice 19, on Linux), so it mostly
    takes the CPU time the encoder leaves idle: on two cores that kept it ahead of the render
    and made smart mode about 7% faster than at equal priority. On a machine busy with other
    work it could starve, so when the render waits for it (0.5 s) or its lead falls under
    2 s, it is promoted: the low-priority thread is stopped and a normal one carries on from
    the last sample it gave, with the same path as a result.

    Its progress events are passed on between the render's, and every event's fraction
    counts both.
    """

    def __init__(self, job: RenderJob, geometry: CropGeometry, token: CancelToken) -> None:
        assert job.info.video is not None
        self.path = LivePath(geometry, on_falling_behind=self._promote)
        self._job = job
        self._job_token = token
        self._events: queue.SimpleQueue[ProgressEvent] = queue.SimpleQueue()
        self._frames = job.info.video.frames or 1
        self._analysed = 0.0  # the analysis's own fraction
        self._rest = 0.0  # the fraction the rest of the render reported last
        self._first_event = ProgressMeter("analyse", self._frames).event("finding the subject")
        # Guards the hand-over: which thread's samples count, and where the last one left off.
        self._lock = threading.Lock()
        self._generation = 0
        self._resume = AnalysisState()
        self._threads: list[tuple[threading.Thread, CancelToken]] = []
        self._closed = False
        self._start(low_priority=True)

    def _start(self, *, low_priority: bool) -> None:
        token = CancelToken(parent=self._job_token)  # stops with the job, or when replaced
        thread = threading.Thread(
            target=self._run,
            args=(self._generation, self._resume, token, low_priority),
            name="vo-analyse",
            daemon=True,
        )
        self._threads.append((thread, token))
        thread.start()

    def _run(
        self, generation: int, state: AnalysisState, token: CancelToken, low_priority: bool
    ) -> None:
        if low_priority:
            _lower_this_thread_priority()
        meter = ProgressMeter("analyse", self._frames)
        try:
            for item in analyse_from(self._job.input, self._job.info, token, meter, state):
                if isinstance(item, ProgressEvent):
                    if generation == self._generation:
                        self._events.put(item)
                    continue
                with self._lock:
                    if generation != self._generation:
                        return  # replaced: the promoted thread gives these samples now
                    self._resume = item[1]
                    self.path.add(item[0])
            with self._lock:
                if generation == self._generation:
                    self.path.finish()
        except BaseException as exc:  # the render meets it where it reads the path
            with self._lock:
                if generation == self._generation:
                    self.path.fail(exc)

    def _promote(self) -> None:
        """Replace the low-priority thread by a normal one that carries on where it is."""
        with self._lock:
            if self._closed:
                return
            self._generation += 1
            self._threads[-1][1].cancel()
            self._start(low_priority=False)

    def merged(
        self, items: Iterator[ProgressEvent | RenderOutcome]
    ) -> Iterator[ProgressEvent | RenderOutcome]:
        """The render's items, with analysis progress passed on between them.

        The render starts at once: it opens its files, builds the soundtrack and sets up
        the encoder while the analysis plans the first seconds of the path, and its first
        frame waits for them.
        """
        yield self._restamped(self._first_event)
        for item in items:
            yield from self._pending()
            if isinstance(item, ProgressEvent):
                self._rest = item.fraction
                item = self._restamped(item)
            yield item

    def close(self) -> None:
        """Stop the analysis (if it is still running) and wait for its threads."""
        with self._lock:
            self._closed = True
            threads = list(self._threads)
        for thread, token in threads:
            token.cancel()
            thread.join()

    def _pending(self) -> Iterator[ProgressEvent]:
        while True:
            try:
                yield self._restamped(self._events.get_nowait())
            except queue.Empty:
                return

    def _restamped(self, event: ProgressEvent) -> ProgressEvent:
        # Both passes run at once: the overall fraction is a weighted sum of the two, which
        # never goes backwards because neither part does.
        if event.stage == "analyse":  # max(): a replaced thread's last event may come late
            self._analysed = max(self._analysed, event.fraction)
        overall = ANALYSIS_SHARE * self._analysed + (1 - ANALYSIS_SHARE) * self._rest
        return replace(event, fraction=overall)


@dataclass(frozen=True)
class MixedAudio:
    """The finished soundtrack, at 48 kHz stereo, in output time."""

    track: MixedFile
    loudness_lufs: float
    true_peak_dbtp: float
    normalized: bool


def build_soundtrack(
    job: RenderJob, token: CancelToken, span_start: float, spill_dir: Path
) -> Iterator[ProgressEvent | MixedAudio]:
    """Decode, retime and mix the audio into ``spill_dir`` before the video pass.

    Everything streams (decode → retime → duck and sum → loudness → limiter), a block of
    1.4 s at a time, so memory stays flat in the video's length; the mix waits on disk
    (0.4 MB per second of output) and the video pass reads it back as it goes. Only the
    music, looped from memory, is held whole.
    """
    meter = ProgressMeter(
        "audio", 100, fraction_span=(span_start, span_start + AUDIO_SHARE), counts_frames=False
    )
    original = open_audio(job.input, "input audio", AUDIO_RATE) if job.info.audio else None
    if original is not None and job.ramp is not None:
        original = retime_blocks(original, AUDIO_RATE, job.ramp, job.info.duration)
    audio = job.audio
    voice_path = audio.voice if audio and audio.voice else None
    music = decode_audio(audio.music, "audio.music", AUDIO_RATE) if audio and audio.music else None
    length = round(job.output_duration * AUDIO_RATE)
    spec = audio.mix if audio else MixSpec(normalize=False)
    if original is None and voice_path is None and music is None:
        spec = MixSpec(normalize=False)  # silence: nothing to measure or normalise
    voice = (lambda: open_audio(voice_path, "audio.voice", AUDIO_RATE)) if voice_path else None
    for item in mix_stream(original, voice, music, length, AUDIO_RATE, spec, spill_dir):
        token.check()
        if isinstance(item, MixedFile):
            yield meter.finish("soundtrack mixed")
            yield MixedAudio(item, item.loudness_lufs, item.true_peak_dbtp, spec.normalize)
            return
        meter.done = round(item * 100)
        if event := meter.advance(0):
            yield event
