"""The offline extractive engine: the key sentences of the source, fitted to the target duration.

It never invents facts: every body sentence is a sentence of the source text. The steps:

1. :func:`split_sentences` splits the source, keeping abbreviations ("e.g.", "Dr.", "U.S."),
   initials and decimals whole.
2. :func:`extract_keywords` ranks key phrases with the YAKE features (casing, position,
   frequency, relatedness to context, spread over sentences; Campos et al., 2020).
3. :func:`rank_sentences` runs TextRank: PageRank over a TF-IDF cosine similarity graph of the
   sentences, personalised towards the lead and the topic, because news-style text puts its
   point first and the user's topic says which part of the source matters.
4. :func:`fit_to_duration` takes sentences best-first until the spoken length (hook and call to
   action included) lands within 15% of the target, and reads them in source order.
5. The hook is the best sentence's first clause, led by the topic; hashtags and visual hints
   come from the keywords.

Everything is deterministic: ties break by position, never by hash order.
"""

from __future__ import annotations

import functools
import math
import re
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from vo_core.errors import FailedPrecondition
from vo_core.progress import ProgressEvent
from vo_core.threads import CancelToken

from vo_script.engine import (
    FIT_TOLERANCE,
    EngineEvent,
    Script,
    ScriptRequest,
    Segment,
    count_words,
    join_script,
    spoken_seconds,
)

# A small English list: enough to keep function words out of keywords and the TF-IDF graph.
_STOPWORDS_TEXT = """
    a about above after again against all almost also although always am among an and another
    any are around as at be became because become been before being below between both but by
    can cannot could did do does doing done down during each either else enough even ever every
    few for from further get gets got had has have having he her here hers herself him himself
    his how however i if in into is it its itself just least less let like made make many may me
    might more most much must my myself near need neither never no nor not now of off often on
    once one only or other others our ours ourselves out over own per perhaps quite rather re
    really said same say says see seen several shall she should since so some something still
    such than that the their theirs them themselves then there therefore these they this those
    though through thus to too toward towards under until up upon us use used using very via
    was we well were what whatever when where whether which while who whom whose why will with
    within without would yet you your yours yourself yourselves s t ll ve d m
    found including new first last take takes took went go goes going come came put want
"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())

# Words followed by a period that do not end a sentence (lowercase, without the final period).
_ABBREVIATIONS_TEXT = """
    mr mrs ms dr prof sr jr st mt ft vs etc e.g i.e cf al approx est fig figs no nos vol vols
    pp ed eds inc ltd co corp dept univ gen gov sen rep rev capt col lt sgt jan feb mar apr jun
    jul aug sep sept oct nov dec mon tue wed thu fri sat sun u.s u.k u.n e.u a.m p.m ph.d
"""
ABBREVIATIONS = frozenset(_ABBREVIATIONS_TEXT.split())

VERSION = "extractive-1"

# Sentence end candidates: terminal punctuation, any closing quotes/brackets, then whitespace.
_TERMINAL = (".", "!", "?", "…", '"', "”", "’", "'", ")", ":", ";", ",")
_BULLET = re.compile(r"^(?:[-*•·–]|\d{1,2}[.)])\s+")
_END = re.compile(r"[.!?…]+[\"'”’)\]]*\s+")
_PARAGRAPH = re.compile(r"\n\s*\n")
_TOKEN = re.compile(r"[^\W_]+(?:['’\-][^\W_]+)*", re.UNICODE)
_NUMBER = re.compile(r"\d")
_CLAUSE = re.compile(r"[,;:—–]\s+|\s+-\s+")
# Transcripts often have no punctuation at all; past this many words a "sentence" is a chunk.
_MAX_SENTENCE_WORDS = 45
_MIN_SENTENCE_WORDS = 4
_DAMPING = 0.85


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``, in order.

    Paragraphs never run together. Within a paragraph, hard-wrapped lines are joined; a bullet
    line is a unit of its own, and a short unpunctuated first line of a longer paragraph is a
    heading and is dropped, since a heading read aloud without its section makes no sense.
    Unpunctuated runs (transcripts) are cut into pieces of at most 45 words.
    """
    sentences: list[str] = []
    headings: list[str] = []
    for paragraph in _PARAGRAPH.split(text.replace("\r\n", "\n")):
        lines = [ln.strip() for ln in paragraph.split("\n") if ln.strip()]
        # A wrapped line continues in lowercase; a heading is followed by a new sentence.
        if lines and _is_heading(lines[0]) and (len(lines) == 1 or not lines[1][:1].islower()):
            headings.append(lines.pop(0))
        block: list[str] = []
        for line in lines:
            if _BULLET.match(line):
                sentences.extend(_split_block(" ".join(block)))
                block = []
                sentences.extend(_split_block(_BULLET.sub("", line)))
            else:
                block.append(line)
        sentences.extend(_split_block(" ".join(block)))
    # Headings alone (a list of short notes) are all there is to work with.
    return [piece for s in (sentences or headings) for piece in _chunk_long(s)]


def _is_heading(line: str) -> bool:
    # Short, and either unpunctuated or a label ("Notes:").
    line = line.rstrip()
    return len(line.split()) <= 10 and (line.endswith(":") or not line.endswith(_TERMINAL))


def _split_block(block: str) -> list[str]:
    pieces: list[str] = []
    start = 0
    for m in _END.finditer(block):
        if _continues(block, m.start(), m.end()):
            continue
        piece = block[start : m.end()].strip()
        if piece:
            pieces.append(piece)
        start = m.end()
    rest = block[start:].strip()
    if rest:
        pieces.append(rest)
    return pieces


def _continues(block: str, end_start: int, next_start: int) -> bool:
    """True when the punctuation at ``end_start`` does not end the sentence."""
    if block[end_start] != ".":
        return False
    # The token just before the period: "e.g", "Dr", "J", "U.S".
    word_start = end_start
    while (
        word_start > 0
        and not block[word_start - 1].isspace()
        and block[word_start - 1] not in "(\"'“"
    ):
        word_start -= 1
    word = block[word_start:end_start].lower()
    if word in ABBREVIATIONS:
        # "etc." and "a.m." end sentences too; trust a capitalised, non-name next word less.
        return word not in {"etc", "a.m", "p.m"} or not _starts_upper(block, next_start)
    if len(word) == 1 and word.isalpha() and block[word_start].isupper():
        return True  # an initial: "J. K. Rowling"
    # A lowercase continuation means the period was not a full stop ("approx. five").
    return not _starts_upper(block, next_start) and block[next_start : next_start + 1].isalpha()


def _starts_upper(block: str, i: int) -> bool:
    j = i
    while j < len(block) and block[j] in "\"'“‘([":
        j += 1
    return j < len(block) and (block[j].isupper() or block[j].isdigit())


def _chunk_long(sentence: str) -> list[str]:
    words = sentence.split()
    if len(words) <= _MAX_SENTENCE_WORDS:
        return [sentence]
    # Even runs rather than 45 + a stub, so no piece is a fragment.
    n = math.ceil(len(words) / _MAX_SENTENCE_WORDS)
    size = math.ceil(len(words) / n)
    return [" ".join(words[i : i + size]) for i in range(0, len(words), size)]


def tokens(text: str) -> list[str]:
    """Word tokens of ``text`` as written."""
    return _TOKEN.findall(text)


@functools.lru_cache(maxsize=1 << 16)
def normalise(word: str) -> str:
    """A crude stem for grouping: lowercase, no possessive, no plain plural "s"."""
    w = word.lower().replace("’", "'")
    if w.endswith("'s"):
        w = w[:-2]
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is", "ous")):
        return w[:-1]
    return w


@functools.lru_cache(maxsize=1 << 16)
def _is_content(word: str) -> bool:
    w = word.lower()
    return len(w) > 2 and w not in STOPWORDS and not w.replace(".", "").isdigit()


# ---------------------------------------------------------------------------------------------
# Keywords (YAKE)


@dataclass(frozen=True, slots=True)
class Keyword:
    """A key phrase and its YAKE score (lower is more important)."""

    phrase: str
    score: float
    stems: tuple[str, ...]


def extract_keywords(
    sentences: Sequence[str], *, top: int = 12, max_words: int = 3
) -> list[Keyword]:
    """Key phrases of ``sentences``, best first, near-duplicates removed.

    Single-term score (YAKE): ``S(t) = Rel * Pos / (Case + Freq / Rel + Spread / Rel)``, and a
    phrase scores ``prod S(t) / (TF(phrase) * (1 + sum S(t)))``.
    """
    tf: Counter[str] = Counter()
    upper: Counter[str] = Counter()
    acronym: Counter[str] = Counter()
    where: defaultdict[str, list[int]] = defaultdict(list)
    left: defaultdict[str, list[str]] = defaultdict(list)
    right: defaultdict[str, list[str]] = defaultdict(list)
    phrases: Counter[tuple[str, ...]] = Counter()
    phrase_surface: defaultdict[tuple[str, ...], Counter[str]] = defaultdict(Counter)
    window = 2

    for si, sentence in enumerate(sentences):
        # Punctuation inside a sentence breaks phrases ("cities, bees" is not a phrase).
        for ci, chunk in enumerate(re.split(r"[,;:()\[\]\"“”—–]|\s-\s", sentence)):
            words = tokens(chunk)
            stems = [normalise(w) for w in words]
            for i, (w, st) in enumerate(zip(words, stems, strict=True)):
                if not _is_content(w):
                    continue
                tf[st] += 1
                where[st].append(si)
                if len(w) > 1 and w.isupper():
                    acronym[st] += 1
                elif w[0].isupper() and (ci, i) != (0, 0):
                    # Capitals that start a sentence say nothing; elsewhere they mark a name.
                    upper[st] += 1
                left[st].extend(stems[max(0, i - window) : i])
                right[st].extend(stems[i + 1 : i + 1 + window])
            for n in range(1, max_words + 1):
                for i in range(len(words) - n + 1):
                    gram = words[i : i + n]
                    # Unlike YAKE, no stopwords inside a phrase either: phrases become hashtags
                    # and hints, and "CultureOfWild" is no tag anyone searches for.
                    if not all(_is_content(g) for g in gram):
                        continue
                    if any(g.isdigit() for g in gram):
                        continue
                    key = tuple(stems[i : i + n])
                    phrases[key] += 1
                    shown = [g.lower() if (ci, i + k) == (0, 0) else g for k, g in enumerate(gram)]
                    phrase_surface[key][" ".join(shown)] += 1
    if not tf:
        return []

    counts = list(tf.values())
    mean_tf = statistics.fmean(counts)
    std_tf = statistics.pstdev(counts)
    max_tf = max(counts)
    n_sent = max(1, len(sentences))
    term_score: dict[str, float] = {}
    for st, f in tf.items():
        t_case = max(upper[st], acronym[st]) / (1.0 + math.log(f))
        t_pos = math.log(math.log(3.0 + statistics.median(where[st])))
        t_freq = f / (mean_tf + std_tf)
        dl = len(set(left[st])) / len(left[st]) if left[st] else 0.0
        dr = len(set(right[st])) / len(right[st]) if right[st] else 0.0
        t_rel = 1.0 + (dl + dr) * f / max_tf
        t_spread = len(set(where[st])) / n_sent
        term_score[st] = (t_rel * t_pos) / (t_case + t_freq / t_rel + t_spread / t_rel)

    # In a long text a term or phrase seen once is usually incidental (a place named in passing
    # in the lead would win on position and casing alone), so long texts need it to recur.
    min_tf = 2 if len(sentences) >= 8 else 1
    scored: list[tuple[float, str, tuple[str, ...]]] = []
    for key, f in phrases.items():
        if f < min_tf:
            continue
        inner = [term_score[s] for s in key if s in term_score]
        if not inner:
            continue
        score = math.prod(inner) / (f * (1.0 + sum(inner)))
        phrase = phrase_surface[key].most_common(1)[0][0]
        scored.append((score, phrase, key))
    scored.sort(key=lambda x: (x[0], x[1]))

    # YAKE's product favours single terms in long texts (term scores exceed 1 there); a term that
    # mostly occurs inside one recurring phrase ("wild" in "wild bees") is shown as that phrase.
    chosen: list[Keyword] = []
    for score, phrase, key in scored:
        if len(key) == 1:
            key, phrase = _expand(key[0], phrases, phrase_surface, min_tf)
        stems_set = set(key)
        if any(_similar(stems_set, set(k.stems)) for k in chosen):
            continue
        chosen.append(Keyword(phrase=phrase, score=score, stems=key))
        if len(chosen) >= top:
            break
    return chosen


def _expand(
    stem: str,
    phrases: Counter[tuple[str, ...]],
    surface: defaultdict[tuple[str, ...], Counter[str]],
    min_tf: int,
) -> tuple[tuple[str, ...], str]:
    alone = phrases[(stem,)]
    best: tuple[int, int, tuple[str, ...]] | None = None
    for key, f in phrases.items():
        if len(key) > 1 and stem in key and f >= max(min_tf, 2) and f >= 0.4 * alone:
            cand = (f, -len(key), key)
            if best is None or cand[:2] > best[:2] or (cand[:2] == best[:2] and key < best[2]):
                best = cand
    key = best[2] if best else (stem,)
    return key, surface[key].most_common(1)[0][0]


def _similar(a: set[str], b: set[str]) -> bool:
    # Same stems, or inside a phrase already chosen; "wild bees" after "bees" adds something.
    return a <= b


# ---------------------------------------------------------------------------------------------
# Sentence ranking (TextRank)


def rank_sentences(
    sentences: Sequence[str],
    *,
    topic: str = "",
    lead_bias: float = 0.35,
    token: CancelToken | None = None,
    max_iterations: int = 100,
) -> tuple[np.ndarray, int]:
    """PageRank scores of ``sentences`` over a TF-IDF cosine graph, and the iterations used.

    The teleport vector mixes a uniform prior with a lead prior (weight ``1/(1+position)``)
    and topic overlap, so ranking leans towards the opening and the user's topic without
    ignoring what the rest of the text keeps returning to.
    """
    n = len(sentences)
    if n == 0:
        return np.zeros(0), 0
    bags = [[normalise(w) for w in tokens(s) if _is_content(w)] for s in sentences]
    vocab: dict[str, int] = {}
    for bag in bags:
        for st in bag:
            vocab.setdefault(st, len(vocab))
    rows = np.fromiter((i for i, bag in enumerate(bags) for _ in bag), dtype=np.intp)
    cols = np.fromiter((vocab[st] for bag in bags for st in bag), dtype=np.intp)
    tfm = np.zeros((n, max(1, len(vocab))), dtype=np.float64)
    np.add.at(tfm, (rows, cols), 1.0)
    df = (tfm > 0).sum(axis=0)
    idf = np.log((1.0 + n) / (1.0 + df)) + 1.0
    tfidf = np.log1p(tfm) * idf
    norms = np.linalg.norm(tfidf, axis=1, keepdims=True)
    unit = np.divide(tfidf, norms, out=np.zeros_like(tfidf), where=norms > 0)
    sim = unit @ unit.T
    np.fill_diagonal(sim, 0.0)

    # Column-stochastic transition: a sentence passes its score along its similarity edges.
    out_weight = sim.sum(axis=1)
    dangling = out_weight == 0
    trans = np.divide(sim, out_weight[:, None], out=np.zeros_like(sim), where=~dangling[:, None])

    positions = np.arange(n, dtype=np.float64)
    lead = 1.0 / (1.0 + positions)
    lead /= lead.sum()
    topic_stems = {normalise(w) for w in tokens(topic) if _is_content(w)}
    if topic_stems:
        overlap = np.array([len(topic_stems & set(b)) for b in bags], dtype=np.float64)
    else:
        overlap = np.zeros(n)
    prior = np.full(n, 1.0 / n)
    prior = (1.0 - lead_bias) * prior + lead_bias * lead
    if overlap.sum() > 0:
        prior = 0.7 * prior + 0.3 * overlap / overlap.sum()

    # Row-major copy of the transpose in float32: the matrix-vector product is memory-bound,
    # so a contiguous half-size matrix makes each iteration about twice as fast.
    walk = np.ascontiguousarray(trans.T, dtype=np.float32)
    scores = np.full(n, 1.0 / n)
    iterations = 0
    for iterations in range(1, max_iterations + 1):  # noqa: B007 - the count is returned
        if token is not None:
            token.check()
        # Dangling sentences (no shared words) teleport their mass instead of losing it.
        leaked = scores[dangling].sum()
        spread = (walk @ scores.astype(np.float32)).astype(np.float64)
        new = _DAMPING * (spread + leaked * prior) + (1.0 - _DAMPING) * prior
        delta = float(np.abs(new - scores).sum())
        scores = new
        if delta < 1e-6:
            break
    return scores, iterations


# ---------------------------------------------------------------------------------------------
# Fitting and composing


def fit_to_duration(
    sentences: Sequence[str],
    order: Sequence[int],
    *,
    budget_words: float,
    fixed_words: int,
    tolerance: float = FIT_TOLERANCE,
) -> list[int]:
    """Indices of the chosen sentences, in source order.

    ``order`` is best-first. While the total (``fixed_words`` for hook and call to action plus
    the body) is under the target, a sentence is taken when the total stays under the target, or
    when overshooting (within the upper bound) lands closer to the target than stopping short;
    otherwise it is skipped for a shorter one further down the ranking.
    When the total still falls short of the lower bound, the shortest unused sentence that
    closes the gap is added even if it is ranked low.
    """
    lo, hi = budget_words * (1.0 - tolerance), budget_words * (1.0 + tolerance)
    total = float(fixed_words)
    chosen: list[int] = []
    lengths = [count_words(s) for s in sentences]
    for i in order:
        if total >= budget_words:
            break
        after = total + lengths[i]
        # Take it when it fits under the target, or overshoots by less than it would fall short.
        if after <= budget_words or (after <= hi and after - budget_words < budget_words - total):
            chosen.append(i)
            total = after
    if total < lo:
        unused = sorted((lengths[i], i) for i in order if i not in chosen)
        for length, i in unused:
            if total >= lo:
                break
            if total + length <= hi:
                chosen.append(i)
                total += length
    return sorted(chosen)


_CTA = {
    "upbeat": "Follow for more on {topic}!",
    "calm": "If this was useful, follow along for more on {topic}.",
    "serious": "Follow for more on {topic}.",
    "curious": "What would you add? Follow for more on {topic}.",
}
_CTA_DEFAULT = "Follow for more on {topic}."


def call_to_action(topic: str, tone: str) -> str:
    """A closing line; a template, so it adds no claims the source does not make."""
    return _CTA.get(tone.strip().lower(), _CTA_DEFAULT).format(topic=topic)


def make_hook(
    topic: str, best: str, keywords: Sequence[Keyword], ordinary: set[str] | None = None
) -> str:
    """The opening line: the best sentence's first clause, led by the topic when it lacks it."""
    clause = _CLAUSE.split(best, maxsplit=1)[0].strip().rstrip(".!?…,;:")
    if count_words(clause) < 5 or count_words(clause) > 18:
        clause = best.strip().rstrip(".!?…")
    # Too long for an opener: keep its first 16 words.
    words = clause.split()
    if len(words) > 16:
        clause = " ".join(words[:16]) + "…"
    clause_stems = {normalise(w) for w in tokens(clause)}
    lead = topic.strip() or (keywords[0].phrase if keywords else "")
    lead_stems = {normalise(w) for w in tokens(lead) if _is_content(w)}
    if lead and not lead_stems <= clause_stems:
        clause = f"{_capitalise(lead)}: {_lower_first(clause, ordinary or set())}"
    clause = _capitalise(clause)
    return clause if clause.endswith("…") else clause + "."


def hashtags(topic: str, keywords: Sequence[Keyword], *, limit: int = 6) -> list[str]:
    """CamelCase tags from the topic's content words and the keywords, deduplicated."""
    candidates: list[str] = []
    topic_words = [w for w in tokens(topic) if _is_content(w)]
    if 0 < len(topic_words) <= 3:
        candidates.append(" ".join(topic_words))
    candidates.extend(k.phrase for k in keywords)
    out: list[str] = []
    seen: set[str] = set()
    for phrase in candidates:
        tag = "".join(_camel(w) for w in tokens(phrase))
        tag = re.sub(r"[^\w]", "", tag)
        if not tag or tag.isdigit() or tag.lower() in seen:
            continue
        seen.add(tag.lower())
        out.append(tag)
        if len(out) >= limit:
            break
    return out


def visual_hint(sentence: str, keywords: Sequence[Keyword]) -> str:
    """What to show: the keywords this sentence mentions (else its own rarest words), and any figure."""
    stems = [normalise(w) for w in tokens(sentence)]
    stem_set = set(stems)
    found: list[str] = []
    covered: list[set[str]] = []
    # Longer phrases first, so "rooftop hives" is shown and a bare "hives" is not repeated.
    for k in sorted(keywords, key=lambda k: -len(k.stems)):
        stems_k = set(k.stems)
        if stems_k <= stem_set and not any(stems_k <= c for c in covered):
            found.append(k.phrase)
            covered.append(stems_k)
    found = found[:3]
    if not found:
        words = [w for w in tokens(sentence) if _is_content(w)]
        found = sorted(set(words), key=lambda w: (-len(w), w))[:2]
    hint = "B-roll of " + ", ".join(found) if found else "B-roll matching the narration"
    figures = re.findall(r"\d[\d,.]*\s?(?:%|percent|per cent|million|billion|thousand)?", sentence)
    figures = [f.strip().rstrip(".,") for f in figures if f.strip().rstrip(".,")]
    if figures:
        hint += f"; on-screen text: {figures[0]}"
    return hint


def _camel(word: str) -> str:
    if len(word) > 1 and word.isupper():
        return word
    return word[:1].upper() + word[1:].lower()


def _as_sentence(text: str) -> str:
    # Transcript chunks and bullets have no full stop; narration (and TTS prosody) wants one.
    text = _capitalise(text.strip())
    return (
        text
        if text.endswith(_TERMINAL[:4]) or text.endswith(('."', ".”", "?”", "!”"))
        else text + "."
    )


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def _lower_first(text: str, ordinary: set[str]) -> str:
    # Lowercase "City" when the source also writes "city", but never "NASA" or "Paris".
    first = text.split(" ", 1)[0]
    if first.istitle() and first.lower() in ordinary:
        return text[:1].lower() + text[1:]
    return text


def _title(topic: str, keywords: Sequence[Keyword]) -> str:
    if topic.strip():
        return _capitalise(topic.strip())
    return " ".join(_camel(w) for w in keywords[0].phrase.split()) if keywords else "Untitled"


# ---------------------------------------------------------------------------------------------
# The engine


class ExtractiveEngine:
    """Offline, deterministic script writer over source text; see the module docstring."""

    name = "extractive"
    version = VERSION
    model = ""

    def write(self, request: ScriptRequest, token: CancelToken) -> Iterator[EngineEvent]:
        """Rank, fit and compose; yields progress for "rank" and "fit", then the Script."""
        if not request.source_text.strip():
            raise FailedPrecondition(
                "the extractive engine needs source text (an article, notes or a transcript) "
                "and does not invent content; send source_text, or use engine 'openai' with "
                "VO_SCRIPT_OPENAI_BASE_URL and VO_SCRIPT_OPENAI_MODEL set"
            )
        sentences = split_sentences(request.source_text)
        yield ProgressEvent(
            stage="rank",
            fraction=0.1,
            steps_done=0,
            steps_total=len(sentences),
            message=f"split {len(sentences)} sentences",
        )
        token.check()
        keywords = extract_keywords(sentences)
        token.check()
        scores, iterations = rank_sentences(sentences, topic=request.topic, token=token)
        yield ProgressEvent(
            stage="rank",
            fraction=0.6,
            steps_done=len(sentences),
            steps_total=len(sentences),
            message=f"ranked {len(sentences)} sentences in {iterations} PageRank iterations",
        )

        lengths = [count_words(s) for s in sentences]
        # Fragments and run-ons make poor narration; rank them last rather than drop them,
        # so a terse source still yields something.
        usable = [_MIN_SENTENCE_WORDS <= n <= _MAX_SENTENCE_WORDS for n in lengths]
        order = sorted(range(len(sentences)), key=lambda i: (not usable[i], -scores[i], i))
        best = order[0]
        title = _title(request.topic, keywords)
        topic_phrase = request.topic.strip() or (keywords[0].phrase if keywords else "this")
        ordinary = {w for w in tokens(request.source_text) if w.islower()}
        hook = make_hook(request.topic, sentences[best], keywords, ordinary)
        cta = call_to_action(topic_phrase, request.tone)
        fixed = count_words(hook) + count_words(cta)
        # The hook already says the best sentence's point; the body starts from the next ones.
        body_order = [i for i in order if i != best]
        chosen = fit_to_duration(
            sentences, body_order, budget_words=request.target_words, fixed_words=fixed
        )
        segments = tuple(
            Segment(_as_sentence(sentences[i]), visual_hint(sentences[i], keywords)) for i in chosen
        )
        text = join_script(hook, segments, cta)
        seconds = spoken_seconds(text, request.words_per_minute)
        note = f"{len(segments)} sentences, {seconds:.1f} s at {request.words_per_minute} wpm"
        if seconds < request.target_seconds * (1.0 - FIT_TOLERANCE):
            note += f"; the source is too short to fill {request.target_seconds:g} s"
        # Fitting is one step (a short target may leave room for no body sentence at all).
        yield ProgressEvent(stage="fit", fraction=1.0, steps_done=1, steps_total=1, message=note)
        yield Script(
            title=title,
            hook=hook,
            segments=segments,
            call_to_action=cta,
            hashtags=tuple(hashtags(request.topic, keywords)),
            estimated_seconds=seconds,
            text=text,
            engine=self.name,
            keywords=tuple(k.phrase for k in keywords),
        )
