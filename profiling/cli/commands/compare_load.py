"""``compare-load``: two stored load tests side by side; ``compare-load --list`` lists every stored one.

Capacity is shown; TTFA p95 and C100 at each load both tests ran carry a bootstrap interval over the stored
requests and are called only when it excludes no difference; throughput is shown (docs/load_methodology.md).
"""

from __future__ import annotations

import argparse
import math

from engines.errors import InputError
from profiling import api
from profiling.analysis.report import format_table
from profiling.cli.commands.common import add_store_args, open_store


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare-load", help="compare two stored load tests (capacity, TTFA p95, throughput, C100); --list",
        description="BASELINE and CANDIDATE are load test ids (`compare-load --list` shows them). A difference "
                    "is called only where its 95%% bootstrap interval excludes none, and only at loads both ran.",
    )
    parser.add_argument("baseline", nargs="?", help="load test id")
    parser.add_argument("candidate", nargs="?", help="load test id")
    parser.add_argument("--list", action="store_true", help="list the stored load tests, newest first")
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    add_store_args(parser)
    parser.set_defaults(handler=run)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "—" if math.isnan(value) else f"{value:.4g}"
    return "" if value is None else str(value)


def run(args: argparse.Namespace) -> int:
    store = open_store(args)
    if args.list:
        frame = api.load_tests(store=store)
        if frame.empty:
            print(f"no load tests stored in {store.data_dir}")
            return 0
        print(format_table(list(frame.columns), [[_cell(v) for v in row] for row in frame.itertuples(index=False)]))
        return 0
    if not args.baseline or not args.candidate:
        raise InputError("give two load test ids (BASELINE CANDIDATE), or --list")
    comparison = api.compare_load(args.baseline, args.candidate, store=store, seed=args.seed)
    print(f"baseline:  {comparison.baseline.describe()}")
    print(f"candidate: {comparison.candidate.describe()}")
    table = comparison.table()
    print(format_table(list(table.columns), [[_cell(v) for v in row] for row in table.itertuples(index=False)],
                       right=(2, 3, 4)))
    print(comparison.describe())
    return 0
