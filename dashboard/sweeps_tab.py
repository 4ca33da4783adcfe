"""The Sweeps tab: a sweep form, a sweep's plots and tables, and beside them any two run groups or load tests compared.

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
from dashboard.freshness import Refresher
from dashboard.lane import LANE_ID
from dashboard.load_view import compare_outputs, load_test_ids
from dashboard.messages import error_status, one_line
from dashboard.sessions import cancel_handler
from dashboard.trace_download import no_trace, trace_button, trace_update
from engines.errors import InputError
from profiling import api
from profiling.api import figures
from profiling.api.inputs import executors, load_yaml_mapping
from profiling.api.tables import (
    CONFIG_COLUMNS,
    RATIO_COLUMNS,
    compare_runs,
    list_sweeps,
    per_config_table,
    ratio_table,
    reference_drift,
    run_groups,
    sweep_quality,
    sweep_runs_dataframe,
)
from profiling.api.types import ExecutorChoice, SweepProgress

log = logging.getLogger(__name__)



def sweep_names(ctx: DashboardContext) -> list[str]:
    return list(list_sweeps(ctx.store)["name"])


def group_choices(ctx: DashboardContext) -> list[tuple[str, str]]:
    groups = run_groups(ctx.store)
    return [(f"{g.name} [{g.selector[:40]}] ({g.runs} runs)", g.selector) for g in groups.itertuples()]


def sweep_view(ctx: DashboardContext, name: str | None, with_wer: bool = False) -> tuple[Any, ...]:
    """Status, per-config table, ratio table vs the reference, the five figures and the trace for one sweep.

    The WER and fidelity behind the Pareto plot decode every configuration's audio: they run in the
    measurement lane, so they never overlap a measured run (the events also share the lane's queue)."""
    empty = empty_config_table()
    if not name:
        return ("Pick a sweep.", empty, empty_reference_table(), *(None,) * 5, no_trace())
    try:
        runs = sweep_runs_dataframe(ctx.store, name)
        if runs.empty:
            return (error_status(f"sweep '{name}' has no stored runs yet"), empty, empty_reference_table(),
                    *(None,) * 5, no_trace())
        table = per_config_table(runs, by="config_label", metric="rtf").round(4)
        ratios = reference_ratios(ctx, runs)
        with ctx.lane.hold(f"speed vs quality of sweep '{name}' ({'WER' if with_wer else 'fidelity'})"):
            quality = sweep_quality(ctx.store, name, wer=with_wer)
        metric = "relative_wer" if with_wer else "fidelity_distance"
        drawn = (
            figures.rtf_box(runs), figures.rtf_vs_length(runs),
            figures.ttfa_vs_first_chunk(figures.first_chunks(ctx.store, runs)),
            figures.stage_breakdown(ctx.store.stages_dataframe(), runs), figures.pareto(quality, metric),
        )
    except InputError as error:
        return (error_status(one_line(error)), empty, empty_reference_table(), *(None,) * 5, no_trace())
    except Exception as error:  # keep serving; the log has the traceback
        log.exception("sweep view failed")
        return (error_status(one_line(error)), empty, empty_reference_table(), *(None,) * 5, no_trace())
    status = f"**{name}**: {len(runs)} measured runs over {runs['config_key'].nunique()} configurations."
    placements = runs.groupby(["executor", "worker"]).size()
    if len(placements) > 1 or "ray" in set(runs["executor"]):
        status += " Runs per worker: " + ", ".join(f"{e} {w or '-'}: {n}" for (e, w), n in placements.items()) + "."
    if line := reference_drift(runs):
        status += f" {line[0].upper()}{line[1:]}."
    return (status, table, ratios, *drawn, trace_update(ctx, "sweep", name))


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
        spec = api.sweep_spec(load_yaml_mapping(text or ""))
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
    example = EXAMPLE_SWEEP.read_text(encoding="utf-8") if EXAMPLE_SWEEP.is_file() else ""
    state = build_empty_state(ctx, "compare", "This tab shows a sweep's configurations side by side (RTF spread, "
                              "stage breakdown, ratios against a reference, speed against quality) and compares "
                              "any two stored run groups or load tests.")
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
    # The view is read from the store when a page opens (``freshness``): the newest sweep, as stored now.
    names = sweep_names(ctx)
    with state.results:
        with gr.Row():
            sweep_pick = gr.Dropdown(choices=names, value=names[0] if names else None, label="Sweep",
                                     elem_id="compare-sweep-pick", scale=3, allow_custom_value=True)
            with_wer = gr.Checkbox(False, label="Pareto on relative WER (pocketsphinx, slower) instead of fidelity")
            refresh = gr.Button("Refresh", scale=1)
        view_status = gr.Markdown("", elem_id="compare-view-status")
        sweep_trace = trace_button("compare-sweep-trace")
        config_table = gr.Dataframe(empty_config_table(),
                                    label="Per configuration: RTF median, p95, mean, std, 95% bootstrap CI",
                                    interactive=False, elem_id="compare-config-table")
        reference_table = gr.Dataframe(empty_reference_table(),
                                       label="Against the reference configuration (ratio with 95% CI)",
                                       interactive=False)
        with gr.Row():
            box_plot = gr.Plot(label="RTF by configuration", elem_id="compare-box-plot")
            length_plot = gr.Plot(label="RTF vs text length")
        with gr.Row():
            ttfa_plot, stage_plot = gr.Plot(label="TTFA vs first chunk"), gr.Plot(label="Stage breakdown")
        pareto_plot = gr.Plot(label="Pareto: speed vs quality")

        gr.Markdown("### Compare any two run groups")
        panel = build_compare_panel(group_choices(ctx), "compare")

        gr.Markdown("### Compare two load tests\nCapacity and throughput are shown; TTFA p95 and C100 at each "
                    "load both tests ran are called only where a 95% bootstrap interval over the stored requests "
                    "excludes no difference. Tests at different loads are not called.")
        tests = load_test_ids(ctx)
        with gr.Row():
            load_a = gr.Dropdown(choices=tests, label="Baseline load test", allow_custom_value=True,
                                 elem_id="compare-load-baseline")
            load_b = gr.Dropdown(choices=tests, label="Candidate load test", allow_custom_value=True,
                                 elem_id="compare-load-candidate")
            load_button = gr.Button("Compare load tests", variant="primary", elem_id="compare-load-run")
        load_status = gr.Markdown("", elem_id="compare-load-status")
        load_table = gr.Dataframe(pd.DataFrame(columns=api.LOAD_COMPARE_COLUMNS), label="Candidate vs baseline",
                                  interactive=False, wrap=True, elem_id="compare-load-table")

    view_outputs = [view_status, config_table, reference_table, box_plot, length_plot, ttfa_plot, stage_plot,
                    pareto_plot, sweep_trace]
    choice_outputs = [sweep_pick, panel.baseline, panel.candidate, state.panel, state.results]

    def show(name: str | None, wer: bool) -> tuple[Any, ...]:
        return sweep_view(ctx, name, wer)

    def refresh_choices(pick: str | None = None) -> tuple[Any, ...]:
        groups = group_choices(ctx)
        sweeps = gr.update(choices=sweep_names(ctx), value=pick) if pick else gr.update(choices=sweep_names(ctx))
        return sweeps, gr.update(choices=groups), gr.update(choices=groups), *state.visibility(ctx)

    def on_page_load(current: str | None) -> tuple[Any, ...]:
        """The choices as stored now; the newest sweep picked when none is (or the picked one is gone)."""
        names = sweep_names(ctx)
        return refresh_choices(current if current in names else (names[0] if names else None))

    def refresh_loads() -> tuple[Any, ...]:
        ids = load_test_ids(ctx)
        return gr.update(choices=ids), gr.update(choices=ids)

    def run(text: str, name: str, count: float, request: gr.Request,
            progress: gr.Progress = gr.Progress()) -> str:  # noqa: B008
        with ctx.cancels.running(request, "the sweep") as cancel:
            return run_sweep_text(ctx, text, cancel, progress, name, int(count or 1))

    def run_example(request: gr.Request, progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:  # noqa: B008
        with ctx.cancels.running(request, "the example sweep") as cancel:
            status, name = run_example_sweep(ctx, progress, cancel)
        return status, *refresh_choices(name or None)

    def compare_loads(a: str | None, b: str | None) -> tuple[Any, ...]:
        return compare_outputs(ctx, a, b)

    # In the lane: the Pareto plot's WER/fidelity must not overlap a measured run.
    sweep_pick.change(show, [sweep_pick, with_wer], view_outputs, api_name="sweep_view", concurrency_id=LANE_ID)
    with_wer.change(show, [sweep_pick, with_wer], view_outputs, concurrency_id=LANE_ID)
    refresh.click(refresh_choices, None, choice_outputs).then(refresh_loads, None, [load_a, load_b])
    state.refresh.click(refresh_choices, None, choice_outputs).then(refresh_loads, None, [load_a, load_b])
    ran = run_button.click(run, [sweep_text, executor, workers], sweep_status, api_name="run_sweep",
                           concurrency_id=LANE_ID)
    example_ran = state.button.click(run_example, None, [state.status, *choice_outputs], api_name="example_sweep",
                                     concurrency_id=LANE_ID)
    ctx.storing += [ran, example_ran]
    # Outside the queue's concurrency limit, so it lands while the sweep is running; only this session's.
    cancel_button.click(cancel_handler(ctx.cancels), None, sweep_status, api_name="cancel_sweep",
                        concurrency_limit=None)
    state.wire_cancel(ctx, api_name="cancel_example_sweep")
    panel.wire(ctx, api_name="compare_groups")
    load_button.click(compare_loads, [load_a, load_b], [load_status, load_table], api_name="compare_load")
    view = Refresher(show, [sweep_pick, with_wer], view_outputs, on_store=False, concurrency_id=LANE_ID)
    ctx.refreshers += [Refresher(on_page_load, [sweep_pick], choice_outputs, then=view),
                       Refresher(refresh_loads, [], [load_a, load_b])]
