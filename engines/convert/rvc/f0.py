"""Pitch (F0) estimation for RVC: which methods can run here, and one provider per method.

Each method returns Hz per 10 ms frame of 16 kHz audio (0 = unvoiced), ``p_len`` frames long.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

SAMPLE_RATE = 16_000
HOP = 160
F0_MIN, F0_MAX = 50.0, 1100.0


@dataclass(frozen=True)
class F0MethodInfo:
    name: str
    package: str
    cost: str  # "cheap" or "accurate"
    install: str


F0_METHOD_INFO: dict[str, F0MethodInfo] = {
    "pm": F0MethodInfo("pm", "parselmouth", "cheap", "pip install praat-parselmouth (the rvc extra has it)"),
    "harvest": F0MethodInfo("harvest", "pyworld", "cheap",
                            "pip install pyworld (PyPI has only its source: it needs a C++ compiler)"),
    "rmvpe": F0MethodInfo("rmvpe", "torch", "accurate", "pip install -e .[rvc]"),
    "crepe": F0MethodInfo("crepe", "torchcrepe", "accurate", "pip install torchcrepe (it ships its weights)"),
}


def unavailable_methods() -> dict[str, str]:
    """F0 methods whose package is not installed here, with the reason and the fix."""
    missing = {}
    for info in F0_METHOD_INFO.values():
        if importlib.util.find_spec(info.package) is None:
            missing[info.name] = f"f0_method={info.name} needs {info.package}, which is not installed: {info.install}"
    return missing


class F0Provider(Protocol):
    def compute(self, x: np.ndarray, p_len: int) -> np.ndarray: ...


def _fit(f0: np.ndarray, p_len: int) -> np.ndarray:
    """Pad (centred) or cut to ``p_len`` frames."""
    if len(f0) >= p_len:
        return f0[:p_len]
    before = (p_len - len(f0) + 1) // 2
    return np.pad(f0, (before, p_len - len(f0) - before))


class PmProvider:
    def compute(self, x: np.ndarray, p_len: int) -> np.ndarray:
        from rvc_next.engine.f0.pm import PmProvider as RvcPm

        return _fit(RvcPm().compute(x, p_len), p_len)


@dataclass
class HarvestProvider:
    filter_radius: int

    def compute(self, x: np.ndarray, p_len: int) -> np.ndarray:
        import pyworld
        from scipy import signal

        audio = x.astype(np.double)
        f0, times = pyworld.harvest(audio, fs=SAMPLE_RATE, f0_ceil=F0_MAX, f0_floor=F0_MIN, frame_period=10)
        f0 = pyworld.stonemask(audio, f0, times, SAMPLE_RATE)
        if self.filter_radius > 2:  # the original smooths harvest's octave jumps this way
            f0 = signal.medfilt(f0, 3)
        return _fit(f0, p_len)


@dataclass
class RmvpeProvider:
    model: Any

    def compute(self, x: np.ndarray, p_len: int) -> np.ndarray:
        return _fit(self.model.infer_from_audio(x, thred=0.03), p_len)


@dataclass
class CrepeProvider:
    device: str

    def compute(self, x: np.ndarray, p_len: int) -> np.ndarray:
        import torch
        import torchcrepe

        audio = torch.tensor(np.copy(x))[None].float()
        f0, periodicity = torchcrepe.predict(audio, SAMPLE_RATE, HOP, F0_MIN, F0_MAX, "full", batch_size=512,
                                             device=self.device, return_periodicity=True)
        periodicity = torchcrepe.filter.median(periodicity, 3)
        f0 = torchcrepe.filter.mean(f0, 3)
        f0[periodicity < 0.1] = 0
        return _fit(f0[0].cpu().numpy(), p_len)


def pitch_track(f0: np.ndarray, semitones: int) -> tuple[np.ndarray, np.ndarray]:
    """Shifted Hz and the 1..255 coarse bins the synthesizer's pitch embedding reads (unvoiced frames: bin 1)."""
    from rvc_next.engine.f0.base import to_coarse

    hz = f0.astype(np.float64) * pow(2, semitones / 12)
    return hz, to_coarse(hz.copy())
