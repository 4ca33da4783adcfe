"""Engine-independent text normalisation and sentence splitting."""

from __future__ import annotations

import re
import unicodedata

_WHITESPACE = re.compile(r"\s+")
# A sentence ends at . ! ? (or their CJK forms) followed by space or the end.
_SENTENCE_END = re.compile(r"(?<=[.!?\u3002\uff01\uff1f])\s+")
_TYPOGRAPHIC = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})


def normalize_text(text: str) -> str:
    """NFC, straight quotes, one space between words, no leading/trailing space."""
    text = unicodedata.normalize("NFC", text).translate(_TYPOGRAPHIC)
    return _WHITESPACE.sub(" ", text).strip()


def split_sentences(text: str) -> list[str]:
    """Split normalised text after sentence-ending punctuation; never returns empty parts."""
    return [part for part in _SENTENCE_END.split(text) if part.strip()]
