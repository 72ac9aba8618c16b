"""The engine-side logic, without gRPC: text splitting, word spans, encoders, the cache."""

from __future__ import annotations

import io
import time
from pathlib import Path

import numpy as np
import pytest
from vo_core.cache import Cache, DiskCache, MemoryLRU, cache_key
from vo_core.threads import CancelToken
from vo_tts import audio
from vo_tts.engine import (
    AudioFormat,
    Speech,
    SynthesisRequest,
    Synthesizer,
    TextWord,
    TimedWord,
    VoiceInfo,
    spans_from_marks,
    speech_end,
    split_sentences,
    tokenize,
)
from vo_tts.espeak import EspeakEngine, bcp47
from vo_tts.piper import marks_from_phonemes

SR = 22050


def tone(seconds: float, freq: float = 220.0, amp: float = 0.3) -> np.ndarray:
    t = np.arange(round(seconds * SR)) / SR
    return (np.sin(2 * np.pi * freq * t) * amp * 32767).astype(np.int16)


def silence(seconds: float) -> np.ndarray:
    return np.zeros(round(seconds * SR), np.int16)


# -- text ---------------------------------------------------------------------------------------


def test_tokenize_attaches_lone_punctuation() -> None:
    words = tokenize("Well — it works… right ?")
    assert [w.text for w in words] == ["Well —", "it", "works…", "right ?"]
    assert words[0].start_char == 0 and words[1].start_char == 7


def test_split_sentences_on_marks_and_lines() -> None:
    text = 'He said "stop." Then left!  Why?\nA new line\n\n... \nEnd'
    assert split_sentences(text) == ['He said "stop."', "Then left!", "Why?", "A new line", "End"]


def test_split_sentences_cuts_long_runs_at_clause_marks() -> None:
    text = ", ".join(["word " * 10] * 20)
    pieces = split_sentences(text, max_chars=120)
    assert all(len(p) <= 120 for p in pieces)
    assert " ".join(pieces).split() == text.split()


# -- word spans ---------------------------------------------------------------------------------


def test_speech_end_trims_the_trailing_pause() -> None:
    samples = np.concatenate([tone(0.3), silence(0.2)])
    end = speech_end(samples, 0, len(samples), SR)
    assert abs(end / SR - 0.3) < 0.006


def test_spans_split_merged_words_by_characters() -> None:
    # "of the" spoken under one mark, as eSpeak does: the pair shares its span 2:3.
    samples = np.concatenate([tone(0.5), silence(0.1), tone(0.3)])
    words = tokenize("of the cat")
    marks = [(0, 0), (7, round(0.6 * SR))]
    spans = spans_from_marks(words, marks, samples, SR)
    assert len(spans) == 3
    (s0, e0), (s1, e1), (s2, e2) = spans
    assert s0 == 0 and e0 == s1
    assert abs(e0 / SR - 0.2) < 0.01  # 2 of 5 letters of the 0.5 s of sound
    assert abs(e1 / SR - 0.5) < 0.006  # the pause after "the" is trimmed
    assert s2 == round(0.6 * SR) and abs(e2 / SR - 0.9) < 0.006


def test_spans_take_the_first_of_several_marks_in_a_word() -> None:
    samples = tone(1.0)
    words = tokenize("12,345 items")
    marks = [(0, 0), (1, 2000), (3, 5000), (7, 15000)]
    assert [s for s, _ in spans_from_marks(words, marks, samples, SR)] == [0, 15000]


def test_marks_from_phonemes_groups_at_word_separators() -> None:
    words = tokenize("Hi there.")
    alignments = [
        ("^", 100),
        ("h", 50),
        ("a", 60),
        ("ɪ", 40),
        (" ", 30),
        ("ð", 20),
        ("ɛ", 70),
        (".", 90),
        ("$", 10),
    ]
    assert marks_from_phonemes(words, alignments) == [(0, 100), (3, 280)]


def test_marks_from_phonemes_spreads_expanded_words() -> None:
    # "12 cats": the number is spoken as two words, so three phoneme words for two written.
    words = tokenize("12 cats")
    alignments = [("t", 10), ("w", 10), (" ", 5), ("f", 10), (" ", 5), ("k", 10), ("æ", 10)]
    marks = marks_from_phonemes(words, alignments)
    spans = spans_from_marks(words, marks, tone(0.01), SR)
    assert [s for s, _ in spans] == [0, 40]


# -- voices and requests ------------------------------------------------------------------------


def test_bcp47() -> None:
    assert bcp47("en-us") == "en-US"
    assert bcp47("en-gb-x-rp") == "en-GB-x-rp"
    assert bcp47("cmn-latn-pinyin") == "cmn-Latn-pinyin"


def test_espeak_voices_include_english() -> None:
    voices = {v.name: v for v in EspeakEngine().voices()}
    assert voices["en-us"].language == "en-US"
    assert voices["en-us"].description == "English (America)"
    assert len(voices) > 50


def test_cancel_stops_between_sentences() -> None:
    synth = Synthesizer([EspeakEngine()])
    token = CancelToken()
    events = synth.synthesize(SynthesisRequest(text="One. Two. Three. Four."), token)
    next(events)
    token.cancel()
    with pytest.raises(Exception, match="cancelled"):
        list(events)


def test_speech_round_trips_through_bytes() -> None:
    voice = VoiceInfo("en-us", "en-US", "espeak", "English (America)")
    speech = Speech(
        b"RIFF", AudioFormat.WAV, "audio/wav", 22050, 1.5, [TimedWord("hi", 0.1, 0.4)], voice
    )
    back = Speech.from_bytes(speech.to_bytes())
    assert back.cached and back.words == speech.words and back.voice == voice
    assert back.audio == b"RIFF" and back.duration == 1.5


# -- encoders -----------------------------------------------------------------------------------


def decode_with_av(data: bytes) -> tuple[np.ndarray, int, str]:
    av = pytest.importorskip("av")
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.audio[0]
        frames = [f.to_ndarray() for f in container.decode(stream)]
        return (
            np.concatenate(frames, axis=1)[0],
            stream.codec_context.sample_rate,
            stream.codec_context.name,
        )


@pytest.mark.parametrize("seconds", [0.0, 0.001, 0.1857, 2.0])
def test_flac_is_lossless(seconds: float) -> None:
    rng = np.random.default_rng(1)
    speechlike = tone(seconds) + (rng.normal(0, 300, round(seconds * SR))).astype(np.int16)
    if seconds >= 0.1:
        speechlike[: SR // 20] = 0  # a constant block
        speechlike[-200:] = rng.integers(-32768, 32767, 200)  # white noise: verbatim
    data = audio.encode_flac(speechlike, SR)
    if not len(speechlike):
        assert data.startswith(b"fLaC")
        return
    decoded, rate, codec = decode_with_av(data)
    assert codec == "flac" and rate == SR
    assert np.array_equal(
        (decoded if decoded.dtype == np.int16 else decoded >> 16).astype(np.int16), speechlike
    )
    if seconds >= 1:
        assert len(data) < 0.8 * len(audio.encode_wav(speechlike, SR))


def test_resample_keeps_a_tone_and_its_length() -> None:
    out = audio.resample(tone(1.0, 440.0), SR, 16000)
    assert len(out) == 16000
    spectrum = np.abs(np.fft.rfft(out.astype(np.float64)))
    assert abs(np.argmax(spectrum) - 440) <= 1
    assert 0.25 * 32767 < np.abs(out[100:-100]).max() < 0.35 * 32767


@pytest.mark.parametrize(("fmt", "codec", "rate"), [("aac", "aac", SR), ("opus", "opus", 48000)])
def test_lossy_formats_decode(fmt: str, codec: str, rate: int) -> None:
    pytest.importorskip("av")
    data, media_type = audio.encode(tone(1.0), SR, fmt)
    decoded, decoded_rate, decoded_codec = decode_with_av(data)
    assert decoded_codec == codec and decoded_rate == rate
    assert abs(len(decoded) / decoded_rate - 1.0) < 0.1
    assert media_type == audio.MEDIA_TYPES[fmt]


# -- cache --------------------------------------------------------------------------------------


def test_cache_key_separates_parts() -> None:
    assert cache_key("ab", "c") != cache_key("a", "bc")
    assert cache_key(1) != cache_key("1") != cache_key(True)
    assert cache_key("x", (1, 2)) == cache_key("x", [1, 2])
    assert len(cache_key(b"")) == 64


def test_memory_lru_evicts_least_recently_used_by_bytes() -> None:
    lru = MemoryLRU(max_bytes=10)
    lru.put("a", b"1234")
    lru.put("b", b"1234")
    assert lru.get("a") == b"1234"  # a is now the most recent
    lru.put("c", b"1234")  # 12 bytes > 10: b goes
    assert lru.get("b") is None and lru.get("a") and lru.get("c")
    lru.put("huge", b"x" * 11)
    assert lru.get("huge") is None
    stats = lru.stats()
    assert (stats.hits, stats.misses, stats.size_bytes) == (3, 2, 8)


def test_disk_cache_evicts_by_access_and_survives_restart(tmp_path: Path) -> None:
    disk = DiskCache(tmp_path, max_bytes=100)
    keys = [cache_key(i) for i in range(3)]
    disk.put(keys[0], b"a" * 40)
    time.sleep(0.01)
    disk.put(keys[1], b"b" * 40)
    time.sleep(0.01)
    assert disk.get(keys[0]) == b"a" * 40  # touch 0, so 1 is the oldest
    time.sleep(0.01)
    disk.put(keys[2], b"c" * 40)
    assert disk.get(keys[1]) is None
    assert not list(tmp_path.glob("**/.*partial"))  # no temporary files left behind
    again = DiskCache(tmp_path, max_bytes=100)
    assert again.get(keys[0]) == b"a" * 40 and again.get(keys[2]) == b"c" * 40
    assert again.stats().size_bytes == 80


def test_tiered_cache_promotes_disk_hits(tmp_path: Path) -> None:
    cache = Cache.memory_and_disk(1000, tmp_path, 1000)
    cache.put(cache_key("k"), b"value")
    fresh = Cache.memory_and_disk(1000, tmp_path, 1000)
    assert fresh.get(cache_key("k")) == b"value"  # from disk
    assert fresh.get(cache_key("k")) == b"value"  # now from memory
    memory, disk = fresh.stats()
    assert (memory.hits, memory.misses, disk.hits, disk.misses) == (1, 1, 1, 0)


def test_word_types_are_plain() -> None:
    assert TextWord("a", 0, 1).end_char == 1
