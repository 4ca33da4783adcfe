"""What measures: stage timer, run records, repeats, statistics, the results store, the CLI.

The public API is ``profiling.api``; its functions are importable from here too
(``from profiling import bench``), loaded on first use so ``import profiling`` stays light.
"""

from __future__ import annotations

from typing import Any

_API = ("bench", "stream", "profile", "sweep", "ab", "load", "runs", "default_device", "device_for",
        "BenchRun", "StreamRun", "ProfileRun", "SweepRun", "AbRun", "LoadRun", "Runs")

__all__ = list(_API)


def __getattr__(name: str) -> Any:
    if name in _API:
        from profiling import api

        return getattr(api, name)
    raise AttributeError(f"module 'profiling' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted([*globals(), *_API])
