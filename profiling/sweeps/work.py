"""A sweep's unit of work as an executor hands it to a worker: the task, its result, and how one is performed.

Shared by the executors (``execute`` runs them here, ``ray_executor`` in Ray actors), so neither imports
the other's module for them. ``perform`` never touches the store: the driver writes what it returns.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass

from engines.base import Audio
from profiling.core.records import RunRecord
from profiling.run.runner import BenchRequest, EnginePool, run_bench
from profiling.sweeps.scheduler import Block, ScheduledRun
from profiling.sweeps.spec import SweepSpec


@dataclass(frozen=True)
class ExecutorChoice:
    """Which executor runs the sweep and with what. ``address``/``workers`` matter to Ray only."""

    name: str = "local"
    address: str | None = None  # None: a local Ray instance; "auto"; "ray://host:port"; "host:port"
    workers: int = 1  # units in flight at once (Ray actors alive at a time)
    cpus_per_worker: float = 1.0  # what a CPU engine's worker asks Ray for


@dataclass(frozen=True)
class RunTask:
    """One scheduled run as a worker receives it (plain, picklable data)."""

    run: ScheduledRun
    warmup: int
    max_chars: int
    save_audio: bool

    def request(self, warmup: int) -> BenchRequest:
        config = self.run.config
        return BenchRequest(
            settings=config.settings, text=self.run.text.text, voice=config.voice, mode=config.mode, repeats=1,
            warmup=warmup, max_chars=self.max_chars, save_audio=self.save_audio, label=config.label,
            chunking=config.chunking, conversion=config.conversion,
        )


@dataclass
class RunResult:
    task: RunTask
    records: list[RunRecord]
    audio: Audio | None
    placement: dict[str, str]


def local_placement() -> dict[str, str]:
    return {"node": socket.gethostname(), "worker": "local", "pid": str(os.getpid())}


def perform(pool: EnginePool, task: RunTask, placement: dict[str, str]) -> RunResult:
    """Run one scheduled run (warm-ups first when the model has to be loaded); nothing is stored here."""
    config = task.run.config
    loaded = pool.is_loaded(config.settings) and (
        config.conversion is None or pool.converters.is_loaded(config.conversion))
    warmup = 0 if loaded else task.warmup  # a newly loaded engine or conversion model gets its warm-up
    result = run_bench(task.request(warmup), pool, None)
    return RunResult(task, result.records, result.audio if task.save_audio else None, placement)


def tasks_for(spec: SweepSpec, block: Block) -> list[RunTask]:
    return [RunTask(run, spec.warmup, spec.max_chars, spec.save_audio) for run in block.runs]


#: Called by an executor with each finished run, in the driver; False means the key was stored already.
Deliver = Callable[[RunResult], bool]
