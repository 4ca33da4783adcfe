"""Noise floors per machine: what an A/A calibration measured, kept beside the runs.

A machine is its CPU model and logical core count (``machine_key``): the same lab on another host
is another population. Compare reads the latest floor for the machine the runs were made on.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone

from profiling.core.environment import EnvironmentInfo
from profiling.store.results import ResultsStore

_SCHEMA = """
CREATE TABLE IF NOT EXISTS noise_floors (
    machine TEXT NOT NULL,
    engine TEXT NOT NULL,
    created_at TEXT NOT NULL,
    floor_json TEXT NOT NULL,
    PRIMARY KEY (machine, engine, created_at)
);
"""


def machine_key(environment: EnvironmentInfo) -> str:
    return f"{environment.cpu_model} x{environment.logical_cores}"


@dataclass(frozen=True)
class NoiseFloor:
    """An A/A calibration: ``batches`` separate batches of the same settings, compared pair by pair.

    ``between_sigma`` is the spread (SD of the log ratio of medians) two separate batches show beyond
    what resampling inside them explains; compare widens a separate-batch interval by it. The rates
    are the share of A/A pairs flagged "different" at 95 % with the within-batch interval (before)
    and with the widened one (after; leave-one-batch-out, so no pair judges itself).
    """

    machine: str
    engine: str
    label: str
    batches: int
    runs_per_batch: int
    between_sigma: float
    pairs: int
    false_positive_within: float
    false_positive_widened: float
    median_rtf: float
    batch_medians: tuple[float, ...] = ()
    created_at: str = field(
        default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    )

    @property
    def between_pct(self) -> float:
        """The batch-to-batch spread as a percentage (one SD)."""
        return float((2.718281828459045 ** self.between_sigma - 1) * 100)


def _ensure(store: ResultsStore) -> None:
    with store.connect() as conn:
        conn.executescript(_SCHEMA)


def save_noise_floor(store: ResultsStore, floor: NoiseFloor) -> None:
    _ensure(store)
    with store.connect() as conn:
        conn.execute("INSERT OR REPLACE INTO noise_floors VALUES (?, ?, ?, ?)",
                     (floor.machine, floor.engine, floor.created_at, json.dumps(asdict(floor))))


def latest_noise_floor(store: ResultsStore, machine: str, engine: str | None = None) -> NoiseFloor | None:
    """The newest floor for ``machine`` (for ``engine`` when there is one, else any engine's)."""
    _ensure(store)
    with store.connect() as conn:
        rows = conn.execute("SELECT engine, floor_json FROM noise_floors WHERE machine = ? ORDER BY created_at DESC",
                            (machine,)).fetchall()
    if not rows:
        return None
    chosen = next((r for r in rows if r[0] == engine), rows[0])
    data = json.loads(chosen[1])
    data["batch_medians"] = tuple(data.get("batch_medians", ()))
    return NoiseFloor(**data)
