"""Readable cues from timed words: pure functions, no I/O.

Segmentation is a shortest-path problem over the gaps between words: a cue is an edge from
one gap to another, priced by how good its final break is (a sentence end beats a comma,
which beats the slot before a conjunction or preposition, which beats anywhere else), by
whether its text can be shown long enough to be read, and by a fixed price per cue so cues
come out reasonably full. Hard limits (characters per line, lines per cue, maximum duration)
decide which edges exist at all. Feasibility of the line limit is checked in O(1) per edge
with a greedy fill that depends only on the cue's first word, which keeps a 10-minute
transcript well under the 100 ms budget. Lines inside a chosen cue are then split by a small
exhaustive search that balances them and never leaves one word alone on a line when another
split exists. A final pass sets the display times: minimum duration, reading time, a minimum
gap and no overlaps.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from functools import cache, lru_cache

import numpy as np

from vo_subtitle.model import Cue, SegmentationRules, Word, validate_words

_CLOSERS = "'\"”’)]»"
_CLOSE = re.escape(_CLOSERS)
_SENTENCE_END = re.compile(rf"[.!?…][{_CLOSE}]*$")
_CLAUSE_END = re.compile(rf"([,;:]|--|[—–])[{_CLOSE}]*$")

# Words a line or cue should start with rather than end with: a break before them falls on a
# clause or phrase boundary ("... the house | and the garden").
BREAK_BEFORE = frozenset(
    [
        "and",
        "but",
        "or",
        "nor",
        "so",
        "yet",
        "because",
        "although",
        "though",
        "while",
        "whereas",
        "if",
        "unless",
        "until",
        "when",
        "whenever",
        "where",
        "wherever",
        "which",
        "who",
        "whom",
        "whose",
        "that",
        "whether",
        "since",
        "after",
        "before",
        "as",
        "than",
        "of",
        "in",
        "on",
        "at",
        "to",
        "from",
        "with",
        "without",
        "by",
        "about",
        "into",
        "onto",
        "over",
        "under",
        "between",
        "through",
        "during",
        "for",
        "against",
        "among",
        "across",
        "behind",
        "beyond",
        "toward",
        "towards",
        "upon",
        "within",
        "like",
    ]
)
# Words that should not end a line or cue: they lean on what follows ("the | house" is bad).
DANGLING = frozenset(
    [
        "a",
        "an",
        "the",
        "of",
        "to",
        "in",
        "on",
        "at",
        "for",
        "with",
        "by",
        "from",
        "and",
        "or",
        "but",
        "my",
        "your",
        "his",
        "her",
        "its",
        "our",
        "their",
        "this",
        "that",
        "these",
        "those",
        "is",
        "are",
        "was",
        "were",
        "be",
        "i",
        "we",
        "you",
        "he",
        "she",
        "they",
        "it's",
        "i'm",
    ]
)
# Full stops that do not end a sentence.
ABBREVIATIONS = frozenset(
    [
        "mr.",
        "mrs.",
        "ms.",
        "dr.",
        "st.",
        "vs.",
        "jr.",
        "sr.",
        "prof.",
        "e.g.",
        "i.e.",
        "no.",
        "fig.",
    ]
)

# Prices of the path search, in arbitrary units. A cue costs CUE_PRICE, so two cues must buy
# at least that much in better breaks to be preferred over one.
CUE_PRICE = 10.0
BREAK_PRICE = {"end": 0.0, "sentence": 0.0, "clause": 3.0, "phrase": 7.0, "word": 14.0}
DANGLING_PRICE = 6.0
PAUSE_BONUS_PER_SECOND = 8.0  # a pause in speech is a natural place to break
ONE_WORD_CUE_PRICE = 8.0
SHORT_CUE_FRACTION = 0.4  # of one full line; shorter cues flash by
SHORT_CUE_PRICE_PER_CHAR = 0.3
UNREADABLE_PRICE = 60.0  # a cue that cannot stay up long enough to be read
UNREADABLE_PRICE_PER_SECOND = 40.0
INNER_BREAK_WEIGHT = 0.7  # line breaks matter, a little less than cue breaks
ORPHAN_PRICE = 100.0  # one word alone on a line
IMBALANCE_PRICE_PER_CHAR = 0.35


def _strip(text: str) -> str:
    return text.strip(_CLOSERS + "([«¿¡").lower()


def break_kind(before: str, after: str | None) -> str:
    """What kind of boundary lies between the word ``before`` and the word ``after``."""
    if after is None:
        return "end"
    if _SENTENCE_END.search(before) and before.lower() not in ABBREVIATIONS:
        return "sentence"
    if _CLAUSE_END.search(before):
        return "clause"
    if _strip(after).rstrip(".,;:!?") in BREAK_BEFORE:
        return "phrase"
    return "word"


def _break_prices(texts: Sequence[str]) -> list[float]:
    """Price of ending a line or cue after word ``k - 1``, for k in 0..n (index 0 unused)."""
    n = len(texts)
    prices = [0.0] * (n + 1)
    for k in range(1, n + 1):
        before = texts[k - 1]
        kind = break_kind(before, texts[k] if k < n else None)
        price = BREAK_PRICE[kind]
        if kind in ("phrase", "word") and _strip(before).rstrip(".,;:!?") in DANGLING:
            price += DANGLING_PRICE
        prices[k] = price
    return prices


def segment(words: Sequence[Word], rules: SegmentationRules | None = None) -> list[Cue]:
    """Cut timed words into readable, non-overlapping cues, in time order.

    Raises :class:`~vo_core.errors.InvalidInput` when the words are empty, out of order or
    have negative durations.
    """
    rules = rules or SegmentationRules()
    validate_words(words)
    texts = [w.text.strip() for w in words]
    n = len(texts)
    maxc = rules.max_chars_per_line
    lengths = np.fromiter((len(t) for t in texts), dtype=np.int64, count=n)
    # prefix[k]: characters of words 0..k-1 with one space after each, so the text of words
    # i..j-1 is prefix[j] - prefix[i] - 1 characters long.
    prefix = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths + 1, out=prefix[1:])
    brk = np.asarray(_break_prices(texts))
    starts = np.fromiter((w.start for w in words), dtype=np.float64, count=n)
    ends = np.fromiter((w.end for w in words), dtype=np.float64, count=n)
    # Pause after word k-1, capped: a long silence is no better a break than a one-second one.
    pause = np.zeros(n + 1)
    pause[1:n] = np.clip(starts[1:] - ends[:-1], 0.0, 1.0)
    cost = _edge_costs(prefix, brk, pause, starts, ends, rules)

    # Shortest path over word gaps; each step is one vector operation over the band.
    width = cost.shape[1]
    best = np.full(n + 1 + width, np.inf)
    back = np.zeros(n + 1 + width, dtype=np.int64)
    best[0] = 0.0
    for i in range(n):
        cand = cost[i] + best[i]
        window = best[i + 1 : i + 1 + width]
        better = cand < window
        if better.any():
            window[better] = cand[better]
            back[i + 1 : i + 1 + width][better] = i

    bounds: list[tuple[int, int]] = []
    j = n
    while j > 0:
        i = int(back[j])
        bounds.append((i, j))
        j = i
    bounds.reverse()
    brk_list = brk.tolist()
    lines = [
        split_lines(tuple(texts[i:j]), tuple(brk_list[i + 1 : j]), maxc, rules.max_lines)
        for i, j in bounds
    ]
    return _timed_cues(words, bounds, lines, rules)


def _edge_costs(
    prefix: np.ndarray,
    brk: np.ndarray,
    pause: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    rules: SegmentationRules,
) -> np.ndarray:
    """Price of a cue of words i..i+d-1 at ``[i, d - 1]``; inf where a hard limit forbids it.

    All cues are priced at once over a band as wide as the most words that can fit in a cue,
    which is what makes segmentation of long transcripts fast.
    """
    n = len(starts)
    maxc = rules.max_chars_per_line
    width = min(n, rules.max_lines * (maxc + 1) // 2 + 1)
    i = np.arange(n)[:, None]
    d = np.arange(1, width + 1)[None, :]
    j = np.minimum(i + d, n)  # cue is words i..j-1; clipped entries are masked below
    inside = (i + d) <= n
    chars = prefix[j] - prefix[i] - 1

    # Greedy fill of max_lines lines from each i: how far any split can reach, and where the
    # last line can start at the latest. Greedy is optimal for "does it fit".
    reach = np.arange(n)
    last_start = reach.copy()
    for _ in range(rules.max_lines):
        last_start = reach
        limit = prefix[np.minimum(reach, n)] + maxc + 1
        reach = np.maximum(reach, np.searchsorted(prefix, limit, side="right") - 1)
        reach = np.minimum(reach, n)
    fits = (i + d <= reach[:, None]) | (d == 1)  # a too-long word still gets a cue of its own
    short_enough = (ends[j - 1] - starts[i] <= rules.max_duration) | (d == 1)
    allowed = inside & fits & short_enough

    total = CUE_PRICE + np.maximum(0.0, brk[j] - PAUSE_BONUS_PER_SECOND * pause[j])

    # A cue that needs a line break is charged for the best place its last line can start, so
    # a cue is not chosen whose lines can only be split mid-phrase.
    lo = np.maximum(np.searchsorted(prefix, prefix[j] - maxc - 1, side="left"), i + 1)
    hi = np.broadcast_to(last_start[:, None], lo.shape)
    has_inner = (chars > maxc) & (lo <= hi)
    total += np.where(has_inner, INNER_BREAK_WEIGHT * _range_min(brk, lo, hi, has_inner), 0.0)

    next_start = np.where(j < n, starts[np.minimum(j, n - 1)], np.inf)
    window = np.minimum(next_start - rules.min_gap - starts[i], rules.max_duration)
    need = np.maximum(rules.min_duration, chars / rules.max_chars_per_second)
    total += np.where(
        window < need, UNREADABLE_PRICE + UNREADABLE_PRICE_PER_SECOND * (need - window), 0.0
    )
    if n > 1:
        total += np.where(d == 1, ONE_WORD_CUE_PRICE, 0.0)
    short_chars = SHORT_CUE_FRACTION * maxc
    total += SHORT_CUE_PRICE_PER_CHAR * np.maximum(0.0, short_chars - chars)
    return np.where(allowed, total, np.inf)


def _range_min(values: np.ndarray, lo: np.ndarray, hi: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """min(values[lo..hi]) elementwise (both ends included), by a sparse table."""
    table = [values]
    span = 1
    while 2 * span <= len(values):
        prev = table[-1]
        table.append(np.minimum(prev[: len(prev) - span], prev[span:]))
        span *= 2
    lo = np.where(valid, lo, 0)
    hi = np.where(valid, hi, 0)
    level = np.floor(np.log2(hi - lo + 1)).astype(np.int64)
    out = np.zeros(lo.shape)
    for lvl in np.unique(level[valid]):
        mask = valid & (level == lvl)
        row = table[lvl]
        out[mask] = np.minimum(row[lo[mask]], row[hi[mask] - (1 << int(lvl)) + 1])
    return out


@lru_cache(maxsize=4096)
def split_lines(
    texts: tuple[str, ...], inner_breaks: tuple[float, ...], max_chars: int, max_lines: int
) -> tuple[str, ...]:
    """Split one cue's words into as few lines as fit, balanced, breaking at good places.

    ``inner_breaks[m - 1]`` is the price of breaking after word ``m - 1`` of the cue. Lines
    of one word are avoided whenever any other split fits.
    """
    k = len(texts)
    whole = " ".join(texts)
    if len(whole) <= max_chars or k == 1:
        return (whole,)
    lens = [len(t) for t in texts]

    def span(a: int, b: int) -> int:
        return sum(lens[a:b]) + (b - a - 1)

    # Fewest lines that fit, by greedy fill (optimal for the count).
    needed, pos = 0, 0
    while pos < k:
        end = pos + 1
        while end < k and span(pos, end + 1) <= max_chars:
            end += 1
        pos, needed = end, needed + 1
    n_lines = min(needed, max_lines)
    target = len(whole) / n_lines

    @cache
    def best_from(a: int, left: int) -> tuple[float, tuple[int, ...]]:
        if left == 1:
            width = span(a, k)
            over = max(0, width - max_chars)
            cost = 1000.0 * over + IMBALANCE_PRICE_PER_CHAR * abs(width - target)
            if k - a == 1 and k > n_lines:
                cost += ORPHAN_PRICE
            return cost, ()
        result: tuple[float, tuple[int, ...]] = (math.inf, ())
        for b in range(a + 1, k - left + 2):
            width = span(a, b)
            if width > max_chars and b > a + 1:
                break
            cost = 1000.0 * max(0, width - max_chars)
            cost += IMBALANCE_PRICE_PER_CHAR * abs(width - target) + inner_breaks[b - 1]
            if b - a == 1 and k > n_lines:
                cost += ORPHAN_PRICE
            rest, cuts = best_from(b, left - 1)
            if cost + rest < result[0]:
                result = (cost + rest, (b, *cuts))
        return result

    _, cuts = best_from(0, n_lines)
    edges = [0, *cuts, k]
    return tuple(" ".join(texts[a:b]) for a, b in itertools.pairwise(edges))


def _timed_cues(
    words: Sequence[Word],
    bounds: Sequence[tuple[int, int]],
    lines: Sequence[tuple[str, ...]],
    rules: SegmentationRules,
) -> list[Cue]:
    """Display times for each cue: long enough to read, never overlapping, gaps kept."""
    gap = rules.min_gap
    n = len(bounds)
    starts = [words[i].start for i, _ in bounds]
    cues: list[Cue] = []
    prev_end = -math.inf
    for c, ((i, j), cue_lines) in enumerate(zip(bounds, lines, strict=True)):
        chars = sum(len(line) for line in cue_lines) + len(cue_lines) - 1
        need = max(rules.min_duration, chars / rules.max_chars_per_second)
        start = max(starts[c], prev_end + gap)
        end = max(words[j - 1].end, start + need)
        end = min(end, start + rules.max_duration)
        if c + 1 < n:
            end = min(end, starts[c + 1] - gap)
        if end - start < need:
            # Show the cue a little before its first word rather than too briefly.
            lead = max(0.0, prev_end + gap) if c else 0.0
            start = max(lead, min(start, end - need))
        if end - start < rules.min_duration:
            # Still too short: hold it, and delay the next cue by what that costs.
            end = start + rules.min_duration
            if c + 1 < n:
                starts[c + 1] = max(starts[c + 1], end + gap)
        cues.append(Cue(lines=cue_lines, start=start, end=end, words=tuple(words[i:j])))
        prev_end = end
    return cues
