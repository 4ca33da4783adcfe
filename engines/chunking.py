"""Text chunking for streaming: the policy of a tuned streaming service, every rule a setting.

Policy (each number is a ``ChunkingSettings`` field):

- the text is normalised first (whitespace, quotes, no space before , . ; : ! ?);
- first chunk: up to the first comma or sentence end, never more than
  ``first_chunk_max_chars``, never cutting a word (a first word longer than that is kept whole);
- later chunks: up to ``max_chars``, searching back for punctuation (not closer than
  ``min_chars`` to the chunk start) before cutting, then forward up to ``2 * max_chars``;
- once the text before a chunk is estimated to speak for ``sentence_only_after_s`` seconds
  (at ``chars_per_second``), later chunks end only at sentence ends (natural pauses);
- when no allowed punctuation is in reach the chunk ends at a word boundary, and a word longer
  than the hard limit (``2 * max_chars``) is cut between grapheme clusters; both are recorded
  as warnings, since the engine then has to speak through a cut with no pause.

How joins work (the invariant): chunks are contiguous slices of the normalised text. A cut
is made *after* the space that follows a word, so each chunk keeps its trailing space and
the next starts with a word: ``"".join(plan.chunks) == plan.normalized_text`` exactly, with
no overlap and nothing lost. No chunk is empty and no chunk starts with a space. Scripts
written without spaces (CJK) can also be cut right after their full-width punctuation.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from engines.base import Audio, AudioChunk, Engine, SynthesisSettings, Voice
from engines.errors import InputError
from engines.hooks import NULL_HOOK, StageHook
from engines.text import normalize_text

SENTENCE_ENDS = frozenset(".!?…。！？｡")
CLAUSE_MARKS = frozenset(",;:—，、；：")
#: Full-width marks of scripts written without spaces: a cut may follow them directly.
NO_SPACE_MARKS = frozenset("。！？｡，、；：")
#: Closing quotes and brackets that belong to the punctuation before them ("Hi." she said).
CLOSERS = frozenset("\"')]}»」』）】》")

_SPACE_BEFORE_PUNCT = re.compile(r"\s+([,.;:!?])")


class CutKind(str, Enum):
    SENTENCE = "sentence"  # after . ! ? (and the end of the text)
    CLAUSE = "clause"  # after , ; : and dashes
    WORD = "word"  # at a space, no punctuation: warned
    HARD = "hard"  # inside a word too long for any limit: warned


_PUNCTUATION = (CutKind.SENTENCE, CutKind.CLAUSE)


@dataclass(frozen=True)
class ChunkingSettings:
    first_chunk_max_chars: int = 20
    max_chars: int = 150
    #: After this much audio (estimated), cut only at sentence ends.
    sentence_only_after_s: float = 5.0
    #: Speaking rate used to estimate audio seconds from characters.
    chars_per_second: float = 15.0
    #: Later chunks do not end on punctuation closer than this to their start (too short to phrase well);
    #: capped at ``max_chars``.
    min_chars: int = 20

    def __post_init__(self) -> None:
        if self.first_chunk_max_chars < 1:
            raise InputError(f"first_chunk_max_chars must be at least 1, got {self.first_chunk_max_chars}")
        if self.max_chars < 1:
            raise InputError(f"max_chars must be at least 1, got {self.max_chars}")
        if self.min_chars < 0:
            raise InputError(f"min_chars must be 0 or more, got {self.min_chars}")
        if not self.chars_per_second > 0:
            raise InputError(f"chars_per_second must be positive, got {self.chars_per_second}")
        if not self.sentence_only_after_s >= 0:
            raise InputError(f"sentence_only_after_s must be 0 or more, got {self.sentence_only_after_s}")

    @property
    def hard_max_chars(self) -> int:
        """Longest any chunk gets (plus its trailing space): the forward search stops here."""
        return 2 * self.max_chars


@dataclass(frozen=True)
class ChunkPlan:
    normalized_text: str
    chunks: tuple[str, ...]
    warnings: tuple[str, ...] = field(default_factory=tuple)
    #: How each chunk ended (a CutKind value), one per chunk.
    cut_kinds: tuple[str, ...] = field(default_factory=tuple)
    #: Index of the first chunk cut under the sentence-only rule (None if it never applied).
    sentence_only_from: int | None = None

    @property
    def unpunctuated(self) -> tuple[int, ...]:
        """Chunks that had to end without punctuation."""
        return tuple(i for i, kind in enumerate(self.cut_kinds) if kind in (CutKind.WORD, CutKind.HARD))


def normalize_for_chunking(text: str) -> str:
    """engines.text.normalize_text, plus no whitespace before , . ; : ! ? (so cuts land after them)."""
    return _SPACE_BEFORE_PUNCT.sub(r"\1", normalize_text(text))


def _punctuation_kind(text: str, end: int) -> CutKind:
    """Kind of the text ending just before ``end`` (closing quotes/brackets skipped)."""
    j = end - 1
    while j >= 0 and text[j] in CLOSERS:
        j -= 1
    if j >= 0 and text[j] in SENTENCE_ENDS:
        return CutKind.SENTENCE
    if j >= 0 and text[j] in CLAUSE_MARKS:
        return CutKind.CLAUSE
    return CutKind.WORD


def _cut_points(text: str) -> list[tuple[int, CutKind]]:
    """Every position a chunk may end at (exclusive), with its kind, in order; the text end last."""
    points: list[tuple[int, CutKind]] = []
    for i, char in enumerate(text):
        if char == " ":
            points.append((i + 1, _punctuation_kind(text, i)))
        elif i + 1 < len(text) and text[i + 1] not in CLOSERS and text[i + 1] != " ":
            # Full-width punctuation (plus closers) ends a phrase without a space after it.
            j = i
            while j >= 0 and text[j] in CLOSERS:
                j -= 1
            if j >= 0 and text[j] in NO_SPACE_MARKS:
                points.append((i + 1, _punctuation_kind(text, i + 1)))
    if text:
        points.append((len(text), CutKind.SENTENCE))  # the end of the text is a natural pause
    return points


def _joins_cluster(text: str, pos: int) -> bool:
    """True if cutting before ``text[pos]`` would split a grapheme cluster (accents, ZWJ emoji, flags)."""
    char, before = text[pos], text[pos - 1]
    code, before_code = ord(char), ord(before)
    if unicodedata.combining(char) or unicodedata.category(char) in ("Mn", "Mc", "Me"):
        return True
    if char == "\u200d" or before == "\u200d" or 0xFE00 <= code <= 0xFE0F:
        return True
    if 0x1F3FB <= code <= 0x1F3FF or 0xE0020 <= code <= 0xE007F:  # skin tones, emoji tags
        return True
    return 0x1F1E6 <= code <= 0x1F1FF and 0x1F1E6 <= before_code <= 0x1F1FF  # flag pairs


def _hard_cut(text: str, start: int, limit: int) -> int:
    """The last position at or before ``start + limit`` that does not split a grapheme cluster.

    A single cluster longer than the limit (absurd, but possible) ends at its own end instead.
    """
    for pos in range(min(start + limit, len(text)), start, -1):
        if pos == len(text) or not _joins_cluster(text, pos):
            return pos
    return next(
        (pos for pos in range(start + limit + 1, len(text)) if not _joins_cluster(text, pos)), len(text)
    )


class _Cutter:
    def __init__(self, text: str, settings: ChunkingSettings) -> None:
        self.text = text
        self.settings = settings
        self.points = _cut_points(text)

    def _in(self, low: int, high: int, kinds: tuple[CutKind, ...]) -> list[tuple[int, CutKind]]:
        return [(p, k) for p, k in self.points if low <= p <= high and k in kinds]

    def first(self) -> tuple[int, CutKind]:
        """First chunk: the first comma/sentence end within the limit, else the last word that fits."""
        limit = self.settings.first_chunk_max_chars
        punctuated = self._in(1, limit, _PUNCTUATION)
        if punctuated:
            return punctuated[0]
        return self._word_or_hard(0, limit)

    def later(self, start: int, sentence_only: bool) -> tuple[int, CutKind]:
        settings = self.settings
        kinds = (CutKind.SENTENCE,) if sentence_only else _PUNCTUATION
        back = self._in(start + max(min(settings.min_chars, settings.max_chars), 1), start + settings.max_chars, kinds)
        if back:
            return back[-1]
        forward = self._in(start + settings.max_chars + 1, start + settings.hard_max_chars, kinds)
        if forward:
            return forward[0]
        if sentence_only:  # no sentence end in reach: a comma is still a pause
            return self.later(start, sentence_only=False)
        return self._word_or_hard(start, settings.max_chars)

    def _word_or_hard(self, start: int, limit: int) -> tuple[int, CutKind]:
        """Last word boundary within ``limit``; else the end of the (long) word; else a hard cut."""
        every = (CutKind.SENTENCE, CutKind.CLAUSE, CutKind.WORD)
        back = self._in(start + 1, start + limit, every)
        if back:
            return back[-1]
        hard_limit = self.settings.hard_max_chars
        forward = self._in(start + limit + 1, start + hard_limit, every)
        if forward:
            return forward[0]
        end = _hard_cut(self.text, start, hard_limit)
        if end < len(self.text) and self.text[end] == " ":  # the long word ends right here after all
            return end + 1, CutKind.WORD
        return end, CutKind.HARD


def chunk_text(text: str, settings: ChunkingSettings = ChunkingSettings()) -> ChunkPlan:
    """Split ``text`` for streaming; ``"".join(plan.chunks) == plan.normalized_text``."""
    normalized = normalize_for_chunking(text)
    cutter = _Cutter(normalized, settings)
    chunks: list[str] = []
    kinds: list[str] = []
    warnings: list[str] = []
    sentence_only_from: int | None = None
    start = 0
    while start < len(normalized):
        if not chunks:
            end, kind = cutter.first()
        else:
            spoken_s = start / settings.chars_per_second
            sentence_only = spoken_s >= settings.sentence_only_after_s
            if sentence_only and sentence_only_from is None:
                sentence_only_from = len(chunks)
            end, kind = cutter.later(start, sentence_only)
        chunk = normalized[start:end]
        if kind is CutKind.WORD:
            warnings.append(f"chunk {len(chunks)} ends without punctuation: {chunk.strip()[-30:]!r}")
        elif kind is CutKind.HARD:
            warnings.append(
                f"chunk {len(chunks)} cuts a word longer than {settings.hard_max_chars} chars: "
                f"{chunk[-30:]!r}"
            )
        chunks.append(chunk)
        kinds.append(kind.value)
        start = end
    return ChunkPlan(normalized, tuple(chunks), tuple(warnings), tuple(kinds), sentence_only_from)


def synthesize_chunks(
    engine: Engine, plan: ChunkPlan, voice: Voice, settings: SynthesisSettings, hook: StageHook = NULL_HOOK
) -> Iterator[AudioChunk]:
    """The lab's streaming: one ``engine.synthesize`` per chunk, each yielded as soon as it is ready.

    A chunk the engine cannot pronounce (only punctuation or emoji) yields no audio rather than
    failing the stream; if no chunk gives audio at all, the engine's error is raised.
    """
    last_error: InputError | None = None
    spoke = False
    for index, text in enumerate(plan.chunks):
        try:
            audio = engine.synthesize(text, voice, settings, hook)
            spoke = True
        except InputError as error:
            last_error = error
            audio = Audio(np.zeros(0, dtype=np.float32), engine.sample_rate)
        yield AudioChunk(audio, text, index)
    if not spoke:
        raise last_error or InputError("the text is empty after normalisation")

