"""What every script engine shares: the request, the Script it returns, validation and caching.

Engines are plain blocking generators (they know nothing of gRPC): they yield
:class:`~vo_core.progress.ProgressEvent` and :class:`Token` items and end with one
:class:`Script`. :func:`write_script` wraps any engine with the cache, so a repeated request
costs one lookup.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, TypeAlias

from vo_core.cache import cache_key
from vo_core.errors import InvalidInput
from vo_core.progress import ProgressEvent
from vo_core.threads import CancelToken

ENGINE_NAMES = ("extractive", "openai")
"""Every engine a request may name; the first is the default."""

DEFAULT_SECONDS = 30.0
DEFAULT_WPM = 165
MIN_SECONDS, MAX_SECONDS = 5.0, 600.0
# Outside this range speech is either a drone or unintelligible; a typo, not a wish.
MIN_WPM, MAX_WPM = 60, 400
MAX_TOPIC_CHARS = 500
FIT_TOLERANCE = 0.15
"""A fitted script's spoken duration lands within this fraction of the target."""

_WORD = re.compile(r"[^\W_]+(?:['’.\-][^\W_]+)*", re.UNICODE)
_LANGUAGE = re.compile(r"^[A-Za-z]{2,3}(?:-[A-Za-z0-9]{1,8})*$")


@dataclass(frozen=True, slots=True)
class ScriptRequest:
    """One request for a script, with defaults already applied."""

    topic: str = ""
    source_text: str = ""
    target_seconds: float = DEFAULT_SECONDS
    tone: str = ""
    language: str = "en"
    engine: str = ENGINE_NAMES[0]
    words_per_minute: int = DEFAULT_WPM

    @property
    def target_words(self) -> float:
        """How many words fill the target duration at the requested rate."""
        return self.target_seconds * self.words_per_minute / 60.0


@dataclass(frozen=True, slots=True)
class Segment:
    """One beat of the body: what the voice says and what the screen shows."""

    text: str
    visual_hint: str = ""


@dataclass(frozen=True, slots=True)
class Script:
    """A finished short-form script."""

    title: str
    hook: str
    segments: tuple[Segment, ...]
    call_to_action: str
    hashtags: tuple[str, ...]
    estimated_seconds: float
    text: str
    engine: str
    keywords: tuple[str, ...] = field(default=())
    """Key phrases the engine found, best first; not on the wire, kept for tests and hints."""

    def to_json(self) -> bytes:
        """A compact JSON form, used by the cache."""
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> Script:
        """The inverse of :meth:`to_json`."""
        raw: dict[str, Any] = json.loads(data)
        raw["segments"] = tuple(Segment(**s) for s in raw["segments"])
        raw["hashtags"] = tuple(raw["hashtags"])
        raw["keywords"] = tuple(raw.get("keywords", ()))
        return cls(**raw)


@dataclass(frozen=True, slots=True)
class Token:
    """The next piece of streamed model output (LLM engines only)."""

    text: str


EngineEvent: TypeAlias = ProgressEvent | Token | Script


class Engine(Protocol):
    """A script engine: a blocking generator of progress and tokens that ends with a Script."""

    name: str
    version: str
    """Bumped whenever the engine's output for the same input changes; part of the cache key."""

    @property
    def model(self) -> str:
        """The model behind the engine, or "" when there is none; part of the cache key."""
        ...

    def write(self, request: ScriptRequest, token: CancelToken) -> Iterator[EngineEvent]:
        """Write a script for ``request``; the last item is the Script."""
        ...


class ScriptCache(Protocol):
    """Bytes by key; :class:`vo_core.cache.Cache` satisfies it."""

    def get(self, key: str) -> bytes | None:
        """The stored bytes, or None."""
        ...

    def put(self, key: str, value: bytes) -> None:
        """Store ``value`` under ``key``."""
        ...


def count_words(text: str) -> int:
    """Spoken words in ``text``: runs of letters or digits, so "e.g." and "3.5" count once."""
    return len(_WORD.findall(text))


def spoken_seconds(text: str, words_per_minute: int) -> float:
    """How long ``text`` takes to say at ``words_per_minute``."""
    return count_words(text) * 60.0 / words_per_minute


def join_script(hook: str, segments: tuple[Segment, ...] | list[Segment], cta: str) -> str:
    """The whole voice-over: hook, body and call to action, one paragraph each."""
    parts = [hook, *(s.text for s in segments), cta]
    return "\n\n".join(p.strip() for p in parts if p.strip())


def validate_request(request: ScriptRequest, *, max_source_chars: int) -> None:
    """Raise :class:`InvalidInput` saying what to fix when ``request`` cannot be served."""
    if not request.topic.strip() and not request.source_text.strip():
        raise InvalidInput(
            "give a topic, source text (an article, notes or a transcript), or both; both are empty"
        )
    if len(request.topic) > MAX_TOPIC_CHARS:
        raise InvalidInput(
            f"topic is {len(request.topic):,} characters; keep it under {MAX_TOPIC_CHARS} "
            "and put longer material in source_text"
        )
    if len(request.source_text) > max_source_chars:
        raise InvalidInput(
            f"source text is {len(request.source_text):,} characters; the limit is "
            f"{max_source_chars:,} (VO_SCRIPT_MAX_SOURCE_CHARS); send an excerpt"
        )
    if not MIN_SECONDS <= request.target_seconds <= MAX_SECONDS:
        raise InvalidInput(
            f"target_duration must be between {MIN_SECONDS:g} and {MAX_SECONDS:g} seconds, "
            f"got {request.target_seconds:g} s"
        )
    if not MIN_WPM <= request.words_per_minute <= MAX_WPM:
        raise InvalidInput(
            f"words_per_minute must be between {MIN_WPM} and {MAX_WPM} "
            f"(or 0 for the default {DEFAULT_WPM}), got {request.words_per_minute}"
        )
    if request.engine not in ENGINE_NAMES:
        raise InvalidInput(
            f"unknown engine {request.engine!r}; valid engines: {', '.join(ENGINE_NAMES)}"
        )
    if not _LANGUAGE.match(request.language):
        raise InvalidInput(
            f"language {request.language!r} is not a BCP 47 tag; use one such as 'en' or 'pt-BR'"
        )


def script_cache_key(request: ScriptRequest, engine: Engine) -> str:
    """The cache key of a script: a hash of everything that changes it, engine version included."""
    return cache_key(
        "vo.script",
        request.topic,
        request.source_text,
        round(request.target_seconds, 3),
        request.tone,
        request.language,
        engine.name,
        engine.model,
        request.words_per_minute,
        engine.version,
    )


def write_script(
    engine: Engine,
    request: ScriptRequest,
    token: CancelToken,
    cache: ScriptCache | None = None,
) -> Iterator[EngineEvent]:
    """Run ``engine`` for ``request``, answering from ``cache`` when it can and filling it after."""
    key = script_cache_key(request, engine)
    if cache is not None:
        cached = cache.get(key)
        if cached is not None:
            try:
                script = Script.from_json(cached)
            except (ValueError, KeyError, TypeError):
                script = None  # an entry from an incompatible build; rewrite it below
            if script is not None:
                yield ProgressEvent(stage="cache", fraction=1.0, message="script from cache")
                yield script
                return
    script = None
    for event in engine.write(request, token):
        if isinstance(event, Script):
            script = event
        yield event
    if script is not None and cache is not None:
        cache.put(key, script.to_json())
