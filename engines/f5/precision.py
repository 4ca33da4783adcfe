"""Precision of the DiT and the vocoder: the plan, its refusals, and applying it.

The refusals are data (what, where, why) so they can be shown before anything
loads; ``check_precision`` raises them as InputError. torch is imported inside
functions only.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engines.base import KnobValue, SynthesisSettings
from engines.errors import InputError

if TYPE_CHECKING:
    import torch

TORCH_DTYPE_NAMES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


@dataclass(frozen=True)
class KnobRefusal:
    """A knob value refused on a device kind, with the reason shown to users."""

    knob: str
    value: str
    device: str
    reason: str

    def matches(self, device_kind: str, knobs: Mapping[str, KnobValue]) -> bool:
        return device_kind == self.device and str(knobs.get(self.knob, "")) == self.value


#: Measured on this stack (engine-facts): Vocos' ISTFT calls torch.fft, whose CPU
#: backends have no float16 kernels, so fp16 Vocos fails on CPU mid-run.
KNOB_REFUSALS: tuple[KnobRefusal, ...] = (
    KnobRefusal(
        knob="vocoder_precision", value="fp16", device="cpu",
        reason="Vocos' inverse STFT runs torch.fft, which has no float16 kernels on CPU "
        "(use vocoder_precision=bf16 or fp32)",
    ),
)


def check_precision(settings: SynthesisSettings) -> None:
    """Raise InputError for a refused combination, before anything is built."""
    for refusal in KNOB_REFUSALS:
        if refusal.matches(settings.device_kind, settings.knobs):
            raise InputError(
                f"{refusal.knob}={refusal.value} on {refusal.device} is refused: {refusal.reason}"
            )


@dataclass(frozen=True)
class PrecisionPlan:
    dit: str
    dit_mode: str
    vocoder: str

    @staticmethod
    def from_settings(settings: SynthesisSettings) -> PrecisionPlan:
        return PrecisionPlan(
            dit=settings.precision,
            dit_mode=str(settings.knobs.get("dit_precision_mode", "autocast")),
            vocoder=str(settings.knobs.get("vocoder_precision", "fp32")),
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
