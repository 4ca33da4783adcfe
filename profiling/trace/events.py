"""The Chrome trace event format (what Perfetto and chrome://tracing open) as typed events, and a writer.

Only the parts the lab uses: complete events (``ph: "X"``, a slice with ``ts`` and ``dur``), instants
(``ph: "i"`` with a scope ``s``) and metadata (``ph: "M"``: process and thread names and sort order).
Times are microseconds, as the format says; the lab keeps seconds, so every builder call takes seconds.

One rule the viewers rely on: slices on one thread (track) must nest properly. ``Lane`` is a small
track allocator: a group of tracks under one name, each event going onto the first track where it nests
in, contains, or misses every event already there; a new track is opened only when none fits.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Endpoints are rounded to whole nanoseconds before comparing, so a child ending with its parent
#: (the same clock reading, different float sums) still nests.
_NS_PER_S = 1_000_000_000

Args = dict[str, Any]


def _ns(seconds: float) -> int:
    return int(round(seconds * _NS_PER_S))


def _us(ns: int) -> float:
    return ns / 1000.0


@dataclass(frozen=True)
class CompleteEvent:
    """A slice: ``ts`` .. ``ts + dur`` on thread ``tid`` of process ``pid`` (microseconds)."""

    name: str
    cat: str
    ts: float
    dur: float
    pid: int
    tid: int
    args: Args = field(default_factory=dict)
    ph: str = "X"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "cat": self.cat, "ph": self.ph, "ts": self.ts, "dur": self.dur,
                "pid": self.pid, "tid": self.tid, "args": self.args}


@dataclass(frozen=True)
class InstantEvent:
    """A moment; scope ``t`` (thread), ``p`` (process) or ``g`` (global) sets how far the viewer draws it."""

    name: str
    cat: str
    ts: float
    pid: int
    tid: int
    scope: str = "t"
    args: Args = field(default_factory=dict)
    ph: str = "i"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "cat": self.cat, "ph": self.ph, "ts": self.ts, "s": self.scope,
                "pid": self.pid, "tid": self.tid, "args": self.args}


@dataclass(frozen=True)
class MetadataEvent:
    """``process_name``/``thread_name`` (args ``name``) or ``process_sort_index``/``thread_sort_index``."""

    name: str
    pid: int
    tid: int
    args: Args
    ph: str = "M"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "ph": self.ph, "pid": self.pid, "tid": self.tid, "args": self.args}


TraceEvent = CompleteEvent | InstantEvent | MetadataEvent


@dataclass
class _Track:
    """The slices on one thread. Slices mostly arrive in start order (a run, then its stages); while they do,
    ``_open`` holds the ends of the slices containing the latest start, innermost last, and a check is O(1).
    A slice arriving earlier than the latest start switches the track to the plain scan over every slice."""

    tid: int
    spans: list[tuple[int, int]] = field(default_factory=list)  # (start ns, end ns)
    _open: list[int] = field(default_factory=list)
    _last: int = -(2**62)
    _ordered: bool = True

    def fits(self, start: int, end: int) -> bool:
        """Disjoint from, inside, or around every slice already here (never a partial overlap)."""
        if self._in_order(start, end):
            return True
        if self._ordered and start > self._last:
            return False  # a later start crossing the innermost open slice's end: a partial overlap
        return self._scan(start, end)

    def _in_order(self, start: int, end: int) -> bool:
        """No slice here starts after ``start`` and the new one ends inside the innermost slice still open
        at ``start`` (or none is open): it nests in all of them, and the open list stays exact."""
        if not self._ordered or start < self._last:
            return False
        inner = next((e for e in reversed(self._open) if e > start), None)
        return inner is None or end <= inner

    def _scan(self, start: int, end: int) -> bool:
        for s, e in self.spans:
            disjoint = end <= s or e <= start
            nested = (s <= start and end <= e) or (start <= s and e <= end)
            if not (disjoint or nested):
                return False
        return True

    def put(self, start: int, end: int) -> None:
        if self._in_order(start, end):
            while self._open and self._open[-1] <= start:
                self._open.pop()
            self._open.append(end)
            self._last = start
        else:
            self._ordered = False
        self.spans.append((start, end))


class Lane:
    """Tracks under one name in one process; ``add`` picks the first track the slice fits on."""

    def __init__(self, trace: TraceBuilder, pid: int, name: str, sort_base: int) -> None:
        self._trace, self.pid, self.name, self._sort_base = trace, pid, name, sort_base
        self._tracks: list[_Track] = []

    def _new_track(self) -> _Track:
        index = len(self._tracks)
        name = self.name if index == 0 else f"{self.name} ({index + 1})"
        tid = self._trace.thread(self.pid, name, self._sort_base + index)
        track = _Track(tid)
        self._tracks.append(track)
        return track

    def first_tid(self) -> int:
        """The lane's first track (opened if none yet): where its instants go."""
        return (self._tracks[0] if self._tracks else self._new_track()).tid

    def add(self, name: str, cat: str, start_s: float, duration_s: float, args: Args | None = None) -> int | None:
        """A slice from ``start_s`` lasting ``duration_s`` (seconds on the trace's clock); returns its track id.
        A slice with no finite time is left out (None)."""
        if not (math.isfinite(start_s) and math.isfinite(duration_s)):
            return None
        start = _ns(start_s)
        end = max(start, _ns(start_s + max(0.0, duration_s)))
        track = next((t for t in self._tracks if t.fits(start, end)), None) or self._new_track()
        track.put(start, end)
        self._trace.add(CompleteEvent(name, cat, _us(start), _us(end - start), self.pid, track.tid,
                                      _clean(args or {})))
        return track.tid

    def instant(self, name: str, cat: str, at_s: float, args: Args | None = None, scope: str = "t") -> None:
        if math.isfinite(at_s):
            self._trace.add(InstantEvent(name, cat, _us(_ns(at_s)), self.pid, self.first_tid(), scope,
                                         _clean(args or {})))


class TraceBuilder:
    """Processes, their lanes, and the events; ``to_dict`` shifts every time so the earliest is 0."""

    def __init__(self, title: str = "") -> None:
        self.title = title
        self._events: list[TraceEvent] = []
        self._meta: list[MetadataEvent] = []
        self._next_pid = 1
        self._next_tid: dict[int, int] = {}
        self.other: Args = {}

    def process(self, name: str, sort_index: int | None = None) -> int:
        pid = self._next_pid
        self._next_pid += 1
        self._next_tid[pid] = 1
        self._meta.append(MetadataEvent("process_name", pid, 0, {"name": name}))
        self._meta.append(MetadataEvent("process_sort_index", pid, 0, {"sort_index": pid if sort_index is None
                                                                      else sort_index}))
        return pid

    def thread(self, pid: int, name: str, sort_index: int) -> int:
        tid = self._next_tid[pid]
        self._next_tid[pid] = tid + 1
        self._meta.append(MetadataEvent("thread_name", pid, tid, {"name": name}))
        self._meta.append(MetadataEvent("thread_sort_index", pid, tid, {"sort_index": sort_index}))
        return tid

    def lane(self, pid: int, name: str, sort_index: int = 0) -> Lane:
        """Tracks named ``name`` (then ``name (2)``...), sorted at ``sort_index`` (x100 leaves room for spares)."""
        return Lane(self, pid, name, sort_index * 100)

    def add(self, event: TraceEvent) -> None:
        self._events.append(event)

    @property
    def events(self) -> list[TraceEvent]:
        return list(self._events)

    def to_dict(self) -> dict[str, Any]:
        """``{"traceEvents": [...], "displayTimeUnit": "ms", "otherData": {...}}``, times from 0."""
        timed = [e for e in self._events if not isinstance(e, MetadataEvent)]
        origin = min((e.ts for e in timed), default=0.0)
        events = [*(m.to_dict() for m in self._meta)]
        # Longest first at equal start: parents precede their children, as the viewers like.
        for event in sorted(timed, key=lambda e: (e.ts, -getattr(e, "dur", 0.0))):
            data = event.to_dict()
            data["ts"] = round(event.ts - origin, 3)
            events.append(data)
        other = {"title": self.title, **self.other} if self.title else dict(self.other)
        return {"traceEvents": events, "displayTimeUnit": "ms", "otherData": _clean(other)}


def _clean(args: Args) -> Args:
    """JSON-safe argument values: non-finite floats become None (JSON has no NaN)."""
    return {str(key): _clean_value(value) for key, value in args.items()}


def _clean_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return _clean(value)
    if isinstance(value, list | tuple):
        return [_clean_value(v) for v in value]
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def write_trace(trace: dict[str, Any], path: Path | str) -> Path:
    """Write a trace dict as JSON (what Perfetto's "Open trace file" and chrome://tracing's Load take)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Raw UTF-8, not \u escapes: Perfetto's JSON importer (v52) shows escapes in names as written ("\u00b7").
    target.write_text(json.dumps(trace, allow_nan=False, ensure_ascii=False), encoding="utf-8")
    return target
