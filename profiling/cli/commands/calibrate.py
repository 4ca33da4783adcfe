"""``calibrate``: the machine's noise floor from an A/A run (N separate batches of the same settings)."""

from __future__ import annotations

import argparse
import sys

from tqdm import tqdm

from engines.errors import InputError
from profiling import api
from profiling.cli.commands.common import (
    add_engine_args,
    add_store_args,
    open_store,
    settings_from_args,
    text_from_args,
    voice_from_args,
)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "calibrate", help="A/A noise floor of this machine (separate batches of one setting), stored",
        description="Runs --batches separate batches of the same settings back to back and compares every pair. "
                    "compare then widens separate-batch intervals by the spread measured here.",
    )
    add_engine_args(parser)
    add_store_args(parser)
    parser.add_argument("--batches", type=int, default=8, help="separate batches (default 8, at least 4)")
    parser.add_argument("--repeats", type=int, default=5, help="measured runs per batch (default 5)")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up runs per batch")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.batches < 4 or args.repeats < 2:
        raise InputError("calibrate needs --batches 4 or more and --repeats 2 or more")
    store = open_store(args)
    with tqdm(total=args.batches, desc="A/A batches", unit="batch", file=sys.stderr, disable=args.no_progress,
              leave=False) as bar:
        floor = api.run_calibration(settings_from_args(args), text_from_args(args), voice=voice_from_args(args),
                                    batches=args.batches, repeats=args.repeats, warmup=args.warmup, store=store,
                                    progress=lambda done, _t: bar.update(1))
    print(f"machine: {floor.machine}")
    print(f"{floor.batches} batches x {floor.runs_per_batch} runs of {floor.label}: median RTF {floor.median_rtf:.4f};"
          f" batch medians " + ", ".join(f"{m:.4f}" for m in floor.batch_medians))
    print(f"batch-to-batch spread beyond within-batch noise: ±{floor.between_pct:.1f}% (1 SD)")
    print(f"A/A pairs flagged at 95%: {floor.false_positive_within:.0%} with the within-batch interval, "
          f"{floor.false_positive_widened:.0%} widened (of {floor.pairs} pairs; nominal 5%)")
    print(f"stored as this machine's noise floor in {store.db_path}")
    return 0
