"""The counting pass: FLOPs, bytes and operator count per stage, on one untimed synthesis.

Never inside a timed run: the counters (``FlopCounterMode``, a dispatch mode that counts
operators and attention operands, forward hooks that add up parameter bytes) slow every
operator down, so the profiler runs one extra synthesis under them and takes its times
from plain runs. Per stage path (as the stage timer names it), inclusive of sub-stages:

- ``flops``: torch.utils.flop_counter's count (matmul, conv, attention; elementwise ops
  are not counted, as in every FLOP counter);
- ``weight_bytes``: bytes of the parameters of every module whose forward ran, once per
  call (what a forward reads from memory at least once; an embedding, the rows it gathers);
- ``attention_bytes``: bytes of the operands of batched matmuls and fused attention
  (the KV cache in a decode step; q/k/v in a full-sequence pass);
- ``io_bytes``: bytes of every operator's tensor inputs and outputs: an upper bound on
  traffic, as if no cache ever helped;
- ``ops``: aten operators dispatched (on CUDA, about one kernel launch each);
- ``steps``: observations of a per-step series made inside the stage (a decode token, an
  NFE step), so per-step figures need no engine-specific knowledge.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from engines.base import Engine, SynthesisSettings, Voice
from engines.hooks import StageHook
from profiling.core.records import RunMode
from profiling.core.timer import StageTimer

#: Operators whose activation-by-activation operands are attention's (KV cache in decode); an operator
#: with a Parameter operand is a weight matmul and is counted in weight_bytes instead.
_ATTENTION_OPS = frozenset({"bmm", "baddbmm", "matmul"})


@dataclass
class StageCounts:
    flops: int = 0
    weight_bytes: int = 0
    attention_bytes: int = 0
    io_bytes: int = 0
    ops: int = 0
    steps: int = 0
    calls: int = 0


@dataclass
class CountingResult:
    stages: dict[str, StageCounts]
    totals: StageCounts
    annotations: dict[str, Any] = field(default_factory=dict)


def _extra_flop_formulas() -> dict[Any, Any]:
    """torch's counter has no formula for the CPU flash-attention kernel (it would count 0)."""
    import torch
    from torch.utils.flop_counter import sdpa_flop_count

    def cpu_sdpa(query: Any, key: Any, value: Any, *args: Any, out_shape: Any = None, **kwargs: Any) -> int:
        return sdpa_flop_count(query, key, value)

    op = getattr(torch.ops.aten, "_scaled_dot_product_flash_attention_for_cpu", None)
    return {op: cpu_sdpa} if op is not None else {}


class _GlobalOnly:
    """Stands in for FlopCounterMode's ModuleTracker, which needs autograd: its hooks fail on a module
    given a Parameter as input under inference_mode (XTTS's perceiver). Totals need no module tree."""

    parents = frozenset({"Global"})

    def __enter__(self) -> _GlobalOnly:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class _Totals:
    """Running totals; stage edges take differences of them."""

    def __init__(self) -> None:
        self.weight_bytes = 0
        self.attention_bytes = 0
        self.io_bytes = 0
        self.ops = 0


def _tensor_bytes(value: Any) -> int:
    import torch

    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, list | tuple):
        return sum(_tensor_bytes(v) for v in value)
    return 0


def _dispatch_counter(totals: _Totals) -> Any:
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    class OperatorCounter(TorchDispatchMode):
        def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
            out = func(*args, **(kwargs or {}))
            totals.ops += 1
            inputs = _tensor_bytes(list(args)) + _tensor_bytes(list((kwargs or {}).values()))
            totals.io_bytes += inputs + _tensor_bytes(out)
            name = func.overloadpacket.__name__
            if name in _ATTENTION_OPS or "scaled_dot_product" in name:
                if not any(isinstance(a, torch.nn.Parameter) for a in args):
                    totals.attention_bytes += inputs
            return out

    return OperatorCounter()


class _CountingHook:
    """A stage hook that forwards to a timer and snapshots the counters at every stage edge."""

    def __init__(self, inner: StageHook, flop_counter: Any, totals: _Totals) -> None:
        self.inner, self.flop_counter, self.totals = inner, flop_counter, totals
        self.stack: list[tuple[str, tuple[int, ...]]] = []
        self.stages: dict[str, StageCounts] = defaultdict(StageCounts)
        self.observations: dict[str, dict[str, int]] = {}

    def snapshot(self) -> tuple[int, ...]:
        t = self.totals
        return (self.flop_counter.get_total_flops(), t.weight_bytes, t.attention_bytes, t.io_bytes, t.ops)

    def stage(self, name: str) -> _CountingStage:
        return _CountingStage(self, self.inner.stage(name), name)

    def observe(self, series: str, value: float) -> None:
        for path, _ in self.stack:
            seen = self.observations.setdefault(path, {})
            seen[series] = seen.get(series, 0) + 1
            # A step may feed several series (time, norm...): steps = the most frequent one.
            self.stages[path].steps = max(seen.values())
        self.inner.observe(series, value)

    def annotate(self, key: str, value: str | float | int | bool) -> None:
        self.inner.annotate(key, value)


class _CountingStage:
    def __init__(self, hook: _CountingHook, inner: Any, name: str) -> None:
        self.hook, self.inner, self.name = hook, inner, name

    def __enter__(self) -> None:
        self.inner.__enter__()
        stack = self.hook.stack
        path = f"{stack[-1][0]}/{self.name}" if stack else self.name
        stack.append((path, self.hook.snapshot()))

    def __exit__(self, *exc: object) -> None:
        path, start = self.hook.stack.pop()
        end = self.hook.snapshot()
        counts = self.hook.stages[path]
        flops, weights, attention, io, ops = (b - a for a, b in zip(start, end, strict=True))
        counts.flops += flops
        counts.weight_bytes += weights
        counts.attention_bytes += attention
        counts.io_bytes += io
        counts.ops += ops
        counts.calls += 1
        self.inner.__exit__(*exc)


def count_stages(engine: Engine, text: str, voice: Voice, settings: SynthesisSettings, mode: RunMode) -> CountingResult:
    """One synthesis under the counters (not stored, not timed); counts per stage path."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    totals = _Totals()

    def pre_hook(module: torch.nn.Module, args: Any) -> None:
        if isinstance(module, torch.nn.Embedding) and args and isinstance(args[0], torch.Tensor):
            # A lookup reads the rows it gathers, not the table.
            totals.weight_bytes += args[0].numel() * module.embedding_dim * module.weight.element_size()
            return
        totals.weight_bytes += sum(p.numel() * p.element_size() for p in module.parameters(recurse=False))

    timer = StageTimer()
    flop_counter = FlopCounterMode(display=False, depth=1, custom_mapping=_extra_flop_formulas())
    flop_counter.mod_tracker = _GlobalOnly()
    hook = _CountingHook(timer, flop_counter, totals)
    handle = torch.nn.modules.module.register_module_forward_pre_hook(pre_hook)
    try:
        with flop_counter, _dispatch_counter(totals):
            start = hook.snapshot()
            if mode is RunMode.STREAM:
                for _ in engine.stream(text, voice, settings, hook):
                    pass
            else:
                engine.synthesize(text, voice, settings, hook)
            end = hook.snapshot()
    finally:
        handle.remove()
    flops, weights, attention, io, ops = (b - a for a, b in zip(start, end, strict=True))
    whole = StageCounts(flops, weights, attention, io, ops, steps=0, calls=1)
    return CountingResult(dict(hook.stages), whole, dict(timer.annotations))
