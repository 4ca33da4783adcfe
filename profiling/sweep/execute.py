"""Running a sweep: what is not stored yet, run by run, each measured run stored with its resume key.

Every measured run is written with a deterministic key (configuration, text, repeat) in the SAME
transaction as the run itself (``profiling.store.sweeps``), so a killed sweep resumes exactly where it
stopped: nothing finished is lost, nothing finished runs twice.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from engines.base import Audio
from engines.registry import capabilities
from profiling.core.records import RunRecord
from profiling.run.runner import BenchRequest, EnginePool, run_bench
from profiling.store.results import ResultsStore
from profiling.store.sweeps import SweepRunKey, completed_keys, register_sweep, save_keyed_run
from profiling.sweep.plan import SweepPlan, WorkItem, config_rows, pending_items, plan
from profiling.sweep.spec import SweepSpec


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


def register_plan(store: ResultsStore, sweep_plan: SweepPlan) -> None:
    """Record the spec and its configurations (idempotent)."""
    register_sweep(store, sweep_plan.spec.name, sweep_plan.spec.to_dict(), config_rows(sweep_plan))


@dataclass(frozen=True)
class _ItemSink:
    """One work item's runs into the store: warm-ups unkeyed, the i-th measured run under its repeat's key."""

    store: ResultsStore
    sweep: str
    item: WorkItem

    def save_run(self, record: RunRecord, audio: Audio | None = None) -> None:
        if record.warmup:
            self.store.save_run(record, audio)
            return
        repeat = self.item.repeats[record.repeat_index]
        key = SweepRunKey(self.sweep, self.item.run_key(repeat), self.item.config.key, self.item.text.id, repeat)
        save_keyed_run(self.store, record, audio, key)


def run_sweep(
    spec: SweepSpec,
    store: ResultsStore,
    pool: EnginePool | None = None,
    progress: SweepProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> SweepOutcome:
    """Run what is not stored yet; warm-ups after each model (re)load, flagged and unkeyed."""
    sweep_plan = plan(spec)
    register_plan(store, sweep_plan)
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

        run_bench(request, pool, _ItemSink(store, spec.name, item), on_run, cancel)
        loaded[settings.engine] = load_key
    # A cancel during the last item stops run_bench between repeats; say so rather than "finished".
    outcome.cancelled = outcome.cancelled or (cancel is not None and cancel.is_set() and outcome.completed < total)
    return outcome
