"""The converter registry: lazy like the engine registry (listing converters imports no torch)."""

from __future__ import annotations

import difflib
import importlib
from functools import cache

from engines.base import Capabilities
from engines.convert.base import Converter
from engines.errors import EngineUnavailable, InputError
from engines.registry import EngineEntry, missing_packages

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
    for entry in CONVERTERS:
        if entry.name == name:
            return entry
    close = difflib.get_close_matches(name, converter_names(), n=2, cutoff=0.6)
    hint = f"did you mean {' or '.join(repr(c) for c in close)}? " if close else ""
    raise InputError(f"unknown converter '{name}' ({hint}known: {', '.join(converter_names())})")


def available_converters() -> list[str]:
    return [entry.name for entry in CONVERTERS if not missing_packages(entry)]


@cache
def converter_class(name: str) -> type[Converter]:
    entry = get_converter_entry(name)
    missing = missing_packages(entry)
    if missing:
        raise EngineUnavailable(
            f"converter '{name}' is not installed (missing {', '.join(missing)}): {entry.install_hint}"
        )
    cls = getattr(importlib.import_module(entry.module), entry.class_name)
    assert issubclass(cls, Converter) and cls.name == name
    return cls


def converter_capabilities(name: str) -> Capabilities:
    return converter_class(name).capabilities


def create_converter(name: str) -> Converter:
    return converter_class(name)()
