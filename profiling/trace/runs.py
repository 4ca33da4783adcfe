"""Stored runs as a timeline: each run a slice, its stages nested inside, its model load just before it.

Runs are placed on the wall clock by ``created_at`` (stamped as the run began, a few milliseconds
before its measured window opened); inside a run every stage is at its own measured offset. A run
stored before stage spans were kept shows its per-stage totals laid end to end inside their parent
(category ``stage.totals``): the order and lengths are real, the start times are not.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from profiling.core.records import RunRecord, RunStatus
from profiling.core.timer import SpanTiming, StageTiming
from profiling.trace.events import Lane, TraceBuilder
from profiling.trace.streams import StreamLanes, add_stream


def wall_s(record: RunRecord) -> float:
    """When the run began, in seconds since the epoch (its ``created_at``)."""
    return datetime.fromisoformat(record.created_at).timestamp()


def run_label(record: RunRecord) -> str:
    return "warm-up" if record.warmup else f"run {record.repeat_index}"


def clock_base(records: Sequence[RunRecord]) -> float:
    """The earliest moment drawn (a load's start or a run's), in epoch seconds. Times are drawn relative
    to it: epoch seconds as floats keep only a quarter microsecond, offsets from it keep nanoseconds."""
    return min((wall_s(r) - (r.load_s or 0.0) for r in records), default=0.0)


def run_args(record: RunRecord) -> dict[str, object]:
    return {
        "run_id": record.run_id, "batch_id": record.batch_id, "engine": record.engine,
        "device": record.settings.device, "precision": record.settings.precision, "mode": record.mode.value,
        "status": record.status.value, "error": record.error, "synth_s": record.synth_s,
        "audio_s": record.audio_s, "rtf": record.rtf, "ttfa_s": record.ttfa_s, "text_chars": record.text_chars,
        "timing_mode": record.timing_mode, "label": record.label,
    }


def add_spans(lane: Lane, spans: Sequence[SpanTiming], at_s: float, cat: str = "stage") -> None:
    for span in spans:
        lane.add(span.path.rsplit("/", 1)[-1], cat, at_s + span.start_s, span.duration_s,
                 {"path": span.path, "depth": span.depth, "duration_ms": span.duration_s * 1000})


def add_stage_totals(lane: Lane, stages: Sequence[StageTiming], at_s: float) -> None:
    """Old runs (no spans): each path's total laid end to end inside its parent, in first-start order."""
    cursor: dict[str, float] = {"": at_s}  # next free start inside each parent path
    for stage in stages:
        parent = stage.name.rsplit("/", 1)[0] if "/" in stage.name else ""
        start = cursor.get(parent, at_s)
        lane.add(stage.name.rsplit("/", 1)[-1], "stage.totals", start, stage.inclusive_s,
                 {"path": stage.name, "depth": stage.depth, "calls": stage.calls,
                  "inclusive_ms": stage.inclusive_s * 1000, "exclusive_ms": stage.exclusive_s * 1000,
                  "layout": "totals end to end: start times not recorded for this run"})
        cursor[parent] = start + stage.inclusive_s
        cursor[stage.name] = start


def add_run(lane: Lane, record: RunRecord, at_s: float, stream: StreamLanes | None = None, prefix: str = "") -> None:
    """One run at ``at_s`` (seconds on the trace's clock): its load before it, its stages inside it."""
    if record.load_s is not None:
        load_at = at_s - record.load_s  # the load ended as the run began (the gap between is not recorded)
        lane.add("load", "load", load_at, record.load_s, {"run_id": record.run_id, "load_s": record.load_s})
        if record.load_spans:
            add_spans(lane, record.load_spans, load_at, "load.stage")
        else:
            add_stage_totals(lane, record.load_stages, load_at)
    args = run_args(record)
    cat = "run" if record.status is RunStatus.OK else "run.error"
    lane.add(prefix + run_label(record), cat, at_s, record.synth_s, args)
    if record.spans:
        add_spans(lane, record.spans, at_s)
    else:
        add_stage_totals(lane, record.stages, at_s)
    if record.status is RunStatus.ERROR:
        lane.instant("error", "run.error", at_s + record.synth_s, {"error": record.error})
    if stream is not None and record.chunks:
        add_stream(stream, record, at_s)


def add_runs(trace: TraceBuilder, records: Sequence[RunRecord], process: str, base: float,
             sort_index: int | None = None, streams: bool = True) -> int:
    """Runs in one process on the wall clock (seconds after ``base``, epoch seconds); stream runs get their
    chunk and player lanes. Returns the pid."""
    pid = trace.process(process, sort_index)
    lane = trace.lane(pid, "runs · stages", 0)
    stream = StreamLanes.open(trace, pid) if streams and any(r.chunks for r in records) else None
    for record in sorted(records, key=lambda r: (r.created_at, r.repeat_index)):
        add_run(lane, record, wall_s(record) - base, stream)
    return pid


def process_name(records: Sequence[RunRecord]) -> str:
    first = records[0]
    what = f"{first.engine} {first.settings.device} {first.settings.precision} {first.mode.value}"
    return f"{what} · batch {first.batch_id[:8]}" + (f" · {first.label}" if first.label else "")


def runs_trace(records: Sequence[RunRecord], title: str = "") -> dict[str, object]:
    """A trace of stored runs: one process per batch (a run id alone is a batch of one)."""
    trace = TraceBuilder(title or f"{len(records)} runs")
    batches: dict[str, list[RunRecord]] = {}
    for record in records:
        batches.setdefault(record.batch_id, []).append(record)
    base = clock_base(records)
    for index, group in enumerate(sorted(batches.values(), key=lambda g: min(r.created_at for r in g))):
        add_runs(trace, group, process_name(group), base, index)
    trace.other.update(kind="runs", runs=len(records), clock="wall clock (created_at); stages at measured offsets")
    return trace.to_dict()
