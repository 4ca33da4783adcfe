"""Load tests in the results store: the test, each rate (with its schedule and figures), every request row.

A test row is written first; then each rate is one transaction holding the rate and all its request rows
(client row and server timeline joined by request id), so a test killed mid-way keeps every finished rate.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any

import pandas as pd

from profiling.store.results import ResultsStore

_SCHEMA = """
CREATE TABLE IF NOT EXISTS load_tests (
    test_id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    label TEXT NOT NULL,
    target TEXT NOT NULL,
    seed INTEGER NOT NULL,
    settings_json TEXT NOT NULL,
    environment_json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS load_rates (
    test_id TEXT NOT NULL REFERENCES load_tests(test_id) ON DELETE CASCADE,
    rate_index INTEGER NOT NULL,
    label TEXT NOT NULL,
    offered_per_s REAL NOT NULL,
    users INTEGER NOT NULL,
    slo_met INTEGER NOT NULL,
    sustainable INTEGER NOT NULL,
    ttfa_p50_s REAL, ttfa_p95_s REAL, ttfa_p99_s REAL, e2e_p50_s REAL, e2e_p95_s REAL, e2e_p99_s REAL,
    throughput_per_min REAL NOT NULL,
    goodput_per_min REAL NOT NULL,
    error_rate REAL NOT NULL,
    underruns INTEGER NOT NULL,
    client_cpu_fraction REAL NOT NULL,
    schedule_json TEXT NOT NULL,
    metrics_json TEXT NOT NULL,
    PRIMARY KEY (test_id, rate_index)
);
CREATE TABLE IF NOT EXISTS load_requests (
    test_id TEXT NOT NULL,
    rate_index INTEGER NOT NULL,
    request_id TEXT NOT NULL,
    request_index INTEGER NOT NULL,
    warmup INTEGER NOT NULL,
    status TEXT NOT NULL,
    http_status INTEGER NOT NULL,
    ideal_s REAL NOT NULL,
    lag_s REAL, ttfb_s REAL, first_playable_s REAL, audible_ttfa_s REAL, e2e_s REAL,
    audio_s REAL, rtf REAL, underruns INTEGER,
    queue_wait_s REAL, server_first_chunk_s REAL,
    row_json TEXT NOT NULL,
    server_json TEXT,
    PRIMARY KEY (test_id, rate_index, request_id),
    FOREIGN KEY (test_id, rate_index) REFERENCES load_rates(test_id, rate_index) ON DELETE CASCADE
);
-- Added with the capacity search; a store from before simply has no rows here (CREATE IF NOT EXISTS).
CREATE TABLE IF NOT EXISTS load_capacity (
    test_id TEXT PRIMARY KEY REFERENCES load_tests(test_id) ON DELETE CASCADE,
    unit TEXT NOT NULL,
    capacity REAL,
    streams_per_core REAL,
    search_json TEXT NOT NULL
);
"""

_REQUEST_COLUMNS = ("lag_s", "ttfb_s", "first_playable_s", "audible_ttfa_s", "e2e_s", "audio_s", "rtf", "underruns")


def _json(value: Any) -> str:
    return json.dumps(value, allow_nan=True, default=str)


@dataclass(frozen=True)
class StoredRate:
    """What a rate writes: its figures as plain data (the store knows no load types)."""

    rate_index: int
    label: str
    offered_per_s: float
    users: int
    slo_met: bool
    sustainable: bool
    ttfa: tuple[float, float, float]  # p50, p95, p99 seconds
    e2e: tuple[float, float, float]
    throughput_per_min: float
    goodput_per_min: float
    error_rate: float
    underruns: int
    client_cpu_fraction: float
    schedule: dict[str, Any]
    metrics: dict[str, Any]


class LoadStore:
    def __init__(self, store: ResultsStore) -> None:
        self.store = store
        with store.connect() as conn:
            conn.executescript(_SCHEMA)

    def start_test(self, label: str, target: str, seed: int, settings: dict[str, Any],
                   environment: dict[str, Any]) -> str:
        test_id = f"load-{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
        with self.store.connect() as conn:
            conn.execute("INSERT INTO load_tests VALUES (?, ?, ?, ?, ?, ?, ?)",
                         (test_id, datetime.now(timezone.utc).isoformat(), label, target, seed,
                          _json(settings), _json(environment)))
        return test_id

    def save_rate(self, test_id: str, rate: StoredRate, rows: list[dict[str, Any]],
                  server: dict[str, dict[str, Any]]) -> None:
        """The rate and all its request rows in one transaction."""
        def nan_none(x: float) -> float | None:
            return None if x != x else x  # NaN -> NULL

        with self.store.connect() as conn:
            conn.execute(
                "INSERT INTO load_rates VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (test_id, rate.rate_index, rate.label, rate.offered_per_s, rate.users, int(rate.slo_met),
                 int(rate.sustainable), *map(nan_none, rate.ttfa), *map(nan_none, rate.e2e),
                 rate.throughput_per_min, rate.goodput_per_min, rate.error_rate, rate.underruns,
                 rate.client_cpu_fraction, _json(rate.schedule), _json(rate.metrics)))
            values = []
            for row in rows:
                timeline = server.get(row["request_id"])
                queue = timeline.get("queue_wait_s") if timeline else None
                first = (timeline["first_chunk_s"] - timeline["start_s"]) if timeline and timeline.get(
                    "first_chunk_s") is not None and timeline.get("start_s") is not None else None
                values.append((test_id, rate.rate_index, row["request_id"], row["index"], int(row["warmup"]),
                               row["status"], row["http_status"], row["ideal_s"],
                               *(row[c] for c in _REQUEST_COLUMNS), queue, first,
                               _json(row), _json(timeline) if timeline else None))
            conn.executemany(
                f"INSERT INTO load_requests VALUES ({', '.join('?' * 20)})", values)

    def save_capacity(self, test_id: str, unit: str, capacity: float | None, streams_per_core: float | None,
                      search: dict[str, Any]) -> None:
        """A capacity search's answer (its steps are the test's rates already)."""
        with self.store.connect() as conn:
            conn.execute("INSERT OR REPLACE INTO load_capacity VALUES (?, ?, ?, ?, ?)",
                         (test_id, unit, capacity, streams_per_core, _json(search)))

    # --- reading ----------------------------------------------------------------
    def tests(self) -> pd.DataFrame:
        """One row per test; ``capacity``/``capacity_unit`` where the test searched for it (else empty)."""
        with self.store.connect() as conn:
            return pd.read_sql_query(
                "SELECT t.test_id, t.created_at, t.label, t.target, t.seed, COUNT(r.rate_index) AS rates,"
                " c.capacity, c.unit AS capacity_unit, c.streams_per_core"
                " FROM load_tests t LEFT JOIN load_rates r USING (test_id) LEFT JOIN load_capacity c USING (test_id)"
                " GROUP BY t.test_id ORDER BY t.created_at", conn)

    def capacity(self, test_id: str) -> dict[str, Any] | None:
        """The stored capacity search of ``test_id`` (``CapacitySearch.to_dict``), or None."""
        with self.store.connect() as conn:
            row = conn.execute("SELECT search_json FROM load_capacity WHERE test_id = ?", (test_id,)).fetchone()
        return None if row is None else json.loads(row[0])

    def rates(self, test_id: str) -> pd.DataFrame:
        with self.store.connect() as conn:
            return pd.read_sql_query(
                "SELECT * FROM load_rates WHERE test_id = ? ORDER BY rate_index", conn, params=(test_id,))

    def requests(self, test_id: str) -> pd.DataFrame:
        """Every request row with its headline columns; ``row_json``/``server_json`` hold the rest."""
        with self.store.connect() as conn:
            return pd.read_sql_query(
                "SELECT q.*, r.label AS rate_label, r.offered_per_s FROM load_requests q"
                " JOIN load_rates r USING (test_id, rate_index)"
                " WHERE q.test_id = ? ORDER BY q.rate_index, q.request_index", conn, params=(test_id,))

    def settings(self, test_id: str) -> dict[str, Any]:
        with self.store.connect() as conn:
            row = conn.execute("SELECT settings_json FROM load_tests WHERE test_id = ?", (test_id,)).fetchone()
        if row is None:
            raise KeyError(test_id)
        return json.loads(row[0])


def row_dict(row: Any) -> dict[str, Any]:
    """A dataclass request row as stored (reads as lists)."""
    return asdict(row)
