"""Text to speech with word timings: the engine interface and the logic every engine shares.

An :class:`Engine` speaks one sentence at a time and says where each of the sentence's words
starts (in samples). Everything else is here, once, for every engine: validating a request,
splitting long text into sentences (so progress is reported per sentence and no single call
holds minutes of audio), turning the engine's word marks into clean word spans (merged words
split, trailing pauses trimmed), joining sentences, encoding, and caching the result.

This module knows nothing of gRPC; it raises :mod:`vo_core.errors` and yields
:class:`~vo_core.progress.ProgressEvent` and finally one :class:`Speech`.
"""

from __future__ import annotations

import itertools
import json
import re
import struct
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from enum import StrEnum

import numpy as np
from vo_core.cache import Cache, cache_key
from vo_core.errors import InvalidInput
from vo_core.progress import ProgressEvent, ProgressMeter
from vo_core.threads import CancelToken

from vo_tts import audio

RATE_MIN, RATE_MAX, RATE_DEFAULT = 80, 450, 165
"""Speaking rate in words per minute: eSpeak's own range, and its default."""
PITCH_MIN, PITCH_MAX, PITCH_DEFAULT = 0, 100, 50
"""Base pitch on eSpeak's 0-100 scale."""
SAMPLE_RATE_MIN, SAMPLE_RATE_MAX = 8000, 48000
"""Output sample rates we resample to; outside this no codec we offer is useful."""
MAX_SENTENCE_CHARS = 400
"""Sentences longer than this are cut at a word boundary so progress keeps moving."""
TIMING_VERSION = "1"
"""Version of the word-timing logic below; part of every cache key, so bump it on change."""

SILENCE_FRAME_SECONDS = 0.005
"""Energy is measured over 5 ms frames when trimming pauses off word ends."""
SILENCE_RMS = 0.01
"""A frame quieter than this (RMS, full scale 1.0, about -40 dBFS) counts as silence."""

_SENTENCE_END = re.compile(r"[.!?…。！？]+[\"'”’)\]]*(\s+)|(\n)")
_WORD = re.compile(r"\S+")


class AudioFormat(StrEnum):
    """Encodings of the result, named as the wire enum's suffix in lower case."""

    WAV = "wav"
    FLAC = "flac"
    AAC = "aac"
    OPUS = "opus"


@dataclass(frozen=True, slots=True)
class VoiceInfo:
    """A voice an engine can speak with."""

    name: str
    """What a request passes as ``voice``, such as ``en-us``."""
    language: str
    """BCP 47 tag, such as ``en-US``."""
    engine: str
    """Engine name, such as ``espeak``."""
    description: str = ""
    """A human-readable label."""


@dataclass(frozen=True, slots=True)
class TextWord:
    """A word of a sentence as written: whitespace-separated, punctuation attached."""

    text: str
    start_char: int
    end_char: int


@dataclass(frozen=True, slots=True)
class TimedWord:
    """A spoken word with its times in seconds from the start of the audio."""

    text: str
    start: float
    end: float


@dataclass(slots=True)
class SentenceAudio:
    """What an engine returns for one sentence."""

    samples: np.ndarray
    """Mono int16 samples."""
    sample_rate: int
    spans: list[tuple[int, int]]
    """(start, end) sample of each of :func:`tokenize` (sentence)'s words, in order."""


@dataclass(frozen=True, slots=True)
class SynthesisRequest:
    """A request in domain terms; zero values mean "the default", as on the wire."""

    text: str
    voice: str = ""
    engine: str = ""
    rate: int = 0
    pitch: int = 0
    format: AudioFormat = AudioFormat.WAV
    sample_rate: int = 0


@dataclass(slots=True)
class Speech:
    """The result: encoded audio, its word timings and what produced it."""

    audio: bytes
    format: AudioFormat
    media_type: str
    sample_rate: int
    duration: float
    words: list[TimedWord]
    voice: VoiceInfo
    cached: bool = field(default=False)

    def to_bytes(self) -> bytes:
        """A self-contained serialisation for the cache: a JSON header, then the audio."""
        header = json.dumps(
            {
                "format": self.format.value,
                "media_type": self.media_type,
                "sample_rate": self.sample_rate,
                "duration": self.duration,
                "words": [[w.text, w.start, w.end] for w in self.words],
                "voice": asdict(self.voice),
            },
            ensure_ascii=False,
        ).encode()
        return struct.pack("<I", len(header)) + header + self.audio

    @classmethod
    def from_bytes(cls, data: bytes) -> Speech:
        """The inverse of :meth:`to_bytes`; marked as cached."""
        (n,) = struct.unpack_from("<I", data)
        header = json.loads(data[4 : 4 + n])
        return cls(
            audio=data[4 + n :],
            format=AudioFormat(header["format"]),
            media_type=header["media_type"],
            sample_rate=header["sample_rate"],
            duration=header["duration"],
            words=[TimedWord(t, s, e) for t, s, e in header["words"]],
            voice=VoiceInfo(**header["voice"]),
            cached=True,
        )


class Engine(ABC):
    """A speech synthesiser that reports where each word starts.

    Implementations must be safe to call from several threads at once (serialising inside
    if the underlying library is not), and must return one span per :func:`tokenize` word.
    """

    name: str = "engine"

    @abstractmethod
    def version(self) -> str:
        """Engine and voice-data version; part of every cache key."""

    @abstractmethod
    def voices(self) -> list[VoiceInfo]:
        """Every voice this engine can speak with."""

    @abstractmethod
    def default_voice(self) -> str:
        """The voice used when a request names none."""

    def check_params(self, rate: int, pitch: int) -> None:
        """Reject parameters this engine cannot honour (after the common range checks)."""
        return None  # eSpeak honours the whole common range

    @abstractmethod
    def synthesize_sentence(self, text: str, voice: str, rate: int, pitch: int) -> SentenceAudio:
        """Speak one sentence (or a long sentence's piece) with a known voice."""

    def synthesize_sentences(
        self, sentences: Sequence[str], voice: str, rate: int, pitch: int
    ) -> Iterator[SentenceAudio]:
        """Speak sentences in order; engines with worker processes override this to overlap them."""
        for text in sentences:
            yield self.synthesize_sentence(text, voice, rate, pitch)

    def close(self) -> None:
        """Release worker processes or models."""
        return None  # engines without either hold nothing


# ---------------------------------------------------------------------------------------------
# Text


def split_sentences(text: str, max_chars: int = MAX_SENTENCE_CHARS) -> list[str]:
    """Sentences (or lines) of ``text``, each at most ``max_chars`` unless one word is longer.

    Splits after ``.``, ``!``, ``?`` (and their CJK forms) followed by space, and at line
    breaks. A longer run is cut at the last clause mark (``,;:``) or space before the limit.
    Pieces without a word are dropped: they would not be spoken.
    """
    pieces: list[str] = []
    cuts = [0]
    for m in _SENTENCE_END.finditer(text):
        cuts.append(m.start(1) if m.group(1) is not None else m.start(2))
    cuts.append(len(text))
    for lo, hi in itertools.pairwise(cuts):
        rest = text[lo:hi].strip()
        while len(rest) > max_chars:
            window = rest[: max_chars + 1]
            cut = max(window.rfind(", "), window.rfind("; "), window.rfind(": "))
            cut = cut + 1 if cut > max_chars // 2 else window.rfind(" ")
            if cut <= 0:
                cut = max_chars  # one enormous "word": cut it anyway
            pieces.append(rest[:cut].strip())
            rest = rest[cut:].strip()
        pieces.append(rest)
    return [p for p in pieces if tokenize(p)]


def tokenize(sentence: str) -> list[TextWord]:
    """Whitespace-separated words; a token with no letter or digit joins the word before it.

    A lone dash or ellipsis is not spoken, so it cannot have its own time, but captions
    should still show it: it rides along with its neighbour.
    """
    words: list[TextWord] = []
    pending: TextWord | None = None  # punctuation before the first word
    for m in _WORD.finditer(sentence):
        token = m.group()
        if any(c.isalnum() for c in token):
            if pending is not None:
                words.append(TextWord(f"{pending.text} {token}", pending.start_char, m.end()))
                pending = None
            else:
                words.append(TextWord(token, m.start(), m.end()))
        elif words:
            last = words[-1]
            words[-1] = TextWord(f"{last.text} {token}", last.start_char, m.end())
        else:
            pending = TextWord(token, m.start(), m.end())
    return words


# ---------------------------------------------------------------------------------------------
# Word marks to word spans


def speech_end(samples: np.ndarray, start: int, end: int, sample_rate: int) -> int:
    """The last sample of sound in ``[start, end)``, to the end of its 5 ms frame.

    Pauses (a comma's, a sentence's) belong to the word before them in the engines' marks;
    a caption should not stay lit through them. Never returns less than one frame after
    ``start``, so a word whose sound was all below the threshold keeps a visible span.
    """
    frame = max(1, round(sample_rate * SILENCE_FRAME_SECONDS))
    end = min(end, len(samples))
    if end - start <= frame:
        return end
    n = (end - start) // frame
    seg = samples[start : start + n * frame].astype(np.float32).reshape(n, frame)
    rms = np.sqrt(np.mean(seg * seg, axis=1)) / 32768.0
    loud = np.flatnonzero(rms > SILENCE_RMS)
    if loud.size == 0:
        return min(end, start + frame)
    return min(end, start + (int(loud[-1]) + 1) * frame)


def spans_from_marks(
    words: Sequence[TextWord],
    marks: Sequence[tuple[int, int]],
    samples: np.ndarray,
    sample_rate: int,
) -> list[tuple[int, int]]:
    """One (start, end) sample span per word, from an engine's ``(char index, sample)`` marks.

    A mark belongs to the word whose text contains its character (or the next word, when it
    falls on a space). eSpeak sometimes speaks two words under one mark ("of the"): words
    without a mark share the span of the marked word before them, split by character count.
    Words with several marks (a number spoken as several words) start at their first.
    Each group of words ends where the sound before the next group's start ends.
    """
    if not words:
        return []
    n = len(samples)
    starts: list[int | None] = [None] * len(words)
    last_index = -1
    for char, sample in sorted(marks, key=lambda m: m[1]):
        i = next((k for k in range(max(0, last_index), len(words)) if words[k].end_char > char), -1)
        if i < 0 or i < last_index:
            continue  # a mark past the last word, or going backwards: not a word start
        if starts[i] is None:
            starts[i] = min(max(0, sample), n)
        last_index = i
    anchors = [i for i, s in enumerate(starts) if s is not None]
    if not anchors or anchors[0] != 0:
        starts[0] = 0  # words before the first mark start with the audio
        anchors.insert(0, 0)
    spans: list[tuple[int, int]] = []
    for g, first in enumerate(anchors):
        last = anchors[g + 1] - 1 if g + 1 < len(anchors) else len(words) - 1
        g_start = starts[first]
        assert g_start is not None
        g_next = starts[anchors[g + 1]] if g + 1 < len(anchors) else n
        assert g_next is not None
        g_end = max(g_start, speech_end(samples, g_start, g_next, sample_rate))
        weights = [max(1, sum(c.isalnum() for c in w.text)) for w in words[first : last + 1]]
        total = sum(weights)
        edge = float(g_start)
        for k, weight in enumerate(weights):
            start = round(edge)
            edge += (g_end - g_start) * weight / total
            end = g_end if k == len(weights) - 1 else round(edge)
            spans.append((start, end))
    return spans


# ---------------------------------------------------------------------------------------------
# The service's synthesis entry point


class Synthesizer:
    """The configured engines, limits and cache; validates requests and runs them."""

    def __init__(
        self,
        engines: Sequence[Engine],
        *,
        max_text_chars: int = 100_000,
        cache: Cache | None = None,
        default_engine: str = "espeak",
    ) -> None:
        self.engines = {e.name: e for e in engines}
        self.max_text_chars = max_text_chars
        self.cache = cache or Cache([])
        self.default_engine = default_engine
        self._voices: dict[str, dict[str, VoiceInfo]] = {}

    def close(self) -> None:
        """Close every engine."""
        for engine in self.engines.values():
            engine.close()

    def voices_of(self, engine: Engine) -> dict[str, VoiceInfo]:
        """An engine's voices by name, listed once (listing reads the voice files)."""
        if engine.name not in self._voices:
            self._voices[engine.name] = {v.name: v for v in engine.voices()}
        return self._voices[engine.name]

    def list_voices(self, language: str = "", engine: str = "") -> list[VoiceInfo]:
        """Voices whose language starts with ``language`` (case-insensitive) of ``engine``."""
        if engine and engine not in self.engines:
            raise InvalidInput(
                f"engine {engine!r} is not configured; configured engines: {', '.join(self.engines)}"
            )
        prefix = language.lower().replace("_", "-")
        found = []
        for e in self.engines.values():
            if engine and e.name != engine:
                continue
            found += [
                v for v in self.voices_of(e).values() if v.language.lower().startswith(prefix)
            ]
        return found

    def resolve(self, req: SynthesisRequest) -> tuple[Engine, VoiceInfo, int, int]:
        """Check a request; return its engine, voice, rate and pitch, or raise InvalidInput."""
        if not req.text.strip():
            raise InvalidInput("text is empty; give the text to speak")
        if len(req.text) > self.max_text_chars:
            raise InvalidInput(
                f"text is {len(req.text):,} characters, over the limit of "
                f"{self.max_text_chars:,}; split it into several requests"
            )
        engine_name = req.engine or self.default_engine
        engine = self.engines.get(engine_name)
        if engine is None:
            raise InvalidInput(
                f"engine {engine_name!r} is not configured; "
                f"configured engines: {', '.join(self.engines)}"
            )
        rate = req.rate or RATE_DEFAULT
        if not RATE_MIN <= rate <= RATE_MAX:
            raise InvalidInput(
                f"rate {rate} is outside {RATE_MIN}-{RATE_MAX} words per minute; "
                f"0 uses {RATE_DEFAULT}"
            )
        pitch = req.pitch or PITCH_DEFAULT
        if not PITCH_MIN <= pitch <= PITCH_MAX:
            raise InvalidInput(
                f"pitch {pitch} is outside {PITCH_MIN}-{PITCH_MAX}; 0 uses {PITCH_DEFAULT}"
            )
        if req.sample_rate and not SAMPLE_RATE_MIN <= req.sample_rate <= SAMPLE_RATE_MAX:
            raise InvalidInput(
                f"sample rate {req.sample_rate} Hz is outside {SAMPLE_RATE_MIN}-{SAMPLE_RATE_MAX}; "
                "0 keeps the engine's"
            )
        engine.check_params(rate, pitch)
        voices = self.voices_of(engine)
        name = req.voice or engine.default_voice()
        voice = voices.get(name) or voices.get(name.lower())
        if voice is None:
            raise InvalidInput(unknown_voice_message(name, engine.name, list(voices)))
        return engine, voice, rate, pitch

    def key(
        self, req: SynthesisRequest, engine: Engine, voice: VoiceInfo, rate: int, pitch: int
    ) -> str:
        """The cache key of a resolved request."""
        return cache_key(
            "tts",
            TIMING_VERSION,
            engine.name,
            engine.version(),
            voice.name,
            rate,
            pitch,
            req.format.value,
            req.sample_rate,
            req.text,
        )

    def synthesize(
        self, req: SynthesisRequest, token: CancelToken
    ) -> Iterator[ProgressEvent | Speech]:
        """Validate, answer from the cache or speak sentence by sentence, then encode.

        Yields a "synthesise" progress event per sentence (``steps_done``/``steps_total``),
        one "encode" event, and finally the :class:`Speech`.
        """
        engine, voice, rate, pitch = self.resolve(req)
        if req.format in (AudioFormat.AAC, AudioFormat.OPUS):
            audio.require_av(req.format.value)
        key = self.key(req, engine, voice, rate, pitch)
        hit = self.cache.get(key)
        if hit is not None:
            yield Speech.from_bytes(hit)
            return
        sentences = split_sentences(req.text)
        if not sentences:
            raise InvalidInput("text has no words to speak (only punctuation or symbols)")
        meter = ProgressMeter(
            "synthesise",
            len(sentences),
            every_frames=1,
            fraction_span=(0.0, 0.95),
            counts_frames=False,
        )
        yield meter.event(f"speaking {len(sentences)} sentences")
        chunks: list[np.ndarray] = []
        words: list[TimedWord] = []
        offset = 0
        sample_rate = 0
        parts = engine.synthesize_sentences(sentences, voice.name, rate, pitch)
        try:
            for done, (sentence, part) in enumerate(zip(sentences, parts, strict=True), start=1):
                token.check()
                sample_rate = part.sample_rate
                for w, (s, e) in zip(tokenize(sentence), part.spans, strict=True):
                    words.append(
                        TimedWord(w.text, (offset + s) / sample_rate, (offset + e) / sample_rate)
                    )
                chunks.append(part.samples)
                offset += len(part.samples)
                event = meter.advance(1, f"sentence {done} of {len(sentences)}")
                if event is not None:
                    yield event
        finally:
            close = getattr(parts, "close", None)
            if close is not None:
                close()  # stop queued sentences in worker processes when cancelled
        samples = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
        out_rate = req.sample_rate or sample_rate
        if out_rate != sample_rate:
            samples = audio.resample(samples, sample_rate, out_rate)
        encoder = ProgressMeter("encode", 1, fraction_span=(0.95, 1.0), counts_frames=False)
        yield encoder.event(f"encoding {req.format.value}")
        data, media_type = audio.encode(samples, out_rate, req.format.value)
        speech = Speech(
            audio=data,
            format=req.format,
            media_type=media_type,
            sample_rate=out_rate,
            duration=len(samples) / out_rate,
            words=clamp_words(words, len(samples) / out_rate),
            voice=voice,
        )
        self.cache.put(key, speech.to_bytes())
        yield encoder.finish()
        yield speech


def clamp_words(words: list[TimedWord], duration: float) -> list[TimedWord]:
    """Words made monotonic and kept inside ``[0, duration]`` (guards rounding at the edges)."""
    out: list[TimedWord] = []
    prev_end = 0.0
    for w in words:
        start = min(max(w.start, prev_end), duration)
        end = min(max(w.end, start), duration)
        out.append(TimedWord(w.text, start, end))
        prev_end = end
    return out


def unknown_voice_message(name: str, engine: str, names: Sequence[str], limit: int = 20) -> str:
    """Say a voice is unknown and list valid names, closest first, at most ``limit`` of them."""
    if not names:
        return f"voice {name!r} is unknown: engine {engine!r} has no voices"
    prefix = name.lower().split("-")[0][:2]
    ranked = sorted(names, key=lambda n: (not n.lower().startswith(prefix), n))
    shown = ", ".join(ranked[:limit])
    more = f" and {len(names) - limit} more (see ListVoices)" if len(names) > limit else ""
    return f"voice {name!r} is unknown for engine {engine!r}; valid voices: {shown}{more}"
