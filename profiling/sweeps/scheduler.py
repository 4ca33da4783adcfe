"""The order runs are dispatched in: cheap on reloads, fair to drift.

A *unit* is one loaded model (configurations with the same ``load_key``: they differ only in per-call
knobs such as Piper's length_scale). Inside a unit the configurations are interleaved run by run, so
drift while the model is loaded falls on all of them alike. Units needing different models do not run
all of A then all of B: each unit's repeats are split into ``spec.block_count`` rounds, and the rounds
alternate between units in a serpentine (A B, B A, A B ...), which also saves a reload at each turn.

Every run gets ``seq``, its position in the whole schedule, computed before finished runs are dropped:
a resumed sweep keeps the positions, and analysis can plot a control configuration against it.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Sequence
from dataclasses import dataclass

from engines.base import SynthesisSettings
from engines.convert.registry import converter_capabilities
from engines.registry import capabilities
from profiling.store.sweeps import SweepRunKey
from profiling.sweeps.plan import SweepConfig, SweepPlan
from profiling.texts.textsets import TextItem


@dataclass(frozen=True)
class ScheduledRun:
    seq: int
    config: SweepConfig
    text: TextItem
    repeat: int
    unit: str

    @property
    def run_key(self) -> str:
        return f"{self.config.key}/{self.text.id}@{self.text.digest}/r{self.repeat}"

    def key(self, sweep: str, executor: str = "local", placement: dict[str, str] | None = None) -> SweepRunKey:
        return SweepRunKey(sweep, self.run_key, self.config.key, self.text.id, self.repeat, self.seq, self.unit,
                           executor, placement or {})


@dataclass(frozen=True)
class Block:
    """One round of one unit: runs that share a loaded model, in the order they should run."""

    unit: str
    round: int
    settings: SynthesisSettings  # the first configuration's: what the unit loads and asks resources for
    runs: tuple[ScheduledRun, ...]


def unit_id(settings: SynthesisSettings, conversion: SynthesisSettings | None = None) -> str:
    """A short stable name for a load key (what a unit loads): the engine's, and its conversion stage's."""
    key: tuple[object, ...] = settings.load_key(capabilities(settings.engine))
    if conversion is not None:  # a stage model is loaded too: configs that need another one are another unit
        key = (*key, conversion.load_key(converter_capabilities(conversion.engine)))
    return hashlib.sha1(repr(key).encode()).hexdigest()[:10]


def schedule(sweep_plan: SweepPlan, done: set[str] | frozenset[str] = frozenset()) -> list[Block]:
    """Blocks in dispatch order, holding only runs whose keys are not in ``done``."""
    spec = sweep_plan.spec
    units: dict[str, list[SweepConfig]] = {}
    for config in sweep_plan.configs:
        units.setdefault(unit_id(config.settings, config.conversion), []).append(config)
    rounds = spec.block_count
    rng = random.Random(spec.seed)
    ordered: list[tuple[str, int, list[tuple[SweepConfig, TextItem, int]]]] = []
    for round_index in range(rounds):
        names = list(units) if round_index % 2 == 0 else list(reversed(units))  # serpentine: A B | B A | A B
        for name in names:
            runs = []
            for repeat in range(round_index, spec.repeats, rounds):
                pairs = [(c, t) for t in sweep_plan.texts for c in units[name]]  # configs alternate run by run
                if spec.shuffle:
                    rng.shuffle(pairs)
                runs.extend((c, t, repeat) for c, t in pairs)
            ordered.append((name, round_index, runs))
    blocks, seq = [], 0
    for name, round_index, runs in ordered:
        scheduled = []
        for config, text, repeat in runs:
            run = ScheduledRun(seq, config, text, repeat, name)
            seq += 1
            if run.run_key not in done:
                scheduled.append(run)
        if scheduled:
            blocks.append(Block(name, round_index, units[name][0].settings, tuple(scheduled)))
    return blocks


def reloads(blocks: Sequence[Block]) -> int:
    """Model loads a single worker needs for these blocks in this order (a new unit after another)."""
    return sum(1 for i, block in enumerate(blocks) if i == 0 or blocks[i - 1].unit != block.unit)
