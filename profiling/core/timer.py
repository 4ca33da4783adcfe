"""The stage timer engines report to through ``engines.hooks.StageHook``.

Stages nest: a stage opened inside another gets the path ``outer/inner``.
Inclusive time is the stage's wall time; exclusive time is that minus the
inclusive time of its direct children. On CUDA the timer synchronises the
device at both edges of a stage, so queued kernels are charged to the stage
that launched them rather than to whichever stage happens to block next.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

Clock = Callable[[], float]


@dataclass
class StageSpan:
    """One execution of one stage."""

    path: str
    depth: int
    start_s: float
    duration_s: float = 0.0
    children_s: float = 0.0

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
    spans: list[StageSpan] = field(default_factory=list)
    series: dict[str, list[float]] = field(default_factory=dict)
    annotations: dict[str, str | float | int | bool] = field(default_factory=dict)
    _stack: list[StageSpan] = field(default_factory=list)
    _origin: float = 0.0

    def __post_init__(self) -> None:
        self._origin = self.clock()

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
        parent = self._stack[-1] if self._stack else None
        path = f"{parent.path}/{name}" if parent else name
        span = StageSpan(path=path, depth=len(self._stack), start_s=self.clock() - self._origin)
        self._stack.append(span)
        return span

    def _close(self, span: StageSpan) -> None:
        if self.sync is not None:
            self.sync()
        span.duration_s = self.clock() - self._origin - span.start_s
        popped = self._stack.pop()
        if popped is not span:
            raise RuntimeError(f"stage {span.path!r} closed out of order (open: {popped.path!r})")
        if self._stack:
            self._stack[-1].children_s += span.duration_s
        self.spans.append(span)

    # --- results ------------------------------------------------------------------
    def timings(self) -> list[StageTiming]:
        """Per stage path, in order of first appearance."""
        totals: dict[str, list[float]] = {}
        depth: dict[str, int] = {}
        # Spans close inner-first; sort by start so the order reads like the pipeline.
        for span in sorted(self.spans, key=lambda s: s.start_s):
            entry = totals.setdefault(span.path, [0, 0.0, 0.0])
            entry[0] += 1
            entry[1] += span.duration_s
            entry[2] += span.exclusive_s
            depth[span.path] = span.depth
        return [
            StageTiming(path, int(calls), inclusive, exclusive, depth[path])
            for path, (calls, inclusive, exclusive) in totals.items()
        ]

    def elapsed(self) -> float:
        return self.clock() - self._origin
