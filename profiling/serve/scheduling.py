"""How the server orders work: the scheduling policy, the chunker, admission (settings, pure).

``SchedulingSettings`` is what ``serve --policy/--chunker/--admit ...`` set; ``profiling.serve.scheduler``
carries them out. docs/serving.md says what each policy does.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from engines.chunking import ChunkingSettings
from engines.errors import InputError

POLICIES: tuple[str, ...] = ("fifo", "round-robin", "window:K", "edf")
CHUNKERS: tuple[str, ...] = ("lab", "engine")
ADMISSIONS: tuple[str, ...] = ("none", "slo")
OUTPUT_RATE = 24000  # OpenAI's pcm is 24 kHz 16-bit mono: what clients written for it assume
_WINDOW = re.compile(r"^window:(\d+)$")


@dataclass(frozen=True)
class SchedulingSettings:
    policy: str = "fifo"
    chunker: str = "lab"
    first_chunk_chars: int = 20
    chunk_chars: int = 150
    sentence_only_after_s: float = 5.0
    #: First-chunk deadline after arrival (EDF) and admission's bound, in ms.
    ttfa_target_ms: float = 500.0
    #: EDF: a later chunk is due this long before the client's player needs it.
    deadline_margin_ms: float = 100.0
    admit: str = "none"
    #: Chunks a stream may have ready but unread by its client before it stops being scheduled.
    max_unread_chunks: int = 8
    #: The rate sent: 24000 (resampled when the engine's differs) or 0 for the engine's native rate.
    output_rate: int = OUTPUT_RATE

    def __post_init__(self) -> None:
        if self.policy not in ("fifo", "round-robin", "edf") and not _WINDOW.match(self.policy):
            raise InputError(f"unknown policy {self.policy!r} (use one of: {', '.join(POLICIES)})")
        if self.window is not None and not 1 <= self.window <= 1000:
            raise InputError(f"window:K needs K between 1 and 1000, got {self.window}")
        if self.chunker not in CHUNKERS:
            raise InputError(f"unknown chunker {self.chunker!r} (use one of: {', '.join(CHUNKERS)})")
        if self.admit not in ADMISSIONS:
            raise InputError(f"unknown admission {self.admit!r} (use one of: {', '.join(ADMISSIONS)})")
        if not 1 <= self.first_chunk_chars <= 2000:
            raise InputError(f"first chunk chars must be between 1 and 2000, got {self.first_chunk_chars}")
        if not 1 <= self.chunk_chars <= 2000:
            raise InputError(f"chunk chars must be between 1 and 2000, got {self.chunk_chars}")
        if not (math.isfinite(self.sentence_only_after_s) and self.sentence_only_after_s >= 0):
            raise InputError(f"sentence-only-after must be 0 s or more, got {self.sentence_only_after_s}")
        if not (math.isfinite(self.ttfa_target_ms) and 0 < self.ttfa_target_ms <= 600_000):
            raise InputError(f"TTFA target must be in (0, 600000] ms, got {self.ttfa_target_ms}")
        if not (math.isfinite(self.deadline_margin_ms) and 0 <= self.deadline_margin_ms <= 60_000):
            raise InputError(f"deadline margin must be in [0, 60000] ms, got {self.deadline_margin_ms}")
        if not 1 <= self.max_unread_chunks <= 1000:
            raise InputError(f"max unread chunks must be between 1 and 1000, got {self.max_unread_chunks}")
        if self.output_rate not in (0, 8000, 16000, 22050, 24000, 44100, 48000):
            raise InputError(f"output rate must be 0 (native) or a standard rate, got {self.output_rate}")

    @property
    def window(self) -> int | None:
        """K of ``window:K``; None for the other policies."""
        match = _WINDOW.match(self.policy)
        return int(match.group(1)) if match else None

    def chunking(self) -> ChunkingSettings:
        return ChunkingSettings(first_chunk_max_chars=self.first_chunk_chars, max_chars=self.chunk_chars,
                                sentence_only_after_s=self.sentence_only_after_s,
                                min_chars=min(20, self.chunk_chars))
