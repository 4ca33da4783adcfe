"""The converter registry: lazy like the engine registry (listing converters imports no torch)."""

from __future__ import annotations

from functools import cache

from engines.base import Capabilities
from engines.convert.base import Converter
from engines.registry import EngineEntry, find_entry, load_class, missing_packages

#: Entries shaped like the engines' (module, class, the packages it needs, the install hint).
CONVERTERS: tuple[EngineEntry, ...] = (
    EngineEntry(
        name="rvc",
        title="RVC v2 voice conversion",
        module="engines.convert.rvc.converter",
        class_name="RvcConverter",
        # faiss (an index) and each F0 method's package are checked where they are used: the stage runs without.
        requires=("rvc_next", "torch", "transformers", "librosa"),
        install_hint="pip install -e .[rvc]",
        description="HuBERT content features + F0 + optional faiss retrieval + the v2 synthesizer (40/48 kHz).",
    ),
)


def converter_names() -> tuple[str, ...]:
    return tuple(entry.name for entry in CONVERTERS)


def get_converter_entry(name: str) -> EngineEntry:
    return find_entry("converter", name, CONVERTERS)


def available_converters() -> list[str]:
    return [entry.name for entry in CONVERTERS if not missing_packages(entry)]


@cache
def converter_class(name: str) -> type[Converter]:
    """The converter class for ``name``; raises EngineUnavailable with the install hint."""
    return load_class("converter", get_converter_entry(name), Converter)


def converter_capabilities(name: str) -> Capabilities:
    return converter_class(name).capabilities


def create_converter(name: str) -> Converter:
    return converter_class(name)()
