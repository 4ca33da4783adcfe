"""A/B in one process: B/A from adjacent pairs of runs, with a design that matches what the sides load.

The design (``profiling.run.ab_design``): ONE loaded model when the sides differ only in per-call knobs;
two loaded models in segments, the first run after each switch kept apart, when they need two loads,
both reloaded every few segments so the comparison is not one copy against another; the old run-by-run
alternation of two models on request. Each side warms up until its times settle (the median of its last
runs stops moving), bounded. With ``target_detectable`` the session keeps adding pairs until the
interval is that narrow, bounded by ``max_pairs`` and ``max_seconds``.

Every run is stored as it finishes, under ONE batch id: paired runs labelled ``NAME:A``/``NAME:B`` with
the pair index as ``repeat_index`` (``compare`` recognises them as paired), after-switch runs labelled
``NAME:A:after_switch``. Annotations say where each run stood (``ab_after``: switch/repeat/load,
``ab_pair``, ``ab_segment``, ``ab_epoch``, ``ab_position``) and what the kernel said around it
(``sys_*``, ``profiling.core.signals``).
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from engines.base import DEFAULT_MAX_TEXT_CHARS, Engine, SynthesisSettings, Voice
from engines.errors import InputError
from engines.registry import engine_class
from profiling.analysis.ab_summary import AB_METRICS, PRIMARY_METRIC, AbSummary, noise_warnings, paired_runs, summarize
from profiling.analysis.paired import PairedEstimate, settled
from profiling.core import signals
from profiling.core.records import RunMode, RunRecord, RunStatus
from profiling.run.ab_design import AFTER_SWITCH, DEFAULT_RELOAD_EVERY, AbDesign, Slot, slots
from profiling.run.runner import BenchRequest, EnginePool, measure_run, validate_request
from profiling.store.results import RunSink

#: Called after each run with (runs done, runs planned so far, the record just made).
AbProgress = Callable[[int, int, RunRecord], None]
#: Metrics a session can be steered by (audio length is not a time).
STEERING_METRICS: tuple[str, ...] = tuple(m for m in AB_METRICS if m != "audio_s")


@dataclass(frozen=True)
class AbRequest:
    a: SynthesisSettings
    b: SynthesisSettings
    text: str
    voice: Voice = field(default_factory=Voice)
    #: Pairs to run; with ``target_detectable``, the pairs to run before checking the target.
    pairs: int = 20
    #: Warm-up runs per side: at least ``warmup``, then until settled, at most ``warmup_max``.
    warmup: int = 1
    warmup_max: int = 8
    settle_window: int = 3
    settle_tolerance: float = 0.05
    max_chars: int = DEFAULT_MAX_TEXT_CHARS
    name: str = ""
    design: AbDesign = AbDesign.AUTO
    #: Blocks design: reload both models every this many segments (0: one copy of each for the session).
    reload_every: int = DEFAULT_RELOAD_EVERY
    #: Keep adding pairs until the smallest detectable difference of ``metric`` is at most this (0.03 = 3 %).
    target_detectable: float | None = None
    max_pairs: int = 200
    max_seconds: float = 600.0
    metric: str = PRIMARY_METRIC


@dataclass(frozen=True)
class WarmUp:
    side: str
    runs: int
    settled: bool


@dataclass(frozen=True)
class AbResult:
    name: str
    batch_id: str
    design: AbDesign
    records: tuple[RunRecord, ...]
    summary: AbSummary
    #: False when the second model did not fit beside the first and each switch reloaded.
    both_loaded: bool
    #: Model loads the session made (1 for the one-model design).
    loads: int
    warmups: tuple[WarmUp, ...]
    #: Why it stopped: pairs, target, max_pairs, max_seconds, cancelled, error.
    stop: str
    elapsed_s: float
    target_detectable: float | None = None

    @property
    def order(self) -> str:
        """The sides in the order they ran (measured runs), e.g. ABBAAB..."""
        return "".join(str(r.annotations["ab_side"]) for r in self.records if not r.warmup)

    @property
    def ratios(self) -> tuple[PairedEstimate, ...]:
        return self.summary.estimates

    @property
    def warnings(self) -> list[str]:
        unsettled = [w.side for w in self.warmups if w.runs and not w.settled]
        return noise_warnings(self.summary, self.target_detectable, os.cpu_count(), unsettled)


def resolve_design(design: AbDesign, sides: dict[str, SynthesisSettings]) -> AbDesign:
    """AUTO: one model when the sides share a load key, else blocks. ONE_MODEL needs a shared load key."""
    keys = {side: s.load_key(engine_class(s.engine).capabilities) for side, s in sides.items()}
    same = keys["A"] == keys["B"]
    if design is AbDesign.AUTO:
        return AbDesign.ONE_MODEL if same else AbDesign.BLOCKS
    if design is AbDesign.ONE_MODEL and not same:
        raise InputError("design one-model needs both sides to load the same model (they differ in engine, "
                         "device, precision or a load-time knob): use blocks")
    return design


def validate_ab(request: AbRequest) -> tuple[str, dict[str, SynthesisSettings], AbDesign]:
    """Everything checked before any model loads: counts, bounds, the text and each side's settings."""
    if request.pairs < 2:
        raise InputError(f"an A/B needs at least 2 pairs, got {request.pairs}")
    if request.warmup < 0 or request.warmup_max < request.warmup:
        raise InputError(f"warm-up runs: need 0 <= warmup <= warmup max, got {request.warmup} and "
                         f"{request.warmup_max}")
    if request.target_detectable is not None and not 0 < request.target_detectable < 1:
        raise InputError(f"target detectable difference must be between 0% and 100%, got "
                         f"{request.target_detectable:.4g}")
    if request.max_pairs < request.pairs:
        raise InputError(f"max pairs ({request.max_pairs}) is below pairs ({request.pairs})")
    if not request.max_seconds > 0:
        raise InputError(f"max seconds must be above 0, got {request.max_seconds}")
    if request.reload_every < 0 or request.reload_every == 1:
        raise InputError(f"reload every: 0 (never) or at least 2 segments (one per side), got {request.reload_every}")
    if request.metric not in STEERING_METRICS:
        raise InputError(f"metric must be one of {', '.join(STEERING_METRICS)}, got {request.metric!r}")
    sides, text = {}, request.text
    for side, settings in (("A", request.a), ("B", request.b)):
        text, sides[side] = validate_request(BenchRequest(settings, request.text, request.voice,
                                                          max_chars=request.max_chars))
    return text, sides, resolve_design(request.design, sides)


class _Session:
    """Loaded models, the runs so far and where the last one stood."""

    def __init__(self, request: AbRequest, store: RunSink | None, progress: AbProgress | None) -> None:
        self.request, self.store, self.progress = request, store, progress
        self.text, self.sides, self.design = validate_ab(request)
        self.batch_id = uuid.uuid4().hex
        self.name = request.name or f"ab-{self.batch_id[:8]}"
        self.records: list[RunRecord] = []
        self.last_side: str | None = None
        self.epoch = 0
        #: Sides (re)loaded that have not run since: their next run follows a load, not a switch.
        self.fresh: set[str] = set()
        self.loads = 0
        self.both_loaded = True
        self.pending_load: dict[str, float | None] = {}
        self.pools = {"A": EnginePool()}
        self.pools["B"] = self.pools["A"] if self.design is AbDesign.ONE_MODEL else EnginePool()
        self.engines: dict[str, Engine] = {}
        for side in ("A", "B"):
            try:
                self.engines[side] = self._acquire(side)
            except MemoryError:
                self.both_loaded = False  # the second model does not fit beside the first: reload per switch
                self.pools["B"] = self.pools["A"]
                break

    def reload(self, epoch: int, first: str) -> None:
        """New copies of both models for the next epoch, ``first`` loaded first (the other one last time)."""
        self.epoch = epoch
        if not self.both_loaded:  # every switch reloads already
            return
        self.close()
        self.pools = {"A": EnginePool(), "B": EnginePool()}
        for side in (first, "AB".replace(first, "")):
            self.engines[side] = self._acquire(side)
        self.fresh = {"A", "B"}

    def _acquire(self, side: str) -> Engine:
        engine, load_s = self.pools[side].acquire(self.sides[side])
        if load_s is not None:
            self.loads += 1
            self.pending_load[side] = load_s
        return engine

    def planned(self, pairs_done: int) -> int:
        per_pair = 3 if self.design is AbDesign.BLOCKS else 2
        return len(self.records) + per_pair * max(0, self.request.pairs - pairs_done)

    def run(self, side: str, slot: Slot | None, warmup_index: int = 0) -> RunRecord:
        engine = self.engines[side] if self.both_loaded else self._acquire(side)
        before = signals.sample()
        record, _ = measure_run(engine, self.text, self.request.voice, self.sides[side], RunMode.BATCH,
                                self.batch_id)
        record.annotations.update(signals.between(before, signals.sample()).annotations())
        after = ("start" if self.last_side is None else "load" if side in self.fresh
                 else "repeat" if self.last_side == side else "switch")
        self.last_side = side
        self.fresh.discard(side)
        record.warmup = slot is None
        record.load_s = self.pending_load.pop(side, None)
        record.annotations.update({
            "ab": self.name, "ab_side": side, "ab_design": self.design.value, "ab_position": len(self.records),
            "ab_after": after, "ab_both_loaded": self.both_loaded, "ab_epoch": self.epoch,
        })
        if slot is None:
            record.repeat_index, record.label = -1 - warmup_index, f"{self.name}:{side}"
        else:
            record.repeat_index = slot.pair if slot.pair >= 0 else slot.segment
            record.label = f"{self.name}:{side}" + (f":{AFTER_SWITCH}" if slot.role == AFTER_SWITCH else "")
            record.annotations.update({"ab_pair": slot.pair, "ab_segment": slot.segment, "ab_role": slot.role,
                                       "ab_order": slot.order})
        if self.store is not None:
            self.store.save_run(record)
        self.records.append(record)
        return record

    def warm(self, side: str, cancel: threading.Event | None) -> WarmUp:
        """Warm-up runs until the side's times settle (at least ``warmup``, at most ``warmup_max``)."""
        request, times = self.request, []
        for index in range(request.warmup_max):
            if cancel is not None and cancel.is_set():
                break
            record = self.run(side, None, index)
            self.report(0)
            if record.status is RunStatus.ERROR:
                break
            times.append(record.synth_s)
            if index + 1 >= request.warmup and settled(times, request.settle_window, request.settle_tolerance):
                record.annotations["ab_settled"] = True
                return WarmUp(side, len(times), True)
        return WarmUp(side, len(times), False)

    def report(self, pairs_done: int) -> None:
        if self.progress is not None:
            self.progress(len(self.records), self.planned(pairs_done), self.records[-1])

    def primary(self) -> PairedEstimate | None:
        pairs = paired_runs(self.records, self.request.metric)
        return pairs.estimate(self.request.metric) if pairs.baseline else None

    def stop_reason(self, pairs_done: int, started: float) -> str:
        request = self.request
        if pairs_done >= request.pairs:
            if request.target_detectable is None:
                return "pairs"
            main = self.primary()
            if main is not None and main.detectable <= request.target_detectable:
                return "target"
        if pairs_done >= request.max_pairs:
            return "max_pairs"
        if time.monotonic() - started >= request.max_seconds:
            return "max_seconds"
        return ""

    def close(self) -> None:
        for pool in {id(p): p for p in self.pools.values()}.values():
            pool.clear()


def run_ab(
    request: AbRequest, store: RunSink | None, progress: AbProgress | None = None,
    cancel: threading.Event | None = None,
) -> AbResult:
    """Load, warm each side until settled, then pairs in the design's order until a stop rule holds."""
    started = time.monotonic()
    session = _Session(request, store, progress)
    stop, pairs_done = "", 0
    sides_done: dict[int, int] = {}
    try:
        warmups = tuple(session.warm(side, cancel) for side in ("A", "B"))
        if any(r.status is RunStatus.ERROR for r in session.records):
            stop = "error"
        schedule = slots(session.design, request.reload_every)
        while not stop:
            if cancel is not None and cancel.is_set():
                stop = "cancelled"
                break
            slot = next(schedule)
            if slot.epoch != session.epoch:
                session.reload(slot.epoch, slot.side)
            record = session.run(slot.side, slot)
            session.report(pairs_done)
            if record.status is RunStatus.ERROR:
                stop = "error"  # the same settings would fail again; what ran is stored
                break
            if slot.pair >= 0:
                sides_done[slot.pair] = sides_done.get(slot.pair, 0) + 1
                if sides_done[slot.pair] == 2:
                    pairs_done += 1
                    stop = session.stop_reason(pairs_done, started)
    finally:
        session.close()
    records = tuple(session.records)
    return AbResult(session.name, session.batch_id, session.design, records,
                    summarize(records, primary=request.metric), session.both_loaded, session.loads, warmups,
                    stop, time.monotonic() - started, request.target_detectable)
