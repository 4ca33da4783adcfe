"""The results store: one SQLite file in a data directory the user chooses.

Each run is written in a single transaction (the whole record or nothing), in
WAL mode with full sync, so a crash or kill mid-run can never damage runs that
were stored before it. Audio files are written to a temporary name and renamed
into place before the row that points at them is committed.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from engines.base import Audio
from profiling.core.records import RunRecord

DATA_DIR_ENV = "TTSPERF_DATA_DIR"
DB_NAME = "runs.sqlite"
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    batch_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    engine TEXT NOT NULL,
    device TEXT NOT NULL,
    precision TEXT NOT NULL,
    mode TEXT NOT NULL,
    label TEXT NOT NULL,
    status TEXT NOT NULL,
    warmup INTEGER NOT NULL,
    repeat_index INTEGER NOT NULL,
    random_weights INTEGER NOT NULL,
    text_chars INTEGER NOT NULL,
    synth_s REAL, audio_s REAL, rtf REAL, ttfa_s REAL, load_s REAL, peak_rss_mb REAL,
    record_json TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS runs_batch ON runs(batch_id);
CREATE TABLE IF NOT EXISTS stages (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    depth INTEGER NOT NULL,
    calls INTEGER NOT NULL,
    inclusive_s REAL NOT NULL,
    exclusive_s REAL NOT NULL,
    PRIMARY KEY (run_id, name)
);
CREATE TABLE IF NOT EXISTS artifacts (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    path TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (run_id, kind, path)
);
"""

_RUN_COLUMNS = (
    "run_id", "batch_id", "created_at", "engine", "device", "precision", "mode", "label",
    "status", "warmup", "repeat_index", "random_weights", "text_chars",
    "synth_s", "audio_s", "rtf", "ttfa_s", "load_s", "peak_rss_mb",
)


#: Environment fields read out of each run's JSON for tables (runs stored before they existed read as empty).
_PROVENANCE_FIELDS = ("lock_sha256", "git_commit", "git_dirty")


def provenance_label(lock_sha256: object, git_commit: object, git_dirty: object) -> str:
    """'lock 1a2b3c4d5e · abcdef123456+dirty': what History and Compare show as a run's environment."""
    lock = str(lock_sha256 or "")[:10] or "no lock"
    commit = str(git_commit or "")[:10] or "no commit"
    dirty = git_dirty is not None and not pd.isna(git_dirty) and bool(git_dirty)
    return f"lock {lock} · {commit}{'+dirty' if dirty else ''}"


def default_data_dir() -> Path:
    """``$TTSPERF_DATA_DIR`` if set, else ``~/.ttsperf``."""
    configured = os.environ.get(DATA_DIR_ENV)
    return Path(configured).expanduser() if configured else Path.home() / ".ttsperf"


@dataclass(frozen=True)
class Artifact:
    run_id: str
    kind: str
    path: Path
    description: str = ""


def _finite_or_none(value: float | None) -> float | None:
    if value is None:
        return None
    return value if np.isfinite(value) else None


#: Writes caller rows in the same transaction as a run (e.g. a sweep's resume key).
AlsoWrite = Callable[[sqlite3.Connection], None]


class RunSink(Protocol):
    """Where ``run_bench`` puts each finished run: the store itself, or a wrapper that adds rows to it."""

    def save_run(self, record: RunRecord, audio: Audio | None = None) -> None: ...


class ResultsStore:
    def __init__(self, data_dir: Path | str | None = None) -> None:
        self.data_dir = Path(data_dir).expanduser() if data_dir else default_data_dir()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.db_path = self.data_dir / DB_NAME
        with self.connect() as conn:
            conn.executescript(_SCHEMA)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """One transaction on a short-lived connection (WAL, full sync, foreign keys on).

        Public so that modules owning their own tables (``profiling.store.sweeps``) share this
        connection code instead of copying it. Safe across Gradio's worker threads.
        """
        conn = sqlite3.connect(self.db_path, timeout=30)
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute("PRAGMA foreign_keys = ON")
            with conn:  # commits on success, rolls back on any exception
                yield conn
        finally:
            conn.close()

    # --- writing ----------------------------------------------------------------
    def audio_dir(self) -> Path:
        path = self.data_dir / "audio"
        path.mkdir(exist_ok=True)
        return path

    def write_audio(self, run_id: str, audio: Audio) -> Path:
        """Write a WAV for ``run_id`` atomically (temp file + rename)."""
        import soundfile

        target = self.audio_dir() / f"{run_id}.wav"
        fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".wav.tmp")
        os.close(fd)
        try:
            soundfile.write(tmp, audio.to_int16(), audio.sample_rate, subtype="PCM_16", format="WAV")
            os.replace(tmp, target)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return target

    def save_run(
        self, record: RunRecord, audio: Audio | None = None,
        also: AlsoWrite | None = None,
    ) -> None:
        """Store one run; ``also`` writes caller rows (e.g. a sweep key) in the same transaction."""
        if audio is not None:
            record.audio_path = str(self.write_audio(record.run_id, audio))
        row = (
            record.run_id, record.batch_id, record.created_at, record.engine,
            record.settings.device, record.settings.precision, record.mode.value, record.label,
            record.status.value, int(record.warmup), record.repeat_index,
            int(record.random_weights), record.text_chars,
            record.synth_s, record.audio_s, _finite_or_none(record.rtf), record.ttfa_s,
            record.load_s, record.peak_rss_mb,
        )
        placeholders = ", ".join("?" * (len(_RUN_COLUMNS) + 1))
        with self.connect() as conn:
            conn.execute(
                f"INSERT INTO runs ({', '.join(_RUN_COLUMNS)}, record_json) VALUES ({placeholders})",
                (*row, json.dumps(record.to_dict(), allow_nan=True)),
            )
            conn.executemany(
                "INSERT INTO stages VALUES (?, ?, ?, ?, ?, ?)",
                [
                    (record.run_id, s.name, s.depth, s.calls, s.inclusive_s, s.exclusive_s)
                    for s in record.stages
                ],
            )
            if also is not None:
                also(conn)

    def add_artifact(self, artifact: Artifact) -> None:
        with self.connect() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO artifacts VALUES (?, ?, ?, ?)",
                (artifact.run_id, artifact.kind, str(artifact.path), artifact.description),
            )

    # --- reading ----------------------------------------------------------------
    def load_run(self, run_id: str) -> RunRecord:
        with self.connect() as conn:
            row = conn.execute("SELECT record_json FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            raise KeyError(run_id)
        return RunRecord.from_dict(json.loads(row[0]))

    def load_batch(self, batch_id: str) -> list[RunRecord]:
        with self.connect() as conn:
            rows = conn.execute(
                "SELECT record_json FROM runs WHERE batch_id = ? ORDER BY created_at, repeat_index",
                (batch_id,),
            ).fetchall()
        return [RunRecord.from_dict(json.loads(r[0])) for r in rows]

    def artifacts(self, run_id: str) -> list[Artifact]:
        with self.connect() as conn:
            rows = conn.execute(
                "SELECT run_id, kind, path, description FROM artifacts WHERE run_id = ?", (run_id,)
            ).fetchall()
        return [Artifact(r[0], r[1], Path(r[2]), r[3]) for r in rows]

    def count_runs(self) -> int:
        with self.connect() as conn:
            return int(conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0])

    def runs_dataframe(self) -> pd.DataFrame:
        """One row per run with the headline metrics and the environment's provenance."""
        provenance = ", ".join(
            f"json_extract(record_json, '$.environment.{field}') AS {field}" for field in _PROVENANCE_FIELDS
        )
        # The post-synthesis stage, read out of the JSON too: runs stored before it existed read as none.
        provenance += ", json_extract(record_json, '$.conversion.engine') AS convert"
        provenance += ", json_extract(record_json, '$.convert_s') AS convert_s"
        with self.connect() as conn:
            frame = pd.read_sql_query(
                f"SELECT {', '.join(_RUN_COLUMNS)}, {provenance} FROM runs ORDER BY created_at", conn
            )
        frame["warmup"] = frame["warmup"].astype(bool)
        frame["random_weights"] = frame["random_weights"].astype(bool)
        frame["lock_sha256"] = frame["lock_sha256"].fillna("")
        frame["git_commit"] = frame["git_commit"].fillna("")
        frame["convert"] = frame["convert"].fillna("")
        frame["convert_rtf"] = frame["convert_s"] / frame["audio_s"].where(frame["audio_s"] > 0)
        frame["provenance"] = [
            provenance_label(lock, commit, dirty)
            for lock, commit, dirty in zip(frame["lock_sha256"], frame["git_commit"], frame["git_dirty"], strict=True)
        ]
        return frame

    def stages_dataframe(self) -> pd.DataFrame:
        """One row per (run, stage), joined with the run's engine and settings columns."""
        with self.connect() as conn:
            return pd.read_sql_query(
                "SELECT s.run_id, r.batch_id, r.engine, r.device, r.precision, r.mode, r.warmup,"
                " s.name AS stage, s.depth, s.calls, s.inclusive_s, s.exclusive_s"
                " FROM stages s JOIN runs r USING (run_id) ORDER BY r.created_at",
                conn,
            )
