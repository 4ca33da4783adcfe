"""How many audio tokens trained XTTS would generate for a sentence: the length model for random weights.

Random weights never emit a sensible stop token, so the lab suppresses it and must say
how many tokens to generate. A fixed count makes a 10- and a 500-character text cost the
same; this model makes the count follow the text, the way a trained model's does:

    audio seconds = syllables / speech rate (syllables per second, per language)
    audio tokens  = audio seconds x 21.53 (the GPT's codes per second: 22050 Hz / 1024-sample stride)

Speech rates. The relative rates between languages come from Pellegrino, Coupé & Marsico,
"A cross-language perspective on speech information rate", Language 87(3), 539-558 (2011),
Table 2: syllables per second of read texts (Multext), mean over speakers. Read corpus speech
is faster than a TTS voice, so the scale is set by a trained TTS voice that ships offline:
Piper's en_US "joe" voice measured here at ``PIPER_EN_SYLLABLES_PER_S`` on the lab's English
text sets (syllables counted as below). Each language's rate is Piper's English rate times
that language's rate over English's in Pellegrino et al. Languages the study did not measure
(pt among them) take the study's mean over its seven languages: a stated assumption.

Syllables are counted from spelling (vowel groups for Latin and Cyrillic script, one per
Han, kana or Hangul character, letters / 3 elsewhere): within about 10-15 % of a dictionary
count on English prose, enough for a length whose spread across languages is ±20 %.
No torch here: the CLI and the dashboard read it cheaply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: GPT audio codes per second of 22.05 kHz audio (gpt_code_stride_len 1024).
AUDIO_TOKENS_PER_S = 22050 / 1024

#: Pellegrino et al. (2011), Table 2: syllables per second, read speech.
PELLEGRINO_SYLLABLES_PER_S: dict[str, float] = {
    "en": 6.19, "fr": 7.18, "de": 5.97, "it": 6.99, "ja": 7.84, "zh-cn": 5.18, "es": 7.82,
}
#: The study's mean over its seven languages, for the XTTS languages it did not measure.
PELLEGRINO_MEAN = sum(PELLEGRINO_SYLLABLES_PER_S.values()) / len(PELLEGRINO_SYLLABLES_PER_S)

#: Piper en_US joe (length_scale 1) on the lab's English text sets: syllables (counted as here)
#: over seconds of audio, 1048 syllables in 219 s; per set 3.30-5.09 (short texts slower: edge silence).
#: Measured 2026-11-30 with scripts/measure_speech_rate.py.
PIPER_EN_SYLLABLES_PER_S = 4.78

_VOWELS = "aeiouyàáâãäåæèéêëìíîïòóôõöøùúûüýÿœąęėįųůěőűıаеёиоуыэюяіїє"
_VOWEL_GROUP = re.compile(f"[{_VOWELS}]+")
_LETTER = re.compile(r"[^\W\d_]")
_ONE_SYLLABLE_CHAR = re.compile(r"[\u3040-\u30ff\u4e00-\u9fff\uac00-\ud7af]")


@dataclass(frozen=True)
class SpeechRate:
    language: str
    syllables_per_s: float
    source: str


def speech_rate(language: str) -> SpeechRate:
    """The TTS speaking rate assumed for ``language`` and where it comes from."""
    key = "zh-cn" if language.split("-")[0] == "zh" else language.split("-")[0]
    scale = PIPER_EN_SYLLABLES_PER_S / PELLEGRINO_SYLLABLES_PER_S["en"]
    if key in PELLEGRINO_SYLLABLES_PER_S:
        return SpeechRate(key, PELLEGRINO_SYLLABLES_PER_S[key] * scale, "Pellegrino et al. 2011 x Piper en scale")
    return SpeechRate(key, PELLEGRINO_MEAN * scale, "mean of Pellegrino et al. 2011 (not measured) x Piper en scale")


def count_syllables(text: str) -> int:
    """Syllables from spelling; at least one for any text with a letter."""
    lowered = text.lower()
    one_each = len(_ONE_SYLLABLE_CHAR.findall(lowered))
    rest = _ONE_SYLLABLE_CHAR.sub(" ", lowered)
    syllables = one_each
    for word in re.findall(r"[^\W\d_]+", rest):
        groups = len(_VOWEL_GROUP.findall(word))
        if groups == 0:
            groups = max(1, round(len(_LETTER.findall(word)) / 3))
        elif len(word) > 2 and word.endswith("e") and not word.endswith(("le", "ee")) and groups > 1:
            groups -= 1  # silent final e (English; harmless elsewhere at this precision)
        syllables += groups
    digits = len(re.findall(r"\d", text))  # a digit is read as a word of about two syllables
    return syllables + 2 * digits


def estimate_seconds(text: str, language: str) -> float:
    return count_syllables(text) / speech_rate(language).syllables_per_s


def estimate_audio_tokens(text: str, language: str, cap: int) -> int:
    """Audio tokens trained XTTS would generate for ``text`` (one sentence), within [1, cap]."""
    tokens = round(estimate_seconds(text, language) * AUDIO_TOKENS_PER_S)
    return max(1, min(cap, tokens))
