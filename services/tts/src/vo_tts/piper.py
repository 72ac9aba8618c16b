"""Piper neural voices from local ``.onnx`` models (optional: install ``piper-tts``).

Piper reports, per phoneme, how many samples it spoke (``AudioChunk.phoneme_alignments``,
available when the model was patched with ``python -m piper.patch_voice_with_alignment``).
:func:`marks_from_phonemes` groups those phonemes into words at Piper's word separator (the
space phoneme) and turns each group into a ``(character, sample)`` mark, so the same
:func:`~vo_tts.engine.spans_from_marks` as eSpeak's produces the word spans: merged and
split words, trimmed pauses and all.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from vo_core.errors import FailedPrecondition, InvalidInput

from vo_tts.engine import (
    PITCH_DEFAULT,
    RATE_DEFAULT,
    Engine,
    SentenceAudio,
    TextWord,
    VoiceInfo,
    spans_from_marks,
    tokenize,
)

WORD_SEPARATOR = " "
"""Piper's phoneme between words (its phonemizer is eSpeak NG's)."""
NON_SPEECH = frozenset('^$_.,;:!?¡¿—…"«»“”()-')
"""Phonemes that are not part of a word: sentence begin/end, padding, punctuation."""


def marks_from_phonemes(
    words: Sequence[TextWord], alignments: Sequence[tuple[str, int]]
) -> list[tuple[int, int]]:
    """``(character, sample)`` word marks from ``(phoneme, samples)`` alignments.

    When the phoneme words and the written words are equally many they pair one to one, and
    numbers, which are spoken as several words ("12,345"), take the surplus. Otherwise each
    phoneme word is placed at the character the same fraction of the way through the text as
    it is through the phonemes: approximate, but monotonic, which :func:`spans_from_marks`
    needs to share time out.
    """
    groups: list[tuple[int, int]] = []  # (first sample, phoneme count) of each phoneme word
    position = 0
    current: list[int] = []  # [first sample, count] of the word being read
    for phoneme, samples in alignments:
        if phoneme == WORD_SEPARATOR or phoneme in NON_SPEECH:
            if current:
                groups.append((current[0], current[1]))
                current = []
        elif current:
            current[1] += 1
        else:
            current = [position, 1]
        position += samples
    if current:
        groups.append((current[0], current[1]))
    if not words or not groups:
        return []
    per_word = _groups_per_word(words, len(groups))
    if per_word is not None:
        marks, k = [], 0
        for word, count in zip(words, per_word, strict=True):
            if count:
                marks.append((word.start_char, groups[k][0]))
            k += count
        return marks
    first_char, last_char = words[0].start_char, words[-1].end_char
    total = sum(count for _, count in groups)
    marks = []
    done = 0
    for start, count in groups:
        char = first_char + (last_char - first_char) * done / total
        marks.append((int(char), start))
        done += count
    return marks


def _groups_per_word(words: Sequence[TextWord], n_groups: int) -> list[int] | None:
    """How many phoneme words each written word became, when that can be told.

    One each when the counts agree. When there are more phoneme words, the surplus goes to
    the words with digits (numbers are what expand), the longest numbers first; None when
    no word has digits or there are fewer phoneme words than written ones.
    """
    extra = n_groups - len(words)
    if extra == 0:
        return [1] * len(words)
    digits = [sum(c.isdigit() for c in w.text) for w in words]
    if extra < 0 or not any(digits):
        return None
    counts = [1] * len(words)
    for _ in range(extra):
        i = max(range(len(words)), key=lambda k: digits[k] / counts[k])
        counts[i] += 1
    return counts


class PiperEngine(Engine):
    """Piper voices, one per model file; each loaded on first use and kept."""

    name = "piper"

    def __init__(self, model_paths: Sequence[Path]) -> None:
        self._models: dict[str, Path] = {}
        self._infos: dict[str, VoiceInfo] = {}
        self._loaded: dict[str, Any] = {}
        self._lock = threading.Lock()  # loading a model twice would double its memory
        for path in model_paths:
            config = _read_config(path)
            name = path.name.removesuffix(".onnx")
            language = (
                config.get("language", {}).get("code")
                or config.get("espeak", {}).get("voice")
                or "und"
            ).replace("_", "-")
            self._models[name] = path
            self._infos[name] = VoiceInfo(name, language, self.name, f"Piper voice {name}")

    def version(self) -> str:
        """The installed piper-tts version (model files are named in the cache key as voices)."""
        try:
            from importlib.metadata import version

            return f"piper-tts {version('piper-tts')}"
        except Exception:
            return "piper-tts (not installed)"

    def voices(self) -> list[VoiceInfo]:
        """One voice per configured model."""
        return list(self._infos.values())

    def default_voice(self) -> str:
        """The first configured model."""
        return next(iter(self._infos), "")

    def check_params(self, rate: int, pitch: int) -> None:
        """Piper voices have no pitch control."""
        if pitch != PITCH_DEFAULT:
            raise InvalidInput(f"pitch {pitch} is not supported by Piper voices; leave pitch at 0")

    def _voice(self, name: str) -> Any:
        with self._lock:
            if name not in self._loaded:
                try:
                    from piper import PiperVoice
                except ImportError:
                    raise FailedPrecondition(
                        "the piper engine needs the piper-tts package; install it in the TTS server"
                    ) from None
                self._loaded[name] = PiperVoice.load(self._models[name])
            return self._loaded[name]

    def synthesize_sentence(self, text: str, voice: str, rate: int, pitch: int) -> SentenceAudio:
        """Speak a sentence; the rate scales the model's phoneme durations."""
        from piper import SynthesisConfig

        model = self._voice(voice)
        base = getattr(model.config, "length_scale", 1.0) or 1.0
        config = SynthesisConfig(length_scale=base * RATE_DEFAULT / rate)
        chunks: list[np.ndarray] = []
        alignments: list[tuple[str, int]] = []
        sample_rate = 22050
        for chunk in model.synthesize(text, syn_config=config, include_alignments=True):
            if chunk.phoneme_alignments is None:
                raise FailedPrecondition(
                    f"Piper voice {voice} reports no phoneme alignments; patch the model with "
                    "`python -m piper.patch_voice_with_alignment MODEL.onnx`"
                )
            sample_rate = chunk.sample_rate
            pcm = np.clip(np.asarray(chunk.audio_float_array) * 32767.0, -32768, 32767)
            chunks.append(pcm.astype(np.int16))
            alignments += [(a.phoneme, int(a.num_samples)) for a in chunk.phoneme_alignments]
        samples = np.concatenate(chunks) if chunks else np.zeros(0, np.int16)
        words = tokenize(text)
        marks = marks_from_phonemes(words, alignments)
        return SentenceAudio(
            samples, sample_rate, spans_from_marks(words, marks, samples, sample_rate)
        )


def _read_config(model: Path) -> dict[str, Any]:
    """The voice's JSON config (``MODEL.onnx.json`` beside it), checked up front."""
    if not model.is_file():
        raise FailedPrecondition(f"Piper model {model} does not exist; fix VO_TTS_PIPER_MODELS")
    config_path = model.with_name(model.name + ".json")
    if not config_path.is_file():
        raise FailedPrecondition(f"Piper model {model} has no config {config_path.name} beside it")
    data: dict[str, Any] = json.loads(config_path.read_text())
    return data
