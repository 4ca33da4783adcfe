"""How fp16/bf16/int8 are applied to XTTS, and the fixes that make them run.

Two ways for half precisions (the ``precision_mode`` knob):

- ``autocast``: weights stay fp32, ``torch.autocast`` runs matmuls and convs in
  the low dtype. Outputs come back in that dtype, so the pipeline casts to fp32
  before ``.numpy()`` (coqui's ``inference()`` fails there under bf16).
- ``cast``: the GPT and HiFi-GAN weights are converted. The speaker encoder
  stays fp32: its torch spectrogram front end has no half kernels on CPU and
  it runs once per voice (the cache keeps its output). Two coqui spots assume
  fp32 and are patched: GPT-2's position embedding is replaced by
  ``null_position_embeddings``, which returns fp32 zeros and promotes the
  hidden state back to fp32 (LayerNorm then fails on half weights); and the
  conditioning encoder's ``GroupNorm32`` upcasts its input to fp32 itself, so
  its parameters are kept fp32. Inputs built in fp32 (mels, cached latents)
  are cast at each boundary.

int8 is dynamic quantisation of the GPT's linear layers. HF GPT-2 keeps its
projections in ``transformers.pytorch_utils.Conv1D`` (a transposed linear),
which ``quantize_dynamic`` does not see, so they are first rebuilt as
``nn.Linear`` with the same weights.
"""

from __future__ import annotations

import contextlib
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from engines.base import Refusal

if TYPE_CHECKING:
    import torch
    from TTS.tts.models.xtts import Xtts

PRECISION_MODES: tuple[str, ...] = ("autocast", "cast")

REFUSALS: tuple[Refusal, ...] = (
    Refusal(
        "int8 is dynamic quantisation (torch.ao quantize_dynamic), which has CPU kernels only",
        precision="int8",
        device="cuda",
    ),
)


@dataclass(frozen=True)
class PrecisionPlan:
    precision: str  # fp32 | fp16 | bf16 | int8
    mode: str  # autocast | cast (only matters for fp16/bf16)
    device_type: str  # cpu | cuda

    @property
    def half(self) -> bool:
        return self.precision in ("fp16", "bf16")

    @property
    def casts_weights(self) -> bool:
        return self.half and self.mode == "cast"

    @property
    def autocasts(self) -> bool:
        return self.half and self.mode == "autocast"

    def dtype(self) -> torch.dtype:
        """The dtype the GPT and HiFi-GAN compute in (int8: activations stay fp32)."""
        import torch

        return {"fp16": torch.float16, "bf16": torch.bfloat16}.get(self.precision, torch.float32)

    def autocast(self) -> contextlib.AbstractContextManager[Any]:
        """The autocast region for model compute; a no-op unless mode is autocast."""
        if not self.autocasts:
            return contextlib.nullcontext()
        import torch

        return torch.autocast(device_type=self.device_type, dtype=self.dtype())


def apply_precision(model: Xtts, plan: PrecisionPlan) -> None:
    """Convert ``model`` in place for ``plan`` (after it is on its device, before compile)."""
    if plan.casts_weights:
        dtype = plan.dtype()
        model.gpt.to(dtype)
        model.hifigan_decoder.waveform_decoder.to(dtype)
        _keep_upcasting_norms_fp32(model.gpt)
        _patch_null_position_embeddings(model, dtype)
    elif plan.precision == "int8":
        quantize_gpt_linears(model)


def _keep_upcasting_norms_fp32(root: torch.nn.Module) -> None:
    import torch

    for module in root.modules():
        if type(module).__name__ == "GroupNorm32":  # forward() runs x.float() through its own weights
            module.to(torch.float32)


def _patch_null_position_embeddings(model: Xtts, dtype: torch.dtype) -> None:
    import torch

    dim = model.gpt.model_dim

    def zeros(position_ids: torch.Tensor) -> torch.Tensor:
        return torch.zeros((*position_ids.shape, dim), device=position_ids.device, dtype=dtype)

    model.gpt.gpt.wpe = zeros


def conv1d_to_linear(root: torch.nn.Module) -> int:
    """Replace every HF ``Conv1D`` under ``root`` by an equivalent ``nn.Linear``; returns how many."""
    import torch
    from transformers.pytorch_utils import Conv1D

    replaced = 0
    for parent in list(root.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, Conv1D):
                in_features, out_features = child.weight.shape  # Conv1D stores (in, out)
                linear = torch.nn.Linear(in_features, out_features, device=child.weight.device)
                linear.weight.data = child.weight.data.t().contiguous()
                linear.bias.data = child.bias.data.clone()
                setattr(parent, name, linear)
                replaced += 1
    return replaced


def quantize_gpt_linears(model: Xtts) -> int:
    """int8 dynamic quantisation of every linear in the GPT (incl. GPT-2's Conv1D projections)."""
    import torch
    from torch.ao.quantization import quantize_dynamic

    converted = conv1d_to_linear(model.gpt)
    with warnings.catch_warnings():
        # torch 2.9 marks torch.ao.quantization deprecated (moving to torchao); it still works here.
        warnings.simplefilter("ignore", DeprecationWarning)
        # In place: gpt_inference shares these submodules, so both paths see the quantised layers.
        quantize_dynamic(model.gpt, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
    return converted


def module_dtypes(module: torch.nn.Module) -> str:
    """Parameter dtypes of ``module`` with counts, e.g. ``float32`` or ``bfloat16:120,float32:4``.

    Dynamically quantised linears hold packed int8 weights outside ``parameters()``;
    they are counted as ``qint8``.
    """
    counts: dict[str, int] = {}
    for parameter in module.parameters():
        key = str(parameter.dtype).removeprefix("torch.")
        counts[key] = counts.get(key, 0) + 1
    quantized = sum(1 for m in module.modules() if type(m).__name__ == "Linear" and "quantized" in type(m).__module__)
    if quantized:
        counts["qint8"] = quantized
    if len(counts) == 1:
        return next(iter(counts))
    return ",".join(f"{k}:{v}" for k, v in sorted(counts.items()))
