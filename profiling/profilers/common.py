"""What every profiler shares: options, the run target, the result and its artifacts.

A profiler drives ``ProfileTarget.run()`` (one measured, stored synthesis)
as many times as it likes, wrapped in its own instrumentation, and returns a
``ProfilerResult``: typed tables, files written, the profiled runs, and the
overhead against plain runs of the same request.
"""

from __future__ import annotations

import statistics
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from typing import ClassVar, Protocol

import pandas as pd

from engines.base import Audio, AudioChunk, Engine, SynthesisSettings, Voice
from engines.hooks import NULL_HOOK, StageHook
from profiling.core.records import RunMode, RunRecord
from profiling.run.runner import measure_run
from profiling.store.results import ResultsStore

#: The annotation key a profiled run carries: which profiler was on ("none" for baseline runs).
PROFILER_ANNOTATION = "profiler"


class ProfilerStatus(str, Enum):
    OK = "ok"
    SKIPPED = "skipped"  # not applicable to this engine or not installed
    DENIED = "denied"  # the OS refused (py-spy without ptrace)
    FAILED = "failed"


@dataclass(frozen=True)
class ProfileOptions:
    """Every profiler option; each profiler reads the ones it knows."""

    #: Profiled runs per profiler (the baseline runs the same number of plain runs).
    repeats: int = 3
    #: Rows kept in the top-N tables.
    top: int = 25
    #: Extra dotted names for line_profiler, beside the engine's ``hot_functions``.
    line_functions: tuple[str, ...] = ()
    pyspy_rate: int = 200
    pyspy_native: bool = False
    #: Command put in front of py-spy, e.g. ("sudo", "-n") where ptrace needs privileges.
    pyspy_prefix: tuple[str, ...] = ()
    torch_memory: bool = False
    #: Runs for the memory growth (leak) check; the memory profiler runs max(repeats, leak_runs).
    leak_runs: int = 5
    tracemalloc: bool = True
    rss_interval_s: float = 0.002


@dataclass(frozen=True)
class ProfileTable:
    """One table a profiler produced; ``name`` is stable (used in artifact kinds and tests)."""

    name: str
    title: str
    frame: pd.DataFrame


@dataclass(frozen=True)
class ArtifactFile:
    kind: str
    path: Path
    description: str = ""


@dataclass(frozen=True)
class Overhead:
    """The profiler's cost: median synthesis time with it against without it."""

    baseline_median_s: float
    baseline_min_s: float
    baseline_max_s: float
    profiled_median_s: float
    repeats: int

    @property
    def ratio(self) -> float:
        return self.profiled_median_s / self.baseline_median_s if self.baseline_median_s > 0 else float("nan")

    @property
    def percent(self) -> float:
        return (self.ratio - 1.0) * 100.0

    @property
    def within_noise(self) -> bool:
        """True when the profiled median lies inside the spread of the plain runs."""
        return self.baseline_min_s <= self.profiled_median_s <= self.baseline_max_s

    def describe(self) -> str:
        noise = " (within run-to-run noise)" if self.within_noise else ""
        return (
            f"overhead {self.percent:+.0f}% ({self.ratio:.2f}x): synthesis median "
            f"{self.profiled_median_s * 1000:.0f} ms profiled vs {self.baseline_median_s * 1000:.0f} ms plain "
            f"(plain range {self.baseline_min_s * 1000:.0f}-{self.baseline_max_s * 1000:.0f} ms, "
            f"{self.repeats} runs each){noise}"
        )

    @classmethod
    def from_runs(cls, baseline: list[RunRecord], profiled: list[RunRecord]) -> Overhead | None:
        plain = [r.synth_s for r in baseline if r.synth_s > 0]
        timed = [r.synth_s for r in profiled if r.synth_s > 0]
        if not plain or not timed:
            return None
        return cls(
            baseline_median_s=statistics.median(plain),
            baseline_min_s=min(plain),
            baseline_max_s=max(plain),
            profiled_median_s=statistics.median(timed),
            repeats=min(len(plain), len(timed)),
        )


@dataclass
class ProfilerResult:
    profiler: str
    status: ProfilerStatus
    message: str = ""
    tables: list[ProfileTable] = field(default_factory=list)
    artifacts: list[ArtifactFile] = field(default_factory=list)
    records: list[RunRecord] = field(default_factory=list)
    overhead: Overhead | None = None
    #: The top few places the time (or memory) goes, in words, most important first.
    hot_spots: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def table(self, name: str) -> ProfileTable:
        for table in self.tables:
            if table.name == name:
                return table
        raise KeyError(f"{self.profiler} has no table {name!r} (has: {[t.name for t in self.tables]})")

    @property
    def run_id(self) -> str | None:
        """The stored run the artifacts hang on: the first profiled run."""
        return self.records[0].run_id if self.records else None


class StageListener(Protocol):
    """Told when each stage opens and closes (path as the stage timer names it)."""

    def stage_enter(self, path: str) -> None: ...

    def stage_exit(self, path: str) -> None: ...


class _TeeStage:
    __slots__ = ("_hook", "_inner", "_name", "_path")

    def __init__(self, hook: _TeeHook, inner: AbstractContextManager[None], name: str) -> None:
        self._hook, self._inner, self._name, self._path = hook, inner, name, ""

    def __enter__(self) -> None:
        self._inner.__enter__()
        stack = self._hook.stack
        self._path = f"{stack[-1]}/{self._name}" if stack else self._name
        stack.append(self._path)
        self._hook.listener.stage_enter(self._path)

    def __exit__(self, *exc: object) -> None:
        self._hook.listener.stage_exit(self._path)
        self._hook.stack.pop()
        self._inner.__exit__(*exc)


class _TeeHook:
    """Forwards to the run's stage timer and tells a listener about stage edges."""

    def __init__(self, inner: StageHook, listener: StageListener) -> None:
        self.inner, self.listener = inner, listener
        self.stack: list[str] = []

    def stage(self, name: str) -> _TeeStage:
        return _TeeStage(self, self.inner.stage(name), name)

    def observe(self, series: str, value: float) -> None:
        self.inner.observe(series, value)

    def annotate(self, key: str, value: str | float | int | bool) -> None:
        self.inner.annotate(key, value)


#: Makes the context a profiler wants around the synthesis call only (not the run's bookkeeping).
Around = Callable[[], AbstractContextManager[object]]


class _InstrumentedEngine(Engine):
    """The loaded engine with a profiler's context around synthesis and a listener on stage edges.

    This is how profilers get inside a run without changing
    ``profiling.run.runner.measure_run`` (which owns the run's stage timer): the
    profiler sees the synthesis alone, not the record keeping around it.
    """

    name = "instrumented"

    def __init__(self, engine: Engine, listener: StageListener | None, around: Around | None) -> None:
        super().__init__()
        self._engine, self._listener = engine, listener
        self._around: Around = around or nullcontext
        self.name = engine.name  # type: ignore[misc]
        self.capabilities = engine.capabilities  # type: ignore[misc]
        self.settings = engine.settings

    def _hook(self, hook: StageHook) -> StageHook:
        return hook if self._listener is None else _TeeHook(hook, self._listener)

    def load(self, settings: SynthesisSettings, hook: StageHook = NULL_HOOK) -> None:
        raise RuntimeError("an instrumented engine is already loaded")

    def synthesize(self, text: str, voice: Voice, settings: SynthesisSettings, hook: StageHook = NULL_HOOK) -> Audio:
        with self._around():
            return self._engine.synthesize(text, voice, settings, self._hook(hook))

    def stream(
        self, text: str, voice: Voice, settings: SynthesisSettings, hook: StageHook = NULL_HOOK
    ) -> Iterator[AudioChunk]:
        with self._around():
            yield from self._engine.stream(text, voice, settings, self._hook(hook))

    @property
    def random_weights(self) -> bool:
        return self._engine.random_weights

    def describe_model(self) -> dict[str, str]:
        return self._engine.describe_model()


@dataclass
class ProfileTarget:
    """One request, ready to run: a loaded engine and what to synthesize. Each run is stored."""

    engine: Engine
    text: str
    voice: Voice
    settings: SynthesisSettings
    mode: RunMode
    store: ResultsStore | None
    label: str = ""

    def run(
        self,
        profiler: str,
        batch_id: str,
        repeat_index: int,
        listener: StageListener | None = None,
        around: Around | None = None,
        warmup: bool = False,
    ) -> RunRecord:
        """One measured synthesis (``profiling.run.runner.measure_run``), annotated and stored."""
        plain = listener is None and around is None
        engine = self.engine if plain else _InstrumentedEngine(self.engine, listener, around)
        record, _audio = measure_run(engine, self.text, self.voice, self.settings, self.mode, batch_id)
        record.repeat_index = repeat_index
        record.warmup = warmup
        record.label = self.label
        record.annotations[PROFILER_ANNOTATION] = profiler
        record.annotations.setdefault("model_reused", True)
        if self.store is not None:
            self.store.save_run(record)
        return record


@dataclass
class ProfileContext:
    """What a profiler gets: the target, where to write files, the options, and its batches.

    Profilers pair each profiled run with a plain one just before it
    (``plain_run``): on a shared, noisy machine interleaving is what makes the
    overhead figure mean something.
    """

    target: ProfileTarget
    out_dir: Path
    options: ProfileOptions
    batch_id: str
    plain_batch_id: str
    baseline: list[RunRecord] = field(default_factory=list)

    def run(
        self, profiler: str, repeat_index: int, listener: StageListener | None = None, around: Around | None = None
    ) -> RunRecord:
        return self.target.run(profiler, self.batch_id, repeat_index, listener, around)

    def plain_run(self, repeat_index: int) -> RunRecord:
        record = self.target.run("none", self.plain_batch_id, repeat_index)
        self.baseline.append(record)
        return record

    def paired_runs(
        self, profiler: str, count: int, listener: StageListener | None = None, around: Around | None = None
    ) -> list[RunRecord]:
        """``count`` x (plain run, profiled run); returns the profiled records."""
        records = []
        for index in range(count):
            self.plain_run(index)
            records.append(self.run(profiler, index, listener, around))
        return records


class Profiler(ABC):
    name: ClassVar[str]
    title: ClassVar[str]

    def unavailable_reason(self, engine_cls: type[Engine]) -> str | None:
        """Why this profiler cannot run for ``engine_cls`` here (None: it can)."""
        return None

    def validate(self, engine_cls: type[Engine], options: ProfileOptions) -> None:
        """Check user options before any run; raise InputError with one line."""
        return None

    @abstractmethod
    def profile(self, ctx: ProfileContext) -> ProfilerResult:
        """Run ``ctx.options.repeats`` (or more) profiled runs and return the result."""
