"""The lab's figures (plotly), drawn from store DataFrames; the dashboard and notebooks share them."""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from profiling.analysis.compare import measured_runs
from profiling.audio.intelligibility import WER_LABEL
from profiling.store.results import ResultsStore

QUALITY_LABELS = {
    "relative_wer": WER_LABEL,
    "fidelity_distance": "log-mel distance to the reference setting (0 = identical)",
}


def _empty(title: str, message: str = "no runs to plot") -> go.Figure:
    figure = go.Figure()
    figure.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    figure.update_layout(title=title, xaxis_visible=False, yaxis_visible=False)
    return figure


def rtf_box(runs: pd.DataFrame, x: str = "config_label", color: str = "precision") -> go.Figure:
    """RTF over repeats, one box per configuration (or engine), coloured by precision."""
    title = "RTF over repeats (lower is faster; 1 = real time)"
    data = measured_runs(runs)
    if data.empty:
        return _empty(title)
    figure = px.box(data, x=x, y="rtf", color=color if color in data else None, points="all", title=title)
    figure.update_layout(xaxis_title="", yaxis_title="RTF", boxmode="group")
    return figure


def rtf_vs_length(runs: pd.DataFrame, length: str = "text_chars", color: str = "config_label") -> go.Figure:
    title = "RTF against text length"
    data = measured_runs(runs)
    if data.empty:
        return _empty(title)
    figure = px.scatter(data, x=length, y="rtf", color=color if color in data else None, title=title)
    figure.update_layout(xaxis_title="characters" if length == "text_chars" else length, yaxis_title="RTF")
    return figure


def first_chunks(store: ResultsStore, runs: pd.DataFrame) -> pd.DataFrame:
    """Streamed runs' first chunk: characters, audio seconds and TTFA (from the stored records)."""
    rows = []
    for row in measured_runs(runs).itertuples():
        if row.mode != "stream":
            continue
        record = store.load_run(row.run_id)
        if record.chunks:
            first = record.chunks[0]
            label = getattr(row, "config_label", None) or record.label or record.engine
            rows.append({"run_id": row.run_id, "label": label, "first_chunk_chars": len(first.text),
                         "first_chunk_audio_s": first.audio_s, "ttfa_s": record.ttfa_s})
    return pd.DataFrame(rows, columns=["run_id", "label", "first_chunk_chars", "first_chunk_audio_s", "ttfa_s"])


def ttfa_vs_first_chunk(chunks: pd.DataFrame, size: str = "first_chunk_chars") -> go.Figure:
    title = "Time to first audio against first-chunk size"
    if chunks.empty:
        return _empty(title, "no streamed runs (mode: stream) to plot")
    figure = px.scatter(chunks, x=size, y="ttfa_s", color="label", title=title)
    figure.update_layout(xaxis_title="first chunk, characters" if size == "first_chunk_chars" else size,
                         yaxis_title="TTFA (s)")
    return figure


def stage_breakdown(stages: pd.DataFrame, runs: pd.DataFrame, by: str = "config_label") -> go.Figure:
    """Median exclusive time per stage, stacked per configuration (exclusive times add up to the total)."""
    title = "Where the time goes: median exclusive time per stage"
    chosen = measured_runs(runs)[["run_id", by]]
    data = stages.merge(chosen, on="run_id")
    if data.empty:
        return _empty(title)
    medians = data.groupby([by, "stage"], sort=False)["exclusive_s"].median().reset_index()
    figure = px.bar(medians, x=by, y="exclusive_s", color="stage", title=title)
    figure.update_layout(barmode="stack", xaxis_title="", yaxis_title="seconds (median over repeats)")
    return figure


def pareto(quality: pd.DataFrame, metric: str = "relative_wer") -> go.Figure:
    """Median RTF against a quality error (both lower = better); the Pareto front is joined by a line."""
    label = QUALITY_LABELS.get(metric, metric)
    title = f"Speed against quality: {label}"
    if quality.empty or quality[metric].isna().all():
        return _empty(title, "no saved audio to score (sweep with save_audio: true)")
    front_column = "pareto_wer" if metric == "relative_wer" else "pareto_fidelity"
    data = quality.assign(on_front=quality[front_column] if front_column in quality else False)
    figure = px.scatter(data, x="median_rtf", y=metric, color="config_label", symbol="on_front", title=title,
                        hover_data=["precision", "runs"])
    front = data[data["on_front"]].sort_values("median_rtf")
    figure.add_trace(go.Scatter(x=front["median_rtf"], y=front[metric], mode="lines", name="Pareto front",
                                line={"dash": "dash", "color": "black"}))
    figure.update_layout(xaxis_title="median RTF (lower is faster)", yaxis_title=label)
    return figure


def ratio_forest(ratios: pd.DataFrame) -> go.Figure:
    """candidate/baseline ratio per metric with its 95% interval; the line at 1 is 'no difference'."""
    title = "Candidate / baseline (95% bootstrap interval; > 1 = candidate slower)"
    if ratios.empty:
        return _empty(title)
    figure = go.Figure(go.Scatter(
        x=ratios["ratio"], y=ratios["metric"], mode="markers",
        error_x={"type": "data", "symmetric": False, "array": ratios["ci_high"] - ratios["ratio"],
                 "arrayminus": ratios["ratio"] - ratios["ci_low"]},
    ))
    figure.add_vline(x=1.0, line_dash="dash")
    figure.update_layout(title=title, xaxis_title="ratio", yaxis={"autorange": "reversed"})
    return figure
