"""Running a sweep: what is not stored yet, block by block, each measured run stored with its resume key.

Work happens in two halves that an executor may put in different processes or machines:
``perform`` (``profiling.sweeps.work``) runs one scheduled run on a worker's ``EnginePool`` and returns the
records (it never touches the store); ``store_result`` writes them in the driver, the one writer, with the
run's key in the same transaction (``profiling.store.sweeps``). So a killed sweep resumes exactly where it stopped,
whichever executor ran its earlier part: nothing finished is lost, nothing finished runs twice.

Executors: ``local`` (this process, the default) and ``ray`` (``profiling.sweeps.ray_executor``, the
optional ``cluster`` extra, imported only when chosen).
"""

from __future__ import annotations

import importlib
import importlib.util
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from engines.errors import InputError
from profiling.core.records import RunRecord, RunStatus
from profiling.run.runner import EnginePool
from profiling.store.results import ResultsStore
from profiling.store.sweeps import completed_keys, register_sweep, save_keyed_run
from profiling.sweeps.plan import SweepPlan, config_rows, plan
from profiling.sweeps.scheduler import Block, schedule
from profiling.sweeps.spec import SweepSpec
from profiling.sweeps.work import Deliver, ExecutorChoice, RunResult, local_placement, perform, tasks_for


@dataclass(frozen=True)
class SweepProgress:
    done: int  # measured runs finished, including those finished by earlier (killed) attempts
    total: int
    record: RunRecord | None
    config_label: str
    worker: str = ""  # which worker ran it ("local", or a Ray worker's short id)


SweepProgressCallback = Callable[[SweepProgress], None]


@dataclass
class SweepOutcome:
    name: str
    total: int
    already_done: int
    ran: int = 0
    errors: int = 0
    cancelled: bool = False
    executor: str = "local"
    #: Measured runs finished per worker (progress per worker, for the CLI and the dashboard's Sweeps tab).
    per_worker: dict[str, int] = field(default_factory=dict)
    #: Why the executor stopped early (a dead worker that kept dying, a lost cluster), if it did.
    failure: str = ""

    @property
    def completed(self) -> int:
        return self.already_done + self.ran


@dataclass(frozen=True)
class ExecutorInfo:
    name: str
    available: bool
    detail: str


def executors() -> list[ExecutorInfo]:
    """The executors and whether each can run here (Ray is an optional extra)."""
    try:
        has_ray = importlib.util.find_spec("ray") is not None
    except (ImportError, ValueError):
        has_ray = False
    return [
        ExecutorInfo("local", True, "this process, one run at a time"),
        ExecutorInfo("ray", has_ray, "Ray actors, one per loaded model (local instance or a cluster)" if has_ray
                     else "unavailable: Ray is not installed (pip install 'ttsperf[cluster]')"),
    ]


CONNECT_TIMEOUT_S = 5.0


def check_address(address: str) -> None:
    """Fail fast (one line) on a malformed or unreachable Ray address instead of waiting on Ray's retries."""
    if address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        raise InputError(f"Ray address must be auto, ray://host:port or host:port, got {address!r}")
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as error:
        raise InputError(f"cannot reach the Ray cluster at {address}: {error.strerror or error}") from None


def check_executor(choice: ExecutorChoice) -> None:
    """Everything about the executor choice that can be checked before a sweep starts."""
    info = {e.name: e for e in executors()}.get(choice.name)
    if info is None:
        raise InputError(f"unknown executor '{choice.name}' (known: {', '.join(e.name for e in executors())})")
    if not info.available:
        raise InputError(f"executor '{choice.name}' is {info.detail}")
    if choice.workers < 1:
        raise InputError(f"workers must be at least 1, got {choice.workers}")
    if choice.cpus_per_worker <= 0:
        raise InputError(f"cpus per worker must be above 0, got {choice.cpus_per_worker}")
    if choice.name == "ray" and choice.address is not None:
        check_address(choice.address)


def run_local(
    spec: SweepSpec, blocks: Sequence[Block], deliver: Deliver, pool: EnginePool, cancel: threading.Event | None,
) -> str:
    """The local executor: blocks in schedule order, one run at a time, in this process."""
    placement = local_placement()
    for block in blocks:
        for task in tasks_for(spec, block):
            if cancel is not None and cancel.is_set():
                return ""
            deliver(perform(pool, task, placement))
    return ""


def register_plan(store: ResultsStore, sweep_plan: SweepPlan) -> None:
    """Record the spec and its configurations (idempotent)."""
    register_sweep(store, sweep_plan.spec.name, sweep_plan.spec.to_dict(), config_rows(sweep_plan))


def store_result(store: ResultsStore, sweep: str, executor: str, result: RunResult) -> RunRecord | None:
    """Write a worker's records: warm-ups unkeyed, the measured run with its key. Returns the measured
    record, or None when there was none or its key was already stored (a retried run)."""
    measured = None
    for record in result.records:
        for name, value in result.placement.items():
            record.annotations[f"placement_{name}"] = value
        if record.warmup:
            record.annotations["sweep"] = sweep
            store.save_run(record)
        elif save_keyed_run(store, record, result.audio, result.task.run.key(sweep, executor, result.placement)):
            measured = record
    return measured


def run_sweep(
    spec: SweepSpec,
    store: ResultsStore,
    pool: EnginePool | None = None,
    progress: SweepProgressCallback | None = None,
    cancel: threading.Event | None = None,
    executor: ExecutorChoice | None = None,
) -> SweepOutcome:
    """Run what is not stored yet with the chosen executor; the results are written here, as they arrive."""
    choice = executor or ExecutorChoice()
    check_executor(choice)
    sweep_plan = plan(spec)
    register_plan(store, sweep_plan)
    blocks = schedule(sweep_plan, completed_keys(store, spec.name))
    total = sweep_plan.total_runs
    outcome = SweepOutcome(spec.name, total, already_done=total - sum(len(b.runs) for b in blocks),
                           executor=choice.name)
    lock = threading.Lock()

    def deliver(result: RunResult) -> bool:
        with lock:  # one writer, even if an executor calls back from several threads
            record = store_result(store, spec.name, choice.name, result)
            if record is None:
                return False
            worker = result.placement.get("worker", "")
            outcome.ran += 1
            outcome.errors += record.status is not RunStatus.OK
            outcome.per_worker[worker] = outcome.per_worker.get(worker, 0) + 1
            if progress is not None:
                progress(SweepProgress(outcome.completed, total, record, result.task.run.config.label, worker))
            return True

    if progress is not None:
        progress(SweepProgress(outcome.completed, total, None, ""))
    if choice.name == "local":
        outcome.failure = run_local(spec, blocks, deliver, pool or EnginePool(), cancel)
    else:
        module = importlib.import_module("profiling.sweeps.ray_executor")
        outcome.failure = module.run_ray(spec, blocks, deliver, choice, cancel)
    # A cancel during the last run: say so rather than "finished".
    outcome.cancelled = cancel is not None and cancel.is_set() and outcome.completed < total
    return outcome
