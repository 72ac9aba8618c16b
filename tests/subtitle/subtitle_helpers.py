"""Test helpers: the real speech sample, timed words of natural speech, WER, media writing."""

from __future__ import annotations

import random
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from vo.subtitle.v1 import subtitle_service_pb2_grpc
from vo_subtitle.config import Settings
from vo_subtitle.model import Word

DATA = Path(__file__).parent / "data"
SPEECH = DATA / "librivox_sense_and_sensibility.flac"
"""26 s of real read speech (LibriVox), five utterances; see data/README.md."""
REFERENCE = DATA / "librivox_sense_and_sensibility.txt"
# Lengths of the five utterances in the sample; each is followed by 0.25 s of silence.
UTTERANCE_SECONDS = (7.1, 2.99, 5.3, 6.05, 3.29)
GAP_SECONDS = 0.25


@dataclass(frozen=True)
class SubtitleServer:
    """A running SubtitleService and a stub for it."""

    stub: subtitle_service_pb2_grpc.SubtitleServiceStub
    address: str
    settings: Settings


PROSE = (
    "It was a bright cold day in April, and the clocks were striking thirteen. Winston Smith, "
    "his chin nuzzled into his breast in an effort to escape the vile wind, slipped quickly "
    "through the glass doors of Victory Mansions, though not quickly enough to prevent a swirl "
    "of gritty dust from entering along with him. The hallway smelt of boiled cabbage and old "
    "rag mats. At one end of it a coloured poster, too large for indoor display, had been tacked "
    "to the wall. It depicted simply an enormous face, more than a metre wide: the face of a man "
    "of about forty-five, with a heavy black moustache and ruggedly handsome features. Winston "
    "made for the stairs. It was no use trying the lift. Even at the best of times it was "
    "seldom working, and at present the electric current was cut off during daylight hours."
)


def reference_words() -> list[str]:
    """The reference transcript of the speech sample, as lowercase words."""
    return REFERENCE.read_text().split()


def utterance_spans() -> list[tuple[float, float]]:
    """(start, end) seconds of each utterance in the speech sample."""
    spans, t = [], 0.0
    for seconds in UTTERANCE_SECONDS:
        spans.append((t, t + seconds))
        t += seconds + GAP_SECONDS
    return spans


def speech_words(text: str = PROSE, count: int | None = None, seed: int = 0) -> list[Word]:
    """Timed words as a speaker at about 150 words a minute would say ``text``.

    Words last longer the longer they are, and pauses follow punctuation, which is what real
    word timings look like; ``count`` repeats the text until that many words.
    """
    rnd = random.Random(seed)
    tokens = text.split()
    out: list[Word] = []
    t = 0.3
    k = 0
    total = count if count is not None else len(tokens)
    while len(out) < total:
        tok = tokens[k % len(tokens)]
        k += 1
        dur = 0.12 + 0.055 * len(tok.strip(".,:;"))
        out.append(Word(tok, round(t, 3), round(t + dur, 3)))
        pause = 0.35 if tok[-1] in ".!?" else 0.15 if tok[-1] in ",;:" else 0.0
        t += dur + 0.04 + pause + rnd.uniform(0, 0.05)
    return out


def wer(reference: list[str], hypothesis: list[str]) -> float:
    """Word error rate: (substitutions + deletions + insertions) / reference length."""
    d = list(range(len(hypothesis) + 1))
    for i in range(1, len(reference) + 1):
        prev, d[0] = d[:], i
        for j in range(1, len(hypothesis) + 1):
            cost = reference[i - 1] != hypothesis[j - 1]
            d[j] = min(prev[j] + 1, d[j - 1] + 1, prev[j - 1] + cost)
    return d[-1] / max(1, len(reference))


def write_video(path: Path, audio_from: Path | None, *, with_audio: bool) -> None:
    """A 160x90 H.264 MP4, as long as ``audio_from`` (AAC soundtrack) or 2 s without audio."""
    pcm = None
    if audio_from is not None:
        with av.open(str(audio_from)) as src:
            frames = [f.to_ndarray() for f in src.decode(audio=0)]
        pcm = np.concatenate(frames, axis=1).astype(np.int16)  # (1, samples) at 16 kHz
    seconds = pcm.shape[1] / 16000 if pcm is not None else 2.0
    fps = 10
    with av.open(str(path), "w") as out:
        v = out.add_stream("libx264", rate=fps)
        v.width, v.height, v.pix_fmt = 160, 90, "yuv420p"
        a = out.add_stream("aac", rate=48000, layout="mono") if with_audio else None
        for n in range(int(seconds * fps)):
            img = np.full((90, 160, 3), (n * 7) % 255, dtype=np.uint8)
            picture = av.VideoFrame.from_ndarray(img, format="rgb24")
            picture.pts, picture.time_base = n, Fraction(1, fps)
            for packet in v.encode(picture):
                out.mux(packet)
        for packet in v.encode(None):  # flush the encoder exactly once
            out.mux(packet)
        if a is not None and pcm is not None:
            resampler = av.AudioResampler(format="fltp", layout="mono", rate=48000)
            step = 1024
            for pos in range(0, pcm.shape[1], step):
                frame = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(pcm[:, pos : pos + step]), format="s16", layout="mono"
                )
                frame.sample_rate = 16000
                frame.pts = pos
                for f in resampler.resample(frame):
                    for packet in a.encode(f):
                        out.mux(packet)
            for f in resampler.resample(None):
                for packet in a.encode(f):
                    out.mux(packet)
            for packet in a.encode(None):
                out.mux(packet)
