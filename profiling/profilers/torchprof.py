"""torch.profiler: PyTorch operators by self CPU (and CUDA) time with input shapes, and a Chrome trace.

Only for torch engines. Whether an engine runs on torch is read from the
registry's data (its entry requires the ``torch`` package), not from its name.
Each stage is marked with ``record_function("stage:<path>")`` so the trace
shows the lab's stages above the operators.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pandas as pd

from engines.base import Engine
from engines.registry import get_entry
from profiling.core.records import RunRecord
from profiling.profilers.artifacts import write_table
from profiling.profilers.common import (
    ArtifactFile,
    ProfileContext,
    Profiler,
    ProfilerResult,
    ProfilerStatus,
    ProfileTable,
)

STAGE_PREFIX = "stage:"


def is_torch_engine(engine_cls: type[Engine]) -> bool:
    """True when the engine's registry entry says it needs torch."""
    try:
        return "torch" in get_entry(engine_cls.name).requires
    except Exception:  # an engine outside the registry (a notebook's own class)
        return False


class _StageRanges:
    """Stage listener: one ``record_function`` range per stage, nested like the stages."""

    def __init__(self) -> None:
        from torch.profiler import record_function

        self._record_function = record_function
        self._open: list[Any] = []

    def stage_enter(self, path: str) -> None:
        marker = self._record_function(STAGE_PREFIX + path)
        marker.__enter__()
        self._open.append(marker)

    def stage_exit(self, path: str) -> None:
        self._open.pop().__exit__(None, None, None)


def operator_rows(events: Any, run: int) -> list[dict[str, Any]]:
    rows = []
    for event in events:
        rows.append({
            "operator": event.key,
            "input_shapes": str(event.input_shapes) if event.input_shapes else "",
            "calls": int(event.count),
            "self_cpu_ms": event.self_cpu_time_total / 1000.0,
            "cpu_total_ms": event.cpu_time_total / 1000.0,
            "self_cuda_ms": float(getattr(event, "self_device_time_total", 0.0)) / 1000.0,
            "cuda_total_ms": float(getattr(event, "device_time_total", 0.0)) / 1000.0,
            "self_cpu_memory_mb": float(getattr(event, "self_cpu_memory_usage", 0)) / 2**20,
            "self_cuda_memory_mb": float(getattr(event, "self_device_memory_usage", 0)) / 2**20,
            "run": run,
        })
    return rows


def operator_frames(rows: list[dict[str, Any]], cuda: bool, memory: bool, top: int) -> tuple[pd.DataFrame, ...]:
    """(operators by self CPU, operators by self CUDA or empty, stages) summed over the runs."""
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame, frame, frame
    summed = frame.drop(columns="run").groupby(["operator", "input_shapes"], as_index=False).sum()
    is_stage = summed["operator"].str.startswith(STAGE_PREFIX)
    stages = summed[is_stage][["operator", "calls", "cpu_total_ms", "cuda_total_ms"]].rename(
        columns={"operator": "stage"}
    )
    stages["stage"] = stages["stage"].str.removeprefix(STAGE_PREFIX)
    operators = summed[~is_stage].copy()
    total_cpu = float(operators["self_cpu_ms"].sum()) or 1.0
    operators.insert(4, "self_cpu_pct", 100.0 * operators["self_cpu_ms"] / total_cpu)
    drop = [] if cuda else ["self_cuda_ms", "cuda_total_ms", "self_cuda_memory_mb"]
    if not memory:
        drop += ["self_cpu_memory_mb", "self_cuda_memory_mb"]
    operators = operators.drop(columns=list(dict.fromkeys(drop)))
    stages = stages.drop(columns=[] if cuda else ["cuda_total_ms"])
    by_cpu = operators.sort_values("self_cpu_ms", ascending=False).head(top).reset_index(drop=True)
    by_cuda = (
        operators.sort_values("self_cuda_ms", ascending=False).head(top).reset_index(drop=True)
        if cuda else pd.DataFrame()
    )
    return by_cpu, by_cuda, stages.sort_values("cpu_total_ms", ascending=False).reset_index(drop=True)


class TorchProfiler(Profiler):
    name = "torch"
    title = "torch.profiler"

    def unavailable_reason(self, engine_cls: type[Engine]) -> str | None:
        if not is_torch_engine(engine_cls):
            return f"'{engine_cls.name}' is not a torch engine (torch.profiler sees PyTorch operators only)"
        if importlib.util.find_spec("torch") is None:
            return "torch is not installed"
        return None

    def profile(self, ctx: ProfileContext) -> ProfilerResult:
        import torch
        from torch.profiler import ProfilerActivity, profile

        options = ctx.options
        cuda = ctx.target.settings.device_kind == "cuda" and torch.cuda.is_available()
        activities = [ProfilerActivity.CPU, *([ProfilerActivity.CUDA] if cuda else [])]
        rows: list[dict[str, Any]] = []
        trace = ctx.out_dir / "torch.trace.json"
        ctx.out_dir.mkdir(parents=True, exist_ok=True)
        records: list[RunRecord] = []
        for index in range(options.repeats):
            ctx.plain_run(index)
            # A fresh profiler per profiled run: the plain runs between them stay unprofiled.
            prof = profile(activities=activities, record_shapes=True, profile_memory=options.torch_memory)

            @contextmanager
            def around(prof: Any = prof) -> Iterator[None]:
                with prof:
                    yield

            records.append(ctx.run(self.name, index, listener=_StageRanges(), around=around))
            rows += operator_rows(prof.key_averages(group_by_input_shape=True), index)
            if index == options.repeats - 1:
                prof.export_chrome_trace(str(trace))
        by_cpu, by_cuda, stages = operator_frames(rows, cuda, options.torch_memory, options.top)
        tables = [ProfileTable("operators_cpu", "Operators by self CPU time, with input shapes (summed over runs)",
                               by_cpu)]
        if cuda:
            tables.append(ProfileTable("operators_cuda", "Operators by self CUDA time, with input shapes", by_cuda))
        tables.append(ProfileTable("stages", "Stages as torch.profiler saw them", stages))
        artifacts = [ArtifactFile("torch:chrome_trace", trace,
                                  "Chrome trace of the last profiled run (chrome://tracing or ui.perfetto.dev)")]
        for table in tables:
            artifacts += write_table(table, ctx.out_dir, self.name)
        key = "self_cuda_ms" if cuda else "self_cpu_ms"
        ranked = by_cuda if cuda else by_cpu
        hot = [
            f"{row['operator']} {row['input_shapes']}: {row[key]:.1f} ms self {'CUDA' if cuda else 'CPU'}"
            + (f" ({row['self_cpu_pct']:.0f}% of operator CPU time)" if not cuda else "")
            for _, row in ranked.head(3).iterrows()
        ]
        memory = "with memory" if options.torch_memory else "no memory profile"
        return ProfilerResult(
            self.name, ProfilerStatus.OK,
            f"{len(records)} runs; activities {', '.join(a.name for a in activities)}; {memory}",
            tables=tables, artifacts=artifacts, records=records, hot_spots=hot,
        )
