"""Sweeps: engines x settings grid x text set, repeated, stored run by run, resumable.

A sweep file (YAML or TOML) becomes a typed ``SweepSpec``; ``plan`` expands it into
configurations and work items; ``run_sweep`` runs each item through
``profiling.run.runner.run_bench``. Every measured run has a deterministic key
(configuration, text, repeat) written in the SAME transaction as the run itself
(``ResultsStore.save_run(also=...)``), so a killed sweep resumes exactly where it
stopped: nothing finished is lost, nothing finished runs twice (the key is the
table's primary key, so a duplicate could not even be stored).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from engines.base import DEFAULT_MAX_TEXT_CHARS, Audio, KnobValue, SynthesisSettings, Voice
from engines.chunking import ChunkingSettings
from engines.errors import InputError
from engines.registry import capabilities
from profiling.core.records import RunMode, RunRecord
from profiling.run.runner import BenchRequest, EnginePool, run_bench, validate_request
from profiling.store.results import ResultsStore
from profiling.texts.textsets import TextItem, TextSet, inline_text_set, load_text_set

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

_TOP_KEYS = {
    "name", "description", "engines", "texts", "repeats", "warmup", "mode", "shuffle", "seed",
    "save_audio", "reference", "chunking", "max_chars",
}
_ENGINE_KEYS = {"engine", "device", "precisions", "knobs", "grid", "seed", "voice", "voices"}
_VOICE_KEYS = {"speaker", "reference_audio", "reference_text"}
_AXIS_VOICE_KEYS = {"name", *_VOICE_KEYS}


# --- the spec -----------------------------------------------------------------------
@dataclass(frozen=True)
class EngineGrid:
    """One engine's part of a sweep: fixed knobs plus a grid of knob values (cartesian product)."""

    engine: str
    device: str = "cpu"
    precisions: tuple[str, ...] = ("fp32",)
    knobs: Mapping[str, KnobValue] = field(default_factory=dict)
    grid: tuple[tuple[str, tuple[KnobValue, ...]], ...] = ()
    seed: int = 0
    voice: Voice = field(default_factory=Voice)
    #: Set when the voice is one value of a ``voices`` axis: shown in labels as ``voice=<name>``.
    voice_name: str = ""


@dataclass(frozen=True)
class SweepSpec:
    name: str
    engines: tuple[EngineGrid, ...]
    text_sets: tuple[str, ...] = ("short",)
    inline_texts: tuple[str, ...] = ()
    repeats: int = 3
    warmup: int = 1
    mode: RunMode = RunMode.BATCH
    shuffle: bool = False
    seed: int = 0
    save_audio: bool = True
    #: Grid values (and optionally ``precision``) naming each engine's reference configuration.
    reference: Mapping[str, KnobValue] = field(default_factory=dict)
    #: STREAM mode: lab-chunker fields, each a list of values (a grid) or one value.
    chunking: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    max_chars: int = DEFAULT_MAX_TEXT_CHARS
    description: str = ""

    def text_sets_loaded(self) -> list[TextSet]:
        sets = [load_text_set(name) for name in self.text_sets]
        if self.inline_texts:
            sets.append(inline_text_set(list(self.inline_texts)))
        return sets

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain data (YAML/JSON shape ``spec_from_mapping`` reads back)."""
        return {
            "name": self.name,
            "description": self.description,
            "engines": [
                {
                    "engine": e.engine, "device": e.device, "precisions": list(e.precisions),
                    "knobs": dict(e.knobs), "grid": {k: list(v) for k, v in e.grid}, "seed": e.seed,
                    **_voice_dict(e),
                }
                for e in self.engines
            ],
            "texts": {"sets": list(self.text_sets), "inline": list(self.inline_texts)},
            "repeats": self.repeats, "warmup": self.warmup, "mode": self.mode.value,
            "shuffle": self.shuffle, "seed": self.seed, "save_audio": self.save_audio,
            "reference": dict(self.reference), "chunking": {k: list(v) for k, v in self.chunking},
            "max_chars": self.max_chars,
        }


def _as_tuple(value: object) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def _mapping(value: object, what: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InputError(f"sweep: '{what}' must be a mapping, got {type(value).__name__}")
    return value


def _unknown(keys: Sequence[str], allowed: set[str], where: str) -> None:
    extra = sorted(set(keys) - allowed)
    if extra:
        raise InputError(f"sweep: unknown key(s) {', '.join(extra)} in {where} (allowed: {', '.join(sorted(allowed))})")


def _int(data: Mapping[str, Any], key: str, default: int) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"sweep: '{key}' must be an integer, got {value!r}")
    return value


def _voice_dict(grid: EngineGrid) -> dict[str, Any]:
    voice = {k: str(v) for k, v in asdict(grid.voice).items() if v is not None}
    return {"voices": [{"name": grid.voice_name, **voice}]} if grid.voice_name else {"voice": voice}


def _voice(voice: Mapping[str, Any]) -> Voice:
    reference_audio = Path(str(voice["reference_audio"])).expanduser() if voice.get("reference_audio") else None
    if reference_audio is not None and not reference_audio.is_file():
        raise InputError(f"sweep: reference audio not found: {reference_audio}")
    return Voice(
        speaker=str(voice["speaker"]) if voice.get("speaker") else None,
        reference_audio=reference_audio,
        reference_text=str(voice["reference_text"]) if voice.get("reference_text") else None,
    )


def _voices(entry: Mapping[str, Any]) -> list[tuple[str, Voice]]:
    """The entry's ``voice``, or each voice of its ``voices`` axis with its name."""
    if "voices" not in entry:
        voice = _mapping(entry.get("voice"), "voice")
        _unknown(list(voice), _VOICE_KEYS, "voice")
        return [("", _voice(voice))]
    if "voice" in entry:
        raise InputError("sweep: give an engine either 'voice' or a 'voices' axis, not both")
    raw = entry["voices"]
    if not isinstance(raw, list) or not raw:
        raise InputError("sweep: 'voices' must be a non-empty list of {name, reference_audio, reference_text}")
    voices = []
    for index, item in enumerate(raw):
        item = _mapping(item, "voices[]")
        _unknown(list(item), _AXIS_VOICE_KEYS, "a voices entry")
        voices.append((str(item.get("name") or f"voice{index}"), _voice(item)))
    names = [name for name, _ in voices]
    if len(set(names)) != len(names):
        raise InputError("sweep: every voice of a 'voices' axis needs its own name")
    return voices


def spec_from_mapping(data: Mapping[str, Any]) -> SweepSpec:
    """Build and check a spec from parsed YAML/TOML (or a dashboard form)."""
    data = _mapping(data, "the sweep file")
    _unknown(list(data), _TOP_KEYS, "the sweep")
    name = str(data.get("name", "")).strip()
    if not name or "/" in name:
        raise InputError("sweep: 'name' is required and may not contain '/'")
    engines_raw = data.get("engines")
    if not isinstance(engines_raw, list) or not engines_raw:
        raise InputError("sweep: 'engines' must be a non-empty list of {engine: ..., grid: ...}")
    engines = []
    for entry in engines_raw:
        entry = _mapping(entry, "engines[]")
        _unknown(list(entry), _ENGINE_KEYS, "an engines entry")
        if not entry.get("engine"):
            raise InputError("sweep: every engines entry needs 'engine'")
        grid = _mapping(entry.get("grid"), "grid")
        for voice_name, voice in _voices(entry):
            engines.append(EngineGrid(
                engine=str(entry["engine"]),
                device=str(entry.get("device", "cpu")),
                precisions=tuple(str(p) for p in _as_tuple(entry.get("precisions", "fp32"))),
                knobs=dict(_mapping(entry.get("knobs"), "knobs")),
                grid=tuple((str(k), _as_tuple(v)) for k, v in grid.items()),
                seed=_int(entry, "seed", 0),
                voice=voice,
                voice_name=voice_name,
            ))
        if any(not values for _, values in engines[-1].grid):
            raise InputError("sweep: every grid entry needs at least one value")
    texts = data.get("texts", "short")
    if isinstance(texts, str):
        sets, inline = (texts,), ()
    elif isinstance(texts, list):
        sets, inline = tuple(str(t) for t in texts), ()
    else:
        texts = _mapping(texts, "texts")
        _unknown(list(texts), {"sets", "inline"}, "texts")
        sets = tuple(str(t) for t in _as_tuple(texts.get("sets", ())))
        inline = tuple(str(t) for t in _as_tuple(texts.get("inline", ())))
    try:
        mode = RunMode(str(data.get("mode", "batch")))
    except ValueError:
        raise InputError(f"sweep: 'mode' must be batch or stream, got {data.get('mode')!r}") from None
    chunking = tuple((str(k), _as_tuple(v)) for k, v in _mapping(data.get("chunking"), "chunking").items())
    known_chunking = {f.name for f in fields(ChunkingSettings)}
    _unknown([k for k, _ in chunking], known_chunking, "chunking")
    if chunking and mode is not RunMode.STREAM:
        raise InputError("sweep: 'chunking' only applies to mode: stream")
    spec = SweepSpec(
        name=name, engines=tuple(engines), text_sets=sets, inline_texts=inline,
        repeats=_int(data, "repeats", 3), warmup=_int(data, "warmup", 1), mode=mode,
        shuffle=bool(data.get("shuffle", False)), seed=_int(data, "seed", 0),
        save_audio=bool(data.get("save_audio", True)),
        reference=dict(_mapping(data.get("reference"), "reference")), chunking=chunking,
        max_chars=_int(data, "max_chars", DEFAULT_MAX_TEXT_CHARS),
        description=str(data.get("description", "")),
    )
    if spec.repeats < 1 or spec.warmup < 0:
        raise InputError("sweep: repeats must be >= 1 and warmup >= 0")
    if not spec.text_sets and not spec.inline_texts:
        raise InputError("sweep: 'texts' names no text set and no inline text")
    return spec


def load_sweep_spec(path: Path | str) -> SweepSpec:
    """Read a ``.yaml``/``.yml`` or ``.toml`` sweep file."""
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read sweep file {path}: {error}") from None
    try:
        if path.suffix.lower() == ".toml":
            if sys.version_info >= (3, 11):
                import tomllib
            else:  # pragma: no cover - python 3.10
                import tomli as tomllib
            data = tomllib.loads(raw)
        else:
            import yaml

            data = yaml.safe_load(raw)
    except Exception as error:  # both parsers raise their own error types
        raise InputError(f"sweep file {path} is not valid {path.suffix.lstrip('.') or 'YAML'}: {error}") from None
    return spec_from_mapping(data)


def runnable_precisions(engine: str, wanted: Sequence[str], device: str = "cpu") -> list[str]:
    """The precisions of ``wanted`` the engine declares and does not refuse on ``device`` (for notebooks/forms)."""
    caps = capabilities(engine)
    kind = device.split(":", 1)[0]
    return [p for p in wanted if p in caps.precisions and caps.refusal(kind, p) is None]


# --- the plan ---------------------------------------------------------------------------
@dataclass(frozen=True)
class SweepConfig:
    """One point of the grid: settings resolved (defaults filled), so equal settings share a key."""

    settings: SynthesisSettings
    mode: RunMode
    varied: tuple[tuple[str, Any], ...]
    chunking: ChunkingSettings | None = None
    voice: Voice = field(default_factory=Voice)

    @property
    def key(self) -> str:
        canonical = {
            "engine": self.settings.engine, "device": self.settings.device,
            "precision": self.settings.precision, "knobs": dict(sorted(self.settings.knobs.items())),
            "seed": self.settings.seed, "mode": self.mode.value,
            "chunking": asdict(self.chunking) if self.chunking else None,
            "voice": None if self.voice.is_default else {k: str(v) for k, v in asdict(self.voice).items()},
        }
        return hashlib.sha1(json.dumps(canonical, sort_keys=True).encode()).hexdigest()[:12]

    @property
    def label(self) -> str:
        parts = [f"{k}={v}" for k, v in self.varied if k != "precision"]
        head = f"{self.settings.engine} {self.settings.precision}"
        return " ".join([head, *parts])


@dataclass(frozen=True)
class WorkItem:
    config: SweepConfig
    text: TextItem
    repeats: tuple[int, ...]

    def run_key(self, repeat: int) -> str:
        return f"{self.config.key}/{self.text.id}@{self.text.digest}/r{repeat}"


@dataclass(frozen=True)
class SweepPlan:
    spec: SweepSpec
    configs: tuple[SweepConfig, ...]
    texts: tuple[TextItem, ...]
    items: tuple[WorkItem, ...]
    reference_keys: frozenset[str]

    @property
    def total_runs(self) -> int:
        return sum(len(item.repeats) for item in self.items)


def _configs_for(spec: SweepSpec, grid: EngineGrid) -> list[SweepConfig]:
    names = [name for name, _ in grid.grid]
    chunk_names = [name for name, _ in spec.chunking]
    configs = []
    combos = itertools.product(
        grid.precisions,
        itertools.product(*(v for _, v in grid.grid)),
        itertools.product(*(v for _, v in spec.chunking)),
    )
    for precision, values, chunk_values in combos:
        knobs = {**grid.knobs, **dict(zip(names, values, strict=True))}
        settings = SynthesisSettings(grid.engine, grid.device, precision, knobs, grid.seed)
        chunking = ChunkingSettings(**dict(zip(chunk_names, chunk_values, strict=True))) if spec.chunking else None
        # validate_request resolves defaults and checks device/precision/knobs before anything runs.
        _, resolved = validate_request(BenchRequest(settings=settings, text="check", mode=spec.mode, voice=grid.voice))
        varied = (
            (("precision", precision),) if len(grid.precisions) > 1 else ()
        ) + tuple((n, resolved.knobs[n]) for n in names) + tuple(zip(chunk_names, chunk_values, strict=True)) + (
            (("voice", grid.voice_name),) if grid.voice_name else ()
        )
        configs.append(SweepConfig(resolved, spec.mode, varied, chunking, grid.voice))
    return configs


def _is_reference(config: SweepConfig, reference: Mapping[str, Any]) -> bool:
    values = dict(config.varied)
    values.setdefault("precision", config.settings.precision)
    return all(str(values.get(k, config.settings.knobs.get(k))) == str(v) for k, v in reference.items())


def plan(spec: SweepSpec) -> SweepPlan:
    """Expand the spec; the order is deterministic (shuffled with ``spec.seed`` when asked)."""
    configs: list[SweepConfig] = []
    reference_keys: set[str] = set()
    for grid in spec.engines:
        engine_configs = _configs_for(spec, grid)
        marked = [c for c in engine_configs if _is_reference(c, spec.reference)] if spec.reference else []
        reference_keys.add((marked or engine_configs)[0].key)
        configs.extend(engine_configs)
    if len({c.key for c in configs}) != len(configs):
        raise InputError("sweep: two grid points resolve to the same settings (duplicate values?)")
    texts = tuple(item for text_set in spec.text_sets_loaded() for item in text_set.items)
    for text in texts:
        if len(text.text) > spec.max_chars:
            raise InputError(f"sweep: text {text.id} is longer than max_chars {spec.max_chars}")
    if spec.shuffle:
        # One item per run, randomly ordered, so slow drift of the machine spreads over all configs.
        items = [WorkItem(c, t, (r,)) for c in configs for t in texts for r in range(spec.repeats)]
        random.Random(spec.seed).shuffle(items)
    else:
        items = [WorkItem(c, t, tuple(range(spec.repeats))) for c in configs for t in texts]
    return SweepPlan(spec, tuple(configs), texts, tuple(items), frozenset(reference_keys))


# --- the store side -------------------------------------------------------------------------
@contextmanager
def _connect(store: ResultsStore) -> Iterator[sqlite3.Connection]:
    conn = sqlite3.connect(store.db_path, timeout=30)
    try:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute("PRAGMA synchronous = FULL")
        conn.execute("PRAGMA foreign_keys = ON")
        with conn:
            yield conn
    finally:
        conn.close()


def ensure_schema(store: ResultsStore) -> None:
    with _connect(store) as conn:
        conn.executescript(_SCHEMA)


def register_sweep(store: ResultsStore, sweep_plan: SweepPlan) -> None:
    """Record the spec and its configurations (idempotent: re-running a sweep updates them)."""
    ensure_schema(store)
    now = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    spec = sweep_plan.spec
    with _connect(store) as conn:
        conn.execute(
            "INSERT INTO sweeps VALUES (?, ?, ?, ?) ON CONFLICT(name) DO UPDATE SET"
            " spec_json = excluded.spec_json, updated_at = excluded.updated_at",
            (spec.name, json.dumps(spec.to_dict()), now, now),
        )
        conn.executemany(
            "INSERT OR REPLACE INTO sweep_configs VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (spec.name, c.key, c.label, c.settings.engine, c.settings.precision,
                 json.dumps(dict(c.varied)), json.dumps(dict(c.settings.knobs)),
                 int(c.key in sweep_plan.reference_keys))
                for c in sweep_plan.configs
            ],
        )


def completed_keys(store: ResultsStore, sweep: str) -> set[str]:
    ensure_schema(store)
    with _connect(store) as conn:
        rows = conn.execute("SELECT run_key FROM sweep_runs WHERE sweep = ?", (sweep,)).fetchall()
    return {row[0] for row in rows}


class _KeyedStore(ResultsStore):
    """The store as run_bench sees it: each measured run is written with its sweep key, atomically."""

    def __init__(self, base: ResultsStore, sweep: str, item: WorkItem, pending: tuple[int, ...]) -> None:
        super().__init__(base.data_dir)
        self._sweep, self._item, self._pending = sweep, item, pending

    def save_run(self, record: RunRecord, audio: Audio | None = None, also: Any = None) -> None:
        if record.warmup:
            super().save_run(record, audio, also)
            return
        repeat = self._pending[record.repeat_index]
        row = (self._sweep, self._item.run_key(repeat), self._item.config.key, self._item.text.id, repeat,
               record.run_id)

        def insert_key(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO sweep_runs VALUES (?, ?, ?, ?, ?, ?)", row)
            if also is not None:
                also(conn)

        record.annotations["sweep"] = self._sweep
        record.annotations["sweep_run_key"] = row[1]
        super().save_run(record, audio, insert_key)


# --- running -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class SweepProgress:
    done: int  # measured runs finished, including those finished by earlier (killed) attempts
    total: int
    record: RunRecord | None
    config_label: str


SweepProgressCallback = Callable[[SweepProgress], None]


@dataclass
class SweepOutcome:
    name: str
    total: int
    already_done: int
    ran: int = 0
    errors: int = 0
    cancelled: bool = False

    @property
    def completed(self) -> int:
        return self.already_done + self.ran


def pending_items(sweep_plan: SweepPlan, done: set[str]) -> list[WorkItem]:
    pending = []
    for item in sweep_plan.items:
        repeats = tuple(r for r in item.repeats if item.run_key(r) not in done)
        if repeats:
            pending.append(WorkItem(item.config, item.text, repeats))
    return pending


def run_sweep(
    spec: SweepSpec,
    store: ResultsStore,
    pool: EnginePool | None = None,
    progress: SweepProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> SweepOutcome:
    """Run what is not stored yet; warm-ups after each model (re)load, flagged and unkeyed."""
    sweep_plan = plan(spec)
    register_sweep(store, sweep_plan)
    done = completed_keys(store, spec.name)
    todo = pending_items(sweep_plan, done)
    total = sweep_plan.total_runs
    outcome = SweepOutcome(spec.name, total, already_done=total - sum(len(i.repeats) for i in todo))
    pool = pool or EnginePool()
    loaded: dict[str, tuple[object, ...]] = {}
    if progress is not None:
        progress(SweepProgress(outcome.completed, total, None, ""))
    for item in todo:
        if cancel is not None and cancel.is_set():
            outcome.cancelled = True
            break
        settings = item.config.settings
        load_key = settings.load_key(capabilities(settings.engine))
        warmup = spec.warmup if loaded.get(settings.engine) != load_key else 0
        request = BenchRequest(
            settings=settings, text=item.text.text, voice=item.config.voice, mode=item.config.mode,
            repeats=len(item.repeats),
            warmup=warmup, max_chars=spec.max_chars, save_audio=spec.save_audio, label=item.config.label,
            chunking=item.config.chunking,
        )

        def on_run(_done: int, _total: int, record: RunRecord, label: str = item.config.label) -> None:
            if record.warmup:
                return
            outcome.ran += 1
            outcome.errors += record.status.value != "ok"
            if progress is not None:
                progress(SweepProgress(outcome.completed, total, record, label))

        run_bench(request, pool, _KeyedStore(store, spec.name, item, item.repeats), on_run, cancel)
        loaded[settings.engine] = load_key
    # A cancel during the last item stops run_bench between repeats; say so rather than "finished".
    outcome.cancelled = outcome.cancelled or (cancel is not None and cancel.is_set() and outcome.completed < total)
    return outcome


# --- reading back -----------------------------------------------------------------------------------
def list_sweeps(store: ResultsStore) -> pd.DataFrame:
    """One row per sweep: name, description, runs stored, configurations, last update."""
    ensure_schema(store)
    with _connect(store) as conn:
        frame = pd.read_sql_query(
            "SELECT s.name, s.updated_at, s.spec_json,"
            " (SELECT COUNT(*) FROM sweep_runs r WHERE r.sweep = s.name) AS runs,"
            " (SELECT COUNT(*) FROM sweep_configs c WHERE c.sweep = s.name) AS configs"
            " FROM sweeps s ORDER BY s.updated_at DESC",
            conn,
        )
    frame["description"] = [json.loads(s).get("description", "") for s in frame.pop("spec_json")]
    return frame


def stored_spec(store: ResultsStore, name: str) -> SweepSpec:
    ensure_schema(store)
    with _connect(store) as conn:
        row = conn.execute("SELECT spec_json FROM sweeps WHERE name = ?", (name,)).fetchone()
    if row is None:
        raise InputError(f"no sweep named '{name}' in {store.db_path}")
    return spec_from_mapping(json.loads(row[0]))


def sweep_configs_dataframe(store: ResultsStore, name: str) -> pd.DataFrame:
    ensure_schema(store)
    with _connect(store) as conn:
        return pd.read_sql_query(
            "SELECT config_key, label, engine, precision, varied_json, settings_json, is_reference"
            " FROM sweep_configs WHERE sweep = ? ORDER BY rowid",
            conn, params=(name,),
        )


def sweep_runs_dataframe(store: ResultsStore, name: str) -> pd.DataFrame:
    """Measured runs of a sweep: the store's run columns plus config key/label, text id, repeat, varied knobs."""
    ensure_schema(store)
    with _connect(store) as conn:
        keys = pd.read_sql_query(
            "SELECT k.run_id, k.run_key, k.config_key, k.text_id, k.repeat, c.label AS config_label,"
            " c.varied_json, c.is_reference FROM sweep_runs k"
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
