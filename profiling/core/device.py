"""Stage edges and memory probes for the run's own CUDA device (torch engines).

Chosen once per timer but bound lazily: the first load imports torch inside
``engine.load``, after its timer exists, so each edge looks for torch again until
it is there (a stage that began before the import keeps its wall time). Every
call names the run's device: a bare ``torch.cuda.synchronize()`` waits on the
*current* device, which for a run on ``cuda:1`` is GPU 0 (wrong stage charged, and
a context opened on a GPU the run never asked for).
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from enum import Enum
from typing import Any

MIB = 2**20


class TimingMode(str, Enum):
    """How stage edges meet the device; ``wall`` when there is no device to wait for."""

    SYNC = "sync"  # synchronise at both edges of every stage: exact attribution, removes overlap
    EVENTS = "events"  # a CUDA event per edge, one synchronisation at the end: no perturbation
    WALL = "wall"  # CPU runs, and engines whose calls return only when done (ONNX Runtime)


def torch_device_name(device: str) -> str:
    """``cuda`` -> ``cuda:0`` (validation accepts both for the first GPU); others unchanged."""
    return "cuda:0" if device == "cuda" else device


class CudaEdges:
    """Stage edges on one CUDA device: synchronise it (sync) or record an event on its stream (events)."""

    def __init__(self, device: str, mode: TimingMode) -> None:
        if mode is TimingMode.WALL:
            raise ValueError("CudaEdges needs sync or events")
        self.device = torch_device_name(device)
        self.mode = mode
        self._torch: Any = None
        self._sync: Callable[[], None] | None = None

    def bind(self) -> Callable[[], None] | None:
        """The synchronise function for this device once torch is imported; None before."""
        if self._sync is None:
            torch = sys.modules.get("torch")
            if torch is None or not hasattr(torch, "cuda"):
                return None
            self._torch = torch
            self._sync = functools.partial(torch.cuda.synchronize, torch.device(self.device))
        return self._sync

    def mark(self) -> object | None:
        sync = self.bind()
        if sync is None:
            return None
        if self.mode is TimingMode.SYNC:
            sync()
            return None
        torch = self._torch
        device = torch.device(self.device)
        event = torch.cuda.Event(enable_timing=True)
        event.record(torch.cuda.current_stream(device))
        return event

    def elapsed_s(self, start: object, end: object) -> float:
        return float(start.elapsed_time(end)) / 1000.0  # type: ignore[attr-defined]

    def finish(self) -> None:
        sync = self.bind()
        if sync is not None:
            sync()


class CudaMemory:
    """Peak allocated/reserved memory of torch's caching allocator on one device.

    Host-side counters: reading them neither synchronises nor initialises CUDA.
    """

    def __init__(self, device: str) -> None:
        self.device = torch_device_name(device)

    def _cuda(self) -> Any:
        torch = sys.modules.get("torch")
        if torch is None or not hasattr(torch, "cuda") or not torch.cuda.is_initialized():
            return None
        return torch

    def reset(self) -> None:
        torch = self._cuda()
        if torch is not None:
            torch.cuda.reset_peak_memory_stats(torch.device(self.device))

    def peaks(self) -> tuple[float, float] | None:
        torch = self._cuda()
        if torch is None:
            return None
        device = torch.device(self.device)
        return torch.cuda.max_memory_allocated(device) / MIB, torch.cuda.max_memory_reserved(device) / MIB


def stage_instruments(
    device: str, framework: str, mode: TimingMode
) -> tuple[CudaEdges | None, CudaMemory | None, TimingMode]:
    """What the stage timer of one run uses: edges, memory probe and the timing mode that applies.

    Only torch on CUDA queues work that a stage edge must wait for; everything else is wall time.
    """
    if device.partition(":")[0] != "cuda" or framework != "torch" or mode is TimingMode.WALL:
        return None, None, TimingMode.WALL
    return CudaEdges(device, mode), CudaMemory(device), mode
