"""What a run record says about a stream's audio: the simulated player's report and each chunk join's check.

Plain data, stored with the record; ``profiling.audio.playback`` and ``profiling.audio.joins`` compute them.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

#: Tolerance on the simulated clock and audio positions (seconds).
EPS = 1e-9


@dataclass(frozen=True)
class JoinCheck:
    #: The join between chunk ``left`` and chunk ``right`` (zero-length chunks are skipped).
    left: int
    right: int
    repeat_score: float
    #: Where the best match starts, in seconds before the end of the left chunk.
    repeat_offset_s: float
    repeated: bool
    click_jump: float
    click_ratio: float
    click: bool


@dataclass(frozen=True)
class Underrun:
    at_s: float
    duration_s: float
    #: Where in the audio the player ran dry (seconds of audio already played).
    audio_position_s: float = 0.0


@dataclass(frozen=True)
class PlaySegment:
    """An interval of continuous playback: wall clock [start_s, end_s) plays audio from audio_start_s."""

    start_s: float
    end_s: float
    audio_start_s: float


@dataclass(frozen=True)
class PlaybackReport:
    ttfa_s: float
    first_audible_s: float
    underruns: tuple[Underrun, ...] = field(default_factory=tuple)
    total_stall_s: float = 0.0
    realtime_safe: bool = True
    itl_p50_s: float = 0.0
    itl_p95_s: float = 0.0
    itl_p99_s: float = 0.0
    #: When the player started (after the pre-buffer filled); NaN with no audio.
    playback_start_s: float = math.nan
    playback_end_s: float = math.nan
    audio_s: float = 0.0
    #: Earliest start that plays through with no underrun (ignoring blocks): the pre-buffer to aim for.
    stall_free_start_s: float = math.nan
    segments: tuple[PlaySegment, ...] = field(default_factory=tuple)
    itl_count: int = 0
    prebuffer_ms: float = 0.0
    audio_block_ms: float = 20.0
    #: Silence at the start of the audio (measured), included in ``first_audible_s``.
    leading_silence_s: float = 0.0

    @property
    def underrun_count(self) -> int:
        return len(self.underruns)

    def time_at(self, audio_position_s: float) -> float:
        """Wall-clock time at which the player reaches ``audio_position_s`` (NaN if never)."""
        for segment in self.segments:
            length = segment.end_s - segment.start_s
            if segment.audio_start_s - EPS <= audio_position_s < segment.audio_start_s + length - EPS:
                return segment.start_s + max(0.0, audio_position_s - segment.audio_start_s)
        if self.segments and abs(audio_position_s - self.audio_s) <= 1e-6:
            return self.segments[-1].end_s
        return math.nan

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PlaybackReport:
        data = dict(data)
        underruns = tuple(Underrun(**u) for u in data.pop("underruns", ()))
        segments = tuple(PlaySegment(**s) for s in data.pop("segments", ()))
        return cls(underruns=underruns, segments=segments, **data)
