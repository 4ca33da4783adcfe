"""Playback simulator: replays a player on a simulated clock over chunk ready times.

PLACEHOLDER: issue 5 fills in the simulator; the dataclasses are the contract.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class PlaybackSettings:
    prebuffer_ms: float = 0.0
    audio_block_ms: float = 20.0


@dataclass(frozen=True)
class Underrun:
    at_s: float
    duration_s: float


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


def simulate_playback(
    ready_s: Sequence[float], durations_s: Sequence[float], settings: PlaybackSettings
) -> PlaybackReport:
    raise NotImplementedError("issue 5")
