"""eSpeak NG through its C API (ctypes), from the ``espeakng-loader`` wheel: no download, no binary.

The library is initialised in ``AUDIO_OUTPUT_SYNCHRONOUS`` mode with a synth callback that
collects the samples and the ``espeakEVENT_WORD`` events; each word event carries the sample
at which the word starts (``event.sample``, counted from the start of the ``espeak_Synth``
call), so word starts are sample-exact without any recognition.

eSpeak NG keeps its state in process globals (one voice, one callback, one set of
parameters), so a process can run one synthesis at a time. :class:`EspeakEngine` either
serialises calls in this process with a lock (``workers=0``) or runs a pool of worker
processes, each with its own copy of the library, and spreads sentences over them.
"""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass

import espeakng_loader
import numpy as np
from vo_core.errors import FailedPrecondition

from vo_tts.engine import Engine, SentenceAudio, VoiceInfo, spans_from_marks, tokenize

log = logging.getLogger(__name__)

# From espeak-ng's speak_lib.h.
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INITIALIZE_DONT_EXIT = 0x8000  # report errors instead of calling exit()
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_ENDPAUSE = 0x1000  # keep the sentence-final pause; we join sentences ourselves
_RATE = 1
_PITCH = 3
_BUFFER_MS = 1000  # longer callback buffers mean fewer Python callbacks per sentence


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),  # 1-based character (code point) index in the text
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # milliseconds: too coarse, we use sample
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),
    ]


class _Voice(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p),
        # Pairs of (priority byte, NUL-terminated language), ended by a 0 byte: not a C string.
        ("languages", ctypes.c_void_p),
        ("identifier", ctypes.c_char_p),
        ("gender", ctypes.c_ubyte),
        ("age", ctypes.c_ubyte),
        ("variant", ctypes.c_ubyte),
        ("xx1", ctypes.c_ubyte),
        ("score", ctypes.c_int),
        ("spare", ctypes.c_void_p),
    ]


_Callback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


@dataclass(frozen=True, slots=True)
class _EspeakVoice:
    info: VoiceInfo
    identifier: str  # what espeak_SetVoiceByName loads, such as "gmw/en-US"


def bcp47(tag: str) -> str:
    """eSpeak's lower-case language names as BCP 47 (``en-gb-x-rp`` to ``en-GB-x-rp``)."""
    parts = tag.split("-")
    out = [parts[0]]
    private = False
    for p in parts[1:]:
        if p == "x":
            private = True
        if private:
            out.append(p)
        elif len(p) == 2 and p.isalpha():
            out.append(p.upper())
        elif len(p) == 4 and p.isalpha():
            out.append(p.title())
        else:
            out.append(p)
    return "-".join(out)


class _Library:
    """The loaded library in this process; callers hold :data:`_LOCK` around every call."""

    def __init__(self) -> None:
        lib = ctypes.CDLL(espeakng_loader.get_library_path())
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_Callback]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [
            ctypes.c_char_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_ListVoices.argtypes = [ctypes.c_void_p]
        lib.espeak_ListVoices.restype = ctypes.POINTER(ctypes.POINTER(_Voice))
        lib.espeak_Info.argtypes = [ctypes.c_void_p]
        lib.espeak_Info.restype = ctypes.c_char_p
        self.data_path = espeakng_loader.get_data_path()
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, _BUFFER_MS, self.data_path.encode(), _INITIALIZE_DONT_EXIT
        )
        if rate <= 0:
            raise FailedPrecondition(
                f"eSpeak NG failed to initialise with data at {self.data_path}"
            )
        self.lib = lib
        self.sample_rate = rate
        self.version = (lib.espeak_Info(None) or b"unknown").decode()
        # The callback writes into these; only one synthesis runs at a time (the lock).
        self._audio = bytearray()
        self._marks: list[tuple[int, int]] = []
        self._callback = _Callback(self._collect)  # kept referenced: C holds only a pointer
        lib.espeak_SetSynthCallback(self._callback)
        self._current_voice = ""

    def _collect(
        self, wav: ctypes._Pointer[ctypes.c_short], n: int, events: ctypes._Pointer[_Event]
    ) -> int:
        if wav and n > 0:
            self._audio += ctypes.string_at(wav, n * 2)
        i = 0
        while events[i].type != _EVENT_LIST_TERMINATED:
            event = events[i]
            if event.type == _EVENT_WORD:
                self._marks.append((event.text_position - 1, event.sample))
            i += 1
        return 0  # 0 continues synthesis

    def voices(self) -> list[_EspeakVoice]:
        """Every voice, named by its first language (what ``-v`` on the command line takes)."""
        found: dict[str, _EspeakVoice] = {}
        array = self.lib.espeak_ListVoices(None)
        i = 0
        while array[i]:
            v = array[i].contents
            languages = []
            p = v.languages
            while p and ctypes.string_at(p, 1) != b"\0":
                lang = ctypes.string_at(p + 1)
                languages.append(lang.decode())
                p += 2 + len(lang)
            i += 1
            if not languages or not v.identifier:
                continue
            name = languages[0].lower()
            if name in found:
                continue
            found[name] = _EspeakVoice(
                VoiceInfo(
                    name=name,
                    language=bcp47(name),
                    engine="espeak",
                    description=(v.name or b"").decode().strip(),
                ),
                v.identifier.decode(),
            )
        return sorted(found.values(), key=lambda ev: ev.info.name)

    def synth(self, text: str, identifier: str, rate: int, pitch: int) -> SentenceAudio:
        """Speak ``text``; return samples and one span per :func:`tokenize` word."""
        if identifier != self._current_voice:
            if self.lib.espeak_SetVoiceByName(identifier.encode()) != 0:
                raise FailedPrecondition(f"eSpeak NG could not load voice {identifier!r}")
            self._current_voice = identifier
        self.lib.espeak_SetParameter(_RATE, rate, 0)
        self.lib.espeak_SetParameter(_PITCH, pitch, 0)
        self._audio = bytearray()
        self._marks = []
        data = text.encode("utf-8")
        err = self.lib.espeak_Synth(
            data, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8 | _ENDPAUSE, None, None
        )
        if err != 0:
            raise FailedPrecondition(f"eSpeak NG failed to speak (error {err})")
        samples = np.frombuffer(bytes(self._audio), dtype="<i2").astype(np.int16)
        spans = spans_from_marks(tokenize(text), self._marks, samples, self.sample_rate)
        return SentenceAudio(samples, self.sample_rate, spans)


_LOCK = threading.Lock()
"""eSpeak NG is process-global state: one synthesis (or voice listing) at a time per process."""
_LIBRARY: _Library | None = None


def _library() -> _Library:
    """This process's library, loaded on first use; call with :data:`_LOCK` held."""
    global _LIBRARY
    if _LIBRARY is None:
        _LIBRARY = _Library()
    return _LIBRARY


def _synth_locked(text: str, identifier: str, rate: int, pitch: int) -> SentenceAudio:
    """Entry point in this process and in worker processes (it must be picklable by name)."""
    with _LOCK:
        return _library().synth(text, identifier, rate, pitch)


def _warm_up() -> int:
    """Load the library in a fresh worker so the first request does not pay for it."""
    with _LOCK:
        return _library().sample_rate


class EspeakEngine(Engine):
    """eSpeak NG, in this process behind a lock (``workers=0``) or in ``workers`` processes."""

    name = "espeak"

    def __init__(self, workers: int = 0, default_voice: str = "en-us") -> None:
        with _LOCK:
            lib = _library()
            self._voices = {v.info.name: v for v in lib.voices()}
            self._version = f"espeak-ng {lib.version}"
        self._default_voice = default_voice
        self.workers = workers
        self._pool: ProcessPoolExecutor | None = None
        if workers > 0:
            # "spawn", not fork: forking a process that runs gRPC threads can deadlock.
            ctx = multiprocessing.get_context("spawn")
            self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=ctx)
            for f in [self._pool.submit(_warm_up) for _ in range(workers)]:
                f.result()

    def version(self) -> str:
        """The library version, such as ``espeak-ng 1.52.0``."""
        return self._version

    def voices(self) -> list[VoiceInfo]:
        """Every installed eSpeak NG voice (variants excluded)."""
        return [v.info for v in self._voices.values()]

    def default_voice(self) -> str:
        """``en-us`` unless configured otherwise."""
        return self._default_voice

    def synthesize_sentence(self, text: str, voice: str, rate: int, pitch: int) -> SentenceAudio:
        """Speak one sentence, here or in a worker process."""
        identifier = self._voices[voice].identifier
        if self._pool is not None:
            return self._pool.submit(_synth_locked, text, identifier, rate, pitch).result()
        return _synth_locked(text, identifier, rate, pitch)

    def synthesize_sentences(
        self, sentences: Sequence[str], voice: str, rate: int, pitch: int
    ) -> Iterator[SentenceAudio]:
        """Speak sentences in order; with workers, keep each worker busy a sentence ahead."""
        if self._pool is None:
            yield from super().synthesize_sentences(sentences, voice, rate, pitch)
            return
        identifier = self._voices[voice].identifier
        pending: deque[Future[SentenceAudio]] = deque()
        todo = iter(sentences)
        try:
            for text in todo:
                pending.append(self._pool.submit(_synth_locked, text, identifier, rate, pitch))
                if len(pending) >= 2 * self.workers:
                    break
            while pending:
                result = pending.popleft().result()
                nxt = next(todo, None)
                if nxt is not None:
                    pending.append(self._pool.submit(_synth_locked, nxt, identifier, rate, pitch))
                yield result
        finally:
            for f in pending:  # a cancelled request leaves nothing queued behind it
                f.cancel()

    def close(self) -> None:
        """Stop worker processes."""
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None
