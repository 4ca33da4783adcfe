"""What decides speed below the Python packages: the CPU's instruction set, torch's
CUDA/cuDNN build, the device a run actually used, and torch's TF32/cuDNN switches.

torch is never imported here: its facts are read when something else already
loaded it (a torch engine's load), so a Piper-only process stays light.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

#: /proc/cpuinfo flags that decide how fast low precisions run on the CPU, in the order shown.
ISA_FLAGS: tuple[str, ...] = (
    "avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16",
    "amx_int8", "amx_fp16",
)


@dataclass(frozen=True)
class PrecisionIsaRule:
    """A precision and the CPU features that run it natively; without any, it is emulated."""

    precision: str
    native_with: tuple[str, ...]
    emulated_note: str


#: Measured here (engine-facts, 2026-11-30): on an AVX2-only EPYC, F5 bf16 autocast ran 6.4x
#: slower than fp32; on a machine with AVX512_BF16 it ran 1.3-1.6x faster.
PRECISION_ISA_RULES: tuple[PrecisionIsaRule, ...] = (
    PrecisionIsaRule(
        "bf16", ("avx512_bf16", "amx_bf16"),
        "no AVX512_BF16 or AMX-BF16 on this CPU: bf16 is emulated (expect it slower than fp32)",
    ),
    PrecisionIsaRule(
        "fp16", ("avx512_fp16", "amx_fp16"),
        "no AVX512_FP16 or AMX-FP16 on this CPU: fp16 is emulated (expect it slower than fp32)",
    ),
)


@lru_cache(maxsize=1)
def cpu_isa(cpuinfo: Path = Path("/proc/cpuinfo")) -> tuple[str, ...]:
    """The ISA_FLAGS this CPU reports (first processor's flags line); empty off Linux."""
    try:
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("flags"):
                flags = set(line.split(":", 1)[1].split())
                return tuple(flag for flag in ISA_FLAGS if flag in flags)
    except OSError:
        pass
    return ()


def cpu_precision_notes(isa: tuple[str, ...], precisions: tuple[str, ...]) -> dict[str, str]:
    """For each of ``precisions`` this CPU emulates: why (to show beside the precision control)."""
    notes = {}
    for rule in PRECISION_ISA_RULES:
        if rule.precision in precisions and not any(flag in isa for flag in rule.native_with):
            notes[rule.precision] = rule.emulated_note
    return notes


def loaded_torch() -> Any:
    """The torch module if this process imported it already, else None (never imports it)."""
    torch = sys.modules.get("torch")
    return torch if torch is not None and hasattr(torch, "backends") else None


@dataclass(frozen=True)
class TorchBuild:
    cpu_capability: str = ""
    cuda: str = ""
    cudnn: str = ""


def torch_build() -> TorchBuild:
    """torch's build facts; empty until torch is loaded, then read once."""
    return _torch_build() if loaded_torch() is not None else TorchBuild()


@lru_cache(maxsize=1)
def _torch_build() -> TorchBuild:
    torch = loaded_torch()
    try:
        capability = str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):
        capability = ""
    cudnn = ""
    try:
        version = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
        cudnn = str(version) if version else ""
    except (AttributeError, RuntimeError):
        pass
    return TorchBuild(capability, str(torch.version.cuda or ""), cudnn)


@dataclass(frozen=True)
class TorchSwitches:
    """Process-wide torch settings that change fp32 speed on Ampere and newer (None: torch not loaded)."""

    tf32_matmul: bool | None = None
    tf32_cudnn: bool | None = None
    float32_matmul_precision: str = ""
    cudnn_benchmark: bool | None = None


def torch_switches() -> TorchSwitches:
    torch = loaded_torch()
    if torch is None:
        return TorchSwitches()
    return TorchSwitches(
        tf32_matmul=bool(torch.backends.cuda.matmul.allow_tf32),
        tf32_cudnn=bool(torch.backends.cudnn.allow_tf32),
        float32_matmul_precision=str(torch.get_float32_matmul_precision()),
        cudnn_benchmark=bool(torch.backends.cudnn.benchmark),
    )


@dataclass(frozen=True)
class DeviceInfo:
    """The device a run used, declared once (a run's environment holds one: ``EnvironmentInfo.device``).

    ``id`` is the device as torch names it (``cpu``, ``cuda:1``); the rest is filled for CUDA only:
    the GPU as the process sees it and as the machine numbers it.
    """

    id: str = ""
    name: str = ""
    memory_gib: float | None = None
    capability: str = ""
    uuid: str = ""
    driver: str = ""
    #: CUDA_VISIBLE_DEVICES when set: cuda:N is the N-th GPU of this list, not GPU N of the machine.
    visible_devices: str | None = None
    physical: str = ""

    @property
    def is_cuda(self) -> bool:
        return self.id.partition(":")[0] == "cuda"


def physical_device(index: int, visible: str | None) -> str:
    """Which machine GPU the process's ``cuda:index`` is, given CUDA_VISIBLE_DEVICES."""
    if visible is None:
        return str(index)
    entries = [entry.strip() for entry in visible.split(",") if entry.strip()]
    return entries[index] if index < len(entries) else f"?{index}"


def device_info(device: str) -> DeviceInfo:
    """What a run on ``device`` used: for CUDA the GPU's facts (``cuda_device_info``), else just its name."""
    return cuda_device_info(device) if device.partition(":")[0] == "cuda" else DeviceInfo(device)


@lru_cache(maxsize=8)
def cuda_device_info(device: str) -> DeviceInfo:
    """Facts about ``device`` (``cuda:N``) from torch (already loaded) and the driver; cached per device."""
    from profiling.core.device import torch_device_name
    from profiling.core.nvml import driver_version

    device = torch_device_name(device)
    index = int(device.partition(":")[2] or 0)
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    torch = loaded_torch()
    if torch is None or not torch.cuda.is_available():
        return DeviceInfo(device, visible_devices=visible, physical=physical_device(index, visible))
    props = torch.cuda.get_device_properties(index)
    uuid = str(getattr(props, "uuid", "") or "")
    return DeviceInfo(
        id=device,
        name=str(props.name),
        memory_gib=round(props.total_memory / 2**30, 1),
        capability=f"{props.major}.{props.minor}",
        uuid=uuid,
        driver=driver_version(),
        visible_devices=visible,
        physical=physical_device(index, visible),
    )

