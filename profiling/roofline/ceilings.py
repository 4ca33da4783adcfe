"""The device's ceilings: peak matmul FLOP/s per precision and copy bandwidth, measured here and cached.

Measured by the lab on the machine that runs the engine (a large square matmul per
precision, a large device copy; best of a few), with the current torch thread count,
and cached per machine in ``<data_dir>/ceilings/``. Datasheet values are listed where
known (dense, no sparsity) so a measured ceiling far below the datasheet is visible.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from dataclasses import asdict, dataclass
from pathlib import Path

PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")


@dataclass(frozen=True)
class Datasheet:
    """Vendor peak figures: dense matmul FLOP/s per precision and memory bandwidth (bytes/s)."""

    name: str
    flops: dict[str, float]
    bandwidth: float
    source: str


#: Matched by substring of torch.cuda.get_device_name(). SXM parts; dense (no 2:4 sparsity).
DATASHEETS: tuple[Datasheet, ...] = (
    Datasheet("H200", {"bf16": 989e12, "fp16": 989e12, "fp32": 67e12}, 4.8e12, "NVIDIA H200 datasheet (SXM)"),
    Datasheet("H100", {"bf16": 989e12, "fp16": 989e12, "fp32": 67e12}, 3.35e12, "NVIDIA H100 datasheet (SXM)"),
    Datasheet("A100", {"bf16": 312e12, "fp16": 312e12, "fp32": 19.5e12}, 2.039e12, "NVIDIA A100 80GB datasheet"),
)


@dataclass(frozen=True)
class Ceilings:
    device: str  # "cpu" or "cuda:0"
    device_name: str
    threads: int
    flops: dict[str, float]  # precision -> measured peak FLOP/s
    bandwidth: float  # measured copy bandwidth, bytes/s (read + write)
    datasheet_flops: dict[str, float]
    datasheet_bandwidth: float | None
    datasheet_source: str
    measured_at: str

    def peak_flops(self, precision: str) -> float:
        return self.flops.get(precision) or self.flops["fp32"]


def device_name(device: str) -> str:
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(torch.device(device))
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_key(device: str, threads: int) -> str:
    import torch

    identity = {"device": device.split(":")[0], "name": device_name(device), "threads": threads,
                "torch": torch.__version__, "machine": platform.machine()}
    return hashlib.sha1(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def _datasheet(name: str) -> Datasheet | None:
    return next((sheet for sheet in DATASHEETS if sheet.name in name), None)


def _dtype(precision: str):  # noqa: ANN202 - torch.dtype without importing torch at module level
    import torch

    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[precision]


def _best_seconds(fn, device: str, repeats: int) -> float:  # noqa: ANN001
    import torch

    fn()  # warm-up: allocation, kernel selection
    best = float("inf")
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize(device)
        best = min(best, time.perf_counter() - start)
    return best


def measure_matmul(device: str, precision: str, size: int, repeats: int = 3) -> float:
    """Peak FLOP/s of a ``size`` x ``size`` matmul in ``precision`` (best of ``repeats``)."""
    import torch

    dtype = _dtype(precision)
    with torch.inference_mode():
        a = torch.randn(size, size, device=device, dtype=dtype)
        b = torch.randn(size, size, device=device, dtype=dtype)
        seconds = _best_seconds(lambda: torch.mm(a, b), device, repeats)
    return 2.0 * size**3 / seconds


def measure_copy(device: str, megabytes: int, repeats: int = 3) -> float:
    """Copy bandwidth in bytes/s, counting the read and the write."""
    import torch

    with torch.inference_mode():
        source = torch.empty(megabytes * 2**20 // 4, device=device, dtype=torch.float32).fill_(1.0)
        target = torch.empty_like(source)
        seconds = _best_seconds(lambda: target.copy_(source), device, repeats)
    return 2.0 * source.numel() * 4 / seconds


def measure(device: str) -> Ceilings:
    import torch

    cuda = device.startswith("cuda")
    flops = {}
    for precision in PRECISIONS:
        # CPUs without native bf16/fp16 emulate them slowly: a smaller matrix keeps this short.
        size = 8192 if cuda else (2048 if precision == "fp32" else 512)
        try:
            flops[precision] = measure_matmul(device, precision, size, repeats=3 if cuda or precision == "fp32" else 2)
        except RuntimeError:  # a precision this device cannot multiply in
            continue
    bandwidth = measure_copy(device, 2048 if cuda else 256)
    name = device_name(device)
    sheet = _datasheet(name) if cuda else None
    return Ceilings(
        device=device, device_name=name, threads=torch.get_num_threads(), flops=flops, bandwidth=bandwidth,
        datasheet_flops=dict(sheet.flops) if sheet else {},
        datasheet_bandwidth=sheet.bandwidth if sheet else None,
        datasheet_source=sheet.source if sheet else "no datasheet entry for this device: measured ceilings only",
        measured_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )


def load_or_measure(device: str, cache_dir: Path | None) -> tuple[Ceilings, bool]:
    """The cached ceilings for this machine and thread count, or measure and cache them; (ceilings, cached)."""
    import torch

    key = machine_key(device, torch.get_num_threads())
    path = cache_dir / f"{key}.json" if cache_dir else None
    if path is not None and path.is_file():
        try:
            return Ceilings(**json.loads(path.read_text(encoding="utf-8"))), True
        except (ValueError, TypeError):
            pass  # a damaged cache file is measured again
    ceilings = measure(device)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(ceilings), indent=2), encoding="utf-8")
        tmp.replace(path)
    return ceilings, False
