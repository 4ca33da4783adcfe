"""``ab``: settle "is B faster" with B/A from adjacent pairs of runs in one process, and say what it could see.

Shared settings come from the usual engine arguments; ``--a``/``--b`` override knobs (or
``precision``/``device``) for one side. Identical sides make an A/A check: its interval should cover 1.
The design follows what the sides load (``AbDesign``): one model for per-call knobs,
segments with the first run after each switch kept apart for two models.
"""

from __future__ import annotations

import argparse
import math
import sys
from dataclasses import replace

from tqdm import tqdm

from engines.base import SynthesisSettings
from engines.errors import InputError
from profiling import api
from profiling.api.inputs import parse_knobs
from profiling.api.tables import format_table
from profiling.api.types import (
    DEFAULT_RELOAD_EVERY,
    STEERING_METRICS,
    AbDesign,
    AbRequest,
    AbResult,
    RunRecord,
    RunStatus,
)
from profiling.cli.commands.common import (
    add_engine_args,
    add_store_args,
    open_store,
    settings_from_args,
    text_from_args,
    voice_from_args,
)

_DESIGNS = {
    AbDesign.ONE_MODEL: "one loaded model, per-call settings alternate (no model switch to pay for)",
    AbDesign.BLOCKS: "two loaded models in segments; the first run after each switch is kept apart, both "
                     "reloaded every few segments",
    AbDesign.ALTERNATE: "two loaded models alternating run by run (pairs include the switch penalty)",
}
_SIGNALS = (("sys_cpu_mhz", "CPU clock {:.0f} MHz"), ("sys_steal_pct", "steal {:.1f}%"),
            ("sys_busy_pct", "CPU busy {:.0f}%"), ("sys_procs_running", "runnable processes {:.0f}"),
            ("sys_load1", "load {:.2f}"))


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ab", help="A/B: B/A from adjacent pairs of runs in one process, with its 95%% CI and sensitivity (stored)",
        description="Runs A and B on the same text and reports candidate B / baseline A from adjacent pairs, the "
                    "smallest difference it could detect, and (two loaded models) the switch penalty. Example: ab "
                    "--knob deterministic=true --a length_scale=1.0 --b length_scale=1.05 --target-detectable 3%%",
    )
    add_engine_args(parser)
    add_store_args(parser)
    parser.add_argument("--a", action="append", default=[], metavar="NAME=VALUE",
                        help="side A (baseline) knob, or precision=/device= (repeatable)")
    parser.add_argument("--b", action="append", default=[], metavar="NAME=VALUE",
                        help="side B (candidate) knob, or precision=/device= (repeatable)")
    parser.add_argument("--pairs", type=int, default=20,
                        help="measured pairs (default 20); with --target-detectable, the pairs before it checks")
    parser.add_argument("--design", default="auto", choices=[d.value for d in AbDesign],
                        help="auto (default): one-model when only per-call knobs differ, else blocks; alternate: "
                             "the older run-by-run alternation of two models")
    parser.add_argument("--reload-every", type=int, default=DEFAULT_RELOAD_EVERY, metavar="SEGMENTS",
                        help="blocks design: reload both models every this many segments, so the interval covers "
                             f"the spread between loaded copies (default {DEFAULT_RELOAD_EVERY}; 0: never)")
    parser.add_argument("--target-detectable", default=None, metavar="PCT",
                        help="keep adding pairs until the smallest detectable difference is at most this (e.g. 3%%)")
    parser.add_argument("--max-pairs", type=int, default=200, help="bound on pairs (default 200)")
    parser.add_argument("--max-seconds", type=float, default=600.0, help="bound on the session's time (default 600)")
    parser.add_argument("--metric", default="synth_s", choices=STEERING_METRICS,
                        help="the metric the sensitivity and the target refer to (default synth_s)")
    parser.add_argument("--warmup", type=int, default=1, help="warm-up runs per side at least (stored, flagged)")
    parser.add_argument("--warmup-max", type=int, default=8,
                        help="warm-up runs per side at most: it stops earlier once a side's times settle")
    parser.add_argument("--name", default="", help="stored labels are NAME:A and NAME:B (default ab-<batch>)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def parse_percent(text: str, flag: str) -> float:
    """'3%' or '0.03' -> 0.03; anything else (or outside (0, 100 %)) is one line of bad input."""
    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise InputError(f"{flag} expects a percentage such as 3% or 0.03, got {text!r}") from None
    if not (math.isfinite(value) and 0 < value < 1):
        raise InputError(f"{flag} must be above 0% and below 100%, got {text!r}")
    return value


def side_settings(base: SynthesisSettings, overrides: list[str]) -> SynthesisSettings:
    knobs = parse_knobs(overrides)
    device = knobs.pop("device", base.device)
    precision = knobs.pop("precision", base.precision)
    return replace(base, device=str(device), precision=str(precision), knobs={**base.knobs, **knobs})


def run(args: argparse.Namespace) -> int:
    base = settings_from_args(args)
    target = parse_percent(args.target_detectable, "--target-detectable") if args.target_detectable else None
    request = AbRequest(
        a=side_settings(base, args.a), b=side_settings(base, args.b), text=text_from_args(args),
        voice=voice_from_args(args), pairs=args.pairs, warmup=args.warmup, warmup_max=args.warmup_max,
        max_chars=args.max_chars, name=args.name, design=AbDesign(args.design), target_detectable=target,
        reload_every=args.reload_every,
        max_pairs=args.max_pairs, max_seconds=args.max_seconds, metric=args.metric,
    )
    api.validate_ab(request)  # before the progress bar, so bad input prints one line
    store = open_store(args)
    with tqdm(total=2 * request.pairs, desc="A/B", unit="run", file=sys.stderr, disable=args.no_progress,
              leave=False) as bar:
        def progress(done: int, planned: int, record: RunRecord) -> None:
            bar.total = max(planned, done)
            bar.set_postfix_str(f"{record.annotations.get('ab_side')} rtf={record.rtf:.3f}")
            bar.update(done - bar.n)

        result = api.run_ab_request(request, store=store, progress=progress).result
    failed = [r for r in result.records if r.status is RunStatus.ERROR]
    if failed:
        print(f"error: synthesis failed: {failed[0].error}", file=sys.stderr)
        return 1
    report(request, result)
    print(f"stored {len(result.records)} runs (batch {result.batch_id}) in {store.db_path}; "
          f"compare --baseline {result.name}:A --candidate {result.name}:B")
    return 0


def report(request: AbRequest, result: AbResult) -> None:
    print(f"A: {request.a.engine} {request.a.precision} {dict(request.a.knobs)}")
    print(f"B: {request.b.engine} {request.b.precision} {dict(request.b.knobs)}")
    loaded = "" if result.both_loaded else "; the second model did not fit: reloaded at each switch"
    print(f"design: {result.design.value}: {_DESIGNS[result.design]} ({result.loads} model load(s){loaded})")
    order = result.order
    print(f"order: {order if len(order) <= 72 else order[:72] + '...'}")
    print("warm-up: " + ", ".join(f"{w.side} {w.runs} run(s) ({'settled' if w.settled else 'not settled'})"
                                  for w in result.warmups))
    rows = [(e.metric, f"{e.baseline_median:.4f}", f"{e.candidate_median:.4f}", f"{e.ratio:.3f}",
             f"{e.ci_low:.3f}..{e.ci_high:.3f}", f"±{e.detectable:.1%}", e.outliers.describe(), e.verdict)
            for e in result.summary.estimates]
    print(format_table(("metric", "A median", "B median", "B/A (pairs)", "95% CI", "detectable", "outlier pairs",
                        "verdict"), rows, right=(1, 2, 3, 4, 5)))
    main = result.summary.estimate()
    if main is not None and main.units:
        print(f"interval over {main.units} couples of adjacent pairs (A B | B A: a side's two runs back to back "
              "share the machine's noise, which the couple's mean cancels)")
    if main is not None and main.clusters:
        print(f"interval also covers the spread between {main.clusters} epochs of freshly loaded models")
    print(result.summary.sensitivity_line(result.target_detectable) + f" [stopped: {result.stop}, "
          f"{result.elapsed_s:.0f} s]")
    if result.summary.switch:
        what = "model switch" if result.design is not AbDesign.ONE_MODEL else "settings switch (one model)"
        print(f"{what} penalty ({result.summary.primary}): "
              + "; ".join(p.describe() for p in result.summary.switch))
    signals = [fmt.format(result.summary.signals[key]) for key, fmt in _SIGNALS if key in result.summary.signals]
    print("machine during the runs (medians): " + (", ".join(signals) if signals else "no kernel signals"))
    for line in result.warnings:
        print(f"warning: {line}")
