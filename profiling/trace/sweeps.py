"""A sweep as a timeline: one lane per scheduler unit (one loaded model), its runs in the order they ran.

Every run of the sweep's blocks is drawn, warm-ups (stored unkeyed, in the same batch) included, each
with its model load before it where it loaded one, and its stages nested. Runs are placed on the wall
clock, so units that ran side by side on Ray workers show side by side.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from profiling.core.records import RunRecord
from profiling.trace.events import TraceBuilder
from profiling.trace.runs import add_run, clock_base, wall_s


def sweep_trace(name: str, records: Sequence[RunRecord], units: Mapping[str, str],
                configs: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``units``: batch id -> unit (every run of a block shares its batch); ``configs``: run id -> config label."""
    trace = TraceBuilder(f"sweep {name}")
    pid = trace.process(f"sweep {name}", 0)
    lanes = {}
    configs = configs or {}
    base = clock_base(records)
    for record in sorted(records, key=lambda r: (r.created_at, r.repeat_index)):
        unit = units.get(record.batch_id, "") or "(no unit)"
        if unit not in lanes:
            lanes[unit] = trace.lane(pid, f"unit {unit}", len(lanes))
        label = configs.get(record.run_id) or record.label
        add_run(lanes[unit], record, wall_s(record) - base, prefix=f"{label} · " if label else "")
    trace.other.update(kind="sweep", sweep=name, units=len(lanes), runs=len(records))
    return trace.to_dict()
