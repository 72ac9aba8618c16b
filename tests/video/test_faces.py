"""Smart framing follows a face: OpenCV's real Haar cascade on a drawn face, end to end.

No photograph of a face ships in our packages, so the face is drawn: a light oval with dark
eyes and brows, a nose ridge and a mouth, the light and dark bands the cascade looks for. A
bright disc sweeps across the other side of the picture, so motion alone would pull the
camera away: only finding the face keeps it in the window.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from mediacheck import luma_frames
from vo.client import AsyncVideoClient
from vo.events import ProgressEvent
from vo_video.framing import _face_cascade, find_subject

W, H, FPS, SECONDS = 640, 360, 30, 4


def draw_face(img: np.ndarray, cx: int, cy: int, s: int) -> None:
    """A cartoon face of half-height ``s`` centred at (cx, cy), drawn in place on grey ``img``."""
    cv2.ellipse(img, (cx, cy), (int(s * 0.8), s), 0, 0, 360, 200, -1)
    for side in (-0.35, 0.35):
        ex = int(cx + side * s)
        cv2.ellipse(img, (ex, int(cy - 0.2 * s)), (int(0.16 * s), int(0.08 * s)), 0, 0, 360, 40, -1)
        brow = (int(ex - 0.2 * s), int(cy - 0.4 * s)), (int(ex + 0.2 * s), int(cy - 0.42 * s))
        cv2.line(img, *brow, 60, max(1, int(0.06 * s)))
    cv2.ellipse(img, (cx, int(cy + 0.45 * s)), (int(0.3 * s), int(0.08 * s)), 0, 0, 360, 90, -1)
    cv2.line(img, (cx, int(cy - 0.1 * s)), (cx, int(cy + 0.2 * s)), 170, max(1, int(0.05 * s)))


def _faces(luma: np.ndarray) -> np.ndarray:
    return np.asarray(_face_cascade().detectMultiScale(luma, 1.1, 5, minSize=(40, 40)))


def face_clip(path: Path) -> None:
    """A face at the right (drifting a little), a bright disc sweeping the left half."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.options = {"preset": "ultrafast", "crf": "18"}
        for i in range(FPS * SECONDS):
            u = i / (FPS * SECONDS)
            luma = np.full((H, W), 70, np.uint8)
            draw_face(luma, int(W * (0.78 + 0.04 * np.sin(2 * np.pi * u))), H // 2, 45)
            disc_x = int(W * (0.05 + 0.35 * (1 - abs(2 * u - 1))))
            cv2.circle(luma, (disc_x, int(H * 0.3)), 30, 240, -1)
            yuv = np.concatenate([luma, np.full((H // 2, W), 128, np.uint8)])
            frame = av.VideoFrame.from_ndarray(yuv, format="yuv420p")
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def test_the_cascade_finds_a_drawn_face_and_it_beats_motion() -> None:
    still = np.full((180, 320), 70, np.uint8)
    draw_face(still, 240, 90, 25)
    moved = still.copy()
    cv2.circle(still, (60, 50), 15, 240, -1)
    cv2.circle(moved, (100, 50), 15, 240, -1)  # the disc moved; the face did not
    (x, y), source = find_subject(moved, cv2.GaussianBlur(still, (5, 5), 0))
    assert source == "face" and abs(x - 240) < 6 and abs(y - 90) < 10
    # With the face search skipped for this frame, motion takes over: the check can fail.
    _, source = find_subject(moved, cv2.GaussianBlur(still, (5, 5), 0), look_for_faces=False)
    assert source == "motion"


async def test_smart_keeps_the_face_in_the_vertical_frame(
    server_target: str, tmp_path: Path
) -> None:
    src = tmp_path / "face.mp4"
    face_clip(src)
    outputs = {}
    async with AsyncVideoClient.connect(server_target) as client:
        for mode in ("smart", "center"):
            outputs[mode] = tmp_path / f"{mode}.mp4"
            stream = client.reframe(
                src,
                output_uri=str(outputs[mode]),
                mode=mode,
                width=360,
                height=640,
                preset="ultrafast",
            )
            assert [e async for e in stream if not isinstance(e, ProgressEvent)], "no result"
    smart = [len(_faces(y)) > 0 for _, y in luma_frames(outputs["smart"], every=6)]
    center = [len(_faces(y)) > 0 for _, y in luma_frames(outputs["center"], every=6)]
    assert sum(smart) / len(smart) >= 0.9, "smart framing lost the face"
    assert sum(center) == 0, "the face is outside a centre crop: proves the check can fail"
