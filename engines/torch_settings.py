"""The settings every torch engine shares: their knobs, declared once, the typed settings and the refusals.

XTTS and F5 take the same load knobs under the same names and types: which weights,
compile and its mode, torch threads, warm-up syntheses, how a half precision applies
(autocast or cast), TF32 and cuDNN autotuning. Engines read knobs through frozen
dataclasses (``engines.base.read_knobs``): a field per knob, the value coerced by its KnobSpec
and the default taken from the declaration, never repeated beside it. Where a torch engine
runs (its devices, ZeroGPU) is engines/torch_devices.py.

No torch import at module level (the registry reads capabilities cheaply).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from dataclasses import dataclass

from engines.base import (
    Capabilities,
    KnobKind,
    KnobPhase,
    KnobRefusal,
    KnobSpec,
    KnobValue,
    Refusal,
    read_knobs,
)

WEIGHTS_CHOICES: tuple[str, ...] = ("checkpoint", "random-full", "random-tiny")
COMPILE_MODES: tuple[str, ...] = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
PRECISION_MODES: tuple[str, ...] = ("autocast", "cast")

_LOAD = KnobPhase.LOAD


def torch_knobs(weights_help: str, warmup_default: int, warmup_help: str = "") -> tuple[KnobSpec, ...]:
    """The shared declaration; engines differ only in the weights' help text and the warm-up default."""
    return (
        KnobSpec("weights", KnobKind.CHOICE, "random-tiny", phase=_LOAD, choices=WEIGHTS_CHOICES, help=weights_help),
        KnobSpec(
            "precision_mode", KnobKind.CHOICE, "autocast", phase=_LOAD, choices=PRECISION_MODES,
            help="fp16/bf16 only: autocast (fp32 weights, low-precision matmuls and convs) or cast (weights "
            "and activations converted; see the engine's notes for what stays fp32)",
        ),
        KnobSpec(
            "compile", KnobKind.BOOL, False, phase=_LOAD,
            help="torch.compile the hot modules (refused on ZeroGPU Spaces, which do not support it)",
        ),
        KnobSpec(
            "compile_mode", KnobKind.CHOICE, "default", phase=_LOAD, choices=COMPILE_MODES,
            help="torch.compile mode when compile is on",
        ),
        KnobSpec(
            "warmup", KnobKind.INT, warmup_default, phase=_LOAD, minimum=0, maximum=10, step=1,
            help=warmup_help or "short syntheses at load (allocator, compile); counted in load time, not in runs. "
            "Compiled models also need warm-up runs with the measured text (its shapes): --warmup",
        ),
        KnobSpec(
            "torch_threads", KnobKind.INT, 0, phase=_LOAD, minimum=0, maximum=256, step=1,
            help="torch intra-op threads, process-wide (0 = torch's default). On a CPU shared with other "
            "work, 1 avoids threads waiting on each other",
        ),
        KnobSpec(
            "tf32", KnobKind.BOOL, False, phase=_LOAD,
            help="CUDA, Ampere and newer: fp32 matmuls and convolutions in TF32 (10-bit mantissa; much faster, "
            "less exact). Off = fp32 matmuls and cuDNN convolutions both exact (process-wide)",
        ),
        KnobSpec(
            "cudnn_benchmark", KnobKind.BOOL, False, phase=_LOAD,
            help="CUDA: cuDNN times its convolution algorithms for each new input shape and keeps the fastest "
            "(the first run of every shape pays for the search; process-wide)",
        ),
    )


def deepspeed_available() -> bool:
    try:
        return importlib.util.find_spec("deepspeed") is not None
    except (ImportError, ValueError):
        return False


#: Refusals every torch engine shares, as data (checked before anything loads).
TORCH_KNOB_REFUSALS: tuple[KnobRefusal, ...] = (
    KnobRefusal(
        knob="use_deepspeed", value="True", device="cpu",
        reason="DeepSpeed's inference kernels are CUDA kernels",
    ),
)

#: bf16 needs the tensor cores of Ampere (8.0) and newer; older GPUs have no bf16 units.
BF16_CUDA_REFUSAL = Refusal(
    "this GPU has no bf16 units (compute capability below 8.0, Ampere): use fp16 or fp32",
    precision="bf16", device="cuda", below_capability=(8, 0),
)


@dataclass(frozen=True)
class TorchSettings:
    """The shared torch knobs of one load."""

    weights: str
    precision_mode: str
    compile: bool
    compile_mode: str
    warmup: int
    torch_threads: int
    tf32: bool
    cudnn_benchmark: bool

    @classmethod
    def of(cls, capabilities: Capabilities, knobs: Mapping[str, KnobValue]) -> TorchSettings:
        return read_knobs(cls, capabilities, knobs)

    def apply(self, device_kind: str) -> None:
        """Set torch's process-wide switches for this engine (at load and before each call, so two loaded
        engines with different settings each run with their own)."""
        import torch

        if device_kind == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = self.tf32
            torch.backends.cudnn.allow_tf32 = self.tf32
            torch.backends.cudnn.benchmark = self.cudnn_benchmark

    def apply_threads(self) -> None:
        if self.torch_threads > 0:
            import torch

            torch.set_num_threads(self.torch_threads)
