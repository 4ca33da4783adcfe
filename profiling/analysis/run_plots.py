"""Plotly figures for one batch of runs: stage breakdown, RTF, TTFA, GPU memory and utilisation, a stream's timeline."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from profiling.core.audio_report import PlaybackReport
from profiling.core.records import RunRecord
from profiling.core.stats import Summary, measured

_MEDIAN_COLOR = "#2563eb"
_P95_COLOR = "#f59e0b"
_RUN_COLOR = "#111827"
UNDERRUN_COLOR = "#dc2626"
_LAYOUT = dict(template="plotly_white", height=340, margin=dict(l=10, r=10, t=50, b=40))


def _stage_label(name: str) -> str:
    """Nested stages ("a/b") shown as an arrow and their last part; the path is in the hover."""
    depth = name.count("/")
    return (" " * (depth - 1) + "↳ " if depth else "") + name.rsplit("/", 1)[-1]


def stage_breakdown_figure(stages: Sequence[Summary], synth: Summary | None) -> go.Figure:
    """Median and p95 inclusive time per stage, in pipeline order, plus untimed time.

    "untimed" is the median synthesis time minus the top-level stages: work the
    engine did outside any stage (or harness overhead). It is what a stage table hides.
    Categories are the full stage paths (unique); tick labels are the short names.
    """
    names = [s.name for s in stages]
    medians = [s.median * 1000 for s in stages]
    p95s = [s.p95 * 1000 for s in stages]
    if synth is not None:
        top_level = sum(s.median for s in stages if "/" not in s.name)
        untimed = synth.median - top_level
        if untimed > 0:
            names.append("untimed")
            medians.append(untimed * 1000)
            p95s.append(float("nan"))  # a difference of medians has no meaningful p95
    n = stages[0].n if stages else 0
    figure = go.Figure(
        [
            go.Bar(y=names, x=medians, orientation="h", name="median", marker_color=_MEDIAN_COLOR,
                   hovertemplate="%{y}: %{x:.2f} ms<extra>median</extra>"),
            go.Bar(y=names, x=p95s, orientation="h", name="p95", marker_color=_P95_COLOR,
                   hovertemplate="%{y}: %{x:.2f} ms<extra>p95</extra>"),
        ]
    )
    figure.update_layout(
        title=f"Stage breakdown (inclusive time, {n} measured run{'s' if n != 1 else ''})",
        barmode="group", xaxis_title="ms",
        yaxis=dict(autorange="reversed", tickmode="array", tickvals=names,
                   ticktext=[_stage_label(name) for name in names]),
        legend=dict(orientation="h", y=-0.2),
        **{**_LAYOUT, "height": max(_LAYOUT["height"], 140 + 34 * len(names))},
    )
    return figure


def metric_figure(
    title: str,
    summary: Summary | None,
    values: Sequence[float],
    unit: str,
    scale: float = 1.0,
    reference: tuple[float, str] | None = None,
) -> go.Figure:
    """Median and p95 as bars, every measured run as a dot, and an optional reference line."""
    figure = go.Figure()
    if summary is not None:
        figure.add_bar(x=["median", "p95"], y=[summary.median * scale, summary.p95 * scale],
                       marker_color=[_MEDIAN_COLOR, _P95_COLOR], name=title,
                       text=[f"{summary.median * scale:.3g}", f"{summary.p95 * scale:.3g}"],
                       textposition="outside", showlegend=False)
    if values:
        figure.add_scatter(x=["median"] * len(values), y=[v * scale for v in values], mode="markers",
                           marker=dict(color=_RUN_COLOR, size=7, opacity=0.6), name="runs",
                           showlegend=False, hovertemplate="run: %{y:.3g}<extra></extra>")
    if reference is not None:
        value, label = reference
        figure.add_hline(y=value * scale, line_dash="dash", line_color="#dc2626",
                         annotation_text=label, annotation_position="top left")
    figure.update_layout(title=title, yaxis_title=unit, **_LAYOUT)
    return figure


def rtf_figure(records: Sequence[RunRecord], summary: Summary | None) -> go.Figure:
    values = [r.rtf for r in measured(records)]
    return metric_figure("RTF (lower is faster)", summary, values, "x real time",
                         reference=(1.0, "real time"))


def ttfa_figure(records: Sequence[RunRecord], summary: Summary | None) -> go.Figure:
    values = [r.ttfa_s for r in measured(records)]
    return metric_figure("Time to first audio", summary, values, "ms", scale=1000.0)


# --- GPU memory and utilisation (CUDA runs; None on the CPU) ---------------------------------------

#: What a GPU figure says when no measured run carries GPU data.
NO_GPU_DATA = "no GPU data: CPU runs"
_ALLOCATED_COLOR, _RESERVED_COLOR, _NVML_COLOR, _RSS_COLOR = "#2563eb", "#93c5fd", "#16a34a", "#9ca3af"


def _note_figure(title: str, message: str) -> go.Figure:
    """An empty figure that says why (analysis.plots' empty-state convention)."""
    figure = go.Figure()
    figure.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    figure.update_layout(title=title, xaxis_visible=False, yaxis_visible=False, **_LAYOUT)
    return figure


def _has_gpu_data(record: RunRecord) -> bool:
    return any(v is not None for v in (record.gpu_peak_allocated_mb, record.gpu_peak_reserved_mb,
                                       record.gpu_memory_used_mb, record.gpu_util_mean_pct))


def _cpu_note(runs: Sequence[RunRecord]) -> str:
    """The empty-state line, with host memory beside it (the one memory figure a CPU run has)."""
    rss = [r.peak_rss_mb for r in runs if r.peak_rss_mb]
    return f"{NO_GPU_DATA} (peak RSS median {float(np.median(rss)):.0f} MiB)" if rss else NO_GPU_DATA


def _run_labels(runs: Sequence[RunRecord]) -> list[str]:
    return [f"run {i + 1}" for i in range(len(runs))]


def gpu_memory_figure(records: Sequence[RunRecord]) -> go.Figure:
    """Per measured run: torch's allocator peaks, NVML's device memory in use, and peak RSS beside them (MiB)."""
    title = "GPU memory per run"
    runs = measured(records)
    if not any(_has_gpu_data(r) for r in runs):
        return _note_figure(title, _cpu_note(runs))
    x = _run_labels(runs)
    figure = go.Figure()
    for name, values, color in (
        ("peak allocated (torch)", [r.gpu_peak_allocated_mb for r in runs], _ALLOCATED_COLOR),
        ("peak reserved (torch)", [r.gpu_peak_reserved_mb for r in runs], _RESERVED_COLOR),
        ("device memory used (NVML)", [r.gpu_memory_used_mb for r in runs], _NVML_COLOR),
        ("peak RSS (host)", [r.peak_rss_mb or None for r in runs], _RSS_COLOR),
    ):
        if any(v is not None for v in values):  # an absent source (no NVML) is left out, not drawn as zero
            figure.add_bar(x=x, y=values, name=name, marker_color=color,
                           hovertemplate=f"%{{x}}: %{{y:.0f}} MiB<extra>{name}</extra>")
    figure.update_layout(title=title, barmode="group", yaxis_title="MiB", legend=dict(orientation="h", y=-0.2),
                         **_LAYOUT)
    return figure


def gpu_stage_memory_figure(records: Sequence[RunRecord]) -> go.Figure:
    """Median peak allocated and reserved memory per stage over the measured runs (MiB), in pipeline order."""
    title = "GPU memory per stage (median of each stage's peak)"
    runs = measured(records)
    allocated: dict[str, list[float]] = {}
    reserved: dict[str, list[float]] = {}
    for record in runs:
        for timing in record.stages:
            if timing.peak_allocated_mb is not None:
                allocated.setdefault(timing.name, []).append(timing.peak_allocated_mb)
            if timing.peak_reserved_mb is not None:
                reserved.setdefault(timing.name, []).append(timing.peak_reserved_mb)
    names = list(dict.fromkeys([*allocated, *reserved]))
    if not names:
        return _note_figure(title, _cpu_note(runs) if not any(_has_gpu_data(r) for r in runs)
                            else "no per-stage GPU memory in these runs")
    figure = go.Figure()
    for name, values, color in (("peak allocated", allocated, _ALLOCATED_COLOR),
                                ("peak reserved", reserved, _RESERVED_COLOR)):
        figure.add_bar(y=names, x=[float(np.median(values[n])) if n in values else None for n in names],
                       orientation="h", name=name, marker_color=color,
                       hovertemplate=f"%{{y}}: %{{x:.0f}} MiB<extra>{name}</extra>")
    figure.update_layout(
        title=title, barmode="group", xaxis_title="MiB",
        yaxis=dict(autorange="reversed", tickmode="array", tickvals=names,
                   ticktext=[_stage_label(name) for name in names]),
        legend=dict(orientation="h", y=-0.2),
        **{**_LAYOUT, "height": max(_LAYOUT["height"], 140 + 34 * len(names))},
    )
    return figure


def gpu_util_figure(records: Sequence[RunRecord]) -> go.Figure:
    """NVML's utilisation over each measured run: mean and max (%)."""
    title = "GPU utilisation per run (NVML)"
    runs = measured(records)
    if not any(r.gpu_util_mean_pct is not None for r in runs):
        if not any(_has_gpu_data(r) for r in runs):
            return _note_figure(title, _cpu_note(runs))
        reason = next((r.gpu_sampling for r in runs if r.gpu_sampling), "")
        return _note_figure(title, f"no NVML samples{': ' + reason if reason else ''}")
    x = _run_labels(runs)
    figure = go.Figure()
    figure.add_bar(x=x, y=[r.gpu_util_mean_pct for r in runs], name="mean", marker_color=_MEDIAN_COLOR,
                   hovertemplate="%{x}: %{y:.0f} %<extra>mean</extra>")
    figure.add_bar(x=x, y=[r.gpu_util_max_pct for r in runs], name="max", marker_color=_P95_COLOR,
                   hovertemplate="%{x}: %{y:.0f} %<extra>max</extra>")
    figure.update_layout(title=title, barmode="group", yaxis=dict(title="%", range=[0, 100]),
                         legend=dict(orientation="h", y=-0.2), **_LAYOUT)
    return figure


def gpu_figure(records: Sequence[RunRecord]) -> go.Figure:
    """Memory per run and utilisation per run side by side, memory per stage below: the dashboard's one GPU plot.

    With no GPU data in any measured run it is one note (``NO_GPU_DATA``), not three empty panels.
    """
    runs = measured(records)
    title = "GPU memory and utilisation"
    if not any(_has_gpu_data(r) for r in runs):
        return _note_figure(title, _cpu_note(runs))
    parts = (gpu_memory_figure(runs), gpu_util_figure(runs), gpu_stage_memory_figure(runs))
    figure = make_subplots(rows=2, cols=2, specs=[[{}, {}], [{"colspan": 2}, None]],
                           subplot_titles=[p.layout.title.text for p in parts], vertical_spacing=0.18)
    for (row, col), part, axes in zip(((1, 1), (1, 2), (2, 1)), parts, ("", "2", "3"), strict=True):
        if not part.data:  # that panel's own empty-state line, in its place
            note = part.layout.annotations[0].text
            figure.add_annotation(text=note, showarrow=False, x=0.5, y=0.5, xref=f"x{axes} domain",
                                  yref=f"y{axes} domain")
            figure.update_xaxes(visible=False, row=row, col=col)
            figure.update_yaxes(visible=False, row=row, col=col)
        for trace in part.data:
            if axes == "3":  # the stage bars share the run bars' colours: one legend entry each
                trace.showlegend = False
            figure.add_trace(trace, row=row, col=col)
    stage_axis = parts[2].layout.yaxis
    if parts[2].data:
        figure.update_yaxes(autorange="reversed", tickmode="array", tickvals=stage_axis.tickvals,
                            ticktext=stage_axis.ticktext, row=2, col=1)
    figure.update_yaxes(title_text="MiB", row=1, col=1)
    figure.update_yaxes(title_text="%", range=[0, 100], row=1, col=2)
    figure.update_xaxes(title_text="MiB", row=2, col=1)
    stages = len(stage_axis.tickvals or ())
    figure.update_layout(title=title, barmode="group", legend=dict(orientation="h", y=-0.12),
                         **{**_LAYOUT, "height": 420 + 30 * stages})
    return figure


def _chunk_play_spans(report: PlaybackReport, start: float, end: float) -> list[tuple[float, float]]:
    """Wall-clock intervals in which audio [start, end) plays (split by underruns)."""
    spans = []
    for segment in report.segments:
        seg_end_audio = segment.audio_start_s + (segment.end_s - segment.start_s)
        low, high = max(start, segment.audio_start_s), min(end, seg_end_audio)
        if high > low:
            offset = segment.start_s - segment.audio_start_s
            spans.append((offset + low, offset + high))
    return spans


def timeline_figure(record: RunRecord) -> go.Figure:
    """Synthesis interval of each chunk against its playback; underruns red; pre-buffer shaded."""
    figure = go.Figure()
    report = record.playback
    previous, audio_at = 0.0, 0.0
    palette = ("#2563eb", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#be185d")
    for chunk in record.chunks:
        color = palette[chunk.index % len(palette)]
        label = f"chunk {chunk.index}: {chunk.text.strip()[:40]}"
        figure.add_bar(
            y=["synthesis"], x=[chunk.ready_s - previous], base=[previous], orientation="h",
            marker_color=color, name=label, legendgroup=str(chunk.index),
            hovertemplate=f"{label}<br>%{{base:.3f}} s → %{{x:.3f}} s long<extra></extra>",
        )
        if report is not None:
            for low, high in _chunk_play_spans(report, audio_at, audio_at + chunk.audio_s):
                figure.add_bar(
                    y=["playback"], x=[high - low], base=[low], orientation="h", marker_color=color,
                    name=label, legendgroup=str(chunk.index), showlegend=False, opacity=0.75,
                    hovertemplate=f"{label} plays<br>%{{base:.3f}} s, %{{x:.3f}} s<extra></extra>",
                )
        previous, audio_at = chunk.ready_s, audio_at + chunk.audio_s
    if report is not None:
        for number, underrun in enumerate(report.underruns):
            figure.add_bar(
                y=["playback"], x=[underrun.duration_s], base=[underrun.at_s], orientation="h",
                marker_color=UNDERRUN_COLOR, name="underrun", legendgroup="underrun", showlegend=number == 0,
                hovertemplate="underrun at %{base:.3f} s for %{x:.3f} s<extra></extra>",
            )
        if math.isfinite(report.playback_start_s) and report.playback_start_s > report.ttfa_s:
            figure.add_vrect(
                x0=report.ttfa_s, x1=report.playback_start_s, fillcolor="#facc15", opacity=0.3, line_width=0,
                annotation_text=f"pre-buffer {report.prebuffer_ms:g} ms", annotation_position="top left",
            )
        if math.isfinite(report.ttfa_s):
            figure.add_vline(x=report.ttfa_s, line_dash="dot", annotation_text="TTFA")
        if math.isfinite(report.first_audible_s):
            figure.add_vline(x=report.first_audible_s, line_dash="dash", annotation_text="first audible",
                             annotation_position="bottom right")
    figure.update_layout(
        barmode="overlay", title="Stream timeline: synthesis vs playback", xaxis_title="seconds since request",
        yaxis={"categoryorder": "array", "categoryarray": ["playback", "synthesis"]}, height=360,
        legend={"font": {"size": 10}},
    )
    return figure
