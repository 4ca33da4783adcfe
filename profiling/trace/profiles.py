"""A profile: the lab's runs and stages, with torch.profiler's own Chrome trace merged onto the same clock.

torch.profiler writes the trace of the last profiled run (artifact ``torch:chrome_trace``) on its own
clock. Each lab stage is marked in it as a ``record_function`` range named ``stage:<path>``
(``profiling.profilers.torchprof``), so the two share an anchor: the earliest ``stage:`` range and the
lab's span of the same path in that run. Every torch event is shifted by the difference of the two
start times (``otherData.torch_traces`` names each anchor); the anchor is exact to the microsecond up to the few
microseconds ``record_function`` takes to open. Torch's events keep their own processes and threads
(renamed ``torch: ...``) and go through the track allocator, so nothing partially overlaps on a track.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from profiling.core.records import RunRecord
from profiling.trace.events import Lane, TraceBuilder
from profiling.trace.runs import add_runs, clock_base, process_name, wall_s

TORCH_TRACE_KIND = "torch:chrome_trace"
STAGE_PREFIX = "stage:"  # as profiling.profilers.torchprof marks stages (not imported: the trace reads files)
PROFILER_ANNOTATION = "profiler"


def read_torch_events(path: Path) -> list[dict[str, Any]]:
    data = json.loads(path.read_text(encoding="utf-8"))
    events = data.get("traceEvents", []) if isinstance(data, dict) else data
    return [e for e in events if isinstance(e, dict)]


def torch_anchor_us(events: Sequence[dict[str, Any]]) -> tuple[str, float] | None:
    """(stage path, ts) of the earliest ``stage:`` range in torch's trace; None when it has none."""
    stages = [e for e in events if e.get("ph") == "X" and str(e.get("name", "")).startswith(STAGE_PREFIX)
              and isinstance(e.get("ts"), int | float)]
    if not stages:
        return None
    first = min(stages, key=lambda e: float(e["ts"]))
    return str(first["name"])[len(STAGE_PREFIX):], float(first["ts"])


def merge_torch_trace(trace: TraceBuilder, events: Sequence[dict[str, Any]], record: RunRecord,
                      base: float) -> str | None:
    """Add torch's slices and instants, shifted onto the lab clock (seconds after ``base``) by the common
    anchor; returns the anchor's stage path, or None (nothing merged) when either side lacks it."""
    anchor = torch_anchor_us(events)
    if anchor is None:
        return None
    path, torch_ts = anchor
    span = next((s for s in record.spans if s.path == path), None)
    if span is None:
        return None
    lab_anchor_s = wall_s(record) - base + span.start_s
    names = {(e.get("pid"), e.get("tid")): e.get("args", {}).get("name") for e in events
             if e.get("ph") == "M" and e.get("name") == "thread_name"}
    processes = {e.get("pid"): e.get("args", {}).get("name") for e in events
                 if e.get("ph") == "M" and e.get("name") == "process_name"}
    pids: dict[Any, int] = {}
    lanes: dict[tuple[Any, Any], Lane] = {}
    timed = sorted((e for e in events if e.get("ph") in ("X", "i", "I") and isinstance(e.get("ts"), int | float)),
                   key=lambda e: (float(e["ts"]), -float(e.get("dur", 0) or 0)))
    for event in timed:
        key = (event.get("pid"), event.get("tid"))
        if key[0] not in pids:
            pids[key[0]] = trace.process(f"torch: {processes.get(key[0]) or key[0]}", 1000 + len(pids))
        if key not in lanes:
            lanes[key] = trace.lane(pids[key[0]], f"torch: {names.get(key) or f'thread {key[1]}'}", len(lanes))
        start_s = lab_anchor_s + (float(event["ts"]) - torch_ts) / 1e6  # small numbers first: no rounding
        args = event.get("args") if isinstance(event.get("args"), dict) else {}
        cat = str(event.get("cat") or "torch")
        if event["ph"] == "X":
            lanes[key].add(str(event.get("name", "")), cat, start_s, float(event.get("dur", 0) or 0) / 1e6, args)
        else:
            lanes[key].instant(str(event.get("name", "")), cat, start_s, args)
    return path


def profile_trace(records: Sequence[RunRecord], torch_traces: Sequence[Path] = (), title: str = "") -> dict[str, Any]:
    """The profile's runs, one process per profiler (its batch), and torch's trace merged where one was written.

    A torch trace belongs to the last run of the batch whose first run it is stored under.
    """
    trace = TraceBuilder(title or "profile")
    batches: dict[str, list[RunRecord]] = {}
    for record in records:
        batches.setdefault(record.batch_id, []).append(record)
    merged: list[dict[str, Any]] = []
    base = clock_base(records)
    for index, group in enumerate(sorted(batches.values(), key=lambda g: min(r.created_at for r in g))):
        profiler = str(group[0].annotations.get(PROFILER_ANNOTATION, "none"))
        name = f"profiler {profiler}" if profiler != "none" else "plain (no profiler)"
        add_runs(trace, group, f"{name} · {process_name(group)}", base, index)
    by_run = {r.run_id: r for r in records}
    for path in torch_traces:
        # The artifact's folder is the profiler's first run; its trace is of that batch's last run.
        first = by_run.get(path.parent.name)
        if first is None or not path.is_file():
            continue
        last = max(batches[first.batch_id], key=lambda r: (r.created_at, r.repeat_index))
        anchor = merge_torch_trace(trace, read_torch_events(path), last, base)
        merged.append({"file": str(path), "run_id": last.run_id, "anchor_stage": anchor})
    trace.other.update(kind="profile", torch_traces=merged,
                       anchor="torch's earliest 'stage:<path>' range starts with the lab's first span of <path>")
    return trace.to_dict()
