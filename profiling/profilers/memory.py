"""Memory: peak RSS per stage, Python allocation sites, CUDA peaks per stage, growth over repeated runs.

RSS is sampled on a thread and also read at every stage edge; each sample is
charged to every stage open at that moment (inclusive, like stage times).
tracemalloc and CUDA peaks are read and reset at each stage edge, and the
peak since the last edge is charged to every open stage, so nesting works.
"""

from __future__ import annotations

import ctypes
import gc
import linecache
import math
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

from profiling.core.records import RunRecord
from profiling.profilers.artifacts import short_path, write_table
from profiling.profilers.common import (
    ProfileContext,
    Profiler,
    ProfilerResult,
    ProfilerStatus,
    ProfileTable,
)

MIB = 2**20
_PROFILING_DIR = str(Path(__file__).resolve().parents[1])
#: Growth per run above this, with a steady trend, is reported as a likely leak.
LEAK_SLOPE_MIB = 0.5
LEAK_MIN_R2 = 0.6
LEAK_MIN_POINTS = 4


@dataclass
class _Span:
    path: str
    start_t: float
    rss_start: int
    end_t: float = 0.0
    rss_peak: int = 0
    py_peak: int = 0
    cuda_allocated: int = 0
    cuda_reserved: int = 0


class _Cuda:
    """Per-stage CUDA peaks for torch engines on a CUDA device; does nothing otherwise."""

    def __init__(self, device: str) -> None:
        self.torch = None
        if device.startswith("cuda") and "torch" in sys.modules:
            import torch

            if torch.cuda.is_available():
                self.torch = torch
                self.device = torch.device(device)

    @property
    def active(self) -> bool:
        return self.torch is not None

    def take_peaks(self) -> tuple[int, int]:
        """(max allocated, max reserved) since the last call, then reset."""
        if self.torch is None:
            return 0, 0
        cuda = self.torch.cuda
        peaks = cuda.max_memory_allocated(self.device), cuda.max_memory_reserved(self.device)
        cuda.reset_peak_memory_stats(self.device)
        return peaks


@dataclass
class _RunMemory:
    spans: list[_Span] = field(default_factory=list)
    samples: list[tuple[float, int]] = field(default_factory=list)
    high_water: int = -1
    high_snapshot: tracemalloc.Snapshot | None = None
    end_snapshot: tracemalloc.Snapshot | None = None


class _MemoryListener:
    """Stage listener for one run: edges read RSS, tracemalloc and CUDA peaks."""

    def __init__(self, process: psutil.Process, cuda: _Cuda, trace: bool) -> None:
        self.process, self.cuda, self.trace = process, cuda, trace
        self.run = _RunMemory()
        self._open: list[_Span] = []

    def _edge(self) -> tuple[float, int]:
        now, rss = time.perf_counter(), self.process.memory_info().rss
        py_peak = 0
        if self.trace:
            current, py_peak = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
            if current > self.run.high_water * 1.05:  # snapshots cost: only at a new high point
                self.run.high_water = current
                self.run.high_snapshot = tracemalloc.take_snapshot()
        allocated, reserved = self.cuda.take_peaks()
        for span in self._open:
            span.rss_peak = max(span.rss_peak, rss)
            span.py_peak = max(span.py_peak, py_peak)
            span.cuda_allocated = max(span.cuda_allocated, allocated)
            span.cuda_reserved = max(span.cuda_reserved, reserved)
        return now, rss

    def stage_enter(self, path: str) -> None:
        now, rss = self._edge()
        self._open.append(_Span(path, now, rss, rss_peak=rss))

    def stage_exit(self, path: str) -> None:
        now, _rss = self._edge()
        span = self._open.pop()
        span.end_t = now
        self.run.spans.append(span)


class _RssSampler:
    def __init__(self, process: psutil.Process, interval_s: float, into: list[tuple[float, int]]) -> None:
        self.process, self.interval_s, self.into = process, interval_s, into
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="memory-profiler-rss", daemon=True)

    def _loop(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.into.append((time.perf_counter(), self.process.memory_info().rss))

    def __enter__(self) -> _RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def stage_frame(runs: list[_RunMemory], cuda: bool) -> pd.DataFrame:
    """Per stage path: peak RSS, RSS added on top of the stage's start, Python heap peak, CUDA peaks."""
    rows: dict[str, dict[str, float]] = {}
    for run in runs:
        times = np.array([t for t, _ in run.samples]) if run.samples else np.array([])
        values = np.array([r for _, r in run.samples]) if run.samples else np.array([])
        for span in sorted(run.spans, key=lambda s: s.start_t):
            inside = values[(times >= span.start_t) & (times <= span.end_t)] if len(times) else values
            peak = max(span.rss_peak, int(inside.max()) if inside.size else 0)
            row = rows.setdefault(span.path, {
                "calls": 0, "peak_rss_mb": 0.0, "rss_added_mb": 0.0, "python_heap_peak_mb": 0.0,
                "cuda_max_allocated_mb": 0.0, "cuda_max_reserved_mb": 0.0, "rss_samples": 0,
            })
            row["calls"] += 1
            row["peak_rss_mb"] = max(row["peak_rss_mb"], peak / MIB)
            row["rss_added_mb"] = max(row["rss_added_mb"], (peak - span.rss_start) / MIB)
            row["python_heap_peak_mb"] = max(row["python_heap_peak_mb"], span.py_peak / MIB)
            row["cuda_max_allocated_mb"] = max(row["cuda_max_allocated_mb"], span.cuda_allocated / MIB)
            row["cuda_max_reserved_mb"] = max(row["cuda_max_reserved_mb"], span.cuda_reserved / MIB)
            row["rss_samples"] += int(inside.size)
    frame = pd.DataFrame([{"stage": path, **row} for path, row in rows.items()])
    if frame.empty:
        return frame
    frame["calls"] = frame["calls"].astype(int)
    frame["rss_samples"] = frame["rss_samples"].astype(int)
    if not cuda:
        frame = frame.drop(columns=["cuda_max_allocated_mb", "cuda_max_reserved_mb"])
    return frame


def sites_frame(snapshots: list[tracemalloc.Snapshot], top: int) -> pd.DataFrame:
    """Allocation sites (file:line) by size, with the source line; per snapshot (mean) when several."""
    columns = ["site", "size_mb", "blocks", "source"]
    totals: dict[tuple[str, int], list[int]] = {}
    # The measurement machinery itself (RSS reads, stage timer, this module) is not the engine's memory.
    ignore = (
        tracemalloc.Filter(False, tracemalloc.__file__),
        tracemalloc.Filter(False, "*/psutil/*"),
        tracemalloc.Filter(False, f"{_PROFILING_DIR}/*"),
    )
    for snapshot in snapshots:
        for stat in snapshot.filter_traces(ignore).statistics("lineno"):
            frame = stat.traceback[0]
            entry = totals.setdefault((frame.filename, frame.lineno), [0, 0])
            entry[0] += stat.size
            entry[1] += stat.count
    count = max(len(snapshots), 1)
    ranked = sorted(totals.items(), key=lambda item: item[1][0], reverse=True)[:top]
    rows = [{
        "site": f"{short_path(filename)}:{lineno}",
        "size_mb": size / MIB / count,
        "blocks": math.ceil(blocks / count),
        "source": linecache.getline(filename, lineno).strip(),
    } for (filename, lineno), (size, blocks) in ranked]
    return pd.DataFrame(rows, columns=columns)


@dataclass(frozen=True)
class LeakCheck:
    rss_mb: list[float]
    slope_mib_per_run: float
    r2: float

    @property
    def growth_mb(self) -> float:
        return self.rss_mb[-1] - self.rss_mb[0]

    @property
    def suspect(self) -> bool:
        enough = len(self.rss_mb) >= LEAK_MIN_POINTS
        return enough and self.slope_mib_per_run > LEAK_SLOPE_MIB and self.r2 >= LEAK_MIN_R2

    def describe(self) -> str:
        verdict = "LIKELY LEAK: memory rises run after run" if self.suspect else "no steady growth"
        if len(self.rss_mb) < LEAK_MIN_POINTS:
            verdict = f"too few runs for a verdict (need {LEAK_MIN_POINTS})"
        return (
            f"RSS after each of {len(self.rss_mb)} runs: slope {self.slope_mib_per_run:+.2f} MiB/run "
            f"(r2 {self.r2:.2f}), {self.growth_mb:+.1f} MiB first to last: {verdict}"
        )


def leak_check(rss_mb: list[float]) -> LeakCheck:
    x = np.arange(len(rss_mb), dtype=float)
    y = np.asarray(rss_mb, dtype=float)
    slope, intercept = np.polyfit(x, y, 1)
    residual = float(((y - (slope * x + intercept)) ** 2).sum())
    spread = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - residual / spread if spread > 0 else 0.0
    return LeakCheck(list(map(float, y)), float(slope), r2)


def _libc_malloc_trim() -> Callable[[int], int] | None:
    """glibc's ``malloc_trim``, or None where the C library is not glibc."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim  # type: ignore[no-any-return]
    except (OSError, AttributeError):
        return None


_MALLOC_TRIM = _libc_malloc_trim()


def return_free_heap() -> None:
    """Hand the heap's free pages back to the kernel (glibc ``malloc_trim(0)``; a no-op elsewhere).

    Without it, RSS after a run says little in a process that freed much before (a dashboard, a test session):
    new allocations reuse free chunks whose pages are still resident, so a leak of 40 MiB a run left RSS flat in a
    process holding 2.5 GB of freed heap. Once the free pages are returned, whatever a run keeps must fault pages
    in again, and RSS grows by it."""
    if _MALLOC_TRIM is not None:
        _MALLOC_TRIM(0)


class MemoryProfiler(Profiler):
    name = "memory"
    title = "Memory"

    def profile(self, ctx: ProfileContext) -> ProfilerResult:
        options = ctx.options
        process = psutil.Process()
        cuda = _Cuda(ctx.target.settings.device)
        runs: list[_RunMemory] = []
        rss_after: list[float] = []
        records: list[RunRecord] = []

        def settle() -> None:
            gc.collect()  # so the leak check sees what is really kept, not garbage awaiting collection
            return_free_heap()
            rss_after.append(process.memory_info().rss / MIB)

        # Each pair (plain, profiled) gives two points for the leak check.
        pairs = max(options.repeats, math.ceil(options.leak_runs / 2))
        for index in range(pairs):
            ctx.plain_run(index)
            settle()
            listener = _MemoryListener(process, cuda, options.tracemalloc)

            @contextmanager
            def around(listener: _MemoryListener = listener) -> Iterator[None]:
                if options.tracemalloc:
                    tracemalloc.start()
                try:
                    with _RssSampler(process, options.rss_interval_s, listener.run.samples):
                        listener.stage_enter("(synthesis)")
                        try:
                            yield
                        finally:
                            listener.stage_exit("(synthesis)")
                finally:
                    if options.tracemalloc:
                        listener.run.end_snapshot = tracemalloc.take_snapshot()
                        tracemalloc.stop()

            records.append(ctx.run(self.name, index, listener=listener, around=around))
            runs.append(listener.run)
            settle()
        return self._result(ctx, runs, rss_after, records, cuda.active)

    def _result(
        self, ctx: ProfileContext, runs: list[_RunMemory], rss_after: list[float], records: list[RunRecord],
        cuda: bool,
    ) -> ProfilerResult:
        top = ctx.options.top
        stages = stage_frame(runs, cuda)
        highest = max(runs, key=lambda r: r.high_water)
        leak = leak_check(rss_after)
        tables = [
            ProfileTable("stages", "Memory per stage (max over runs; '(synthesis)' is the whole call)", stages),
            ProfileTable("leak", "RSS after each run (plain and profiled alternate)", pd.DataFrame({
                "run": range(1, len(rss_after) + 1), "rss_mb": rss_after,
            })),
        ]
        if ctx.options.tracemalloc:
            tables += [
                ProfileTable("peak_sites", "Python allocation sites live at the heap's high point",
                             sites_frame([highest.high_snapshot] if highest.high_snapshot else [], top)),
                ProfileTable("retained_sites", "Allocated during a run and still held when synthesis returned "
                             "(per run, mean; includes the returned audio)",
                             sites_frame([r.end_snapshot for r in runs if r.end_snapshot], top)),
            ]
        artifacts = []
        for table in tables:
            artifacts += write_table(table, ctx.out_dir, self.name)
        hot = []
        inner = stages[stages["stage"] != "(synthesis)"] if not stages.empty else stages
        if not inner.empty:
            row = inner.sort_values("rss_added_mb", ascending=False).iloc[0]
            hot.append(f"stage {row['stage']}: +{row['rss_added_mb']:.1f} MiB RSS (peak {row['peak_rss_mb']:.0f} MiB)")
        if ctx.options.tracemalloc and not tables[2].frame.empty:
            site = tables[2].frame.iloc[0]
            hot.append(f"allocation site {site['site']}: {site['size_mb']:.2f} MiB live at the heap peak")
        hot.append(leak.describe())
        whole = stages[stages["stage"] == "(synthesis)"] if not stages.empty else stages
        peak = f"peak RSS {whole['peak_rss_mb'].iloc[0]:.0f} MiB; " if not whole.empty else ""
        return ProfilerResult(
            self.name, ProfilerStatus.OK, f"{len(records)} profiled runs; {peak}{leak.describe()}",
            tables=tables, artifacts=artifacts, records=records, hot_spots=hot,
            notes=["LIKELY LEAK"] if leak.suspect else [],
        )
