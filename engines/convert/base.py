"""The post-synthesis stage interface: one shape for every converter, capabilities as data.

A converter takes any engine's audio and returns audio (voice conversion such as RVC). It declares its
devices, precisions and knobs with the same ``Capabilities`` engines use, so the CLI, the dashboard and
sweeps build its controls and validate its settings with the code they already use for engines. Its
settings are a ``SynthesisSettings`` whose ``engine`` field names the converter.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

from engines.base import Audio, Capabilities, DeviceSupport, SynthesisSettings
from engines.hooks import NULL_HOOK, StageHook

#: A converter's settings: device, precision, knobs (and ``engine`` = the converter's name).
ConversionSettings = SynthesisSettings


class Converter(DeviceSupport, ABC):
    """One post-synthesis stage. ``load`` once, then ``convert`` many times (whole audio or chunk by chunk).

    Like engines, subclasses keep heavy imports (torch, faiss) inside methods: the registry imports the
    module to read ``capabilities``.
    """

    name: ClassVar[str]
    capabilities: ClassVar[Capabilities]

    def __init__(self) -> None:
        self.settings: ConversionSettings | None = None

    @classmethod
    def unavailable_options(cls) -> dict[str, dict[str, str]]:
        """Knob values declared but not usable here, with the reason: {knob: {value: reason}}.

        Choices whose package is not installed (an F0 method) stay listed so users see why they are off.
        """
        return {}

    @classmethod
    def check_request(cls, settings: ConversionSettings) -> None:
        """Refuse, before any load or stored run, what the knobs cannot express (raise InputError)."""
        return None

    @property
    def random_weights(self) -> bool:
        return False

    @abstractmethod
    def load(self, settings: ConversionSettings, hook: StageHook = NULL_HOOK) -> None:
        """Build or load the models for ``settings`` (its load-phase knobs)."""

    @abstractmethod
    def convert(self, audio: Audio, settings: ConversionSettings, hook: StageHook = NULL_HOOK) -> Audio:
        """Convert ``audio`` (any sample rate); the result's rate is the converter's."""

    @abstractmethod
    def output_sample_rate(self, settings: ConversionSettings) -> int:
        """The rate of what ``convert`` returns for ``settings`` (after load): a server announces it up front."""

    def unload(self) -> None:
        self.settings = None

    def describe_model(self) -> dict[str, str]:
        return {}
