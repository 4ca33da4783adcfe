"""``engines``: what is registered, what can run here, and each engine's knobs."""

from __future__ import annotations

import argparse

from engines.registry import engine_class, list_engines
from profiling.analysis.report import format_table


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("engines", help="list engines, availability and knobs")
    parser.add_argument("--knobs", action="store_true", help="also list each available engine's knobs")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    statuses = list_engines()
    rows = [(s.name, "yes" if s.available else "no", s.reason or s.entry.description) for s in statuses]
    print(format_table(("engine", "available", "notes"), rows))
    if args.knobs:
        for status in statuses:
            if not status.available:
                continue
            caps = engine_class(status.name).capabilities
            print(
                f"\n{status.name}: devices {', '.join(caps.devices)}; precisions "
                f"{', '.join(caps.precisions)}; streaming {caps.streaming}; cloning {caps.voice_cloning}"
            )
            knob_rows = [
                (k.name, k.kind.value, str(k.default), _range(k.minimum, k.maximum, k.choices), k.help)
                for k in caps.knobs
            ]
            print(format_table(("knob", "type", "default", "range", "help"), knob_rows))
    return 0


def _range(minimum: float | None, maximum: float | None, choices: tuple[str, ...]) -> str:
    if choices:
        return "|".join(choices)
    if minimum is None and maximum is None:
        return ""
    return f"{'' if minimum is None else f'{minimum:g}'}..{'' if maximum is None else f'{maximum:g}'}"
