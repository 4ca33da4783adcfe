"""The engine interface: capabilities as data, settings, audio, and the Engine ABC.

Everything the dashboard and CLI show about an engine comes from its
``Capabilities``: which devices and precisions it runs, whether it streams or
clones voices, and each knob with type, default and range. Nothing downstream
branches on an engine's name.
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from enum import Enum
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np

from engines.errors import InputError
from engines.hooks import NULL_HOOK, StageHook

KnobValue = int | float | bool | str

#: Every precision name the lab knows. Engines declare the subset they run.
KNOWN_PRECISIONS: tuple[str, ...] = ("fp32", "fp16", "bf16", "int8")

DEFAULT_MAX_TEXT_CHARS = 5000


class KnobKind(str, Enum):
    INT = "int"
    FLOAT = "float"
    BOOL = "bool"
    CHOICE = "choice"
    TEXT = "text"
    DIRECTORY = "directory"


class KnobPhase(str, Enum):
    """When a knob takes effect: at load (changing it means a reload) or per call."""

    LOAD = "load"
    SYNTHESIS = "synthesis"


@dataclass(frozen=True)
class KnobSpec:
    name: str
    kind: KnobKind
    default: KnobValue
    help: str
    phase: KnobPhase = KnobPhase.SYNTHESIS
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] = ()
    step: float | None = None

    def coerce(self, value: object) -> KnobValue:
        """Return ``value`` converted to this knob's type, or raise InputError."""
        try:
            coerced = self._convert(value)
        except (TypeError, ValueError):
            raise InputError(
                f"knob '{self.name}' expects {self.kind.value}, got {value!r}"
            ) from None
        if self.kind in (KnobKind.INT, KnobKind.FLOAT):
            assert isinstance(coerced, (int, float))
            if isinstance(coerced, float) and not math.isfinite(coerced):
                raise InputError(f"knob '{self.name}' must be a finite number, got {value!r}")
            if self.minimum is not None and coerced < self.minimum:
                raise InputError(
                    f"knob '{self.name}'={coerced} is below its minimum {self.minimum:g}"
                )
            if self.maximum is not None and coerced > self.maximum:
                raise InputError(
                    f"knob '{self.name}'={coerced} is above its maximum {self.maximum:g}"
                )
        if self.kind is KnobKind.CHOICE and coerced not in self.choices:
            raise InputError(
                f"knob '{self.name}'={coerced!r} is not one of {', '.join(self.choices)}"
            )
        return coerced

    def _convert(self, value: object) -> KnobValue:
        if self.kind is KnobKind.BOOL:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in ("1", "true", "yes", "on"):
                return True
            if isinstance(value, str) and value.lower() in ("0", "false", "no", "off"):
                return False
            if isinstance(value, (int, float)) and value in (0, 1):
                return bool(value)
            raise ValueError(value)
        if self.kind is KnobKind.INT:
            if isinstance(value, bool):
                raise TypeError(value)
            number = float(value)  # type: ignore[arg-type]
            if not number.is_integer():
                raise ValueError(value)
            return int(number)
        if self.kind is KnobKind.FLOAT:
            if isinstance(value, bool):
                raise TypeError(value)
            return float(value)  # type: ignore[arg-type]
        if not isinstance(value, str):
            raise TypeError(value)
        return value


@dataclass(frozen=True)
class Refusal:
    """A device/precision combination the engine declines, with the reason shown to users.

    ``None`` in a field matches anything, so ``Refusal("...", precision="fp16",
    device="cpu")`` refuses fp16 on the CPU only.
    """

    reason: str
    precision: str | None = None
    device: str | None = None
    #: Refuse only on a device whose compute capability is below this (e.g. (8, 0) for bf16);
    #: an unknown capability (no such device here) does not match.
    below_capability: tuple[int, int] | None = None

    def matches(self, device_kind: str, precision: str, capability: tuple[int, int] | None = None) -> bool:
        if self.below_capability is not None and (capability is None or capability >= self.below_capability):
            return False
        return (self.precision in (None, precision)) and (self.device in (None, device_kind))


@dataclass(frozen=True)
class KnobRefusal:
    """A knob value refused on a device kind, with the reason shown to users."""

    knob: str
    value: str
    device: str
    reason: str

    def matches(self, device_kind: str, knobs: Mapping[str, KnobValue]) -> bool:
        return device_kind == self.device and str(knobs.get(self.knob, "")) == self.value


@dataclass(frozen=True)
class Capabilities:
    devices: tuple[str, ...]
    precisions: tuple[str, ...]
    streaming: bool
    voice_cloning: bool
    knobs: tuple[KnobSpec, ...] = ()
    refusals: tuple[Refusal, ...] = ()
    #: Knob values refused on a device kind (checked with the settings, before any load).
    knob_refusals: tuple[KnobRefusal, ...] = ()
    #: Why precisions the lab knows but this engine lacks are missing (shown in the UI).
    precision_note: str = ""
    sample_rate: int | None = None
    #: What runs the model ("torch", "onnxruntime"): torch on CUDA queues kernels, so its stage
    #: edges must wait for the device; ONNX Runtime's calls return when the work is done.
    framework: str = ""
    #: Named speakers the engine offers (``Voice.speaker``): a server lists them as its voices.
    speakers: tuple[str, ...] = ()

    def knob(self, name: str) -> KnobSpec:
        for spec in self.knobs:
            if spec.name == name:
                return spec
        raise InputError(f"unknown knob '{name}' (known: {', '.join(self.knob_names()) or 'none'})")

    def knob_names(self) -> tuple[str, ...]:
        return tuple(spec.name for spec in self.knobs)

    def default_knobs(self) -> dict[str, KnobValue]:
        return {spec.name: spec.default for spec in self.knobs}

    def refusal(self, device_kind: str, precision: str, capability: tuple[int, int] | None = None) -> str | None:
        for refusal in self.refusals:
            if refusal.matches(device_kind, precision, capability):
                return refusal.reason
        return None

    def knob_refusal(self, device_kind: str, knobs: Mapping[str, KnobValue]) -> str | None:
        for refusal in self.knob_refusals:
            if refusal.matches(device_kind, knobs):
                return f"{refusal.knob}={refusal.value} on {device_kind} is refused: {refusal.reason}"
        return None

    def unsupported_precisions(self) -> dict[str, str]:
        """Precisions the lab knows but this engine does not run, with the reason."""
        reason = self.precision_note or "not supported by this engine"
        return {p: reason for p in KNOWN_PRECISIONS if p not in self.precisions}


T = TypeVar("T")


def read_knobs(cls: type[T], capabilities: Capabilities, knobs: Mapping[str, KnobValue]) -> T:
    """Build the frozen dataclass ``cls`` from knobs: one field per knob of the same name, each value
    coerced by the engine's KnobSpec (default from the declaration when missing)."""
    declared = set(capabilities.knob_names())
    values: dict[str, Any] = {}
    for item in dataclasses.fields(cls):  # type: ignore[arg-type]
        if item.name not in declared and item.default is not dataclasses.MISSING:
            continue  # a knob declared only where its package exists (use_deepspeed): the field's default
        spec = capabilities.knob(item.name)
        values[item.name] = spec.coerce(knobs.get(item.name, spec.default))
    return cls(**values)


@dataclass(frozen=True)
class Voice:
    """Who speaks: a named speaker, or reference audio for cloning engines."""

    speaker: str | None = None
    reference_audio: Path | None = None
    reference_text: str | None = None

    @property
    def is_default(self) -> bool:
        return self.speaker is None and self.reference_audio is None


DEFAULT_VOICE = Voice()


@dataclass(frozen=True)
class SynthesisSettings:
    engine: str
    device: str = "cpu"
    precision: str = "fp32"
    knobs: Mapping[str, KnobValue] = field(default_factory=dict)
    seed: int = 0

    @property
    def device_kind(self) -> str:
        return self.device.split(":", 1)[0]

    def load_key(self, capabilities: Capabilities) -> tuple[object, ...]:
        """What identifies a loaded model: equal keys can share one loaded engine."""
        load_knobs = tuple(
            (spec.name, self.knobs.get(spec.name, spec.default))
            for spec in capabilities.knobs
            if spec.phase is KnobPhase.LOAD
        )
        return (self.engine, self.device, self.precision, load_knobs)

    def with_knobs(self, **changes: KnobValue) -> SynthesisSettings:
        return replace(self, knobs={**self.knobs, **changes})


@dataclass(frozen=True)
class Audio:
    """Float32 mono samples in [-1, 1] at ``sample_rate``."""

    samples: np.ndarray
    sample_rate: int

    def __post_init__(self) -> None:
        if self.samples.dtype != np.float32 or self.samples.ndim != 1:
            raise ValueError("Audio.samples must be a 1-D float32 array")

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.sample_rate

    def to_int16(self) -> np.ndarray:
        """PCM16 for players and Gradio (which rescales float input)."""
        return (np.clip(self.samples, -1.0, 1.0) * 32767.0).astype(np.int16)

    @staticmethod
    def concatenate(parts: list[Audio]) -> Audio:
        if not parts:
            raise ValueError("no audio to concatenate")
        rates = {part.sample_rate for part in parts}
        if len(rates) != 1:
            raise ValueError(f"mixed sample rates: {sorted(rates)}")
        return Audio(np.concatenate([p.samples for p in parts]).astype(np.float32), rates.pop())


@dataclass(frozen=True)
class AudioChunk:
    """One piece of a stream, with the text it speaks."""

    audio: Audio
    text: str
    index: int


class DeviceSupport:
    """Where a component (an engine or a post-synthesis stage) can run on this machine."""

    @classmethod
    def machine_devices(cls) -> tuple[str, ...]:
        """Devices usable on this machine (e.g. ``cpu``, ``cuda:0``)."""
        return ("cpu",)

    @classmethod
    def device_capability(cls, device: str) -> tuple[int, int] | None:
        """The compute capability of a CUDA ``device`` on this machine, or None (unknown, or not CUDA)."""
        return None


class Engine(DeviceSupport, ABC):
    """One TTS engine. ``load`` once, then ``synthesize``/``stream`` many times.

    Subclasses must not import their heavy packages (torch, coqui, onnxruntime)
    at module level: the registry imports engine modules to read capabilities.
    """

    name: ClassVar[str]
    capabilities: ClassVar[Capabilities]
    #: Dotted names of the functions line_profiler should look at first.
    hot_functions: ClassVar[tuple[str, ...]] = ()

    def __init__(self) -> None:
        self.settings: SynthesisSettings | None = None

    @classmethod
    def check_request(cls, settings: SynthesisSettings, voice: Voice) -> None:
        """Refuse, with the reason, what the declared capabilities cannot express.

        Called with resolved settings before any model loads or any run is stored
        (e.g. a knob combination that fails on this device, or a missing voice).
        Raise InputError; the default accepts everything.
        """
        return None

    @property
    def random_weights(self) -> bool:
        """True when the loaded model has random weights: its audio is noise."""
        return False

    @property
    def sample_rate(self) -> int:
        if self.capabilities.sample_rate is None:
            raise NotImplementedError
        return self.capabilities.sample_rate

    @abstractmethod
    def load(self, settings: SynthesisSettings, hook: StageHook = NULL_HOOK) -> None:
        """Build or load the model for ``settings`` (device, precision, load knobs)."""

    @abstractmethod
    def synthesize(
        self, text: str, voice: Voice, settings: SynthesisSettings, hook: StageHook = NULL_HOOK
    ) -> Audio:
        """Synthesize the whole text and return one Audio."""

    def stream(
        self, text: str, voice: Voice, settings: SynthesisSettings, hook: StageHook = NULL_HOOK
    ) -> Iterator[AudioChunk]:
        """Yield audio chunks as they become ready."""
        raise InputError(f"engine '{self.name}' does not stream")

    def unload(self) -> None:
        """Drop the model (frees memory); ``load`` can be called again."""
        self.settings = None

    def describe_model(self) -> dict[str, str]:
        """Facts about the loaded model for the run record (weights, params, dtypes)."""
        return {}
