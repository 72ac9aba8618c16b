"""An independent word aligner for checking synthesised timings: PocketSphinx in align mode.

PocketSphinx ships its US English acoustic model and dictionary in its wheel, so this runs
offline. It is used only by tests and ``bench/tts.py``, never by the service.
"""

from __future__ import annotations

import io
import re
import statistics
import wave

import numpy as np
from vo_tts.audio import resample

FRAME_SECONDS = 0.01  # PocketSphinx reports times in 10 ms frames


def read_wav(data: bytes) -> tuple[np.ndarray, int]:
    """Mono int16 samples and the sample rate of a WAV file's bytes."""
    with wave.open(io.BytesIO(data)) as w:
        return np.frombuffer(w.readframes(w.getnframes()), "<i2"), w.getframerate()


def align(
    samples: np.ndarray, sample_rate: int, words: list[str]
) -> list[tuple[str, float, float]]:
    """(word, start, end) in seconds for each of ``words`` as PocketSphinx hears them.

    ``words`` must be in PocketSphinx's dictionary (plain lower-case English words).
    """
    from pocketsphinx import Decoder

    # Trailing silence lets the search reach the final state; without it PocketSphinx's best
    # path often stops one or two words short of the end.
    # Dither too: eSpeak's pauses are exact zeros, whose log energy derails the features.
    pcm = np.concatenate([resample(samples, sample_rate, 16000), np.zeros(8000, np.int16)])
    noise = np.random.default_rng(0).normal(0.0, 3.0, len(pcm))
    pcm = np.clip(pcm + noise, -32768, 32767).astype(np.int16)
    # Default beams first (fast); when they lose every path, retry with much wider ones.
    for beams in ({}, {"beam": 1e-120, "wbeam": 1e-100, "pbeam": 1e-120}):
        decoder = Decoder(samprate=16000, loglevel="FATAL", **beams)
        decoder.set_align_text(" ".join(words))
        decoder.start_utt()
        decoder.process_raw(pcm.astype("<i2").tobytes(), full_utt=True)
        decoder.end_utt()
        if decoder.hyp() is not None:
            break
    else:
        return []
    segments = decoder.seg()
    return [
        (seg.word, seg.start_frame * FRAME_SECONDS, (seg.end_frame + 1) * FRAME_SECONDS)
        for seg in segments
        if seg.word not in ("<s>", "</s>", "<sil>", "(NULL)")
    ]


def normalise(word: str) -> str:
    """A script word as PocketSphinx's dictionary spells it."""
    return re.sub(r"[^a-z']", "", word.lower())


def start_errors(
    ours: list[tuple[str, float, float]], reference: list[tuple[str, float, float]]
) -> list[float]:
    """Absolute word-start differences in seconds for the words both sides placed.

    PocketSphinx sometimes gives up on the last words of an utterance it finds hard (it
    ends in silence instead), so its words are matched to ours in order, skipping ours that
    it dropped. Callers check how many words were matched.
    """
    errors = []
    k = 0
    for word, start, _ in reference:
        heard = normalise(re.sub(r"\(\d+\)$", "", word))
        while k < len(ours) and normalise(ours[k][0]) != heard:
            k += 1
        if k == len(ours):
            break
        errors.append(abs(ours[k][1] - start))
        k += 1
    return errors


def align_chunked(
    samples: np.ndarray,
    sample_rate: int,
    ours: list[tuple[str, float, float]],
    max_chunk_seconds: float = 0.0,
) -> list[tuple[str, float, float]]:
    """PocketSphinx's timings for ``ours``' words, aligning pause-separated chunks separately.

    PocketSphinx loses its way on long utterances (it drops the last words of a 20 s one),
    so the audio is cut in the middle of pauses longer than 150 ms into chunks of at most
    ``max_chunk_seconds``. Cuts fall in silence, so they cannot bias the words' starts.
    """
    reference: list[tuple[str, float, float]] = []
    first = 0
    chunk_start = 0.0
    for i in range(1, len(ours) + 1):
        at_end = i == len(ours)
        if not at_end:
            gap = ours[i][1] - ours[i - 1][2]
            if gap < 0.15 or ours[i][1] - chunk_start < max_chunk_seconds:
                continue
        cut = len(samples) / sample_rate if at_end else (ours[i - 1][2] + ours[i][1]) / 2
        lo, hi = round(chunk_start * sample_rate), round(cut * sample_rate)
        words = [normalise(w) for w, _, _ in ours[first:i]]
        for w, s, e in align(samples[lo:hi], sample_rate, words):
            reference.append((w, s + chunk_start, e + chunk_start))
        first, chunk_start = i, cut
    return reference


def median_start_error(
    samples: np.ndarray, sample_rate: int, ours: list[tuple[str, float, float]]
) -> tuple[float, float]:
    """Median absolute word-start error of ``ours`` against PocketSphinx in seconds, and the
    fraction of our words PocketSphinx placed (the error is measured on those)."""
    errors = start_errors(ours, align_chunked(samples, sample_rate, ours))
    return statistics.median(errors), len(errors) / len(ours)
