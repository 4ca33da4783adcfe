"""torch.compile activity during one run, from dynamo's process-wide counters.

A frame compiled while a measured run executes is a (re)compile that run paid
for: a new input shape, a guard that failed. Graph breaks are counted when
dynamo compiles the frame that has them. Both are deltas of the counters around
the run; None when torch is not loaded (nothing could compile).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class CompileCounts:
    frames: int
    graph_breaks: int


def _counters() -> Any:
    if "torch" not in sys.modules:
        return None
    utils = sys.modules.get("torch._dynamo.utils")
    if utils is None:  # dynamo never imported: nothing compiled
        return {}
    return utils.counters


def compile_counts() -> CompileCounts | None:
    counters = _counters()
    if counters is None:
        return None
    frames = counters.get("frames", {}).get("total", 0) if counters else 0
    breaks = sum(counters.get("graph_break", {}).values()) if counters else 0
    return CompileCounts(int(frames), int(breaks))


def compile_delta(before: CompileCounts | None, after: CompileCounts | None) -> CompileCounts | None:
    if after is None:
        return None
    base = before or CompileCounts(0, 0)
    return CompileCounts(after.frames - base.frames, after.graph_breaks - base.graph_breaks)
