"""The sweep tables beside the runs: specs, configurations, and one resume key per measured run.

A measured sweep run is written with its key in ONE transaction (``ResultsStore.save_run(also=...)``):
the key is the table's primary key, so a run can be neither lost (key without run) nor stored twice
(a second write of the same key rolls back with the run it came with). Whoever executed the run (the
local loop or a Ray worker), only the process holding the store writes here.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import pandas as pd

from engines.base import Audio
from profiling.core.records import RunRecord
from profiling.store.results import ResultsStore

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sweeps (
    name TEXT PRIMARY KEY,
    spec_json TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sweep_configs (
    sweep TEXT NOT NULL,
    config_key TEXT NOT NULL,
    label TEXT NOT NULL,
    engine TEXT NOT NULL,
    precision TEXT NOT NULL,
    varied_json TEXT NOT NULL,
    settings_json TEXT NOT NULL,
    is_reference INTEGER NOT NULL,
    PRIMARY KEY (sweep, config_key)
);
CREATE TABLE IF NOT EXISTS sweep_runs (
    sweep TEXT NOT NULL,
    run_key TEXT NOT NULL,
    config_key TEXT NOT NULL,
    text_id TEXT NOT NULL,
    repeat INTEGER NOT NULL,
    run_id TEXT NOT NULL UNIQUE REFERENCES runs(run_id) ON DELETE CASCADE,
    PRIMARY KEY (sweep, run_key)
);
"""

#: Columns added after the first schema (older stores get them on open): schedule position and placement.
_ADDED_RUN_COLUMNS = (
    ("seq", "INTEGER"), ("unit", "TEXT NOT NULL DEFAULT ''"), ("executor", "TEXT NOT NULL DEFAULT 'local'"),
    ("node", "TEXT NOT NULL DEFAULT ''"), ("worker", "TEXT NOT NULL DEFAULT ''"),
)


@dataclass(frozen=True)
class SweepConfigRow:
    """One configuration as stored: what the dashboard's Sweeps tab and ``compare sweep:NAME/CONFIG`` read back."""

    config_key: str
    label: str
    engine: str
    precision: str
    varied: Mapping[str, Any]
    knobs: Mapping[str, Any]
    is_reference: bool


@dataclass(frozen=True)
class SweepRunKey:
    """The resume key of one measured run, plus where in the schedule and on which worker it ran."""

    sweep: str
    run_key: str
    config_key: str
    text_id: str
    repeat: int
    seq: int | None = None  # position in the schedule: the order runs were meant to run in
    unit: str = ""  # the loaded model (load key digest) the run shared with its unit
    executor: str = "local"
    placement: Mapping[str, str] = field(default_factory=dict)  # node, gpu, worker id (Ray)


def ensure_schema(store: ResultsStore) -> None:
    with store.connect() as conn:
        conn.executescript(_SCHEMA)
        present = {row[1] for row in conn.execute("PRAGMA table_info(sweep_runs)")}
        for name, kind in _ADDED_RUN_COLUMNS:
            if name not in present:
                conn.execute(f"ALTER TABLE sweep_runs ADD COLUMN {name} {kind}")


def register_sweep(store: ResultsStore, name: str, spec: Mapping[str, Any], configs: Sequence[SweepConfigRow]) -> None:
    """Record the spec and its configurations (idempotent: re-running a sweep updates them)."""
    ensure_schema(store)
    now = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    with store.connect() as conn:
        conn.execute(
            "INSERT INTO sweeps VALUES (?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET"
            " spec_json = excluded.spec_json, updated_at = excluded.updated_at",
            (name, json.dumps(dict(spec)), now, now),
        )
        conn.executemany(
            "INSERT OR REPLACE INTO sweep_configs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (name, c.config_key, c.label, c.engine, c.precision, json.dumps(dict(c.varied)),
                 json.dumps(dict(c.knobs)), int(c.is_reference))
                for c in configs
            ],
        )


def completed_keys(store: ResultsStore, sweep: str) -> set[str]:
    ensure_schema(store)
    with store.connect() as conn:
        rows = conn.execute("SELECT run_key FROM sweep_runs WHERE sweep = ?", (sweep,)).fetchall()
    return {row[0] for row in rows}


def save_keyed_run(store: ResultsStore, record: RunRecord, audio: Audio | None, key: SweepRunKey) -> bool:
    """Store a measured run and its key atomically; False (nothing written) when the key is already stored.

    The duplicate check is the primary key itself, so two writers racing for one key cannot both win.
    """
    record.annotations["sweep"] = key.sweep
    record.annotations["sweep_run_key"] = key.run_key
    if key.seq is not None:
        record.annotations["sweep_seq"] = key.seq
    record.annotations["executor"] = key.executor
    for name, value in key.placement.items():
        record.annotations[f"placement_{name}"] = value
    row = (key.sweep, key.run_key, key.config_key, key.text_id, key.repeat, record.run_id, key.seq, key.unit,
           key.executor, key.placement.get("node", ""), key.placement.get("worker", ""))

    def insert_key(conn: sqlite3.Connection) -> None:
        conn.execute(
            "INSERT INTO sweep_runs (sweep, run_key, config_key, text_id, repeat, run_id, seq, unit, executor,"
            " node, worker) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row,
        )

    try:
        store.save_run(record, audio, insert_key)
    except sqlite3.IntegrityError:
        if key.run_key in completed_keys(store, key.sweep):
            return False  # a retried run whose first attempt was stored: keep the first, drop this one
        raise
    return True


@dataclass(frozen=True)
class KeyedRunSink:
    """The store as ``run_bench`` sees it for one sweep run: warm-ups stored unkeyed, the measured run keyed."""

    store: ResultsStore
    key: SweepRunKey

    def save_run(self, record: RunRecord, audio: Audio | None = None) -> None:
        if record.warmup:
            self.store.save_run(record, audio)
        else:
            save_keyed_run(self.store, record, audio, self.key)


# --- reading back -------------------------------------------------------------------------------
def list_sweeps(store: ResultsStore) -> pd.DataFrame:
    """One row per sweep: name, description, runs stored, configurations, last update."""
    ensure_schema(store)
    with store.connect() as conn:
        frame = pd.read_sql_query(
            "SELECT s.name, s.updated_at, s.spec_json,"
            " (SELECT COUNT(*) FROM sweep_runs r WHERE r.sweep = s.name) AS runs,"
            " (SELECT COUNT(*) FROM sweep_configs c WHERE c.sweep = s.name) AS configs"
            " FROM sweeps s ORDER BY s.updated_at DESC",
            conn,
        )
    frame["description"] = [json.loads(s).get("description", "") for s in frame.pop("spec_json")]
    return frame


def stored_spec_data(store: ResultsStore, name: str) -> dict[str, Any] | None:
    """The spec as it was registered (plain data), or None when no sweep has that name."""
    ensure_schema(store)
    with store.connect() as conn:
        row = conn.execute("SELECT spec_json FROM sweeps WHERE name = ?", (name,)).fetchone()
    return None if row is None else json.loads(row[0])


def sweep_configs_dataframe(store: ResultsStore, name: str) -> pd.DataFrame:
    ensure_schema(store)
    with store.connect() as conn:
        return pd.read_sql_query(
            "SELECT config_key, label, engine, precision, varied_json, settings_json, is_reference"
            " FROM sweep_configs WHERE sweep = ? ORDER BY rowid",
            conn, params=(name,),
        )


def sweep_runs_dataframe(store: ResultsStore, name: str) -> pd.DataFrame:
    """Measured runs of a sweep: the store's run columns plus config key/label, text id, repeat, varied knobs,
    schedule position (``seq``), unit, executor and placement (``node``, ``worker``)."""
    ensure_schema(store)
    with store.connect() as conn:
        keys = pd.read_sql_query(
            "SELECT k.run_id, k.run_key, k.config_key, k.text_id, k.repeat, k.seq, k.unit, k.executor, k.node,"
            " k.worker, c.label AS config_label, c.varied_json, c.is_reference FROM sweep_runs k"
            " JOIN sweep_configs c ON c.sweep = k.sweep AND c.config_key = k.config_key WHERE k.sweep = ?",
            conn, params=(name,),
        )
    runs = store.runs_dataframe()
    frame = keys.merge(runs, on="run_id", how="inner")
    varied = [json.loads(v) for v in frame.pop("varied_json")]
    for column in sorted({k for v in varied for k in v}):
        if column not in frame.columns:
            frame[column] = [v.get(column) for v in varied]
    frame["is_reference"] = frame["is_reference"].astype(bool)
    return frame
