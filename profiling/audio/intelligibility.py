"""Intelligibility as a RELATIVE word error rate: pocketsphinx (its bundled en-us model) transcribes the audio.

pocketsphinx is a small, old recogniser: on clean human-like speech its WER on the
Harvard sentences is already 0.2-0.4. The number is only good for comparing
settings of the same engine with each other, and every label says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from math import gcd
from typing import Any

import numpy as np

from engines.base import Audio
from engines.errors import InputError

WER_LABEL = "relative WER (pocketsphinx en-us; compare settings, not an absolute score)"
ASR_RATE = 16000
_WORD = re.compile(r"[a-z0-9']+")


def normalize_words(text: str) -> list[str]:
    """Lower case words, punctuation dropped (apostrophes kept: it's != its)."""
    return _WORD.findall(text.lower().replace("\u2019", "'"))


@dataclass(frozen=True)
class WordErrors:
    errors: int  # substitutions + deletions + insertions
    words: int  # reference words

    @property
    def wer(self) -> float:
        return self.errors / self.words if self.words else float("nan")


def word_errors(reference: str, hypothesis: str) -> WordErrors:
    """Word-level Levenshtein distance against the reference."""
    ref, hyp = normalize_words(reference), normalize_words(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, ref_word in enumerate(ref, start=1):
        current = [i] + [0] * len(hyp)
        for j, hyp_word in enumerate(hyp, start=1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (ref_word != hyp_word))
        previous = current
    return WordErrors(previous[-1], len(ref))


def to_asr_pcm(audio: Audio) -> bytes:
    """16 kHz mono PCM16, what the en-us acoustic model expects."""
    samples = audio.samples
    if audio.sample_rate != ASR_RATE:
        from scipy.signal import resample_poly

        common = gcd(ASR_RATE, audio.sample_rate)
        samples = resample_poly(samples, ASR_RATE // common, audio.sample_rate // common)
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype(np.int16).tobytes()


class Recognizer:
    """pocketsphinx decoder, created on first use (it takes about a second to load)."""

    def __init__(self) -> None:
        self._decoder: Any = None

    def _get(self) -> Any:
        if self._decoder is None:
            try:
                from pocketsphinx import Decoder
            except ImportError:
                raise InputError("intelligibility needs pocketsphinx: pip install -e .[quality]") from None
            self._decoder = Decoder(samprate=ASR_RATE, loglevel="FATAL")
        return self._decoder

    def transcribe(self, audio: Audio) -> str:
        decoder = self._get()
        decoder.start_utt()
        decoder.process_raw(to_asr_pcm(audio), full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        return hyp.hypstr if hyp is not None else ""


@dataclass(frozen=True)
class Transcript:
    reference: str
    hypothesis: str
    errors: WordErrors


def transcribe_and_score(recognizer: Recognizer, audio: Audio, reference: str) -> Transcript:
    hypothesis = recognizer.transcribe(audio)
    return Transcript(reference, hypothesis, word_errors(reference, hypothesis))


def pooled_wer(transcripts: list[Transcript]) -> float:
    """All errors over all reference words (long sentences weigh more, as in the usual WER)."""
    words = sum(t.errors.words for t in transcripts)
    return sum(t.errors.errors for t in transcripts) / words if words else float("nan")
