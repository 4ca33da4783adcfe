"""What measures: stage timer, run records, repeats, statistics, the results store, the CLI.

The public API is ``profiling.api``; its functions are importable from here too
(``from profiling import bench``), loaded on first use so ``import profiling`` stays light.
Front ends (the CLI, the dashboard, notebooks) go through ``profiling.api`` only.
"""

from __future__ import annotations

from typing import Any

#: The subpackages in import order, lowest first: a module imports from its own subpackage and from the layers
#: below, never from a layer above nor from another subpackage of its own layer (tests/test_layering.py
#: checks every import against this, and that the module graph has no cycle). This package's ``__init__``
#: counts as ``api`` (it re-exports it), ``__main__`` as ``cli``.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("core",),  # records, stage timer, statistics, environment: what every measurement is made of
    ("texts",),  # the shipped text sets
    ("audio",),  # judging audio: playback simulation, joins, quality, reference voices
    ("store",),  # the results store (SQLite)
    ("analysis",),  # reading stored runs: statistics, comparisons, figures
    ("run",),  # running engines: the runner, the engine pool, A/B, calibration
    ("serve",),  # the serving target
    ("loadgen",),  # load tests against a served target
    ("sweeps", "profilers", "trace"),  # many runs, runs under profilers, runs as timelines
    ("roofline",),  # a stage against the hardware's limits (its profiler builds on profilers')
    ("api",),  # the public surface
    ("cli",),  # the command line, through the api
)

_API = ("bench", "stream", "stream_sweep", "profile", "sweep", "ab", "calibrate", "load", "runs", "default_device",
        "device_for", "BenchRun", "StreamRun", "ProfileRun", "SweepRun", "AbRun", "LoadRun", "Runs")

__all__ = list(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        from profiling import api

        return getattr(api, name)
    raise AttributeError(f"module 'profiling' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
