"""Where a torch engine or converter runs on this machine: the CPU, each CUDA device and its compute
capability, and what Hugging Face ZeroGPU (a GPU lent per call) refuses.

No torch import at module level (the registry reads capabilities cheaply).
"""

from __future__ import annotations

import os

from engines.base import DeviceSupport


def torch_devices() -> tuple[str, ...]:
    """The devices a torch model can use on this machine: ``cpu`` and each ``cuda:N``."""
    import torch

    return ("cpu", *(f"cuda:{i}" for i in range(torch.cuda.device_count())))


class TorchDevices(DeviceSupport):
    """A torch component's devices: the CPU and each CUDA device, with its compute capability."""

    @classmethod
    def machine_devices(cls) -> tuple[str, ...]:
        return torch_devices()

    @classmethod
    def device_capability(cls, device: str) -> tuple[int, int] | None:
        return cuda_capability(device)


def cuda_capability(device: str) -> tuple[int, int] | None:
    """Compute capability of ``device`` (cuda:N) on this machine; None without CUDA or that index."""
    import torch

    if not torch.cuda.is_available():
        return None
    index = int(device.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        return None
    major, minor = torch.cuda.get_device_capability(index)
    return int(major), int(minor)


#: Hugging Face ZeroGPU sets this in a Space that borrows a GPU per call.
ZEROGPU_ENV = "SPACES_ZERO_GPU"


def on_zerogpu() -> bool:
    return os.environ.get(ZEROGPU_ENV, "").lower() in ("1", "true")


def zerogpu_refusal(compile_on: bool) -> str | None:
    """ZeroGPU attaches a GPU per decorated call and does not support torch.compile (Hugging Face's docs)."""
    if compile_on and on_zerogpu():
        return "compile=true is refused on ZeroGPU: ZeroGPU Spaces do not support torch.compile"
    return None
