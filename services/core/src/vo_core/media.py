"""Media probing with PyAV (install ``vo-core[media]``).

:func:`probe` opens a file, reads its streams and decodes the first video frame, so a file
that merely looks like media (a text file named .mp4, a truncated download) is rejected here,
up front, with a message that says what is wrong, before any long work starts.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vo.common.v1 import common_pb2

from vo_core.errors import InvalidInput
from vo_core.progress import seconds_to_duration


@dataclass(frozen=True, slots=True)
class VideoInfo:
    """The first video stream."""

    codec: str
    width: int
    height: int
    rotation: int  # display rotation, degrees clockwise, one of 0, 90, 180, 270
    frame_rate: float
    frames: int
    pixel_format: str
    variable_frame_rate: bool

    @property
    def display_size(self) -> tuple[int, int]:
        """(width, height) as shown, after rotation."""
        if self.rotation in (90, 270):
            return self.height, self.width
        return self.width, self.height


@dataclass(frozen=True, slots=True)
class AudioInfo:
    """The first audio stream."""

    codec: str
    sample_rate: int
    channels: int
    bit_rate: int


@dataclass(frozen=True, slots=True)
class MediaInfo:
    """What :func:`probe` found."""

    path: Path
    format: str
    duration: float
    size_bytes: int
    video: VideoInfo | None
    audio: AudioInfo | None

    def to_proto(self) -> common_pb2.MediaInfo:
        """The wire form."""
        msg = common_pb2.MediaInfo(format=self.format, size_bytes=self.size_bytes)
        msg.duration.CopyFrom(seconds_to_duration(self.duration))
        if self.video:
            v = self.video
            dw, dh = v.display_size
            msg.video.CopyFrom(
                common_pb2.VideoStreamInfo(
                    codec=v.codec,
                    width=v.width,
                    height=v.height,
                    display_width=dw,
                    display_height=dh,
                    rotation=v.rotation,
                    frame_rate=v.frame_rate,
                    frames=v.frames,
                    pixel_format=v.pixel_format,
                    variable_frame_rate=v.variable_frame_rate,
                )
            )
        if self.audio:
            a = self.audio
            msg.audio.CopyFrom(
                common_pb2.AudioStreamInfo(
                    codec=a.codec,
                    sample_rate=a.sample_rate,
                    channels=a.channels,
                    bit_rate=a.bit_rate,
                )
            )
        return msg


def clockwise_rotation(frame_rotation: int) -> int:
    """Display rotation in clockwise degrees from PyAV's counter-clockwise ``frame.rotation``."""
    return (-round(frame_rotation / 90) * 90) % 360


def _open(path: Path) -> Any:
    import av

    if not path.exists():
        raise InvalidInput(f"input file {path} does not exist")
    if path.stat().st_size == 0:
        raise InvalidInput(f"input file {path} is empty (0 bytes); give a video file")
    try:
        return av.open(str(path), metadata_errors="ignore")
    except av.error.InvalidDataError:
        raise InvalidInput(
            f"{path} is not a media file FFmpeg can read (invalid data); check the file"
        ) from None
    except av.error.FFmpegError as exc:
        raise InvalidInput(f"{path} could not be opened as media: {exc.strerror or exc}") from None


_PROBE_CACHE_SIZE = 256
_probe_cache: dict[tuple[str, int, int, bool], MediaInfo] = {}
_probe_lock = threading.Lock()


def probe(path: Path, *, need_video: bool = False) -> MediaInfo:
    """:func:`probe_file`, remembered per file version (path, size, mtime).

    Probing decodes the first frames (tens of ms); a server validating many jobs on the same
    input (``CreateJob`` in a loop) would spend its CPU on that alone. A changed file has a
    new size or mtime and is probed again; errors are never cached.
    """
    try:
        stat = path.stat()
    except OSError:
        return probe_file(path, need_video=need_video)
    key = (str(path), stat.st_size, stat.st_mtime_ns, need_video)
    with _probe_lock:
        hit = _probe_cache.get(key)
    if hit is not None:
        return hit
    info = probe_file(path, need_video=need_video)
    with _probe_lock:
        if len(_probe_cache) >= _PROBE_CACHE_SIZE:
            _probe_cache.pop(next(iter(_probe_cache)))  # oldest first: dicts keep insertion order
        _probe_cache[key] = info
    return info


def probe_file(path: Path, *, need_video: bool = False) -> MediaInfo:
    """Read a media file's container and first video/audio streams.

    Decodes the first video frame (which also tells the rotation) and checks that the end of
    the file is reachable, so truncated files fail here instead of midway through a render.
    """
    import av

    container = _open(path)
    try:
        vstream = container.streams.video[0] if container.streams.video else None
        astream = container.streams.audio[0] if container.streams.audio else None
        if need_video and vstream is None:
            kind = "audio-only" if astream is not None else "without video"
            raise InvalidInput(f"{path} is {kind}; give a file with a video stream")
        duration = float(container.duration / av.time_base) if container.duration else 0.0
        _check_not_truncated(container, path)
        video = _video_info(container, vstream, path, duration) if vstream is not None else None
        audio = None
        if astream is not None:
            cc = astream.codec_context
            audio = AudioInfo(
                codec=cc.name,
                sample_rate=cc.sample_rate or 0,
                channels=cc.channels or 0,
                bit_rate=cc.bit_rate or 0,
            )
        if duration <= 0 and vstream is not None and vstream.duration:
            duration = float(vstream.duration * vstream.time_base)
        return MediaInfo(
            path=path,
            format=container.format.name,
            duration=duration,
            size_bytes=path.stat().st_size,
            video=video,
            audio=audio,
        )
    finally:
        container.close()


def _check_not_truncated(container: Any, path: Path) -> None:
    """Fail when the container's index points past the end of the file (a cut-off download).

    A faststart MP4 cut short still opens and decodes its first frames; only its index shows
    that media data is missing, so check that before a long render discovers it midway.
    """
    size = path.stat().st_size
    for stream in container.streams:
        entries = getattr(stream, "index_entries", None)
        if entries is None or len(entries) == 0:
            continue
        last = entries[len(entries) - 1]
        if last.pos >= 0 and last.pos + last.size > size:
            raise InvalidInput(
                f"{path} is truncated: its index expects {last.pos + last.size} bytes but the file "
                f"has {size}; download or copy it again"
            )


def _video_info(container: Any, stream: Any, path: Path, duration: float) -> VideoInfo:
    import av

    cc = stream.codec_context
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    frame_rate = float(rate) if rate else 0.0
    rotation = 0
    first_pts: list[float] = []
    try:
        for frame in container.decode(stream):
            rotation = clockwise_rotation(frame.rotation)
            if frame.pts is not None:
                first_pts.append(float(frame.pts * stream.time_base))
            if len(first_pts) >= 12:
                break
    except av.error.FFmpegError as exc:
        raise InvalidInput(
            f"{path}: the video stream cannot be decoded ({exc.strerror or exc}); "
            "the file may be truncated or corrupt"
        ) from None
    if not first_pts:
        raise InvalidInput(f"{path}: the video stream has no decodable frames; is it truncated?")
    vfr = False
    if len(first_pts) > 3:
        deltas = [b - a for a, b in zip(sorted(first_pts), sorted(first_pts)[1:], strict=False)]
        vfr = max(deltas) - min(deltas) > 0.5 / max(frame_rate, 1.0)
    frames = stream.frames or (round(duration * frame_rate) if duration and frame_rate else 0)
    width, height = cc.width, cc.height
    if not width or not height:
        raise InvalidInput(f"{path}: the video stream has no picture size; is it corrupt?")
    return VideoInfo(
        codec=cc.name,
        width=width,
        height=height,
        rotation=rotation,
        frame_rate=frame_rate,
        frames=int(frames),
        pixel_format=cc.format.name if cc.format else "",
        variable_frame_rate=vfr,
    )
