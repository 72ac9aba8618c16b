"""Word timings from real speech: PocketSphinx recognition, or forced alignment of a script.

Audio comes from any file PyAV can read (the audio track of a video too), resampled to the
16 kHz mono 16-bit samples the English model in the PocketSphinx wheel was trained on.
Recognition decodes the audio in utterances cut at quiet moments, so memory stays bounded on
long inputs; alignment runs one utterance constrained to the script's words. Both feed the
decoder a chunk at a time and yield a progress event per chunk, checking the cancel token
between chunks. Times come from the decoder's frames: 100 per second.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from vo_core.errors import InvalidInput
from vo_core.progress import ProgressEvent, ProgressMeter
from vo_core.threads import CancelToken

from vo_subtitle.model import Cue, SegmentationRules, Word
from vo_subtitle.segment import segment

SAMPLE_RATE = 16_000
FRAMES_PER_SECOND = 100  # PocketSphinx's feature frame rate
CHUNK_SECONDS = 1.0  # audio fed to the decoder per step (and per progress event)
UTTERANCE_SECONDS = 20.0  # recognition cuts the audio near this length, at the quietest spot

# Search settings traded for speed: no second (flat-lexicon) pass, two Gaussians per frame,
# bounded active HMMs and words per frame, and a phone-loop lookahead. On the LibriVox test
# speech this runs about 2.5x faster than the defaults for about the same word error rate.
DECODER_OPTIONS: dict[str, object] = {
    "fwdflat": False,
    "topn": 2,
    "maxhmmpf": 3000,
    "maxwpf": 5,
    "pl_window": 10,
}


@dataclass(frozen=True, slots=True)
class Transcript:
    """What recognition or alignment found: timed words and the audio's length."""

    words: tuple[Word, ...]
    audio_seconds: float

    @property
    def text(self) -> str:
        """The words joined by spaces."""
        return " ".join(w.text for w in self.words)


def load_audio(path: Path, *, max_seconds: float = 4 * 3600) -> np.ndarray:
    """The first audio stream of ``path`` as 16 kHz mono int16 samples.

    A file that is not media, or media without audio, or with no decodable samples, raises
    :class:`InvalidInput` saying so.
    """
    import av  # imported here so the text-only paths of this service never load FFmpeg

    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError) as exc:
        raise InvalidInput(
            f"{path.name} is not an audio or video file FFmpeg can read ({exc}); "
            "give a file with speech (wav, mp3, m4a, flac, mp4, mkv, ...)"
        ) from None
    with container:
        if not container.streams.audio:
            kinds = ", ".join(s.type for s in container.streams) or "no streams"
            raise InvalidInput(
                f"{path.name} has no audio stream ({kinds}); give a file with speech"
            )
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        chunks: list[np.ndarray] = []
        total = 0
        limit = int(max_seconds * SAMPLE_RATE)
        try:
            for frame in container.decode(stream):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
                    total += out.samples
                if total > limit:
                    raise InvalidInput(
                        f"{path.name} is longer than the {max_seconds:g} s this server accepts; "
                        "cut it shorter"
                    )
            for out in resampler.resample(None):  # flush the resampler's delay line
                chunks.append(out.to_ndarray().reshape(-1))
        except av.error.FFmpegError as exc:
            raise InvalidInput(f"{path.name}: audio could not be decoded ({exc})") from None
    if not chunks or sum(len(c) for c in chunks) == 0:
        raise InvalidInput(f"{path.name} has an audio stream but no audio samples")
    return np.concatenate(chunks).astype(np.int16, copy=False)


def dither(pcm: np.ndarray, seed: int = 0) -> np.ndarray:
    """Add +-1 LSB of noise: digital silence (all zeros) makes the log energy features
    minus infinity, which derails the decoder's normalisation. Seeded, so runs repeat."""
    rng = np.random.default_rng(seed)
    noise = rng.integers(-1, 2, size=pcm.shape, dtype=np.int16)
    return np.clip(pcm.astype(np.int32) + noise, -32768, 32767).astype(np.int16)


def _decoder(**extra: object) -> Any:
    from pocketsphinx import Decoder  # the model loads on first use, not at import

    return Decoder(samprate=SAMPLE_RATE, loglevel="FATAL", **DECODER_OPTIONS, **extra)


def _utterance_bounds(pcm: np.ndarray) -> list[tuple[int, int]]:
    """Cut points near every UTTERANCE_SECONDS, each at the quietest 10 ms frame close by."""
    n = len(pcm)
    step = int(UTTERANCE_SECONDS * SAMPLE_RATE)
    if n <= step * 1.5:
        return [(0, n)]
    hop = SAMPLE_RATE // FRAMES_PER_SECOND
    frames = pcm[: n - n % hop].astype(np.float32).reshape(-1, hop)
    energy = (frames * frames).mean(axis=1)
    bounds = []
    start = 0
    while n - start > step * 1.5:
        lo = (start + int(step * 0.75)) // hop
        hi = min(len(energy), (start + int(step * 1.25)) // hop)
        cut = (lo + int(np.argmin(energy[lo:hi]))) * hop
        bounds.append((start, cut))
        start = cut
    bounds.append((start, n))
    return bounds


def _clean(word: str) -> str:
    return re.sub(r"\(\d+\)$", "", word)  # "to(2)": the second pronunciation of "to"


def _is_filler(word: str) -> bool:
    return word.startswith(("<", "[", "+")) or word in ("", "<sil>")


def recognize(
    pcm: np.ndarray, token: CancelToken | None = None
) -> Iterator[ProgressEvent | Transcript]:
    """Recognise English speech; yields progress per chunk, then one :class:`Transcript`."""
    token = token or CancelToken()
    seconds = len(pcm) / SAMPLE_RATE
    chunk = int(CHUNK_SECONDS * SAMPLE_RATE)
    total_chunks = max(1, -(-len(pcm) // chunk))
    meter = ProgressMeter(
        "transcribe", total_chunks, every_frames=1, every_seconds=0.5, counts_frames=False
    )
    yield meter.event("loading the English model")
    decoder = _decoder()
    audio = dither(pcm)
    words: list[Word] = []
    for begin, end in _utterance_bounds(audio):
        decoder.start_utt()
        for pos in range(begin, end, chunk):
            token.check()
            piece = audio[pos : min(pos + chunk, end)]
            decoder.process_raw(piece.tobytes(), False, False)
            event = meter.advance(
                1, f"{min(pos + chunk, end) / SAMPLE_RATE:.1f} s of {seconds:.1f} s"
            )
            if event:
                yield event
        decoder.end_utt()
        offset = begin / SAMPLE_RATE
        for seg in decoder.seg() or ():  # None when nothing was decoded
            if _is_filler(seg.word):
                continue
            words.append(
                Word(
                    text=_clean(seg.word),
                    start=offset + seg.start_frame / FRAMES_PER_SECOND,
                    end=offset + (seg.end_frame + 1) / FRAMES_PER_SECOND,
                    confidence=float(min(1.0, max(0.0, seg.prob))),
                )
            )
    yield meter.finish(f"{len(words)} words")
    yield Transcript(words=tuple(words), audio_seconds=seconds)


# ---------------------------------------------------------------------------------------------
# Alignment

_ONES = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
]
_TENS = ["_", "_", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def number_words(n: int) -> list[str]:
    """English words for 0 <= n < 10**9 ("1906" -> nineteen hundred six is not attempted:
    years read as plain numbers are close enough for alignment)."""
    if n < 20:
        return [_ONES[n]]
    if n < 100:
        return [_TENS[n // 10]] + ([_ONES[n % 10]] if n % 10 else [])
    for size, name in ((10**6, "million"), (1000, "thousand"), (100, "hundred")):
        if n >= size:
            head, rest = divmod(n, size)
            return number_words(head) + [name] + (number_words(rest) if rest else [])
    return []


def _spoken_keys(token: str, has: Callable[[str], bool]) -> list[str] | None:
    """Dictionary words that say ``token``, or None when it cannot be spelled out.

    Tried in turn: the word itself; its parts when hyphenated or joined by a slash; a number
    read out; an acronym read letter by letter.
    """
    core = token.strip('.,;:!?"“”‘’()[]{}«»…—–-').replace("’", "'")
    if not core:
        return []  # punctuation only: nothing is said
    low = core.lower()
    if has(low):
        return [low]
    parts = [p for p in re.split(r"[-/]", low) if p]
    if len(parts) > 1 and all(has(p) for p in parts):
        return parts
    digits = low.replace(",", "")
    if digits.isdigit() and len(digits) <= 9:
        return number_words(int(digits))
    if core.isalpha() and (core.isupper() or len(core) <= 3):
        letters = list(low)
        if all(has(c) for c in letters):
            return letters
    return None


def align(
    pcm: np.ndarray, script: str, token: CancelToken | None = None
) -> Iterator[ProgressEvent | Transcript]:
    """Time each word of ``script`` in the speech; yields progress per chunk, then a Transcript.

    Words the dictionary cannot say (names, made-up words) are left out of the alignment and
    get the time between their aligned neighbours, shared by length.
    """
    token = token or CancelToken()
    tokens = script.split()
    if not tokens:
        raise InvalidInput(
            "the script is empty; give the text that is spoken, or none to recognise"
        )
    seconds = len(pcm) / SAMPLE_RATE
    chunk = int(CHUNK_SECONDS * SAMPLE_RATE)
    meter = ProgressMeter(
        "align",
        max(1, -(-len(pcm) // chunk)),
        every_frames=1,
        every_seconds=0.5,
        counts_frames=False,
    )
    yield meter.event("loading the English model")
    decoder = _decoder()

    def has(word: str) -> bool:
        return decoder.lookup_word(word) is not None

    keys = [_spoken_keys(t, has) for t in tokens]
    units = [(k, key) for k, ks in enumerate(keys) for key in (ks or [])]
    if not units:
        raise InvalidInput(
            "none of the script's words is in the English dictionary; "
            "check that the script is English text"
        )
    decoder.set_align_text(" ".join(key for _, key in units))
    audio = dither(pcm)
    decoder.start_utt()
    for pos in range(0, len(audio), chunk):
        token.check()
        decoder.process_raw(audio[pos : pos + chunk].tobytes(), False, False)
        event = meter.advance(
            1, f"{min(pos + chunk, len(audio)) / SAMPLE_RATE:.1f} s of {seconds:.1f} s"
        )
        if event:
            yield event
    decoder.end_utt()
    segs = [s for s in decoder.seg() or () if not _is_filler(s.word)]
    if len(segs) != len(units):
        raise InvalidInput(
            "the script could not be aligned to the speech (the aligner matched "
            f"{len(segs)} of {len(units)} words); check that the script is what is said"
        )
    spans: list[list[float] | None] = [None] * len(tokens)
    for (k, _), seg in zip(units, segs, strict=True):
        start = seg.start_frame / FRAMES_PER_SECOND
        end = (seg.end_frame + 1) / FRAMES_PER_SECOND
        span = spans[k]
        if span is None:
            spans[k] = [start, end]
        else:
            span[1] = end
    words = _fill_unaligned(tokens, spans, seconds)
    yield meter.finish(f"{len(words)} words aligned")
    yield Transcript(words=tuple(words), audio_seconds=seconds)


def _fill_unaligned(
    tokens: Sequence[str], spans: Sequence[list[float] | None], seconds: float
) -> list[Word]:
    """Words for every token; runs of unaligned tokens share the gap around them by length."""
    out: list[Word] = []
    k = 0
    n = len(tokens)
    while k < n:
        span = spans[k]
        if span is not None:
            out.append(Word(tokens[k], span[0], span[1]))
            k += 1
            continue
        run_end = k
        while run_end < n and spans[run_end] is None:
            run_end += 1
        left = out[-1].end if out else 0.0
        right_span = spans[run_end] if run_end < n else None
        right = right_span[0] if right_span is not None else seconds
        right = max(right, left)
        if right - left < 0.1 * (run_end - k) and out:
            # The neighbours took the time (the aligner stretched them over the unknown word):
            # take back a share of the previous word, so the unknown word is not zero-length.
            prev = out[-1]
            left = prev.start + (prev.end - prev.start) / 2
            out[-1] = Word(prev.text, prev.start, left, prev.confidence)
        weights = [max(1, len(t)) for t in tokens[k:run_end]]
        total = sum(weights)
        t = left
        for tok, w in zip(tokens[k:run_end], weights, strict=True):
            dur = (right - left) * w / total
            out.append(Word(tok, t, t + dur, confidence=0.0))
            t += dur
        k = run_end
    return out


@dataclass(frozen=True, slots=True)
class TranscribeOutcome:
    """The final item of :func:`transcribe`: the transcript and its cues."""

    transcript: Transcript
    cues: tuple[Cue, ...]


def transcribe(
    path: Path,
    script: str,
    rules: SegmentationRules,
    token: CancelToken,
    *,
    max_seconds: float = 4 * 3600,
) -> Iterator[ProgressEvent | TranscribeOutcome]:
    """Recognise (no script) or align (a script) the speech of ``path``, then segment it."""
    pcm = load_audio(path, max_seconds=max_seconds)
    steps = align(pcm, script, token) if script.strip() else recognize(pcm, token)
    transcript: Transcript | None = None
    for item in steps:
        if isinstance(item, Transcript):
            transcript = item
        else:
            yield item
    if transcript is None:  # the engines always end with a transcript
        raise RuntimeError("recognition ended without a transcript")
    cues = segment(transcript.words, rules) if transcript.words else []
    yield TranscribeOutcome(transcript=transcript, cues=tuple(cues))
