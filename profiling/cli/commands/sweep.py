"""``sweep``: run a sweep file (YAML/TOML); resumes where an earlier attempt stopped, whichever executor ran it."""

from __future__ import annotations

import argparse
import sys
import threading
from pathlib import Path

from tqdm import tqdm

from profiling import api
from profiling.analysis.compare import per_config_table, reference_drift, reference_ratios
from profiling.analysis.report import format_table
from profiling.cli.commands.common import add_store_args, open_store
from profiling.store.sweeps import completed_keys
from profiling.sweeps.execute import (
    ExecutorChoice,
    SweepProgress,
    check_executor,
    executors,
    register_plan,
)
from profiling.sweeps.plan import plan
from profiling.sweeps.scheduler import reloads, schedule
from profiling.sweeps.spec import load_sweep_spec


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sweep", help="run engines x settings grid x texts from a YAML/TOML file (resumable; local or Ray)"
    )
    parser.add_argument("spec", type=Path, nargs="?", help="sweep file, e.g. sweeps/piper_settings.yaml")
    add_store_args(parser)
    parser.add_argument("--dry-run", action="store_true", help="print the configurations, schedule and run count")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--executor", default="local", help="local (default) or ray; --executors lists them")
    parser.add_argument("--address", default=None,
                        help="Ray: auto, ray://host:port or host:port of a running cluster (default: a local one)")
    parser.add_argument("--workers", type=int, default=1, help="Ray: units (loaded models) in flight at once")
    parser.add_argument("--cpus-per-worker", type=float, default=1.0, help="Ray: CPUs a CPU engine's worker asks")
    parser.add_argument("--executors", action="store_true", help="list the executors and whether they can run here")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.executors:
        print(format_table(("executor", "available", "detail"),
                           [(e.name, "yes" if e.available else "no", e.detail) for e in executors()]))
        return 0
    if args.spec is None:
        from engines.errors import InputError

        raise InputError("sweep: give a sweep file (or --executors)")
    spec = load_sweep_spec(args.spec)
    sweep_plan = plan(spec)  # validates every configuration before anything loads
    if args.dry_run:
        rows = [(c.key, c.label, "yes" if c.key in sweep_plan.reference_keys else "") for c in sweep_plan.configs]
        print(format_table(("config", "label", "reference"), rows))
        blocks = schedule(sweep_plan)
        print(f"{len(sweep_plan.configs)} configurations x {len(sweep_plan.texts)} texts x {spec.repeats} repeats"
              f" = {sweep_plan.total_runs} measured runs; {len({b.unit for b in blocks})} loaded models in"
              f" {len(blocks)} blocks ({reloads(blocks)} loads on one worker)")
        return 0
    choice = ExecutorChoice(args.executor, args.address, args.workers, args.cpus_per_worker)
    check_executor(choice)  # before the progress bar: bad input is one line
    store = open_store(args)
    register_plan(store, sweep_plan)
    already = len(completed_keys(store, spec.name) & {r.run_key for b in schedule(sweep_plan) for r in b.runs})
    cancel = threading.Event()
    # initial=: a resumed sweep starts part-full and the ETA counts only the runs still to do.
    with tqdm(total=sweep_plan.total_runs, initial=already, desc=spec.name, unit="run", file=sys.stderr,
              disable=args.no_progress, dynamic_ncols=True) as bar:
        per_worker: dict[str, int] = {}

        def progress(update: SweepProgress) -> None:
            bar.update(max(0, update.done - bar.n))
            if update.record is not None:
                per_worker[update.worker] = per_worker.get(update.worker, 0) + 1
                workers = " ".join(f"{w[:8]}:{n}" for w, n in per_worker.items()) if len(per_worker) > 1 else ""
                bar.set_postfix_str(f"{update.config_label[:40]} rtf={update.record.rtf:.3f} {workers}".rstrip())
            bar.refresh()

        try:
            result = api.sweep(spec, store=store, progress=progress, cancel=cancel, executor=choice)
        except KeyboardInterrupt:
            cancel.set()  # stop dispatch; what finished is stored
            raise
    outcome, runs = result.outcome, result.to_dataframe()
    table = per_config_table(runs, by="config_label", metric="rtf")
    if not table.empty:
        rows = [
            (r.config_label, str(r.n), f"{r.median:.3f}", f"{r.p95:.3f}", f"{r.mean:.3f}", f"{r.std:.3f}",
             f"{r.ci_low:.3f}..{r.ci_high:.3f}")
            for r in table.sort_values("median").itertuples()
        ]
        print(format_table(("configuration", "n", "median RTF", "p95", "mean", "std", "95% CI (median)"), rows,
                           right=range(1, 7)))
    versus = reference_ratios(runs, metrics=("rtf",))
    if not versus.empty:
        rows = [(r["configuration"], r["vs reference"], f"{r['ratio']:.3f}", f"{r['ci_low']:.3f}..{r['ci_high']:.3f}",
                 f"±{r['detectable']:.1%}", r["verdict"]) for r in versus.to_dict("records")]
        print(format_table(("configuration", "vs reference", "RTF ratio", "95% CI", "detectable", "verdict"), rows,
                           right=(2, 3, 4)))
    if line := reference_drift(runs):
        print(line)
    if len(outcome.per_worker) > 1 or outcome.executor != "local":
        print("runs per worker: " + ", ".join(f"{w}: {n}" for w, n in sorted(outcome.per_worker.items())))
    print(f"sweep '{spec.name}': {outcome.completed}/{outcome.total} runs stored ({outcome.already_done} from"
          f" earlier attempts, {outcome.ran} now, {outcome.errors} errors) in {store.db_path}"
          f" [executor {outcome.executor}]")
    if outcome.failure:
        print(f"error: {outcome.failure}", file=sys.stderr)
        return 1
    return 1 if outcome.errors else 0
