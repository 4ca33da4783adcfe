"""``trace``: a stored run, batch, stream, profile, load test or sweep as a Chrome trace (Perfetto)."""

from __future__ import annotations

import argparse
import re
from pathlib import Path

from engines.errors import InputError
from profiling.cli.commands.common import add_store_args, open_store
from profiling.trace import KINDS, resolve_kind, trace_for, write_trace


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "trace", help="export a stored measurement as Chrome trace JSON (ui.perfetto.dev, chrome://tracing)",
        description="ID: a run id, a batch id, a load test id or a sweep name (sweep:NAME works too); "
                    "its kind is found from the store unless --kind says. See docs/traces.md.",
    )
    parser.add_argument("id", help="run id, batch id, load test id or sweep name")
    parser.add_argument("-o", "--output", type=Path, default=None,
                        help="JSON file to write (default: trace-<ID>.json here)")
    parser.add_argument("--kind", choices=KINDS, default=None, help="what the id names (default: found)")
    add_store_args(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    store = open_store(args)
    kind = args.kind or resolve_kind(args.id, store)
    trace = trace_for(kind, args.id, store)
    target = args.output or Path(f"trace-{re.sub(r'[^A-Za-z0-9_.-]+', '_', args.id.strip())}.json")
    try:
        written = write_trace(trace, target)
    except OSError as error:
        raise InputError(f"cannot write {target}: {error.strerror or error}") from None
    events = trace["traceEvents"]
    timed = sum(1 for e in events if e["ph"] != "M")
    print(f"{written}: {kind} trace, {timed} events; open it at https://ui.perfetto.dev or chrome://tracing")
    return 0
