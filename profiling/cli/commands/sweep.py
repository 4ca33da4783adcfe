"""``sweep``: run a sweep file (YAML/TOML); resumes where an earlier attempt stopped."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from profiling.analysis.compare import per_config_table
from profiling.analysis.report import format_table
from profiling.cli.commands.common import add_store_args, open_store
from profiling.store.sweeps import completed_keys, sweep_runs_dataframe
from profiling.sweep.execute import SweepProgress, register_plan, run_sweep
from profiling.sweep.plan import pending_items, plan
from profiling.sweep.spec import load_sweep_spec


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "sweep", help="run engines x settings grid x texts from a YAML/TOML file (resumable)"
    )
    parser.add_argument("spec", type=Path, help="sweep file, e.g. sweeps/piper_settings.yaml")
    add_store_args(parser)
    parser.add_argument("--dry-run", action="store_true", help="print the configurations and run count only")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    spec = load_sweep_spec(args.spec)
    sweep_plan = plan(spec)  # validates every configuration before anything loads
    if args.dry_run:
        rows = [(c.key, c.label, "yes" if c.key in sweep_plan.reference_keys else "") for c in sweep_plan.configs]
        print(format_table(("config", "label", "reference"), rows))
        print(f"{len(sweep_plan.configs)} configurations x {len(sweep_plan.texts)} texts x {spec.repeats} repeats"
              f" = {sweep_plan.total_runs} measured runs")
        return 0
    store = open_store(args)
    register_plan(store, sweep_plan)
    todo = pending_items(sweep_plan, completed_keys(store, spec.name))
    already = sweep_plan.total_runs - sum(len(item.repeats) for item in todo)
    # initial=: a resumed sweep starts part-full and the ETA counts only the runs still to do.
    with tqdm(total=sweep_plan.total_runs, initial=already, desc=spec.name, unit="run", file=sys.stderr,
              disable=args.no_progress, dynamic_ncols=True) as bar:
        def progress(update: SweepProgress) -> None:
            bar.update(max(0, update.done - bar.n))
            if update.record is not None:
                bar.set_postfix_str(f"{update.config_label[:40]} rtf={update.record.rtf:.3f}")
            bar.refresh()

        outcome = run_sweep(spec, store, progress=progress)
    runs = sweep_runs_dataframe(store, spec.name)
    table = per_config_table(runs, by="config_label", metric="rtf")
    if not table.empty:
        rows = [
            (r.config_label, str(r.n), f"{r.median:.3f}", f"{r.p95:.3f}", f"{r.mean:.3f}", f"{r.std:.3f}",
             f"{r.ci_low:.3f}..{r.ci_high:.3f}")
            for r in table.sort_values("median").itertuples()
        ]
        print(format_table(("configuration", "n", "median RTF", "p95", "mean", "std", "95% CI (median)"), rows,
                           right=range(1, 7)))
    print(f"sweep '{spec.name}': {outcome.completed}/{outcome.total} runs stored ({outcome.already_done} from"
          f" earlier attempts, {outcome.ran} now, {outcome.errors} errors) in {store.db_path}")
    return 1 if outcome.errors else 0
