"""cProfile: every Python call (and C call it makes) during synthesis, as tables and a .prof."""

from __future__ import annotations

import cProfile
import pstats
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pandas as pd

from profiling.core.records import RunRecord
from profiling.profilers.artifacts import short_path, write_table
from profiling.profilers.common import (
    ArtifactFile,
    ProfileContext,
    Profiler,
    ProfilerResult,
    ProfilerStatus,
    ProfileTable,
)

FuncKey = tuple[str, int, str]

#: Callers listed per function (the heaviest by cumulative time through them).
CALLERS_SHOWN = 3


def function_label(key: FuncKey) -> str:
    """``run`` for Python functions; the builtin's own text (``<method 'run' of ...>``) for C ones."""
    return key[2]


def location_label(key: FuncKey) -> str:
    filename, line, _ = key
    if filename == "~":
        return "(built-in)"
    return f"{short_path(filename)}:{line}"


def stats_frame(stats: pstats.Stats, sort: str, top: int) -> pd.DataFrame:
    """Top ``top`` functions sorted by ``cumulative_s`` or ``own_s``, each with its heaviest callers."""
    raw: dict[FuncKey, Any] = stats.stats  # type: ignore[attr-defined]
    rows = []
    for key, (primitive, calls, own, cumulative, callers) in raw.items():
        caller_items = sorted(callers.items(), key=lambda item: item[1][3], reverse=True)[:CALLERS_SHOWN]
        rows.append({
            "function": function_label(key),
            "location": location_label(key),
            "calls": int(calls),
            "primitive_calls": int(primitive),
            "own_s": float(own),
            "cumulative_s": float(cumulative),
            "own_per_call_ms": 1000.0 * own / calls if calls else 0.0,
            "cumulative_per_call_ms": 1000.0 * cumulative / primitive if primitive else 0.0,
            "callers": "; ".join(f"{function_label(c)} ({location_label(c)})" for c, _ in caller_items),
        })
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame = frame[~frame["function"].map(_is_profiler_frame)]
    total = float(getattr(stats, "total_tt", 0.0)) or float(frame["own_s"].sum())
    frame = frame.sort_values(sort, ascending=False).head(top).reset_index(drop=True)
    frame.insert(frame.columns.get_loc("own_s") + 1, "own_pct", 100.0 * frame["own_s"] / total)
    return frame


def _is_profiler_frame(name: str) -> bool:
    return "_lsprof.Profiler" in name


class CProfileProfiler(Profiler):
    name = "cprofile"
    title = "cProfile"

    def profile(self, ctx: ProfileContext) -> ProfilerResult:
        profiler = cProfile.Profile()

        @contextmanager
        def around() -> Iterator[None]:
            profiler.enable()
            try:
                yield
            finally:
                profiler.disable()

        records = ctx.paired_runs(self.name, ctx.options.repeats, around=around)
        return self.result_from(profiler, ctx.out_dir, ctx.options.top, records)

    def result_from(
        self, profiler: cProfile.Profile, out_dir: Path, top: int, records: list[RunRecord]
    ) -> ProfilerResult:
        out_dir.mkdir(parents=True, exist_ok=True)
        prof_path = out_dir / "cprofile.prof"
        profiler.dump_stats(str(prof_path))
        stats = pstats.Stats(str(prof_path))
        tables = [
            ProfileTable("cumulative", "Top functions by cumulative time (with callers)",
                         stats_frame(stats, "cumulative_s", top)),
            ProfileTable("own", "Top functions by own time (with callers)", stats_frame(stats, "own_s", top)),
        ]
        artifacts = [ArtifactFile("cprofile:prof", prof_path, "cProfile stats (pstats / snakeviz)")]
        for table in tables:
            artifacts += write_table(table, out_dir, self.name)
        own = tables[1].frame
        hot = [
            f"{row.function} [{row.location}]: {row.own_s * 1000:.0f} ms own ({row.own_pct:.0f}%)"
            for row in own[own['own_s'] > 0].head(3).itertuples()
        ]
        return ProfilerResult(
            self.name, ProfilerStatus.OK, f"{len(records)} runs profiled",
            tables=tables, artifacts=artifacts, records=records, hot_spots=hot,
        )
