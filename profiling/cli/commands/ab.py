"""``ab``: settle "is B faster" with two settings run alternately in one process and paired ratios.

Shared settings come from the usual engine arguments; ``--a``/``--b`` override knobs (or
``precision``/``device``) for one side. Identical sides make an A/A check: its interval should cover 1.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace

from tqdm import tqdm

from engines.base import SynthesisSettings
from profiling.analysis.report import format_table
from profiling.cli.commands.common import (
    add_engine_args,
    add_store_args,
    open_store,
    settings_from_args,
    text_from_args,
    voice_from_args,
)
from profiling.core.records import RunRecord, RunStatus
from profiling.run.ab import AbRequest, run_ab, validate_ab
from profiling.run.inputs import parse_knobs


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ab", help="A/B: two settings interleaved in one process, paired ratios with 95%% CI (stored)",
        description="Runs A and B alternately (A B, B A, ...) on the same text and reports candidate B / "
                    "baseline A pair by pair. Example: ab --knob deterministic=true --a length_scale=1.0 "
                    "--b length_scale=2.0",
    )
    add_engine_args(parser)
    add_store_args(parser)
    parser.add_argument("--a", action="append", default=[], metavar="NAME=VALUE",
                        help="side A (baseline) knob, or precision=/device= (repeatable)")
    parser.add_argument("--b", action="append", default=[], metavar="NAME=VALUE",
                        help="side B (candidate) knob, or precision=/device= (repeatable)")
    parser.add_argument("--pairs", type=int, default=10, help="measured pairs (default 10)")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up runs per side, stored but flagged")
    parser.add_argument("--name", default="", help="stored labels are NAME:A and NAME:B (default ab-<batch>)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def side_settings(base: SynthesisSettings, overrides: list[str]) -> SynthesisSettings:
    knobs = parse_knobs(overrides)
    device = knobs.pop("device", base.device)
    precision = knobs.pop("precision", base.precision)
    return replace(base, device=str(device), precision=str(precision), knobs={**base.knobs, **knobs})


def run(args: argparse.Namespace) -> int:
    base = settings_from_args(args)
    request = AbRequest(
        a=side_settings(base, args.a), b=side_settings(base, args.b), text=text_from_args(args),
        voice=voice_from_args(args), pairs=args.pairs, warmup=args.warmup, max_chars=args.max_chars, name=args.name,
    )
    validate_ab(request)  # before the progress bar, so bad input prints one line
    store = open_store(args)
    total = 2 * (request.warmup + request.pairs)
    with tqdm(total=total, desc="A/B", unit="run", file=sys.stderr, disable=args.no_progress, leave=False) as bar:
        def progress(_done: int, _total: int, record: RunRecord) -> None:
            bar.set_postfix_str(f"{record.annotations.get('ab_side')} rtf={record.rtf:.3f}")
            bar.update(1)

        result = run_ab(request, store, progress)
    failed = [r for r in result.records if r.status is RunStatus.ERROR]
    if failed:
        print(f"error: synthesis failed: {failed[0].error}", file=sys.stderr)
        return 1
    print(f"A: {request.a.engine} {request.a.precision} {dict(request.a.knobs)}")
    print(f"B: {request.b.engine} {request.b.precision} {dict(request.b.knobs)}")
    loaded = "both models loaded" if result.both_loaded else "one model at a time (reloaded at each switch)"
    print(f"order: {result.order} ({loaded})")
    rows = [(r.metric, f"{r.baseline_median:.4f}", f"{r.candidate_median:.4f}", f"{r.ratio:.3f}",
             f"{r.ci_low:.3f}..{r.ci_high:.3f}", f"±{r.detectable:.1%}", r.verdict) for r in result.ratios]
    print(format_table(("metric", "A median", "B median", "B/A (pairs)", "95% CI", "detectable", "verdict"), rows,
                       right=(1, 2, 3, 4, 5)))
    print(f"stored {len(result.records)} runs (batch {result.batch_id}) in {store.db_path}; "
          f"compare --baseline {result.name}:A --candidate {result.name}:B")
    return 0
