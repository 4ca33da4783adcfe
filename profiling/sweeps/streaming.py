"""Sweep over first_chunk_max_chars x prebuffer_ms: which pair gives the lowest TTFA with no underrun.

Only the first-chunk size changes what the engine does, so the engine runs once per size
(warm-up + repeats, every run stored); the player is simulated for each pre-buffer over the
same measured chunk timings, since a player never changes when the audio is ready.
"""

from __future__ import annotations

import math
import threading
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from engines.chunking import ChunkingSettings
from engines.errors import InputError
from profiling.audio.playback import PlaybackSettings, simulate_playback
from profiling.core.audio_report import PlaybackReport
from profiling.core.records import RunMode, RunRecord
from profiling.core.stats import measured
from profiling.run.runner import BenchRequest, EnginePool, run_bench
from profiling.store.results import ResultsStore

#: Largest grid accepted (each first-chunk value is warm-up + repeats of real synthesis).
MAX_VALUES = 16

SweepProgress = Callable[[int, int, RunRecord], None]


@dataclass(frozen=True)
class StreamingSweep:
    #: The run to repeat: engine settings, text, repeats, chunking and player (block size) taken from it.
    base: BenchRequest
    first_chunk_values: tuple[int, ...]
    prebuffer_values_ms: tuple[float, ...]

    def __post_init__(self) -> None:
        for name, values in (("first-chunk sizes", self.first_chunk_values),
                             ("pre-buffers", self.prebuffer_values_ms)):
            if not values:
                raise InputError(f"the sweep needs at least one of the {name}")
            if len(values) > MAX_VALUES:
                raise InputError(f"at most {MAX_VALUES} {name} per sweep, got {len(values)}")
        if any(v < 1 for v in self.first_chunk_values):
            raise InputError("first-chunk sizes must be at least 1 character")
        if any(not (math.isfinite(v) and v >= 0) for v in self.prebuffer_values_ms):
            raise InputError("pre-buffers must be 0 ms or more")


@dataclass(frozen=True)
class SweepPoint:
    first_chunk_max_chars: int
    prebuffer_ms: float
    runs: int
    ttfa_median_s: float
    first_audible_median_s: float
    stall_median_s: float
    stall_max_s: float
    #: Measured runs (of ``runs``) with at least one underrun.
    underrun_runs: int

    @property
    def no_underrun(self) -> bool:
        return self.runs > 0 and self.underrun_runs == 0


@dataclass
class SweepResult:
    sweep_id: str
    points: list[SweepPoint]
    #: first_chunk_max_chars -> batch id of its stored runs.
    batches: dict[int, str] = field(default_factory=dict)
    #: First-chunk sizes a cancel kept from running (or cut short: their runs are stored, not summarised).
    cut: tuple[int, ...] = ()

    def best(self) -> SweepPoint | None:
        """No underrun in any run, then the earliest first audible time, then the lowest TTFA."""
        safe = [p for p in self.points if p.no_underrun]
        if not safe:
            return None
        return min(safe, key=lambda p: (p.first_audible_median_s, p.ttfa_median_s, p.prebuffer_ms))


def parse_values(text: str, what: str, cast: Callable[[str], float] = float) -> tuple[float, ...]:
    """``"10, 20 40"`` -> (10, 20, 40); anything else is one clear InputError."""
    parts = [p for p in text.replace(",", " ").split() if p]
    if not parts:
        raise InputError(f"give at least one value for {what}")
    try:
        return tuple(cast(p) for p in parts)
    except ValueError:
        raise InputError(f"{what} must be numbers separated by commas, got {text!r}") from None


def _int(text: str) -> int:
    value = float(text)
    if not value.is_integer():
        raise ValueError(text)
    return int(value)


def parse_sizes(text: str) -> tuple[int, ...]:
    return tuple(int(v) for v in parse_values(text, "first-chunk sizes", _int))


def replay(record: RunRecord, settings: PlaybackSettings) -> PlaybackReport:
    """The player with ``settings`` over a stored stream run's chunk timings."""
    silence = record.playback.leading_silence_s if record.playback else 0.0
    return simulate_playback(
        [c.ready_s for c in record.chunks], [c.audio_s for c in record.chunks], settings, silence
    )


def summarise(first: int, prebuffer_ms: float, reports: Sequence[PlaybackReport]) -> SweepPoint:
    def median(values: list[float]) -> float:
        finite = [v for v in values if math.isfinite(v)]
        return float(np.median(finite)) if finite else math.nan

    return SweepPoint(
        first_chunk_max_chars=first,
        prebuffer_ms=prebuffer_ms,
        runs=len(reports),
        ttfa_median_s=median([r.ttfa_s for r in reports]),
        first_audible_median_s=median([r.first_audible_s for r in reports]),
        stall_median_s=median([r.total_stall_s for r in reports]),
        stall_max_s=max((r.total_stall_s for r in reports), default=math.nan),
        underrun_runs=sum(1 for r in reports if not r.realtime_safe),
    )


def run_streaming_sweep(
    sweep: StreamingSweep,
    pool: EnginePool,
    store: ResultsStore | None,
    progress: SweepProgress | None = None,
    cancel: threading.Event | None = None,
) -> SweepResult:
    """Run the grid; runs are stored as they finish, labelled ``stream-sweep <id> first=<n>``."""
    base = sweep.base
    chunking = base.chunking or ChunkingSettings()
    sweep_id = uuid.uuid4().hex[:12]
    per_value = base.warmup + base.repeats
    total = per_value * len(sweep.first_chunk_values)
    result = SweepResult(sweep_id, [])
    for index, first in enumerate(sweep.first_chunk_values):
        if cancel is not None and cancel.is_set():
            result.cut = tuple(sweep.first_chunk_values[index:])
            break
        request = replace(
            base,
            mode=RunMode.STREAM,
            chunking=replace(chunking, first_chunk_max_chars=first),
            playback=replace(base.playback, prebuffer_ms=sweep.prebuffer_values_ms[0]),
            label=f"stream-sweep {sweep_id} first={first}",
        )

        def forward(done: int, _total: int, record: RunRecord, offset: int = index * per_value) -> None:
            if progress is not None:
                progress(offset + done, total, record)

        bench = run_bench(request, pool, store, forward, cancel)
        result.batches[first] = bench.batch_id
        failed = [r for r in bench.records if r.error]
        if failed:
            raise InputError(f"first-chunk size {first}: synthesis failed: {failed[0].error}")
        runs = measured(bench.records)
        if len(runs) < base.repeats:  # cancelled inside this size: a partial point would mislead
            result.cut = tuple(sweep.first_chunk_values[index:])
            break
        for prebuffer in sweep.prebuffer_values_ms:
            settings = replace(base.playback, prebuffer_ms=prebuffer)
            result.points.append(summarise(first, prebuffer, [replay(r, settings) for r in runs]))
    return result
