"""The stage timer engines report to through ``engines.hooks.StageHook``.

Stages nest: a stage opened inside another gets the path ``outer/inner``.
Inclusive time is the stage's wall time; exclusive time is that minus the
inclusive time of its direct children.

On CUDA, kernels are queued and a stage's wall time is only when its launches
returned. Two ways to charge the GPU work to the stage that launched it
(``profiling.core.device``): ``sync`` waits for the device at both edges of every
stage (exact attribution, but removes CPU/GPU overlap), ``events`` records a CUDA
event at each edge and waits once in ``finish()`` (no perturbation; the stage time
is the GPU time between the edges). Either way ``edges`` targets the run's own
device. An optional memory probe gives each stage its peak device memory.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

Clock = Callable[[], float]


class StageEdges(Protocol):
    """What happens at a stage edge on a device (``profiling.core.device``)."""

    def mark(self) -> object | None:
        """Called at each edge: wait for the device (sync mode) or record an event (returned)."""
        ...

    def elapsed_s(self, start: object, end: object) -> float:
        """Seconds between two marks (events mode); only called after ``finish``."""
        ...

    def finish(self) -> None:
        """Wait for the device once (events mode: every recorded event is then complete)."""
        ...


class MemoryProbe(Protocol):
    """Peak device memory since the last reset (``torch.cuda`` allocator stats)."""

    def reset(self) -> None: ...

    def peaks(self) -> tuple[float, float] | None:
        """(peak allocated MiB, peak reserved MiB) since the last reset; None when unavailable."""
        ...


@dataclass
class StageSpan:
    """One execution of one stage."""

    path: str
    depth: int
    start_s: float
    duration_s: float = 0.0
    children_s: float = 0.0
    parent: StageSpan | None = field(default=None, repr=False)
    start_mark: object | None = field(default=None, repr=False)
    end_mark: object | None = field(default=None, repr=False)
    #: Peak device memory inside the stage (MiB), when a memory probe is attached.
    peak_allocated_mb: float | None = None
    peak_reserved_mb: float | None = None

    @property
    def exclusive_s(self) -> float:
        return max(0.0, self.duration_s - self.children_s)


@dataclass(frozen=True)
class StageTiming:
    """All executions of one stage path in one run, added up."""

    name: str
    calls: int
    inclusive_s: float
    exclusive_s: float
    depth: int
    #: Peak device memory over the stage's executions (MiB); None on the CPU.
    peak_allocated_mb: float | None = None
    peak_reserved_mb: float | None = None


@dataclass(frozen=True)
class SpanTiming:
    """One execution of one stage as stored: when it started (seconds on the run's clock) and how long it took.

    Kept beside the per-path totals so a run can be drawn as a timeline (``profiling.trace``).
    """

    path: str
    depth: int
    start_s: float
    duration_s: float


#: Spans kept per run: a very long stream can open a stage per chunk; the totals keep counting past this.
MAX_SPANS_KEPT = 20_000


class _StageContext:
    """A plain class, not @contextmanager: a generator per stage costs more."""

    __slots__ = ("_timer", "_name", "_span")

    def __init__(self, timer: StageTimer, name: str) -> None:
        self._timer = timer
        self._name = name
        self._span: StageSpan | None = None

    def __enter__(self) -> None:
        self._span = self._timer._open(self._name)

    def __exit__(self, *exc: object) -> None:
        assert self._span is not None
        self._timer._close(self._span)


@dataclass
class StageTimer:
    """Collects stage spans, series and annotations for one run."""

    sync: Callable[[], None] | None = None
    clock: Clock = time.perf_counter
    edges: StageEdges | None = None
    memory: MemoryProbe | None = None
    spans: list[StageSpan] = field(default_factory=list)
    series: dict[str, list[float]] = field(default_factory=dict)
    annotations: dict[str, str | float | int | bool] = field(default_factory=dict)
    _stack: list[StageSpan] = field(default_factory=list)
    _origin: float = 0.0
    _finished: bool = False
    _run_peak: tuple[float | None, float | None] = (None, None)

    def __post_init__(self) -> None:
        self._origin = self.clock()
        if self.memory is not None:
            self.memory.reset()  # the run's window starts here, not at the last run's peak

    # --- the StageHook protocol -------------------------------------------------
    def stage(self, name: str) -> _StageContext:
        if "/" in name:
            raise ValueError(f"stage names may not contain '/': {name!r}")
        return _StageContext(self, name)

    def observe(self, series: str, value: float) -> None:
        self.series.setdefault(series, []).append(float(value))

    def annotate(self, key: str, value: str | float | int | bool) -> None:
        self.annotations[key] = value

    # --- internals ----------------------------------------------------------------
    def _open(self, name: str) -> StageSpan:
        if self.sync is not None:
            self.sync()
        mark = self.edges.mark() if self.edges is not None else None
        parent = self._stack[-1] if self._stack else None
        if self.memory is not None:
            self._fold_memory(parent)
        path = f"{parent.path}/{name}" if parent else name
        span = StageSpan(
            path=path, depth=len(self._stack), start_s=self.clock() - self._origin, parent=parent, start_mark=mark,
        )
        self._stack.append(span)
        return span

    def _close(self, span: StageSpan) -> None:
        if self.sync is not None:
            self.sync()
        span.end_mark = self.edges.mark() if self.edges is not None else None
        span.duration_s = self.clock() - self._origin - span.start_s
        popped = self._stack.pop()
        if popped is not span:
            raise RuntimeError(f"stage {span.path!r} closed out of order (open: {popped.path!r})")
        if self.memory is not None:
            self._fold_memory(span)
            if span.parent is not None:
                _raise_peak(span.parent, span.peak_allocated_mb, span.peak_reserved_mb)
        if self._stack:
            self._stack[-1].children_s += span.duration_s
        self.spans.append(span)

    def _fold_memory(self, span: StageSpan | None) -> None:
        """Charge the peak so far to ``span`` and start a new peak window (stages nest: the parent
        keeps the max of its own windows and its children's peaks)."""
        assert self.memory is not None
        peaks = self.memory.peaks()
        if peaks is None:
            return
        if span is not None:
            _raise_peak(span, *peaks)
        self._run_peak = (_max(self._run_peak[0], peaks[0]), _max(self._run_peak[1], peaks[1]))
        self.memory.reset()

    def peak_memory(self) -> tuple[float | None, float | None]:
        """(allocated, reserved) peak device memory in MiB over the whole run; Nones without a probe."""
        if self.memory is not None and not self._stack:
            self._fold_memory(None)
        return self._run_peak

    def finish(self) -> None:
        """Events mode: wait for the device once and replace each stage's wall time by the GPU time
        between its edges. Call once, after the last stage closed; a no-op otherwise."""
        if self.edges is None or self._finished:
            return
        self._finished = True
        self.edges.finish()
        for span in self.spans:
            if span.start_mark is not None and span.end_mark is not None:
                span.duration_s = self.edges.elapsed_s(span.start_mark, span.end_mark)
        for span in self.spans:
            span.children_s = 0.0
        for span in self.spans:
            if span.parent is not None:
                span.parent.children_s += span.duration_s

    # --- results ------------------------------------------------------------------
    def timings(self) -> list[StageTiming]:
        """Per stage path, in order of first appearance."""
        totals: dict[str, list[float]] = {}
        depth: dict[str, int] = {}
        memory: dict[str, tuple[float | None, float | None]] = {}
        # Spans close inner-first; sort by start so the order reads like the pipeline.
        for span in sorted(self.spans, key=lambda s: s.start_s):
            entry = totals.setdefault(span.path, [0, 0.0, 0.0])
            entry[0] += 1
            entry[1] += span.duration_s
            entry[2] += span.exclusive_s
            depth[span.path] = span.depth
            allocated, reserved = memory.get(span.path, (None, None))
            memory[span.path] = (_max(allocated, span.peak_allocated_mb), _max(reserved, span.peak_reserved_mb))
        return [
            StageTiming(path, int(calls), inclusive, exclusive, depth[path], *memory[path])
            for path, (calls, inclusive, exclusive) in totals.items()
        ]

    def span_timings(self, since: float | None = None) -> list[SpanTiming]:
        """Every span in start order; ``since`` (a ``clock()`` reading) re-bases them onto another origin,
        e.g. the moment a run's measured window opened, so they share its chunk times' clock."""
        shift = 0.0 if since is None else self._origin - since
        ordered = sorted(self.spans, key=lambda s: (s.start_s, -s.duration_s))[:MAX_SPANS_KEPT]
        return [SpanTiming(s.path, s.depth, s.start_s + shift, s.duration_s) for s in ordered]

    def elapsed(self) -> float:
        return self.clock() - self._origin


def _max(a: float | None, b: float | None) -> float | None:
    if a is None:
        return b
    return a if b is None else max(a, b)


def _raise_peak(span: StageSpan, allocated: float | None, reserved: float | None) -> None:
    span.peak_allocated_mb = _max(span.peak_allocated_mb, allocated)
    span.peak_reserved_mb = _max(span.peak_reserved_mb, reserved)
