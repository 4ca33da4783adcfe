"""The History tab: every stored run group, filtered; pick two to compare; export runs as CSV or Parquet;
every stored load test, reopened with its tables and plots.

A group is a bench batch (selector = batch id) or one configuration of a sweep
(selector = ``sweep:NAME/KEY``): the same selectors ``python -m profiling compare`` takes.
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import gradio as gr
import pandas as pd

from dashboard.compare_panel import build_compare_panel
from dashboard.context import DashboardContext
from dashboard.empty_state import build_empty_state, run_example_sweep
from dashboard.freshness import Refresher
from dashboard.lane import LANE_ID
from dashboard.load_view import build_stored_view, load_test_ids, load_test_list, stored_outputs
from dashboard.messages import error_status
from engines.registry import engine_names
from profiling.api.tables import run_groups, select_runs

ALL = "all"
EXPORT_FORMATS = ("csv", "parquet")


def filtered_groups(ctx: DashboardContext, engine: str = ALL, mode: str = ALL, contains: str = "") -> pd.DataFrame:
    groups = run_groups(ctx.store)
    if engine and engine != ALL:
        groups = groups[groups["engine"] == engine]
    if mode and mode != ALL:
        groups = groups[groups["mode"] == mode]
    if contains and contains.strip():
        needle = contains.strip().lower()
        groups = groups[groups["name"].str.lower().str.contains(needle, regex=False)
                        | groups["selector"].str.lower().str.contains(needle, regex=False)]
    return groups.reset_index(drop=True)


def filtered_runs(ctx: DashboardContext, engine: str = ALL, mode: str = ALL, contains: str = "") -> pd.DataFrame:
    """Every stored run (warm-ups included, flagged) of the groups the filter shows."""
    groups = filtered_groups(ctx, engine, mode, contains)
    frames = [select_runs(ctx.store, selector).runs for selector in groups["selector"]]
    if not frames:
        return pd.DataFrame(columns=ctx.store.runs_dataframe().columns)
    return pd.concat(frames, ignore_index=True)


def export_runs(ctx: DashboardContext, fmt: str, engine: str = ALL, mode: str = ALL, contains: str = "") -> Path:
    """Write the filtered runs to ``<data dir>/exports/`` as CSV or Parquet; returns the file."""
    if fmt not in EXPORT_FORMATS:
        raise ValueError(f"export format must be one of {EXPORT_FORMATS}")
    frame = filtered_runs(ctx, engine, mode, contains)
    folder = ctx.store.data_dir / "exports"
    folder.mkdir(exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    path = folder / f"runs-{stamp}.{fmt}"
    if fmt == "csv":
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)
    return path


def build(ctx: DashboardContext) -> None:
    state = build_empty_state(ctx, "history", "This tab lists every stored run group (bench batches and sweep "
                              "configurations) and load test, compares any two groups, reopens a load test, and "
                              "exports runs as CSV or Parquet.")
    with state.results:
        with gr.Row():
            engine = gr.Dropdown(choices=[ALL, *engine_names()], value=ALL, label="Engine", elem_id="history-engine")
            mode = gr.Dropdown(choices=[ALL, "batch", "stream"], value=ALL, label="Mode")
            contains = gr.Textbox(label="Name or selector contains", elem_id="history-contains")
            refresh = gr.Button("Refresh")
        # Filled from the store when the page opens (``freshness``), so a reload shows what is stored now.
        table = gr.Dataframe(value=filtered_groups(ctx), label="Run groups (newest first)", interactive=False,
                             elem_id="history-table")
        gr.Markdown("Select two groups (or click rows: the first click fills Baseline, the second Candidate).")
        panel = build_compare_panel(list(filtered_groups(ctx)["selector"]), "history")
        status = panel.status
        with gr.Row():
            csv_button = gr.Button("Export CSV")
            parquet_button = gr.Button("Export Parquet")
        export_file = gr.File(label="Export", interactive=False)

        gr.Markdown("### Load tests\nEvery stored load test (the Load tab, `python -m profiling load`); click a row "
                    "or pick one and press **Open** for its tables and plots. Compare two in the **Sweeps** tab.")
        load_table = gr.Dataframe(value=load_test_list(ctx), label="Load tests (newest first)", interactive=False,
                                  elem_id="history-load-list")
        with gr.Row():
            load_pick = gr.Dropdown(choices=load_test_ids(ctx), label="Load test", allow_custom_value=True,
                                    elem_id="history-load-pick", scale=3)
            open_button = gr.Button("Open", elem_id="history-load-open", scale=1)
        view = build_stored_view("history-load")

    filters = [engine, mode, contains]

    def show(e: str, m: str, c: str) -> tuple[Any, ...]:
        groups = filtered_groups(ctx, e, m, c)
        selectors = list(groups["selector"])
        return groups, gr.update(choices=selectors), gr.update(choices=selectors), *state.visibility(ctx)

    def show_loads() -> tuple[Any, ...]:
        tests = load_test_list(ctx)
        return tests, gr.update(choices=list(tests["test_id"]))

    def run_example(e: str, m: str, c: str, request: gr.Request,
                    progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:  # noqa: B008
        with ctx.cancels.running(request, "the example sweep") as cancel:
            status, _ = run_example_sweep(ctx, progress, cancel)
        return status, *show(e, m, c)

    def pick(a: str | None, b: str | None, groups: pd.DataFrame, event: gr.SelectData) -> tuple[Any, ...]:
        row = event.index[0] if isinstance(event.index, (list, tuple)) else event.index
        selector = str(pd.DataFrame(groups).iloc[int(row)]["selector"])
        if not a:
            return selector, b
        return (a, selector) if not b else (selector, None)  # both set: start a new pair

    def pick_load(tests: pd.DataFrame, event: gr.SelectData) -> str:
        row = event.index[0] if isinstance(event.index, (list, tuple)) else event.index
        return str(pd.DataFrame(tests).iloc[int(row)]["test_id"])

    def export(fmt: str, e: str, m: str, c: str) -> tuple[Any, ...]:
        try:
            path = export_runs(ctx, fmt, e, m, c)
        except Exception as error:  # disk full, pyarrow missing: one line on the page
            return None, error_status(f"export failed: {error}")
        return str(path), f"Exported {fmt.upper()}: `{path}`"

    def reopen(test_id: str | None) -> tuple[Any, ...]:
        return stored_outputs(ctx, test_id)

    shown = [table, panel.baseline, panel.candidate, state.panel, state.results]
    loads_shown = [load_table, load_pick]
    for control in filters:
        control.change(show, filters, shown)
    refresh.click(show, filters, shown).then(show_loads, None, loads_shown, api_name="history_load_tests")
    state.refresh.click(show, filters, shown).then(show_loads, None, loads_shown)
    example = state.button.click(run_example, filters, [state.status, *shown], api_name="history_example_sweep",
                                 concurrency_id=LANE_ID)
    ctx.storing.append(example)
    state.wire_cancel(ctx, api_name="history_cancel_example")
    table.select(pick, [panel.baseline, panel.candidate, table], [panel.baseline, panel.candidate])
    panel.wire(ctx, api_name="history_compare")
    csv_button.click(lambda e, m, c: export("csv", e, m, c), filters, [export_file, status], api_name="export_csv")
    parquet_button.click(lambda e, m, c: export("parquet", e, m, c), filters, [export_file, status],
                         api_name="export_parquet")
    load_table.select(pick_load, load_table, load_pick)
    open_button.click(reopen, load_pick, view.components(), api_name="open_load_test")
    ctx.refreshers += [Refresher(show, filters, shown), Refresher(show_loads, [], loads_shown)]
