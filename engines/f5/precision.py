"""Precision of the DiT and the vocoder: the plan, its refusals, and applying it.

The refusals are data on F5_CAPABILITIES (what, where, why) so they can be shown
before anything loads; ``check_precision`` raises them as InputError. torch is imported inside
functions only.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engines.base import SynthesisSettings
from engines.errors import InputError
from engines.f5.capabilities import F5_CAPABILITIES, F5Knobs
from engines.torch_settings import TorchSettings

if TYPE_CHECKING:
    import torch

TORCH_DTYPE_NAMES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def check_precision(settings: SynthesisSettings) -> None:
    """Raise InputError for a refused knob combination (data on F5_CAPABILITIES), before anything is built."""
    refused = F5_CAPABILITIES.knob_refusal(settings.device_kind, settings.knobs)
    if refused:
        raise InputError(refused)


@dataclass(frozen=True)
class PrecisionPlan:
    dit: str
    dit_mode: str
    vocoder: str

    @staticmethod
    def from_settings(settings: SynthesisSettings) -> PrecisionPlan:
        return PrecisionPlan(
            dit=settings.precision,
            dit_mode=TorchSettings.of(F5_CAPABILITIES, settings.knobs).precision_mode,
            vocoder=F5Knobs.of(settings.knobs).vocoder_precision,
        )

    @property
    def casts_dit(self) -> bool:
        return self.dit != "fp32" and self.dit_mode == "cast"

    @property
    def autocasts_dit(self) -> bool:
        return self.dit != "fp32" and self.dit_mode == "autocast"


def torch_dtype(name: str) -> torch.dtype:
    import torch

    return getattr(torch, TORCH_DTYPE_NAMES[name])


def dit_weight_dtype(plan: PrecisionPlan) -> torch.dtype:
    """The DiT's parameter dtype: low precision only when cast; autocast keeps fp32 weights."""
    import torch

    return torch_dtype(plan.dit) if plan.casts_dit else torch.float32


def dit_autocast(plan: PrecisionPlan, device_kind: str) -> AbstractContextManager[Any]:
    """The autocast region for the ODE loop, or a no-op when the plan does not autocast."""
    if not plan.autocasts_dit:
        return nullcontext()
    import torch

    return torch.autocast(device_type=device_kind, dtype=torch_dtype(plan.dit))
