"""Which stored thing an id names (run, batch, stream, profile, load test, sweep), and its trace."""

from __future__ import annotations

from typing import Any

from engines.errors import InputError
from profiling.core.records import RunMode, RunRecord
from profiling.store.load import LoadStore
from profiling.store.results import ResultsStore
from profiling.store.sweeps import stored_spec_data, sweep_runs_dataframe
from profiling.trace.loads import load_trace, stored_rates
from profiling.trace.profiles import PROFILER_ANNOTATION, TORCH_TRACE_KIND, profile_trace
from profiling.trace.runs import runs_trace
from profiling.trace.sweeps import sweep_trace

#: What ``trace_for`` draws. ``run`` takes a run id or a batch id (every run of the batch); ``stream`` and
#: ``profile`` take either too; ``load`` a load test id; ``sweep`` a sweep name (``sweep:NAME`` also works).
KINDS: tuple[str, ...] = ("run", "stream", "profile", "load", "sweep")
SWEEP_PREFIX = "sweep:"


#: A prefix this long or longer may stand for a run or batch id (as ``compare`` takes batch prefixes).
MIN_PREFIX = 6


def _records(store: ResultsStore, ident: str) -> list[RunRecord]:
    """The run with this id, or every run of the batch with this id (or a unique prefix of either);
    empty when none exists."""
    try:
        return [store.load_run(ident)]
    except KeyError:
        pass
    records = store.load_batch(ident)
    if records or len(ident) < MIN_PREFIX or any(c in ident for c in "%_"):
        return records
    with store.connect() as conn:
        runs = [r[0] for r in conn.execute("SELECT run_id FROM runs WHERE run_id LIKE ? LIMIT 2", (ident + "%",))]
        batches = [r[0] for r in conn.execute(
            "SELECT DISTINCT batch_id FROM runs WHERE batch_id LIKE ? LIMIT 2", (ident + "%",))]
    if len(runs) == 1 and not batches:
        return [store.load_run(runs[0])]
    if len(batches) == 1 and not runs:
        return store.load_batch(batches[0])
    return []


def _is_load_test(store: ResultsStore, ident: str) -> bool:
    with store.connect() as conn:
        present = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'load_tests'").fetchone()
        if present is None:
            return False
        return conn.execute("SELECT 1 FROM load_tests WHERE test_id = ?", (ident,)).fetchone() is not None


def _sweep_name(ident: str) -> str:
    return ident[len(SWEEP_PREFIX):].split("/", 1)[0] if ident.startswith(SWEEP_PREFIX) else ident


def _kind_of_records(records: list[RunRecord]) -> str:
    if any(str(r.annotations.get(PROFILER_ANNOTATION, "none")) != "none" for r in records):
        return "profile"
    return "stream" if any(r.mode is RunMode.STREAM for r in records) else "run"


def resolve_kind(ident: str, store: ResultsStore) -> str:
    """The kind of stored thing ``ident`` names; InputError (one line) when nothing has that id."""
    ident = ident.strip()
    if not ident:
        raise InputError("give a run id, batch id, load test id or sweep name")
    if _is_load_test(store, ident):
        return "load"
    if ident.startswith(SWEEP_PREFIX) or stored_spec_data(store, ident) is not None:
        if stored_spec_data(store, _sweep_name(ident)) is not None:
            return "sweep"
    records = _records(store, ident)
    if records:
        return _kind_of_records(records)
    raise InputError(f"no run, batch, load test or sweep has the id {ident!r} in {store.data_dir}")


def _profile_records(store: ResultsStore, ident: str) -> list[RunRecord]:
    """A profiled run's whole batch (its torch trace, if any, is of the batch's last run)."""
    records = _records(store, ident)
    return store.load_batch(records[0].batch_id) if len(records) == 1 else records


def trace_for(kind: str | None, ident: str, store: ResultsStore) -> dict[str, Any]:
    """The Chrome trace (a dict, ``traceEvents`` etc.) of what ``ident`` names; ``kind`` None: resolved.

    What the CLI's ``trace`` command and the dashboard's download call.
    """
    ident = ident.strip()
    kind = resolve_kind(ident, store) if kind in (None, "", "auto") else kind
    if kind not in KINDS:
        raise InputError(f"trace kind '{kind}' is not one of {', '.join(KINDS)}")
    if kind == "load":
        if not _is_load_test(store, ident):
            raise InputError(f"no load test has the id {ident!r}")
        loads = LoadStore(store)
        return load_trace(stored_rates(loads.requests(ident), loads.rates(ident)), f"load test {ident}")
    if kind == "sweep":
        name = _sweep_name(ident)
        if stored_spec_data(store, name) is None:
            raise InputError(f"no sweep is named {name!r}")
        return stored_sweep_trace(store, name)
    records = _profile_records(store, ident) if kind == "profile" else _records(store, ident)
    if not records:
        raise InputError(f"no run or batch has the id {ident!r}")
    if kind == "profile":
        torch_traces = [a.path for r in records for a in store.artifacts(r.run_id) if a.kind == TORCH_TRACE_KIND]
        return profile_trace(records, torch_traces, f"profile {ident}")
    return runs_trace(records, f"{kind} {ident}")


def stored_sweep_trace(store: ResultsStore, name: str) -> dict[str, Any]:
    frame = sweep_runs_dataframe(store, name)
    units = {str(b): str(u) for b, u in zip(frame["batch_id"], frame["unit"], strict=True)}
    configs = {str(r): str(c) for r, c in zip(frame["run_id"], frame["config_label"], strict=True)}
    records = [record for batch in units for record in store.load_batch(batch)]
    return sweep_trace(name, records, units, configs)
