"""``engines``: what is registered, what can run here, and each engine's knobs."""

from __future__ import annotations

import argparse

from engines.base import Capabilities
from engines.convert.registry import CONVERTERS, converter_class
from engines.registry import engine_class, list_engines, missing_packages
from profiling.analysis.report import format_table


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("engines", help="list engines, availability and knobs")
    parser.add_argument("--knobs", action="store_true", help="also list each available engine's knobs")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    statuses = list_engines()
    rows = [(s.name, "yes" if s.available else "no", s.reason or s.entry.description) for s in statuses]
    print(format_table(("engine", "available", "notes"), rows))
    stages = [(e.name, "no" if (m := missing_packages(e)) else "yes",
               f"missing {', '.join(m)}: {e.install_hint}" if m else e.description) for e in CONVERTERS]
    print("\n" + format_table(("post-synthesis stage (--convert)", "available", "notes"), stages))
    if args.knobs:
        for status in statuses:
            if status.available:
                caps = engine_class(status.name).capabilities
                print(f"\n{status.name}: devices {', '.join(caps.devices)}; precisions {', '.join(caps.precisions)}; "
                      f"streaming {caps.streaming}; cloning {caps.voice_cloning}")
                print(knob_table(caps))
        for name, available, _ in stages:
            if available == "yes":
                cls = converter_class(name)
                print(f"\n{name} (--convert {name}, --convert-knob): devices {', '.join(cls.capabilities.devices)}; "
                      f"precisions {', '.join(cls.capabilities.precisions)}")
                print(knob_table(cls.capabilities, cls.unavailable_options()))
    return 0


def knob_table(caps: Capabilities, unavailable: dict[str, dict[str, str]] | None = None) -> str:
    rows = []
    for k in caps.knobs:
        off = (unavailable or {}).get(k.name, {})
        note = f" (not installed here: {', '.join(off)})" if off else ""
        rows.append((k.name, k.kind.value, str(k.default), _range(k.minimum, k.maximum, k.choices), k.help + note))
    return format_table(("knob", "type", "default", "range", "help"), rows)


def _range(minimum: float | None, maximum: float | None, choices: tuple[str, ...]) -> str:
    if choices:
        return "|".join(choices)
    if minimum is None and maximum is None:
        return ""
    return f"{'' if minimum is None else f'{minimum:g}'}..{'' if maximum is None else f'{maximum:g}'}"
