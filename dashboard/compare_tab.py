"""The Compare tab: a sweep's plots and tables, any two run groups as ratios, and a sweep form.

Handlers are module-level functions of (ctx, inputs) so tests and notebooks call the
same code the buttons do. Errors come back as one visible line, never a trace.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import gradio as gr
import pandas as pd

from dashboard.compare_panel import build_compare_panel
from dashboard.context import DashboardContext
from dashboard.empty_state import EXAMPLE_SWEEP, build_empty_state, run_example_sweep
from dashboard.lane import LANE_ID
from dashboard.messages import error_status, one_line
from engines.errors import InputError
from profiling import api
from profiling.analysis import plots
from profiling.analysis.compare import (
    CONFIG_COLUMNS,
    RATIO_COLUMNS,
    compare_runs,
    per_config_table,
    ratio_table,
    reference_drift,
    run_groups,
)
from profiling.analysis.pareto import sweep_quality
from profiling.run.inputs import load_yaml_mapping
from profiling.store.sweeps import list_sweeps, sweep_runs_dataframe
from profiling.sweeps.execute import ExecutorChoice, SweepProgress, executors
from profiling.sweeps.spec import spec_from_mapping

log = logging.getLogger(__name__)



def sweep_names(ctx: DashboardContext) -> list[str]:
    return list(list_sweeps(ctx.store)["name"])


def group_choices(ctx: DashboardContext) -> list[tuple[str, str]]:
    groups = run_groups(ctx.store)
    return [(f"{g.name} [{g.selector[:40]}] ({g.runs} runs)", g.selector) for g in groups.itertuples()]


def sweep_view(ctx: DashboardContext, name: str | None, with_wer: bool = False) -> tuple[Any, ...]:
    """Status, per-config table, ratio table vs the reference, and the five figures for one sweep."""
    empty = empty_config_table()
    if not name:
        return ("Pick a sweep.", empty, empty_reference_table(), *(None,) * 5)
    try:
        runs = sweep_runs_dataframe(ctx.store, name)
        if runs.empty:
            return (error_status(f"sweep '{name}' has no stored runs yet"), empty, empty_reference_table(),
                    *(None,) * 5)
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
        return (error_status(one_line(error)), empty, empty_reference_table(), *(None,) * 5)
    except Exception as error:  # keep serving; the log has the traceback
        log.exception("sweep view failed")
        return (error_status(one_line(error)), empty, empty_reference_table(), *(None,) * 5)
    status = f"**{name}**: {len(runs)} measured runs over {runs['config_key'].nunique()} configurations."
    placements = runs.groupby(["executor", "worker"]).size()
    if len(placements) > 1 or "ray" in set(runs["executor"]):
        status += " Runs per worker: " + ", ".join(f"{e} {w or '-'}: {n}" for (e, w), n in placements.items()) + "."
    if line := reference_drift(runs):
        status += f" {line[0].upper()}{line[1:]}."
    return (status, table, ratios, *figures)


def empty_config_table() -> pd.DataFrame:
    return pd.DataFrame(columns=["config_label", *CONFIG_COLUMNS])


def empty_reference_table() -> pd.DataFrame:
    return pd.DataFrame(columns=["engine", "configuration", "vs reference", *RATIO_COLUMNS])


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
    return pd.DataFrame(rows).round(4) if rows else empty_reference_table()


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
        spec = spec_from_mapping(load_yaml_mapping(text or ""))
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

        with ctx.lane.hold(f"sweep '{spec.name}' ({choice.name})"):
            outcome = api.sweep(spec, store=ctx.store, pool=ctx.pool, progress=report, cancel=cancel,
                                executor=choice).outcome
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
    state = build_empty_state(ctx, "compare", "This tab shows a sweep's configurations side by side (RTF spread, "
                              "stage breakdown, ratios against a reference, speed against quality) and compares "
                              "any two stored run groups.")
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
    # The newest sweep is shown at start, so a returning user sees results rather than empty plots.
    names = sweep_names(ctx)
    first = sweep_view(ctx, names[0] if names else None)
    with state.results:
        with gr.Row():
            sweep_pick = gr.Dropdown(choices=names, value=names[0] if names else None, label="Sweep",
                                     elem_id="compare-sweep-pick", scale=3, allow_custom_value=True)
            with_wer = gr.Checkbox(False, label="Pareto on relative WER (pocketsphinx, slower) instead of fidelity")
            refresh = gr.Button("Refresh", scale=1)
        view_status = gr.Markdown(first[0], elem_id="compare-view-status")
        config_table = gr.Dataframe(first[1], label="Per configuration: RTF median, p95, mean, std, 95% bootstrap CI",
                                    interactive=False, elem_id="compare-config-table")
        reference_table = gr.Dataframe(first[2], label="Against the reference configuration (ratio with 95% CI)",
                                       interactive=False)
        with gr.Row():
            box_plot = gr.Plot(first[3], label="RTF by configuration", elem_id="compare-box-plot")
            length_plot = gr.Plot(first[4], label="RTF vs text length")
        with gr.Row():
            ttfa_plot, stage_plot = gr.Plot(first[5], label="TTFA vs first chunk"), gr.Plot(first[6],
                                                                                           label="Stage breakdown")
        pareto_plot = gr.Plot(first[7], label="Pareto: speed vs quality")

        gr.Markdown("### Compare any two run groups")
        panel = build_compare_panel(group_choices(ctx), "compare")

    view_outputs = [view_status, config_table, reference_table, box_plot, length_plot, ttfa_plot, stage_plot,
                    pareto_plot]
    choice_outputs = [sweep_pick, panel.baseline, panel.candidate, state.panel, state.results]

    def show(name: str | None, wer: bool) -> tuple[Any, ...]:
        return sweep_view(ctx, name, wer)

    def refresh_choices(pick: str | None = None) -> tuple[Any, ...]:
        groups = group_choices(ctx)
        sweeps = gr.update(choices=sweep_names(ctx), value=pick) if pick else gr.update(choices=sweep_names(ctx))
        return sweeps, gr.update(choices=groups), gr.update(choices=groups), *state.visibility(ctx)

    def run(text: str, name: str, count: float, progress: gr.Progress = gr.Progress()) -> str:  # noqa: B008
        return run_sweep_text(ctx, text, cancel, progress, name, int(count or 1))

    def stop() -> str:
        cancel.set()
        return "Cancelling after the run in progress…"

    def run_example(progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:  # noqa: B008
        status, name = run_example_sweep(ctx, progress)
        return status, *refresh_choices(name or None)

    sweep_pick.change(show, [sweep_pick, with_wer], view_outputs, api_name="sweep_view")
    with_wer.change(show, [sweep_pick, with_wer], view_outputs)
    refresh.click(refresh_choices, None, choice_outputs)
    state.refresh.click(refresh_choices, None, choice_outputs)
    run_button.click(run, [sweep_text, executor, workers], sweep_status, api_name="run_sweep",
                     concurrency_id=LANE_ID).then(refresh_choices, None, choice_outputs)
    state.button.click(run_example, None, [state.status, *choice_outputs], api_name="example_sweep",
                       concurrency_id=LANE_ID)
    # Outside the queue's concurrency limit, so it lands while the sweep is running.
    cancel_button.click(stop, None, sweep_status, api_name="cancel_sweep", concurrency_limit=None)
    panel.wire(ctx, api_name="compare_groups")
