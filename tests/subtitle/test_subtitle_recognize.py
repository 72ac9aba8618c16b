"""Recognition and alignment on real recorded speech (LibriVox), and audio that is not speech."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from subtitle.subtitle_helpers import SPEECH, reference_words, utterance_spans, wer
from vo_core.errors import Cancelled, InvalidInput
from vo_core.progress import ProgressEvent
from vo_core.threads import CancelToken
from vo_subtitle.model import SegmentationRules
from vo_subtitle.recognize import (
    TranscribeOutcome,
    Transcript,
    align,
    load_audio,
    number_words,
    recognize,
    transcribe,
)


@pytest.fixture(scope="module")
def pcm() -> np.ndarray:
    """The speech sample as 16 kHz mono int16."""
    return load_audio(SPEECH)


@pytest.fixture(scope="module")
def recognised(pcm: np.ndarray) -> tuple[list[ProgressEvent], Transcript]:
    """Progress events and the transcript of recognising the sample (once per module)."""
    items = list(recognize(pcm))
    assert isinstance(items[-1], Transcript)
    return [i for i in items if isinstance(i, ProgressEvent)], items[-1]


@pytest.fixture(scope="module")
def aligned(pcm: np.ndarray) -> Transcript:
    """The reference script aligned to the sample."""
    items = list(align(pcm, " ".join(reference_words())))
    assert isinstance(items[-1], Transcript)
    return items[-1]


def test_audio_is_16k_mono(pcm: np.ndarray) -> None:
    assert pcm.dtype == np.int16 and pcm.ndim == 1
    assert len(pcm) / 16000 == pytest.approx(
        sum(e - s for s, e in utterance_spans()) + 1.25, abs=0.05
    )


def test_recognition_word_error_rate(recognised: tuple[list[ProgressEvent], Transcript]) -> None:
    _, transcript = recognised
    hypothesis = [w.text.lower() for w in transcript.words]
    # PocketSphinx's small English model gets about 3 words in 10 wrong on this reader.
    assert wer(reference_words(), hypothesis) < 0.45, transcript.text


def test_recognised_words_have_plausible_times(
    recognised: tuple[list[ProgressEvent], Transcript],
) -> None:
    _, transcript = recognised
    words = transcript.words
    assert len(words) > 40
    assert all(0 <= w.start < w.end <= transcript.audio_seconds + 0.01 for w in words)
    assert all(a.start <= b.start for a, b in itertools.pairwise(words))
    assert all(0.0 <= w.confidence <= 1.0 for w in words)
    durations = [w.end - w.start for w in words]
    assert 0.1 < float(np.median(durations)) < 0.6  # words of read speech, not frames or phrases


def test_recognition_reports_progress_per_chunk(
    recognised: tuple[list[ProgressEvent], Transcript],
) -> None:
    events, _ = recognised
    assert {e.stage for e in events} == {"transcribe"}
    assert events[-1].steps_done == events[-1].steps_total == 26  # one per second of audio
    assert len(events) >= 5
    fractions = [e.fraction for e in events]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_recognised_words_agree_with_alignment(
    recognised: tuple[list[ProgressEvent], Transcript], aligned: Transcript
) -> None:
    # Where recognition got a word right, it should be where the aligner put it.
    by_text: dict[str, list[float]] = {}
    for w in aligned.words:
        by_text.setdefault(w.text, []).append(w.start)
    close = 0
    matched = 0
    for w in recognised[1].words:
        if w.text in by_text:
            matched += 1
            close += min(abs(w.start - s) for s in by_text[w.text]) < 0.15
    assert matched > 30 and close / matched > 0.9


def test_alignment_times_every_script_word(aligned: Transcript) -> None:
    assert [w.text for w in aligned.words] == reference_words()
    assert all(
        a.end <= b.start + 1e-9 for a, b in zip(aligned.words, aligned.words[1:], strict=False)
    )


def test_alignment_puts_each_utterance_in_its_span(aligned: Transcript) -> None:
    # The sample is five utterances with silence between; each line of the script must land
    # inside its own utterance.
    lines = [line.split() for line in Path(SPEECH.with_suffix(".txt")).read_text().splitlines()]
    k = 0
    for words, (start, end) in zip(lines, utterance_spans(), strict=True):
        first, last = aligned.words[k], aligned.words[k + len(words) - 1]
        assert first.start >= start - 0.1 and last.end <= end + 0.15, (first, last, start, end)
        k += len(words)


def test_alignment_keeps_script_punctuation_and_spells_numbers(pcm: np.ndarray) -> None:
    script = "And Mr. John Dashwood had then leisure to consider, how much there might be"
    items = list(align(pcm[: int(16000 * 7.1)], script))
    transcript = items[-1]
    assert isinstance(transcript, Transcript)
    assert [w.text for w in transcript.words] == script.split()
    assert transcript.words[2].start == pytest.approx(0.63, abs=0.15)  # "John"
    assert number_words(1906) == ["one", "thousand", "nine", "hundred", "six"]


def test_out_of_dictionary_word_gets_time_between_neighbours(pcm: np.ndarray) -> None:
    utterance = pcm[
        int(16000 * 7.35) : int(16000 * 10.34)
    ]  # "he was not an ill disposed young man"
    items = list(align(utterance, "he was not an ill Zorblaxian young man"))
    transcript = items[-1]
    assert isinstance(transcript, Transcript)
    words = transcript.words
    odd = words[5]
    assert odd.text == "Zorblaxian" and odd.confidence == 0.0
    assert words[4].end <= odd.start + 1e-9 and odd.end <= words[6].start + 1e-9
    assert odd.end > odd.start


def test_digital_silence_is_handled() -> None:
    silence = np.zeros(16000 * 2, dtype=np.int16)
    transcript = list(recognize(silence))[-1]
    assert isinstance(transcript, Transcript) and len(transcript.words) <= 1


def test_cancel_stops_between_chunks(pcm: np.ndarray) -> None:
    token = CancelToken()
    steps = recognize(pcm, token)
    next(steps)
    token.cancel()
    with pytest.raises(Cancelled):
        list(steps)


def test_transcribe_segments_the_words() -> None:
    items = list(
        transcribe(SPEECH, " ".join(reference_words()), SegmentationRules(), CancelToken())
    )
    outcome = items[-1]
    assert isinstance(outcome, TranscribeOutcome)
    assert [w for c in outcome.cues for w in c.words] == list(outcome.transcript.words)
    assert {e.stage for e in items[:-1] if isinstance(e, ProgressEvent)} == {"align"}


def test_text_file_is_not_audio(tmp_path: Path) -> None:
    path = tmp_path / "notes.wav"
    path.write_text("this is a text file, not audio\n")
    with pytest.raises(InvalidInput, match="not an audio or video file"):
        load_audio(path)


def test_video_without_audio_is_refused(silent_video: Path) -> None:
    with pytest.raises(InvalidInput, match="has no audio stream"):
        load_audio(silent_video)


def test_video_soundtrack_is_extracted(speech_video: Path, pcm: np.ndarray) -> None:
    from_video = load_audio(speech_video)
    assert abs(len(from_video) - len(pcm)) < 16000 * 0.1


def test_script_of_unknown_words_only_is_refused(pcm: np.ndarray) -> None:
    with pytest.raises(InvalidInput, match="none of the script's words"):
        list(align(pcm[:16000], "Zorblaxian Qwxyzzy"))


def test_script_that_is_not_what_is_said_is_refused(pcm: np.ndarray) -> None:
    script = "the quick brown fox jumps over the lazy dog and runs into the forest far away " * 3
    with pytest.raises(InvalidInput, match="check that the script is what is said"):
        list(align(pcm[: 16000 * 3], script))
