"""A/B in one process: two settings run alternately on the same text, ratios pair by pair.

The way to settle "is B faster" on a shared machine: whatever drifts (clock, cache, other tenants)
moves slowly against one pair of runs, so the ratio inside each pair cancels it. Pairs alternate
their order (A B, B A, A B ...) so neither side always runs first; the order is stored on each run
(``ab_position``, ``ab_order``). Both models stay loaded when the two settings need different loads
(one ``EnginePool`` per side); if the second cannot be loaded beside the first, the sides share one
pool and reload at each switch, and the runs say so (``ab_both_loaded``).

Both sides are stored under ONE batch id with labels ``NAME:A`` and ``NAME:B`` and the pair index as
``repeat_index``: ``compare`` recognises them as paired.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from engines.base import DEFAULT_MAX_TEXT_CHARS, SynthesisSettings, Voice
from engines.errors import InputError
from profiling.analysis.compare import Ratio, paired_ratio
from profiling.core.records import RunMode, RunRecord, RunStatus
from profiling.run.runner import BenchRequest, EnginePool, measure_run, validate_request
from profiling.store.results import RunSink

AB_METRICS: tuple[str, ...] = ("rtf", "synth_s", "ttfa_s")


@dataclass(frozen=True)
class AbRequest:
    a: SynthesisSettings
    b: SynthesisSettings
    text: str
    voice: Voice = field(default_factory=Voice)
    pairs: int = 10
    warmup: int = 1
    max_chars: int = DEFAULT_MAX_TEXT_CHARS
    name: str = ""


@dataclass
class AbResult:
    name: str
    batch_id: str
    records: list[RunRecord]
    ratios: list[Ratio]
    both_loaded: bool

    @property
    def order(self) -> str:
        """The sides in the order they ran (measured runs), e.g. ABBAAB..."""
        return "".join(str(r.annotations["ab_side"]) for r in self.records if not r.warmup)


def _side_values(records: list[RunRecord], side: str, metric: str) -> dict[int, float]:
    return {
        r.repeat_index: float(getattr(r, metric)) for r in records
        if not r.warmup and r.status is RunStatus.OK and r.annotations.get("ab_side") == side
    }


def paired_ratios(records: list[RunRecord], metrics: tuple[str, ...] = AB_METRICS) -> list[Ratio]:
    ratios = []
    for metric in metrics:
        a, b = _side_values(records, "A", metric), _side_values(records, "B", metric)
        common = sorted(set(a) & set(b))
        if common:
            ratios.append(paired_ratio(metric, [a[i] for i in common], [b[i] for i in common]))
    return ratios


def validate_ab(request: AbRequest) -> tuple[str, dict[str, SynthesisSettings]]:
    """Both sides checked before any model loads: the text and each side's resolved settings."""
    if request.pairs < 2:
        raise InputError(f"an A/B needs at least 2 pairs, got {request.pairs}")
    sides, text = {}, request.text
    for side, settings in (("A", request.a), ("B", request.b)):
        text, sides[side] = validate_request(BenchRequest(settings, request.text, request.voice,
                                                          max_chars=request.max_chars))
    return text, sides


def run_ab(
    request: AbRequest, store: RunSink | None, progress: Callable[[int, int, RunRecord], None] | None = None,
    cancel: threading.Event | None = None,
) -> AbResult:
    """Warm-ups for each side, then ``pairs`` pairs in alternating order; every run stored as it finishes."""
    text, sides = validate_ab(request)
    batch_id = uuid.uuid4().hex
    name = request.name or f"ab-{batch_id[:8]}"
    pools = {"A": EnginePool(), "B": EnginePool()}
    engines, loads = {}, {}
    both_loaded = True
    for side in ("A", "B"):
        try:
            engines[side], loads[side] = pools[side].acquire(sides[side])
        except MemoryError:
            both_loaded = False  # second model does not fit beside the first: share one pool, reload per switch
            pools["B"] = pools["A"]
            break
    schedule = [(side, -1 - w) for w in range(request.warmup) for side in ("A", "B")]
    for pair in range(request.pairs):
        schedule.extend((side, pair) for side in (("A", "B") if pair % 2 == 0 else ("B", "A")))
    records: list[RunRecord] = []
    for position, (side, pair) in enumerate(schedule):
        if cancel is not None and cancel.is_set():
            break
        engine, load_s = (engines[side], loads.pop(side, None)) if both_loaded else pools[side].acquire(sides[side])
        record, audio = measure_run(engine, text, request.voice, sides[side], RunMode.BATCH, batch_id)
        record.warmup = pair < 0
        record.repeat_index = pair
        record.label = f"{name}:{side}"
        record.load_s = load_s
        record.annotations.update({
            "ab": name, "ab_side": side, "ab_pair": pair, "ab_position": position,
            "ab_order": "AB" if pair % 2 == 0 else "BA", "ab_both_loaded": both_loaded,
        })
        if store is not None:
            store.save_run(record)
        records.append(record)
        if progress is not None:
            progress(position + 1, len(schedule), record)
        if record.status is RunStatus.ERROR:
            break
    for pool in {id(p): p for p in pools.values()}.values():
        pool.clear()
    return AbResult(name, batch_id, records, paired_ratios(records), both_loaded)
