"""Playback simulator: replays a player on a simulated clock over chunk ready times.

The model (a pure function, no audio, no clock):

- chunk ``i`` becomes available at ``ready_s[i]`` (seconds since the request) and plays for
  ``durations_s[i]``; chunks play in order, back to back;
- the player consumes audio in blocks of ``audio_block_ms``: it can only play a block once
  the whole block has arrived (the last, partial block once the stream has ended, which the
  player knows when the last chunk arrives);
- it starts when ``prebuffer_ms`` of audio (and at least one block) is buffered, or when the
  stream has ended;
- an underrun is the player reaching the end of its buffer before the stream ended: silence
  from that moment until ``resume_ms`` (default: the pre-buffer) is buffered again.

``simulate_playback`` is pure; ``analyse_stream`` applies it (and the join checks) to a finished
stream's audio. The simulation is event-driven (one step per chunk arrival or stall), so it is exact and cheap
for any block size. Inter-chunk latency is the gap between consecutive ready times, reported
as percentiles the way vLLM reports ITL. The report (``PlaybackReport``) is plain data declared in
``profiling.core.audio_report``, beside the run record that stores it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np

from engines.base import Audio
from engines.chunking import ChunkingSettings
from engines.errors import InputError
from profiling.audio.joins import check_joins, leading_silence_s
from profiling.core.audio_report import EPS, JoinCheck, PlaybackReport, PlaySegment, Underrun


@dataclass(frozen=True)
class PlaybackSettings:
    prebuffer_ms: float = 0.0
    audio_block_ms: float = 20.0
    #: Buffer needed to resume after an underrun; None = the same as ``prebuffer_ms``.
    resume_ms: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.prebuffer_ms) and self.prebuffer_ms >= 0):
            raise InputError(f"prebuffer_ms must be 0 or more, got {self.prebuffer_ms}")
        if not (math.isfinite(self.audio_block_ms) and self.audio_block_ms > 0):
            raise InputError(f"audio_block_ms must be positive, got {self.audio_block_ms}")
        if self.resume_ms is not None and not (math.isfinite(self.resume_ms) and self.resume_ms >= 0):
            raise InputError(f"resume_ms must be 0 or more, got {self.resume_ms}")


def _check_inputs(ready_s: Sequence[float], durations_s: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    ready = np.asarray(ready_s, dtype=float).reshape(-1)
    durations = np.asarray(durations_s, dtype=float).reshape(-1)
    if ready.shape != durations.shape:
        raise ValueError(f"{len(ready)} ready times but {len(durations)} durations")
    if not (np.all(np.isfinite(ready)) and np.all(np.isfinite(durations))):
        raise ValueError("ready times and durations must be finite")
    if np.any(ready < 0) or np.any(durations < 0):
        raise ValueError("ready times and durations must be 0 or more")
    if np.any(np.diff(ready) < 0):
        raise ValueError("chunks must be ready in order (ready times non-decreasing)")
    return ready, durations


def _itl(ready: np.ndarray) -> tuple[float, float, float, int]:
    gaps = np.diff(ready)
    if gaps.size == 0:
        return 0.0, 0.0, 0.0, 0
    p50, p95, p99 = (float(v) for v in np.percentile(gaps, [50, 95, 99]))
    return p50, p95, p99, int(gaps.size)


def simulate_playback(
    ready_s: Sequence[float],
    durations_s: Sequence[float],
    settings: PlaybackSettings,
    leading_silence_s: float = 0.0,
) -> PlaybackReport:
    """Replay the player; ``leading_silence_s`` (measured from the audio) delays the first audible time."""
    ready, durations = _check_inputs(ready_s, durations_s)
    itl_p50, itl_p95, itl_p99, itl_count = _itl(ready)
    silence = max(0.0, float(leading_silence_s))
    common = dict(
        itl_p50_s=itl_p50, itl_p95_s=itl_p95, itl_p99_s=itl_p99, itl_count=itl_count,
        prebuffer_ms=settings.prebuffer_ms, audio_block_ms=settings.audio_block_ms, leading_silence_s=silence,
    )
    n = len(ready)
    cumulative = np.cumsum(durations)
    total = float(cumulative[-1]) if n else 0.0
    audible = np.flatnonzero(durations > 0)
    if total <= EPS:
        return PlaybackReport(ttfa_s=math.nan, first_audible_s=math.nan, audio_s=total, **common)
    ttfa = float(ready[audible[0]])
    before = cumulative - durations  # audio ahead of each chunk
    stall_free_start = float(np.max(ready[audible] - before[audible]))

    block = settings.audio_block_ms / 1000.0
    start_need = max(settings.prebuffer_ms / 1000.0, block)
    resume_ms = settings.prebuffer_ms if settings.resume_ms is None else settings.resume_ms
    resume_need = max(resume_ms / 1000.0, block)

    def wait(arrived: int, position: float, need: float, now: float) -> tuple[float, int]:
        """Time (>= now) and arrival count once ``need`` is buffered past ``position`` or all arrived."""
        for j in range(arrived, n):
            if cumulative[j] - position >= need - EPS or j == n - 1:
                return max(now, float(ready[j])), j + 1
        return now, n

    def playable(arrived: int) -> float:
        """How far the player may go: the whole audio once all arrived, else whole blocks only."""
        if arrived == n:
            return total
        # The relative slack keeps float error from losing a block that has fully arrived.
        return math.floor(float(cumulative[arrived - 1]) / block + 1e-6) * block if arrived else 0.0

    now, arrived = wait(0, 0.0, start_need, 0.0)
    playback_start = now
    position = 0.0
    segments: list[PlaySegment] = []
    underruns: list[Underrun] = []
    segment_start, segment_audio = now, 0.0
    while True:
        limit = playable(arrived)
        # Chunks arriving before the buffer runs dry extend how far the player can go.
        while arrived < n and ready[arrived] <= now + (limit - position) + EPS:
            position += float(ready[arrived]) - now
            now = float(ready[arrived])
            arrived += 1
            limit = playable(arrived)
        now += max(0.0, limit - position)
        position = limit
        if arrived == n or position >= total - EPS:  # all audio played: a late empty chunk is no gap
            segments.append(PlaySegment(segment_start, now, segment_audio))
            break
        stalled_at = now
        segments.append(PlaySegment(segment_start, now, segment_audio))
        now, arrived = wait(arrived, position, resume_need, now)
        underruns.append(Underrun(stalled_at, now - stalled_at, position))
        segment_start, segment_audio = now, position

    segments = [s for s in segments if s.end_s - s.start_s > EPS]
    report = PlaybackReport(
        ttfa_s=ttfa,
        first_audible_s=math.nan,
        underruns=tuple(underruns),
        total_stall_s=float(sum(u.duration_s for u in underruns)),
        realtime_safe=not underruns,
        playback_start_s=playback_start,
        playback_end_s=now,
        audio_s=total,
        stall_free_start_s=stall_free_start,
        segments=tuple(segments),
        **common,
    )
    first_audible = report.time_at(silence) if silence < total - EPS else math.nan
    return replace(report, first_audible_s=first_audible)


def analyse_stream(
    parts: Sequence[Audio], ready_s: Sequence[float], settings: PlaybackSettings
) -> tuple[PlaybackReport, list[JoinCheck]]:
    """The player simulated over a finished stream (leading silence measured from its audio) and its joins."""
    audible = [p for p in parts if len(p.samples)]
    silence = leading_silence_s(Audio.concatenate(audible)) if audible else 0.0
    report = simulate_playback(ready_s, [p.duration_s for p in parts], settings, leading_silence_s=silence)
    return report, check_joins(parts)


def stream_annotations(chunking: ChunkingSettings | None, settings: PlaybackSettings) -> dict[str, str | float]:
    """The chunker and player settings of a stream run, flat, for the record's annotations."""
    values: dict[str, str | float] = {"chunker": "engine" if chunking is None else "lab"}
    if chunking is not None:
        values.update({f"chunking.{k}": v for k, v in asdict(chunking).items()})
    values.update({f"playback.{k}": v for k, v in asdict(settings).items() if v is not None})
    return values
