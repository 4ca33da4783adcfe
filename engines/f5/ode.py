"""Timing every function evaluation (NFE) of F5's ODE loop.

``CFM.sample`` calls ``self.transformer(...)`` once per evaluation (twice per step
for midpoint). Swapping in a thin timing wrapper for the duration of one solve
records each call without touching f5_tts and works the same for a compiled DiT.
Heavy module (torch): import it inside engine methods only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn

from engines.hooks import StageHook

NFE_SERIES = "nfe_step_s"
NFE_TIME_SERIES = "nfe_t"


class TimedTransformer(nn.Module):
    """Forwards to the DiT; reports each call's wall time (device-synchronised) to the hook."""

    def __init__(self, inner: nn.Module, hook: StageHook, sync: Callable[[], None] | None) -> None:
        super().__init__()
        self.inner = inner
        self.dim = inner.dim
        self._hook = hook
        self._sync = sync
        self.output_dtype: torch.dtype | None = None
        self.calls = 0

    def forward(self, **kwargs: object) -> torch.Tensor:
        if self._sync is not None:
            self._sync()
        start = time.perf_counter()
        output = self.inner(**kwargs)
        if self._sync is not None:
            self._sync()
        self._hook.observe(NFE_SERIES, time.perf_counter() - start)
        step_time = kwargs.get("time")
        if isinstance(step_time, torch.Tensor):
            self._hook.observe(NFE_TIME_SERIES, float(step_time.reshape(-1)[0]))
        self.output_dtype = output.dtype
        self.calls += 1
        return output

    def clear_cache(self) -> None:
        self.inner.clear_cache()


@contextmanager
def timed_nfe(cfm: nn.Module, hook: StageHook, sync: Callable[[], None] | None) -> Iterator[TimedTransformer]:
    original = cfm.transformer
    wrapper = TimedTransformer(original, hook, sync)
    cfm.transformer = wrapper
    try:
        yield wrapper
    finally:
        cfm.transformer = original


def ode_timesteps(nfe_step: int, sway_sampling_coef: float | None) -> list[float]:
    """The time grid F5 integrates over (EPSS for its predefined NFE values, else uniform)."""
    from f5_tts.model.utils import get_epss_timesteps

    t = get_epss_timesteps(nfe_step, device="cpu", dtype=torch.float32)
    if sway_sampling_coef is not None:
        t = t + sway_sampling_coef * (torch.cos(torch.pi / 2 * t) - 1 + t)
    return [float(v) for v in t]


def time_grid_refusal(nfe_step: int, sway_sampling_coef: float | None, dtype: torch.dtype) -> str | None:
    """Why F5's time grid cannot be integrated in ``dtype``, or None when it can.

    ``CFM.sample`` builds the grid in the DiT's parameter dtype. In bf16 (8-bit mantissa)
    sway's ``cos(pi/2 t)`` rounds to 1 for the first small times, so they collapse to 0:
    with sway -1 that happens at NFE 16 and from 26 up (fp16: from 72 up), and torchdiffeq
    stops with "t must be strictly increasing".
    """
    from f5_tts.model.utils import get_epss_timesteps

    t = get_epss_timesteps(nfe_step, device="cpu", dtype=dtype)
    if sway_sampling_coef is not None:
        t = t + sway_sampling_coef * (torch.cos(torch.pi / 2 * t) - 1 + t)
    repeated = (t[1:] <= t[:-1]).nonzero()
    if len(repeated) == 0:
        return None
    value = float(t[int(repeated[0, 0])])
    return (
        f"nfe_step={nfe_step} with sway_sampling_coef={sway_sampling_coef:g} cannot run with the DiT cast to "
        f"{str(dtype).removeprefix('torch.')}: F5 builds its ODE time grid in the DiT's dtype and two of its "
        f"{nfe_step + 1} times round to {value:.4f}, which the ODE solver rejects "
        "(use precision_mode=autocast, or another nfe_step)"
    )
