"""GPU utilisation and memory over a run through NVML (``nvidia-ml-py``, the ``gpu`` extra).

No sampler thread: the driver keeps its own utilisation samples (about six a
second) and ``nvmlDeviceGetSamples`` returns those newer than a timestamp, so
the run is read once, after its clock stopped. Nothing reaches the recorded
synthesis time. Missing package, no driver or no device: skipped, with the reason.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache
from types import TracebackType
from typing import Any

MIB = 2**20


@dataclass(frozen=True)
class GpuUsage:
    util_mean_pct: float | None = None
    util_max_pct: float | None = None
    memory_used_mb: float | None = None
    #: "nvml (N samples)", or why nothing was read.
    note: str = ""


@lru_cache(maxsize=1)
def _nvml() -> tuple[Any, str]:
    """(the initialised pynvml module, "") or (None, why not). Initialised once per process."""
    try:
        import pynvml
    except ImportError:
        return None, "skipped: nvidia-ml-py not installed (pip install 'ttsperf[gpu]')"
    try:
        pynvml.nvmlInit()
    except Exception as error:  # NVMLError subclasses: no driver, no library, no permission
        return None, f"skipped: NVML unavailable ({error})"
    return pynvml, ""


def driver_version() -> str:
    nvml, _ = _nvml()
    if nvml is None:
        return ""
    try:
        version = nvml.nvmlSystemGetDriverVersion()
    except Exception:
        return ""
    return version.decode() if isinstance(version, bytes) else str(version)


def _handle(nvml: Any, uuid: str, physical: str) -> Any:
    if uuid:
        name = uuid if uuid.startswith(("GPU-", "MIG-")) else f"GPU-{uuid}"
        return nvml.nvmlDeviceGetHandleByUUID(name)
    return nvml.nvmlDeviceGetHandleByIndex(int(physical))


def summarise_samples(values: list[float], memory_used_mb: float | None) -> GpuUsage:
    if not values:
        return GpuUsage(memory_used_mb=memory_used_mb, note="nvml (0 samples: run shorter than the driver's period)")
    return GpuUsage(
        util_mean_pct=sum(values) / len(values), util_max_pct=max(values), memory_used_mb=memory_used_mb,
        note=f"nvml ({len(values)} samples)",
    )


class GpuUsageReader:
    """``with GpuUsageReader(uuid, physical) as reader: ...`` then ``reader.usage``.

    ``uuid``/``physical`` name the run's device as NVML numbers it (CUDA_VISIBLE_DEVICES
    applied); empty uuid and physical mean "not a CUDA run": skipped.
    """

    def __init__(self, uuid: str = "", physical: str = "") -> None:
        self._uuid = uuid
        self._physical = physical
        self._since_us = 0
        self.usage = GpuUsage(note="skipped: not a CUDA run")

    def __enter__(self) -> GpuUsageReader:
        self._since_us = int(time.time() * 1e6)
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if not self._uuid and not self._physical:
            return
        self.usage = self.read()

    def read(self) -> GpuUsage:
        nvml, reason = _nvml()
        if nvml is None:
            return GpuUsage(note=reason)
        try:
            handle = _handle(nvml, self._uuid, self._physical)
            memory = nvml.nvmlDeviceGetMemoryInfo(handle).used / MIB
        except Exception as error:
            return GpuUsage(note=f"skipped: NVML could not read the device ({error})")
        try:
            _, samples = nvml.nvmlDeviceGetSamples(handle, nvml.NVML_GPU_UTILIZATION_SAMPLES, self._since_us)
        except Exception:
            # Some devices keep no sample buffer: the utilisation of the driver's last period instead.
            try:
                rate = float(nvml.nvmlDeviceGetUtilizationRates(handle).gpu)
            except Exception as error:
                return GpuUsage(memory_used_mb=memory, note=f"nvml: no utilisation ({error})")
            return GpuUsage(rate, rate, memory, "nvml (last period only)")
        values = [float(s.sampleValue.uiVal) for s in samples if s.timeStamp > self._since_us]
        return summarise_samples(values, memory)
