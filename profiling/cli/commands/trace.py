"""``trace``: a stored run, batch, stream, profile, load test or sweep as a Chrome trace (Perfetto).

``--open`` then serves it in Perfetto's UI from the trace extra, on 127.0.0.1, until Ctrl-C: no network.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from engines.errors import InputError
from profiling.cli.commands.common import add_store_args, open_store
from profiling.trace import KINDS, resolve_kind, trace_for, write_trace
from profiling.trace.viewer import TraceViewer, perfetto_ui_dir

DEFAULT_PORT = 9001  # vizviewer's: a bookmark works with either


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "trace", help="export a stored measurement as Chrome trace JSON; --open shows it in Perfetto, offline",
        description="ID: a run id, a batch id, a load test id or a sweep name (sweep:NAME works too); "
                    "its kind is found from the store unless --kind says. With --open, ID may also be a "
                    "trace JSON file (any Chrome trace: a downloaded one, torch.profiler's). See docs/traces.md.",
    )
    parser.add_argument("id", help="run id, batch id, load test id or sweep name (or, with --open, a .json file)")
    parser.add_argument("-o", "--output", type=Path, default=None,
                        help="JSON file to write (default: trace-<ID>.json here)")
    parser.add_argument("--kind", choices=KINDS, default=None, help="what the id names (default: found)")
    parser.add_argument("--open", action="store_true",
                        help="serve it in Perfetto's UI on 127.0.0.1 (the trace extra) until Ctrl-C")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT,
                        help=f"with --open: the port (default {DEFAULT_PORT}; 0 takes a free one)")
    parser.add_argument("--once", action="store_true",
                        help="with --open: stop once Perfetto has loaded the trace (the page keeps it)")
    add_store_args(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.open:
        perfetto_ui_dir()  # before any work: without the trace extra, one line and exit 2
    given = Path(args.id)
    if args.open and given.suffix == ".json" and given.is_file():
        written = given
    else:
        written = _export(args)
    if args.open:
        _serve(written, args.port, args.once)
    return 0


def _export(args: argparse.Namespace) -> Path:
    store = open_store(args)
    kind = args.kind or resolve_kind(args.id, store)
    trace = trace_for(kind, args.id, store)
    target = args.output or Path(f"trace-{re.sub(r'[^A-Za-z0-9_.-]+', '_', args.id.strip())}.json")
    try:
        written = write_trace(trace, target)
    except OSError as error:
        raise InputError(f"cannot write {target}: {error.strerror or error}") from None
    timed = sum(1 for e in trace["traceEvents"] if e["ph"] != "M")
    hint = "" if args.open else "; `--open` shows it in Perfetto here, offline (or open it at ui.perfetto.dev)"
    print(f"{written}: {kind} trace, {timed} events{hint}", flush=True)
    return Path(written)


def _has_display() -> bool:
    """A browser can be opened without taking over this terminal (a text-mode browser would)."""
    return sys.platform in ("darwin", "win32") or bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def _serve(path: Path, port: int, once: bool) -> None:
    viewer = TraceViewer(path, port=port)
    try:
        viewer.start()
        stops = "stops once the page has loaded it" if once else "Ctrl-C stops it"
        print(f"Perfetto, offline: {viewer.url}  shows {path} (127.0.0.1 only; {stops})", flush=True)
        if _has_display():
            import webbrowser

            webbrowser.open(viewer.url)
        viewer.serve(once=once)
    except KeyboardInterrupt:
        viewer.stop()
        print("viewer stopped", file=sys.stderr)
