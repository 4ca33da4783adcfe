"""The plan: a spec expanded into configurations (settings resolved, keyed) and work items with resume keys."""

from __future__ import annotations

import hashlib
import itertools
import json
import random
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from engines.base import SynthesisSettings, Voice
from engines.chunking import ChunkingSettings
from engines.errors import InputError
from profiling.core.records import RunMode
from profiling.run.conversion import validate_conversion
from profiling.run.runner import BenchRequest, validate_request
from profiling.store.sweeps import SweepConfigRow
from profiling.sweeps.spec import EngineGrid, SweepSpec
from profiling.texts.textsets import TextItem


@dataclass(frozen=True)
class SweepConfig:
    """One point of the grid: settings resolved (defaults filled), so equal settings share a key."""

    settings: SynthesisSettings
    mode: RunMode
    varied: tuple[tuple[str, Any], ...]
    chunking: ChunkingSettings | None = None
    voice: Voice = field(default_factory=Voice)
    #: The post-synthesis stage's resolved settings (None: the engine alone).
    conversion: SynthesisSettings | None = None

    @property
    def key(self) -> str:
        canonical = {
            "engine": self.settings.engine, "device": self.settings.device,
            "precision": self.settings.precision, "knobs": dict(sorted(self.settings.knobs.items())),
            "seed": self.settings.seed, "mode": self.mode.value,
            "chunking": asdict(self.chunking) if self.chunking else None,
            "voice": None if self.voice.is_default else {k: str(v) for k, v in asdict(self.voice).items()},
        }
        if self.conversion is not None:  # only when set: keys of sweeps stored before conversion stay the same
            canonical["conversion"] = {
                "stage": self.conversion.engine, "device": self.conversion.device,
                "precision": self.conversion.precision, "knobs": dict(sorted(self.conversion.knobs.items())),
            }
        return hashlib.sha1(json.dumps(canonical, sort_keys=True).encode()).hexdigest()[:12]

    @property
    def label(self) -> str:
        parts = [f"{k}={v}" for k, v in self.varied if k != "precision"]
        head = f"{self.settings.engine} {self.settings.precision}"
        if self.conversion is not None:
            head += f" +{self.conversion.engine}"
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
    stage = grid.conversion
    stage_axes = stage.grid if stage is not None else ()
    combos = itertools.product(
        grid.precisions,
        itertools.product(*(v for _, v in grid.grid)),
        itertools.product(*(v for _, v in spec.chunking)),
        itertools.product(*(v for _, v in stage_axes)),
    )
    for precision, values, chunk_values, stage_values in combos:
        knobs = {**grid.knobs, **dict(zip(names, values, strict=True))}
        settings = SynthesisSettings(grid.engine, grid.device, precision, knobs, grid.seed)
        chunking = ChunkingSettings(**dict(zip(chunk_names, chunk_values, strict=True))) if spec.chunking else None
        # validate_request resolves defaults and checks device/precision/knobs before anything runs.
        _, resolved = validate_request(BenchRequest(settings=settings, text="check", mode=spec.mode, voice=grid.voice))
        conversion = None
        if stage is not None:
            stage_knobs = {**stage.knobs, **dict(zip((n for n, _ in stage_axes), stage_values, strict=True))}
            conversion = validate_conversion(SynthesisSettings(
                stage.stage, grid.device, stage.precision, stage_knobs, grid.seed))
        varied = (
            (("precision", precision),) if len(grid.precisions) > 1 else ()
        ) + tuple((n, resolved.knobs[n]) for n in names) + tuple(zip(chunk_names, chunk_values, strict=True)) + (
            (("voice", grid.voice_name),) if grid.voice_name else ()
        ) + tuple((f"{stage.stage}.{n}", conversion.knobs[n]) for n, _ in stage_axes if stage and conversion)
        configs.append(SweepConfig(resolved, spec.mode, varied, chunking, grid.voice, conversion))
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


def pending_items(sweep_plan: SweepPlan, done: set[str]) -> list[WorkItem]:
    """The plan's items less the repeats whose keys are already stored."""
    pending = []
    for item in sweep_plan.items:
        repeats = tuple(r for r in item.repeats if item.run_key(r) not in done)
        if repeats:
            pending.append(WorkItem(item.config, item.text, repeats))
    return pending


def config_rows(sweep_plan: SweepPlan) -> list[SweepConfigRow]:
    """The configurations as the store records them."""
    return [
        SweepConfigRow(c.key, c.label, c.settings.engine, c.settings.precision, dict(c.varied),
                       dict(c.settings.knobs), c.key in sweep_plan.reference_keys)
        for c in sweep_plan.configs
    ]
