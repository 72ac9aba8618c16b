"""The extractive engine, tested directly: splitting, keywords, ranking, fitting, caching."""

from __future__ import annotations

import re

import pytest
from script.script_helpers import ARTICLE
from vo_core.errors import Cancelled, FailedPrecondition, InvalidInput
from vo_core.progress import ProgressEvent
from vo_core.threads import CancelToken
from vo_script.engine import (
    Script,
    ScriptRequest,
    count_words,
    script_cache_key,
    validate_request,
    write_script,
)
from vo_script.extractive import (
    STOPWORDS,
    ExtractiveEngine,
    extract_keywords,
    normalise,
    rank_sentences,
    split_sentences,
    tokens,
)
from vo_script.openai_engine import OpenAIConfig, OpenAIEngine


def run(request: ScriptRequest) -> tuple[list[ProgressEvent], Script]:
    events = list(ExtractiveEngine().write(request, CancelToken()))
    script = events[-1]
    assert isinstance(script, Script)
    return [e for e in events if isinstance(e, ProgressEvent)], script


# --- splitting --------------------------------------------------------------------------------


def test_split_keeps_abbreviations_decimals_and_initials_whole() -> None:
    text = (
        "Dr. Smith met J. K. Rowling at 3.30 p.m. on Friday. They talked about e.g. owls, "
        "i.e. birds, for 2.5 hours! Was it fun? Prof. Jones said approx. five people came. "
        "The U.S. team won."
    )
    assert split_sentences(text) == [
        "Dr. Smith met J. K. Rowling at 3.30 p.m. on Friday.",
        "They talked about e.g. owls, i.e. birds, for 2.5 hours!",
        "Was it fun?",
        "Prof. Jones said approx. five people came.",
        "The U.S. team won.",
    ]


def test_split_handles_quotes_paragraphs_bullets_and_headings() -> None:
    text = (
        "A Heading Without A Stop\n"
        'She said "it works." Then she left.\n\n'
        "Notes:\n"
        "- first point about hives\n"
        "- second point about flowers\n\n"
        "A hard-wrapped sentence that\ncontinues on the next line."
    )
    assert split_sentences(text) == [
        'She said "it works."',
        "Then she left.",
        "first point about hives",
        "second point about flowers",
        "A hard-wrapped sentence that continues on the next line.",
    ]


def test_split_cuts_unpunctuated_transcripts_into_even_pieces() -> None:
    words = " ".join(f"word{i}" for i in range(100))
    pieces = split_sentences(words)
    assert len(pieces) == 3
    assert all(30 <= len(p.split()) <= 45 for p in pieces)
    assert " ".join(pieces) == words


def test_the_article_splits_into_real_sentences() -> None:
    sentences = split_sentences(ARTICLE)
    assert 40 <= len(sentences) <= 50
    # The title line is a heading and is not narrated.
    assert not any(s.startswith("Rooftop Hives Are Changing") for s in sentences)
    assert "Companies install them as a sustainability gesture, e.g. on hotels" in " ".join(
        sentences
    )
    assert any(s.startswith("Dr. Alison Reed") for s in sentences)
    assert any("1.5 hectares" in s for s in sentences)


# --- keywords and ranking ---------------------------------------------------------------------


def test_keywords_are_the_articles_subjects() -> None:
    keywords = extract_keywords(split_sentences(ARTICLE))
    phrases = [k.phrase.lower() for k in keywords]
    top5 = set(phrases[:5])
    assert {"hives", "flowers", "bees"} <= top5, phrases
    assert "pollinators" in phrases
    for phrase in phrases:
        words = phrase.split()
        assert words[0] not in STOPWORDS and words[-1] not in STOPWORDS, phrase
    # Scores are YAKE's: lower is better, so they come out ascending.
    scores = [k.score for k in keywords]
    assert scores == sorted(scores)
    assert len(set(phrases)) == len(phrases)


def test_pagerank_prefers_central_sentences_and_leans_on_the_topic() -> None:
    sentences = split_sentences(ARTICLE)
    plain, iterations = rank_sentences(sentences)
    assert 1 < iterations < 100
    assert abs(plain.sum() - 1.0) < 1e-6
    best = sentences[int(plain.argmax())]
    assert re.search(r"bee|pollinator|hive|flower", best, re.I)
    # Naming Berlin's verges as the topic pulls that paragraph up the ranking.
    biased, _ = rank_sentences(sentences, topic="Berlin road verges wildflower strips")
    berlin = next(i for i, s in enumerate(sentences) if s.startswith("Berlin has converted"))
    assert biased[berlin] > plain[berlin]
    assert (biased > biased[berlin]).sum() < (plain > plain[berlin]).sum()


# --- the whole engine -------------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [15, 30, 45, 60, 90])
@pytest.mark.parametrize("wpm", [130, 165, 200])
def test_spoken_duration_lands_within_15_percent_of_the_target(seconds: int, wpm: int) -> None:
    _, script = run(
        ScriptRequest(
            topic="urban beekeeping",
            source_text=ARTICLE,
            target_seconds=seconds,
            words_per_minute=wpm,
        )
    )
    spoken = count_words(script.text) * 60 / wpm
    assert script.estimated_seconds == pytest.approx(spoken)
    assert abs(spoken - seconds) <= 0.15 * seconds, (seconds, wpm, spoken)


def test_script_is_built_from_the_source_and_reads_in_order() -> None:
    events, script = run(ScriptRequest(topic="urban beekeeping", source_text=ARTICLE))
    assert script.engine == "extractive"
    assert script.title == "Urban beekeeping"
    assert script.hook.startswith("Urban beekeeping: ")
    assert script.call_to_action == "Follow for more on urban beekeeping."
    sentences = split_sentences(ARTICLE)
    positions = [sentences.index(s.text) for s in script.segments]
    assert positions == sorted(positions), "segments keep the source's order"
    assert script.text == "\n\n".join(
        [script.hook, *(s.text for s in script.segments), script.call_to_action]
    )
    for seg in script.segments:
        assert seg.visual_hint.startswith("B-roll of ")
    assert [e.stage for e in events] == ["rank", "rank", "fit"]
    fractions = [e.fraction for e in events]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_hashtags_are_camel_case_unique_and_from_keywords() -> None:
    _, script = run(ScriptRequest(topic="urban beekeeping", source_text=ARTICLE))
    tags = script.hashtags
    assert tags[0] == "UrbanBeekeeping"
    assert 3 <= len(tags) <= 6
    assert len({t.lower() for t in tags}) == len(tags)
    for tag in tags:
        assert re.fullmatch(r"[A-Z][A-Za-z0-9]*", tag), tag
    assert {"Hives", "Bees", "Flowers"} & set(tags)


def test_visual_hints_name_the_segments_keywords_and_figures() -> None:
    _, script = run(ScriptRequest(topic="urban beekeeping", source_text=ARTICLE, target_seconds=90))
    for seg in script.segments:
        named = seg.visual_hint.removeprefix("B-roll of ").split(";")[0].split(", ")
        stems = {normalise(w) for w in tokens(seg.text)}
        for phrase in named:
            assert {normalise(w) for w in phrase.split()} <= stems, (phrase, seg.text)
    with_figures = [s for s in script.segments if re.search(r"\d", s.text)]
    assert with_figures and all("on-screen text:" in s.visual_hint for s in with_figures)


def test_output_is_deterministic() -> None:
    request = ScriptRequest(topic="urban beekeeping", source_text=ARTICLE, target_seconds=45)
    first = run(request)[1]
    for _ in range(3):
        assert run(request)[1].to_json() == first.to_json()


def test_without_a_topic_the_keywords_lead() -> None:
    _, script = run(ScriptRequest(source_text=ARTICLE))
    assert script.title and script.title != "Untitled"
    assert script.call_to_action.startswith("Follow for more on ")


def test_a_short_source_says_it_cannot_fill_the_target() -> None:
    source = "Bees need flowers to survive. Cities have too few flowers for the many hives."
    events, script = run(ScriptRequest(topic="bees", source_text=source, target_seconds=60))
    assert script.estimated_seconds < 60 * 0.85
    assert "too short to fill 60 s" in events[-1].message


def test_without_source_text_it_refuses_to_invent() -> None:
    with pytest.raises(FailedPrecondition, match=r"needs source text.*VO_SCRIPT_OPENAI_BASE_URL"):
        run(ScriptRequest(topic="urban beekeeping"))


def test_cancellation_stops_the_engine() -> None:
    token = CancelToken()
    token.cancel()
    with pytest.raises(Cancelled):
        list(ExtractiveEngine().write(ScriptRequest(topic="x", source_text=ARTICLE), token))


def test_a_large_source_is_handled() -> None:
    big = "\n\n".join([ARTICLE] * 40)  # about 190,000 characters, near the default limit
    assert len(big) < 200_000
    _, script = run(ScriptRequest(topic="urban beekeeping", source_text=big, target_seconds=30))
    assert abs(script.estimated_seconds - 30) <= 4.5


# --- caching ----------------------------------------------------------------------------------


class DictCache:
    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    def get(self, key: str) -> bytes | None:
        return self.data.get(key)

    def put(self, key: str, value: bytes) -> None:
        self.data[key] = value


def test_cache_serves_a_repeated_request() -> None:
    cache = DictCache()
    engine = ExtractiveEngine()
    request = ScriptRequest(topic="urban beekeeping", source_text=ARTICLE)
    first = list(write_script(engine, request, CancelToken(), cache))
    assert len(cache.data) == 1
    second = list(write_script(engine, request, CancelToken(), cache))
    assert isinstance(second[0], ProgressEvent) and second[0].stage == "cache"
    assert second[-1] == first[-1]


def test_cache_key_covers_every_input() -> None:
    engine = ExtractiveEngine()
    base = ScriptRequest(topic="t", source_text="s")
    variants = [
        ScriptRequest(topic="t2", source_text="s"),
        ScriptRequest(topic="t", source_text="s2"),
        ScriptRequest(topic="t", source_text="s", target_seconds=31),
        ScriptRequest(topic="t", source_text="s", tone="calm"),
        ScriptRequest(topic="t", source_text="s", language="fr"),
        ScriptRequest(topic="t", source_text="s", words_per_minute=150),
    ]
    keys = {script_cache_key(r, engine) for r in [base, *variants]}
    # The engine's name, model and version are part of the key too.
    keys.add(script_cache_key(base, OpenAIEngine(OpenAIConfig(model="a"))))
    keys.add(script_cache_key(base, OpenAIEngine(OpenAIConfig(model="b"))))
    assert len(keys) == len(variants) + 3
    assert re.fullmatch(r"[0-9a-f]{64}", script_cache_key(base, engine))


# --- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        (ScriptRequest(), "give a topic, source text"),
        (ScriptRequest(topic="   ", source_text="\n"), "both are empty"),
        (ScriptRequest(topic="x", source_text="a" * 200_001), "limit is 200,000"),
        (ScriptRequest(topic="x", target_seconds=4.9), "between 5 and 600 seconds, got 4.9 s"),
        (ScriptRequest(topic="x", target_seconds=601), "between 5 and 600 seconds"),
        (ScriptRequest(topic="x", target_seconds=-3), "between 5 and 600 seconds"),
        (
            ScriptRequest(topic="x", engine="gpt"),
            "unknown engine 'gpt'; valid engines: extractive, openai",
        ),
        (ScriptRequest(topic="x", words_per_minute=-5), "words_per_minute must be between"),
        (ScriptRequest(topic="x", words_per_minute=1000), "words_per_minute must be between"),
        (ScriptRequest(topic="x", language="english please"), "not a BCP 47 tag"),
        (ScriptRequest(topic="x" * 501), "keep it under 500"),
    ],
)
def test_bad_requests_say_what_to_fix(request_: ScriptRequest, message: str) -> None:
    with pytest.raises(InvalidInput, match=re.escape(message)):
        validate_request(request_, max_source_chars=200_000)
