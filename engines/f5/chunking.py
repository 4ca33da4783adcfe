"""Text chunks for F5 (its own chunk_text or the lab chunker) and the cross-fade that joins them.

No torch here. F5's ``chunk_text`` lives in ``f5_tts.infer.utils_infer`` (heavy), so
it is imported in the function; the engine has imported it by then anyway.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: F5 sizes chunks so that reference + generated audio stays under ~22 s (utils_infer.infer_process).
F5_WINDOW_S = 22.0


def f5_max_bytes(ref_text: str, ref_seconds: float, speed: float) -> int:
    """F5's chunk size in UTF-8 bytes: the reference's bytes per second times the time left."""
    per_second = len(ref_text.encode("utf-8")) / ref_seconds
    return max(1, int(per_second * (F5_WINDOW_S - ref_seconds) * speed))


def f5_chunks(text: str, max_bytes: int) -> list[str]:
    from f5_tts.infer.utils_infer import chunk_text

    return [chunk for chunk in chunk_text(text, max_chars=max_bytes) if chunk]


def lab_chunks(text: str, first_chunk_max_chars: int, max_chars: int) -> list[str]:
    from engines.chunking import ChunkingSettings, chunk_text

    settings = ChunkingSettings(first_chunk_max_chars=first_chunk_max_chars, max_chars=max_chars)
    return [chunk for chunk in chunk_text(text, settings).chunks if chunk.strip()]


def plan_chunks(
    text: str, chunker: str, ref_text: str, ref_seconds: float, speed: float, first_chunk_max_chars: int
) -> list[str]:
    max_bytes = f5_max_bytes(ref_text, ref_seconds, speed)
    if chunker == "lab":
        return lab_chunks(text, first_chunk_max_chars, max_bytes)
    return f5_chunks(text, max_bytes)


@dataclass
class CrossfadeJoiner:
    """F5's linear cross-fade (infer_batch_process), done incrementally for streaming.

    The last ``fade_samples`` of what has been pushed are held back until the next
    chunk arrives, so streamed audio joined equals F5's one-shot cross-faded audio.
    """

    fade_samples: int
    _held: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.float32))
    _started: bool = False

    def push(self, wave: np.ndarray) -> np.ndarray:
        """Add one chunk's audio; return the samples that are final now."""
        wave = np.asarray(wave, dtype=np.float32)
        if not self._started:
            combined = wave
            self._started = True
        else:
            overlap = min(self.fade_samples, len(self._held), len(wave))
            if overlap <= 0:
                combined = np.concatenate([self._held, wave])
            else:
                fade_out = np.linspace(1, 0, overlap, dtype=np.float32)
                fade_in = np.linspace(0, 1, overlap, dtype=np.float32)
                mixed = self._held[-overlap:] * fade_out + wave[:overlap] * fade_in
                combined = np.concatenate([self._held[:-overlap], mixed, wave[overlap:]])
        keep = min(self.fade_samples, len(combined))
        ready = combined[: len(combined) - keep]
        self._held = combined[len(combined) - keep:]
        return ready.astype(np.float32, copy=False)

    def finish(self) -> np.ndarray:
        """The held-back tail: call once after the last chunk."""
        tail, self._held = self._held, np.zeros(0, dtype=np.float32)
        return tail
