"""``profile``: repeat a run under cProfile, line_profiler, py-spy, torch.profiler and memory tracking."""

from __future__ import annotations

import argparse
import sys

from profiling import api
from profiling.analysis.report import format_table
from profiling.cli.commands.common import (
    add_engine_args,
    add_store_args,
    engine_kwargs,
    open_store,
    text_from_args,
)
from profiling.core.records import RunMode
from profiling.profilers import PROFILER_NAMES
from profiling.profilers.common import ProfilerResult, ProfilerStatus
from profiling.profilers.session import ProfileRequest, validate_profile_request

#: Rows printed per table (the files hold ``--top`` rows).
PRINTED_ROWS = 10
CELL_CHARS = 70


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "profile", help="run under profilers (cProfile, line_profiler, py-spy, torch.profiler, memory)"
    )
    add_engine_args(parser)
    add_store_args(parser)
    parser.add_argument(
        "--with", dest="profilers", default="all", metavar="LIST",
        help=f"comma-separated profilers: {','.join(PROFILER_NAMES)} or all (default; skips what cannot run)",
    )
    parser.add_argument("--repeats", type=int, default=3, help="profiled runs per profiler, each paired "
                        "with a plain run for the overhead figure (default 3)")
    parser.add_argument("--warmup", type=int, default=1, help="plain warm-up runs first (default 1)")
    parser.add_argument("--mode", choices=[m.value for m in RunMode], default=RunMode.BATCH.value)
    parser.add_argument("--top", type=int, default=25, help="rows kept in each table (default 25)")
    parser.add_argument("--line-func", action="append", default=[], metavar="DOTTED.NAME",
                        help="also line-profile this function (repeatable), e.g. piper.voice.PiperVoice.phonemize")
    parser.add_argument("--pyspy-rate", type=int, default=200, help="py-spy samples per second (default 200)")
    parser.add_argument("--pyspy-native", action="store_true", help="py-spy: include native (C/C++) frames")
    parser.add_argument("--pyspy-prefix", default="", metavar="CMD",
                        help="command in front of py-spy where ptrace needs privileges, e.g. 'sudo -n'")
    parser.add_argument("--torch-memory", action="store_true", help="torch.profiler: also profile memory")
    parser.add_argument("--leak-runs", type=int, default=6, help="memory: runs for the growth check (default 6)")
    parser.add_argument("--no-tracemalloc", action="store_true", help="memory: skip Python allocation sites")
    parser.add_argument("--label", default="", help="free text stored with the runs")
    parser.set_defaults(handler=run)


def request_from_args(args: argparse.Namespace) -> ProfileRequest:
    return api.profile_request(
        args.engine, text_from_args(args), profilers=args.profilers, mode=args.mode, repeats=args.repeats,
        warmup=args.warmup, top=args.top, line_functions=tuple(args.line_func), pyspy_rate=args.pyspy_rate,
        pyspy_native=args.pyspy_native, pyspy_prefix=args.pyspy_prefix, torch_memory=args.torch_memory,
        leak_runs=args.leak_runs, tracemalloc=not args.no_tracemalloc, label=args.label, **engine_kwargs(args),
    )


def run(args: argparse.Namespace) -> int:
    request = request_from_args(args)
    validate_profile_request(request)  # before loading anything, so bad input is one line and exit 2
    store = open_store(args)
    run = api.run_profile_request(request, store=store, progress=lambda msg: print(f"... {msg}", file=sys.stderr))
    report = run.report
    if report.error:
        print(f"error: synthesis failed: {report.error}", file=sys.stderr)
        return 1
    for result in report.results:
        print_result(result)
    failed = [r for r in report.results if r.status is ProfilerStatus.FAILED]
    print(f"\nruns and artifacts stored in {store.db_path}")
    return 1 if failed and len(failed) == len(report.results) else 0


def _cell(value: object) -> str:
    text = f"{value:.3f}" if isinstance(value, float) else str(value)
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 2] + ".."


def print_result(result: ProfilerResult) -> None:
    print(f"\n=== {result.profiler}: {result.status.value} - {result.message}")
    if result.overhead is not None:
        print(f"    {result.overhead.describe()}")
    for spot in result.hot_spots:
        print(f"    hot: {spot}")
    for note in result.notes:
        print(f"    note: {note}")
    for table in result.tables:
        frame = table.frame.head(PRINTED_ROWS)
        print(f"\n  {table.title}")
        if frame.empty:
            print("  (empty)")
            continue
        rows = [[_cell(v) for v in row] for row in frame.itertuples(index=False)]
        numeric = [i for i, dtype in enumerate(frame.dtypes) if dtype.kind in "if"]
        print(format_table([str(c) for c in frame.columns], rows, right=numeric))
    if result.artifacts:
        print(f"\n  files (run {result.run_id}):")
        for artifact in result.artifacts:
            print(f"    {artifact.kind}: {artifact.path}")
