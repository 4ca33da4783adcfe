"""Text chunking for streaming (the lab's chunker).

PLACEHOLDER POLICY: sentence-sized chunks capped at ``max_chars``. Issue 5 replaces
``chunk_text`` with the full tuned-service policy; the dataclasses are the contract.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engines.text import normalize_text, split_sentences


@dataclass(frozen=True)
class ChunkingSettings:
    first_chunk_max_chars: int = 20
    max_chars: int = 150
    #: After this much audio (estimated), cut only at sentence ends.
    sentence_only_after_s: float = 5.0
    #: Speaking rate used to estimate audio seconds from characters.
    chars_per_second: float = 15.0


@dataclass(frozen=True)
class ChunkPlan:
    normalized_text: str
    chunks: tuple[str, ...]
    warnings: tuple[str, ...] = field(default_factory=tuple)


def chunk_text(text: str, settings: ChunkingSettings = ChunkingSettings()) -> ChunkPlan:
    normalized = normalize_text(text)
    return ChunkPlan(normalized, tuple(split_sentences(normalized)))
