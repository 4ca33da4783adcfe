"""The baseline-vs-candidate panel shared by the Sweeps and History tabs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gradio as gr
import pandas as pd
import plotly.graph_objects as go

from dashboard.context import DashboardContext
from dashboard.messages import error_status, one_line
from engines.errors import InputError
from profiling.api import figures
from profiling.api.tables import (
    RATIO_COLUMNS,
    compare_selections,
    environment_note,
    gate,
    parse_threshold,
    ratio_table,
    select_runs,
)


@dataclass
class ComparePanel:
    baseline: gr.Dropdown
    candidate: gr.Dropdown
    threshold: gr.Textbox
    button: gr.Button
    status: gr.Markdown
    ratios: gr.Dataframe
    forest_plot: gr.Plot
    groups_plot: gr.Plot

    def wire(self, ctx: DashboardContext, api_name: str) -> None:
        """Compare button -> status (gate verdict), ratio table, forest plot, both groups' RTF."""
        def compare(a: str | None, b: str | None, limit: str) -> tuple[Any, ...]:
            return compare_groups(ctx, a, b, limit)

        self.button.click(compare, [self.baseline, self.candidate, self.threshold],
                          [self.status, self.ratios, self.forest_plot, self.groups_plot], api_name=api_name)


def build_compare_panel(choices: list[str], elem_prefix: str) -> ComparePanel:
    """The selectors, threshold and Compare button in a row, then the status, ratio table and plots."""
    with gr.Row():
        baseline = gr.Dropdown(choices=choices, label="Baseline", allow_custom_value=True,
                               elem_id=f"{elem_prefix}-baseline")
        candidate = gr.Dropdown(choices=choices, label="Candidate", allow_custom_value=True,
                                elem_id=f"{elem_prefix}-candidate")
        threshold = gr.Textbox("5%", label="Max regression", scale=0, min_width=120)
        button = gr.Button("Compare", variant="primary")
    status = gr.Markdown("", elem_id=f"{elem_prefix}-status")
    ratios = gr.Dataframe(pd.DataFrame(columns=list(RATIO_COLUMNS)), label="Candidate / baseline", interactive=False)
    with gr.Row():
        forest_plot, groups_plot = gr.Plot(label="Ratios with 95% CI"), gr.Plot(label="RTF of both")
    return ComparePanel(baseline, candidate, threshold, button, status, ratios, forest_plot, groups_plot)


def compare_groups(
    ctx: DashboardContext, baseline: str | None, candidate: str | None, threshold: str = "5%"
) -> tuple[str, pd.DataFrame, go.Figure | None, go.Figure | None]:
    """Ratio table, forest plot and the two groups' RTF boxes; the gate's verdict as the status line."""
    if not baseline or not candidate:
        return "Pick a baseline and a candidate.", ratio_table([]), None, None
    try:
        limit = parse_threshold(threshold or "5%")
        a, b = select_runs(ctx.store, baseline), select_runs(ctx.store, candidate)
        comparison = compare_selections(ctx.store, a.runs, b.runs, ctx.store.stages_dataframe())
        ratios = list(comparison.ratios)
        if not ratios:
            raise InputError("the two selections share no finished measured runs to compare")
    except InputError as error:
        return error_status(one_line(error)), ratio_table([]), None, None
    result = gate(ratios, limit)
    verdict = (f"gate passed: nothing slower than +{limit:.0%} with 95% confidence" if result.passed else
               f"**gate FAILED**: slower than +{limit:.0%} with 95% confidence: "
               + ", ".join(r.metric for r in result.regressions))
    both = pd.concat([a.runs.assign(group=f"baseline: {a.name}"), b.runs.assign(group=f"candidate: {b.name}")])
    table = ratio_table(ratios).round(4)
    status = f"{a.name} → {b.name}: {verdict}  \n{comparison.describe()}  \n{comparison.noise_line()}"
    if note := environment_note(a.runs, b.runs):
        status += f"\n\n⚠ {note}"
    return status, table, figures.ratio_forest(table), figures.rtf_box(both, x="group")
