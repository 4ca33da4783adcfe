"""The Compare tab: a sweep's plots and tables, any two run groups as ratios, and a sweep form.

Handlers are module-level functions of (ctx, inputs) so tests and notebooks call the
same code the buttons do. Errors come back as one visible line, never a trace.
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd
import yaml

from dashboard.compare_panel import build_compare_panel
from dashboard.context import DashboardContext
from dashboard.messages import error_status, one_line
from engines.errors import InputError
from profiling.analysis import plots
from profiling.analysis.compare import (
    compare_runs,
    per_config_table,
    ratio_table,
    reference_drift,
    run_groups,
)
from profiling.analysis.pareto import sweep_quality
from profiling.store.sweeps import list_sweeps, sweep_runs_dataframe
from profiling.sweep.execute import ExecutorChoice, SweepProgress, executors, run_sweep
from profiling.sweep.spec import spec_from_mapping

log = logging.getLogger(__name__)

#: Shares the engine pool with the Synthesize tab: one measured thing at a time.
CONCURRENCY_ID = "synthesize"
EXAMPLE_SWEEP = Path(__file__).resolve().parent.parent / "sweeps" / "piper_quick.yaml"


def sweep_names(ctx: DashboardContext) -> list[str]:
    return list(list_sweeps(ctx.store)["name"])


def group_choices(ctx: DashboardContext) -> list[tuple[str, str]]:
    groups = run_groups(ctx.store)
    return [(f"{g.name} [{g.selector[:40]}] ({g.runs} runs)", g.selector) for g in groups.itertuples()]


def sweep_view(ctx: DashboardContext, name: str | None, with_wer: bool = False) -> tuple[Any, ...]:
    """Status, per-config table, ratio table vs the reference, and the five figures for one sweep."""
    empty = pd.DataFrame()
    if not name:
        return ("Pick a sweep.", empty, empty, *(None,) * 5)
    try:
        runs = sweep_runs_dataframe(ctx.store, name)
        if runs.empty:
            return (error_status(f"sweep '{name}' has no stored runs yet"), empty, empty, *(None,) * 5)
        table = per_config_table(runs, by="config_label", metric="rtf").round(4)
        ratios = reference_ratios(ctx, runs)
        quality = sweep_quality(ctx.store, name, wer=with_wer)
        metric = "relative_wer" if with_wer else "fidelity_distance"
        figures = (
            plots.rtf_box(runs), plots.rtf_vs_length(runs),
            plots.ttfa_vs_first_chunk(plots.first_chunks(ctx.store, runs)),
            plots.stage_breakdown(ctx.store.stages_dataframe(), runs), plots.pareto(quality, metric),
        )
    except InputError as error:
        return (error_status(one_line(error)), empty, empty, *(None,) * 5)
    except Exception as error:  # keep serving; the log has the traceback
        log.exception("sweep view failed")
        return (error_status(one_line(error)), empty, empty, *(None,) * 5)
    status = f"**{name}**: {len(runs)} measured runs over {runs['config_key'].nunique()} configurations."
    placements = runs.groupby(["executor", "worker"]).size()
    if len(placements) > 1 or "ray" in set(runs["executor"]):
        status += " Runs per worker: " + ", ".join(f"{e} {w or '-'}: {n}" for (e, w), n in placements.items()) + "."
    if line := reference_drift(runs):
        status += f" {line[0].upper()}{line[1:]}."
    return (status, table, ratios, *figures)


def reference_ratios(ctx: DashboardContext, runs: pd.DataFrame) -> pd.DataFrame:
    """Every configuration's RTF and synthesis time against its engine's reference configuration."""
    rows = []
    for engine, group in runs.groupby("engine", sort=False):
        reference = group[group["is_reference"]]
        if reference.empty:
            continue
        for label, candidate in group[~group["is_reference"]].groupby("config_label", sort=False):
            for r in compare_runs(reference, candidate, None, metrics=("rtf", "synth_s")):
                rows.append({"engine": engine, "configuration": label,
                             "vs reference": reference["config_label"].iloc[0], **ratio_table([r]).iloc[0].to_dict()})
    return pd.DataFrame(rows).round(4) if rows else pd.DataFrame()


def _eta(done: int, total: int, already: int, started: float) -> str:
    ran = done - already
    if ran <= 0:
        return "ETA —"
    remaining = (time.monotonic() - started) / ran * (total - done)
    return f"ETA {int(remaining // 60)}m{int(remaining % 60):02d}s"


def executor_choices() -> list[tuple[str, str]]:
    """(label, name) per executor; an unavailable one says why (e.g. Ray not installed) and how to get it."""
    return [(e.name if e.available else f"{e.name} ({e.detail})", e.name) for e in executors()]


def worker_counts(per_worker: dict[str, int]) -> str:
    return ", ".join(f"{w[:12] or '-'}: {n}" for w, n in per_worker.items())


def run_sweep_text(
    ctx: DashboardContext, text: str, cancel: threading.Event, progress: Any = None, executor: str = "local",
    workers: int = 1,
) -> str:
    """Parse the form's YAML and run it (resuming if it ran before) on the chosen executor; the status line."""
    cancel.clear()
    try:
        data = yaml.safe_load(text or "")
        spec = spec_from_mapping(data if isinstance(data, dict) else {})
        choice = ExecutorChoice(executor or "local", workers=int(workers or 1))
        started = time.monotonic()
        first: list[int] = []
        seen: dict[str, int] = {}

        def report(update: SweepProgress) -> None:
            if not first:
                first.append(update.done)
            if update.record is not None:
                seen[update.worker] = seen.get(update.worker, 0) + 1
            if progress is not None:
                label = update.config_label[:50] or "starting"
                per_worker = f" [{worker_counts(seen)}]" if len(seen) > 1 else ""
                progress((update.done, update.total),
                         desc=f"{update.done}/{update.total} runs, {_eta(update.done, update.total, first[0], started)}"
                         f" — {label}{per_worker}")

        outcome = run_sweep(spec, ctx.store, ctx.pool, report, cancel, choice)
    except yaml.YAMLError as error:
        return error_status(f"the sweep is not valid YAML: {one_line(error)}")
    except InputError as error:
        return error_status(one_line(error))
    except Exception as error:
        log.exception("sweep failed")
        return error_status(one_line(error))
    state = "cancelled" if outcome.cancelled else "stopped" if outcome.failure else "finished"
    workers = f" Runs per worker ({outcome.executor}): {worker_counts(outcome.per_worker)}." if outcome.ran else ""
    failure = f" {error_status(outcome.failure)}" if outcome.failure else ""
    return (f"**Sweep {state}:** '{outcome.name}' {outcome.completed}/{outcome.total} runs stored "
            f"({outcome.already_done} from earlier attempts, {outcome.ran} now, {outcome.errors} errors).{workers}"
            f"{failure}")


def build(ctx: DashboardContext) -> None:
    cancel = threading.Event()
    example = EXAMPLE_SWEEP.read_text(encoding="utf-8") if EXAMPLE_SWEEP.is_file() else ""
    with gr.Accordion("Run a sweep", open=False):
        gr.Markdown("A sweep in YAML (the same format as `python -m profiling sweep FILE`). Running it again "
                    "resumes: finished runs are kept and not repeated.")
        sweep_text = gr.Code(value=example, language="yaml", label="sweep", elem_id="compare-sweep-yaml")
        with gr.Row():
            executor = gr.Dropdown(choices=executor_choices(), value="local", label="Executor",
                                   info="ray: one worker per loaded model on a local Ray instance",
                                   elem_id="compare-sweep-executor")
            workers = gr.Number(1, precision=0, minimum=1, maximum=64, label="Ray workers",
                                elem_id="compare-sweep-workers")
        with gr.Row():
            run_button = gr.Button("Run sweep", variant="primary", elem_id="compare-sweep-run")
            cancel_button = gr.Button("Cancel", variant="stop", elem_id="compare-sweep-cancel")
        sweep_status = gr.Markdown("", elem_id="compare-sweep-status")
    with gr.Row():
        sweep_pick = gr.Dropdown(choices=sweep_names(ctx), label="Sweep", elem_id="compare-sweep-pick", scale=3,
                                 allow_custom_value=True)
        with_wer = gr.Checkbox(False, label="Pareto on relative WER (pocketsphinx, slower) instead of fidelity")
        refresh = gr.Button("Refresh", scale=1)
    view_status = gr.Markdown("Pick a sweep.", elem_id="compare-view-status")
    config_table = gr.Dataframe(label="Per configuration: RTF median, p95, mean, std, 95% bootstrap CI",
                                interactive=False)
    reference_table = gr.Dataframe(label="Against the reference configuration (ratio with 95% CI)",
                                   interactive=False)
    with gr.Row():
        box_plot, length_plot = gr.Plot(label="RTF by configuration"), gr.Plot(label="RTF vs text length")
    with gr.Row():
        ttfa_plot, stage_plot = gr.Plot(label="TTFA vs first chunk"), gr.Plot(label="Stage breakdown")
    pareto_plot = gr.Plot(label="Pareto: speed vs quality")

    gr.Markdown("### Compare any two run groups")
    panel = build_compare_panel(group_choices(ctx), "compare")

    view_outputs = [view_status, config_table, reference_table, box_plot, length_plot, ttfa_plot, stage_plot,
                    pareto_plot]

    def show(name: str | None, wer: bool) -> tuple[Any, ...]:
        return sweep_view(ctx, name, wer)

    def refresh_choices() -> tuple[Any, ...]:
        groups = group_choices(ctx)
        return gr.update(choices=sweep_names(ctx)), gr.update(choices=groups), gr.update(choices=groups)

    def run(text: str, name: str, count: float, progress: gr.Progress = gr.Progress()) -> str:  # noqa: B008
        return run_sweep_text(ctx, text, cancel, progress, name, int(count or 1))

    def stop() -> str:
        cancel.set()
        return "Cancelling after the run in progress…"

    sweep_pick.change(show, [sweep_pick, with_wer], view_outputs, api_name="sweep_view")
    with_wer.change(show, [sweep_pick, with_wer], view_outputs)
    refresh.click(refresh_choices, None, [sweep_pick, panel.baseline, panel.candidate])
    run_button.click(run, [sweep_text, executor, workers], sweep_status, api_name="run_sweep",
                     concurrency_id=CONCURRENCY_ID).then(
        refresh_choices, None, [sweep_pick, panel.baseline, panel.candidate])
    # Outside the queue's concurrency limit, so it lands while the sweep is running.
    cancel_button.click(stop, None, sweep_status, api_name="cancel_sweep", concurrency_limit=None)
    panel.wire(ctx, api_name="compare_groups")
