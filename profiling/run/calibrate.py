"""``calibrate``: N separate batches of one setting, run and stored, then judged by ``profiling.analysis.noise``.

Here rather than in analysis: running benchmarks is the run layer's job, and analysis must not import it
(run -> analysis only; ``tests/test_layering.py``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from engines.base import SynthesisSettings, Voice
from profiling.analysis.noise import floor_from_batches
from profiling.core.environment import capture_environment
from profiling.core.records import RunStatus
from profiling.run.runner import BenchRequest, EnginePool, run_bench
from profiling.store.noise import NoiseFloor, machine_key, save_noise_floor
from profiling.store.results import ResultsStore


def calibrate(
    settings: SynthesisSettings, text: str, store: ResultsStore, batches: int = 8, repeats: int = 5,
    warmup: int = 1, voice: Voice | None = None, pool: EnginePool | None = None,
    progress: Callable[[int, int], None] | None = None, cancel: threading.Event | None = None,
) -> NoiseFloor:
    """Run ``batches`` separate batches of the same settings, store them, and store the noise floor."""
    pool = pool or EnginePool()
    label = f"aa:{settings.engine}"
    values: list[list[float]] = []
    for index in range(batches):
        if cancel is not None and cancel.is_set():
            break
        pool.clear()  # each batch loads its model, as a separate `bench` would
        request = BenchRequest(settings, text, voice or Voice(), repeats=repeats, warmup=warmup, label=label)
        result = run_bench(request, pool, store, cancel=cancel)
        values.append([r.rtf for r in result.records if not r.warmup and r.status is RunStatus.OK])
        if progress is not None:
            progress(index + 1, batches)
    values = [v for v in values if len(v) >= 2]
    floor = floor_from_batches(values, machine_key(capture_environment()), settings.engine, label)
    save_noise_floor(store, floor)
    return floor
