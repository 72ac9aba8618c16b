"""Content caches: an in-memory LRU (L1) in front of a disk cache (L2), both bounded in bytes.

Every step whose output is a pure function of its inputs (speech for a text, cues for a
script, a rendered clip) stores that output under :func:`cache_key` of its inputs, parameters
and engine version, so a retry or a resubmission skips finished work. Values are opaque bytes;
callers own their serialisation.

:class:`TieredCache` asks its tiers in order and copies a hit into the faster tiers before it,
so a value read from disk is served from memory next time. A Redis tier (L3) plugs in behind
the same :class:`CacheTier` interface when the system is scaled out. Each tier counts its own
hits and misses, which the services export as metrics.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from vo_core import metrics


def cache_key(*parts: object) -> str:
    """A hex sha256 naming a cache entry, from the parts that determine its value.

    Each part is written with its type and length before its bytes, so ``("ab", "c")`` and
    ``("a", "bc")`` (or ``1`` and ``"1"``) never collide. Parts may be ``bytes``, ``str``,
    numbers, ``bool``, ``None`` or (nested) tuples and lists of these.
    """
    h = hashlib.sha256()

    def feed(part: object) -> None:
        if isinstance(part, (list, tuple)):
            h.update(b"L%d:" % len(part))
            for item in part:
                feed(item)
            return
        if isinstance(part, bytes):
            tag, data = b"b", part
        elif isinstance(part, str):
            tag, data = b"s", part.encode("utf-8")
        elif isinstance(part, bool) or part is None:  # before int: bool is an int subclass
            tag, data = b"c", repr(part).encode()
        elif isinstance(part, (int, float)):
            tag, data = b"n", repr(part).encode()
        else:
            raise TypeError(
                f"cache_key parts must be bytes, str, numbers or sequences, not {part!r}"
            )
        h.update(tag + b"%d:" % len(data) + data)

    for part in parts:
        feed(part)
    return h.hexdigest()


@dataclass(frozen=True, slots=True)
class TierStats:
    """Counters of one cache tier."""

    name: str
    hits: int
    misses: int
    entries: int
    size_bytes: int
    max_bytes: int


class CacheTier(ABC):
    """One level of a cache: bytes by key, bounded in bytes, thread-safe."""

    name: str = "tier"

    def __init__(self) -> None:
        self.hits = 0
        self.misses = 0

    @abstractmethod
    def get(self, key: str) -> bytes | None:
        """The value stored under ``key``, or None (and count a hit or a miss)."""

    @abstractmethod
    def put(self, key: str, value: bytes) -> None:
        """Store ``value`` under ``key``, evicting the least recently used entries to fit."""

    @abstractmethod
    def stats(self) -> TierStats:
        """Current counters."""

    def _count(self, hit: bool) -> None:
        if hit:
            self.hits += 1
        else:
            self.misses += 1


class MemoryLRU(CacheTier):
    """An in-process LRU bounded by the total size of its values."""

    name = "memory"

    def __init__(self, max_bytes: int) -> None:
        super().__init__()
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> bytes | None:
        """The value, marked most recently used, or None."""
        with self._lock:
            value = self._items.get(key)
            if value is not None:
                self._items.move_to_end(key)
            self._count(value is not None)
            return value

    def put(self, key: str, value: bytes) -> None:
        """Store; a value larger than the whole budget is not kept at all."""
        if len(value) > self.max_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._size -= len(old)
            self._items[key] = value
            self._size += len(value)
            while self._size > self.max_bytes:
                _, evicted = self._items.popitem(last=False)
                self._size -= len(evicted)

    def stats(self) -> TierStats:
        """Current counters."""
        with self._lock:
            return TierStats(
                self.name, self.hits, self.misses, len(self._items), self._size, self.max_bytes
            )


class DiskCache(CacheTier):
    """Files under ``root/<key[:2]>/<key>``, bounded in bytes, evicted by last access.

    Writes go to a temporary name in the same folder and are renamed into place, so a reader
    (in this or another process) sees a whole value or none. The access time is set by hand
    on every hit (``os.utime``) because many file systems are mounted ``noatime``. The index
    of sizes and access times is rebuilt from the folder on start, so a restart keeps the cache.
    """

    name = "disk"

    def __init__(self, root: Path, max_bytes: int) -> None:
        super().__init__()
        self.root = root
        self.max_bytes = max_bytes
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._index: dict[str, tuple[int, float]] = {}  # key -> (size, last access)
        self._size = 0
        for path in self.root.glob("??/*"):
            if path.name.startswith(".") or not path.is_file():
                continue
            st = path.stat()
            self._index[path.name] = (st.st_size, st.st_mtime)
            self._size += st.st_size
        self._evict()

    def _path(self, key: str) -> Path:
        if len(key) < 3 or not all(c in "0123456789abcdef" for c in key):
            raise ValueError(f"disk cache keys are lowercase hex (from cache_key), not {key!r}")
        return self.root / key[:2] / key

    def get(self, key: str) -> bytes | None:
        """The value (its access time refreshed), or None."""
        path = self._path(key)
        try:
            value = path.read_bytes()
        except FileNotFoundError:
            with self._lock:
                self._forget(key)  # evicted by another process sharing the folder
                self._count(False)
            return None
        now = time.time()
        with contextlib.suppress(OSError):
            os.utime(path, (now, now))
        with self._lock:
            if key not in self._index:
                self._size += len(value)
            self._index[key] = (len(value), now)
            self._count(True)
        return value

    def put(self, key: str, value: bytes) -> None:
        """Store atomically; a value larger than the whole budget is not kept at all."""
        if len(value) > self.max_bytes:
            return
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{key}.{uuid.uuid4().hex[:12]}.partial")
        try:
            tmp.write_bytes(value)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        with self._lock:
            self._forget(key)
            self._index[key] = (len(value), time.time())
            self._size += len(value)
            self._evict()

    def _forget(self, key: str) -> None:
        old = self._index.pop(key, None)
        if old is not None:
            self._size -= old[0]

    def _evict(self) -> None:
        if self._size <= self.max_bytes:
            return
        # Sorting the whole index is O(n log n) but runs only when the budget is exceeded, and
        # then frees down to 90% so a full cache does not sort again on every put.
        target = self.max_bytes * 0.9
        for key, (_size, _atime) in sorted(self._index.items(), key=lambda kv: kv[1][1]):
            if self._size <= target:
                break
            with contextlib.suppress(OSError):
                (self.root / key[:2] / key).unlink()
            self._forget(key)

    def stats(self) -> TierStats:
        """Current counters."""
        with self._lock:
            return TierStats(
                self.name, self.hits, self.misses, len(self._index), self._size, self.max_bytes
            )


class Cache:
    """Bytes by key over one or more tiers, fastest first (L1 memory, L2 disk, ...).

    ``name`` (``"tts"``, ``"script"``, ...) labels this cache's hits and misses in the
    ``cache_requests_total`` metric.
    """

    def __init__(self, tiers: list[CacheTier], name: str = "cache") -> None:
        self.tiers = tiers
        self.name = name

    @classmethod
    def memory_and_disk(
        cls, memory_bytes: int, disk_root: Path | None, disk_bytes: int, name: str = "cache"
    ) -> Cache:
        """The embedded default: an L1 LRU, plus an L2 disk cache when a folder and budget are given."""
        tiers: list[CacheTier] = []
        if memory_bytes > 0:
            tiers.append(MemoryLRU(memory_bytes))
        if disk_root is not None and disk_bytes > 0:
            tiers.append(DiskCache(disk_root, disk_bytes))
        return cls(tiers, name)

    def get(self, key: str) -> bytes | None:
        """The value from the fastest tier that has it, copied into the faster tiers; or None."""
        for i, tier in enumerate(self.tiers):
            value = tier.get(key)
            metrics.record_cache(self.name, tier.name, value is not None)
            if value is not None:
                for faster in self.tiers[:i]:
                    faster.put(key, value)
                return value
        return None

    def put(self, key: str, value: bytes) -> None:
        """Store in every tier."""
        for tier in self.tiers:
            tier.put(key, value)

    def stats(self) -> list[TierStats]:
        """Counters of every tier, fastest first."""
        return [tier.stats() for tier in self.tiers]
