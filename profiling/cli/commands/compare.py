"""``compare``: candidate against baseline as ratios with 95% intervals; optional regression gate.

Selectors (``--baseline`` / ``--candidate``), tried in order: ``sweep:NAME/CONFIG``
(CONFIG = configuration key, key prefix or label; see ``sweep --dry-run``), a batch
id or a unique prefix of one (``bench`` prints it), or a run label (``bench --label``).
"""

from __future__ import annotations

import argparse

from engines.errors import InputError
from profiling.analysis.compare import (
    compare_selections,
    environment_note,
    gate,
    measured_runs,
    parse_threshold,
    select_runs,
)
from profiling.analysis.report import format_table
from profiling.cli.commands.common import add_store_args, open_store

EXIT_REGRESSION = 1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "compare", help="candidate vs baseline: ratios with 95%% CI; --max-regression gates (exit 1)",
        description="Selectors, tried in order: sweep:NAME/CONFIG (CONFIG = key, key prefix or label; "
                    "`sweep FILE --dry-run` lists them), a batch id or unique prefix (6+ chars), a run label. "
                    "Exit 0: no regression; 1: slower beyond --max-regression with 95% confidence; 2: bad input.",
    )
    parser.add_argument("--baseline", required=True, help="batch id (prefix), sweep:NAME/CONFIG, or label")
    parser.add_argument("--candidate", required=True, help="batch id (prefix), sweep:NAME/CONFIG, or label")
    parser.add_argument(
        "--max-regression", default=None,
        help="fail (exit 1) when RTF, TTFA, synthesis time or a stage is slower than this, with 95%% "
             "confidence (e.g. 5%%)",
    )
    parser.add_argument("--seed", type=int, default=0, help="bootstrap seed")
    add_store_args(parser)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    threshold = parse_threshold(args.max_regression) if args.max_regression is not None else None
    store = open_store(args)
    baseline = select_runs(store, args.baseline)
    candidate = select_runs(store, args.candidate)
    for side in (baseline, candidate):
        if measured_runs(side.runs).empty:
            raise InputError(f"'{side.selector}' has no finished measured runs")
    comparison = compare_selections(store, baseline.runs, candidate.runs, store.stages_dataframe(), seed=args.seed)
    ratios = comparison.ratios
    result = gate(ratios, threshold or 0.0)
    print(f"baseline:  {baseline.name} ({len(measured_runs(baseline.runs))} runs)")
    print(f"candidate: {candidate.name} ({len(measured_runs(candidate.runs))} runs)")
    if note := environment_note(baseline.runs, candidate.runs):
        print(f"warning: {note}")
    print(comparison.describe())
    print(comparison.noise_line())
    rows = []
    for r in ratios:
        flag = "REGRESSION" if threshold is not None and r.regressed(threshold) else ""
        rows.append((r.metric, _fmt(r.baseline_median), _fmt(r.candidate_median), f"{r.ratio:.3f}",
                     f"{r.ci_low:.3f}..{r.ci_high:.3f}", f"±{r.detectable:.1%}", r.verdict, flag))
    print(format_table(("metric", "baseline", "candidate", "ratio", "95% CI", "detectable", "verdict", ""), rows,
                       right=(1, 2, 3, 4, 5)))
    if threshold is None:
        return 0
    if result.passed:
        print(f"gate passed: nothing slower than +{threshold:.0%} with 95% confidence")
        return 0
    names = ", ".join(r.metric for r in result.regressions)
    print(f"gate FAILED: slower than +{threshold:.0%} with 95% confidence: {names}")
    return EXIT_REGRESSION


def _fmt(value: float) -> str:
    return f"{value:.4f}"
