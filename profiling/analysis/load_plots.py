"""Plots of a stored load test (plotly), drawn from the store's frames so the dashboard and notebooks agree."""

from __future__ import annotations

import json
import math

import pandas as pd
import plotly.graph_objects as go

SERVER_COLOURS = {"lag": "#9ca3af", "queue": "#f59e0b", "first chunk": "#3b82f6", "streaming": "#10b981"}


def _x(rates: pd.DataFrame) -> tuple[pd.Series, str]:
    closed = bool((rates["users"] > 0).any())
    return (rates["users"], "concurrent users") if closed else (rates["offered_per_s"], "offered load (req/s)")


def latency_vs_load(rates: pd.DataFrame, slo_ttfa_ms: float, capacity: float | None = None) -> go.Figure:
    """TTFA and E2E percentiles against offered load, the SLO line, the capacity marked.

    TTFA is audible TTFA by the lab's rule; with a ``ttfa_tb_p95_s`` column, tts_bench's rule's p95 too.
    """
    x, title = _x(rates)
    fig = go.Figure()
    traces = [("ttfa_p50_s", "TTFA p50 (lab rule)", "dot"), ("ttfa_p95_s", "TTFA p95 (lab rule)", "solid"),
              ("ttfa_p99_s", "TTFA p99 (lab rule)", "dash"), ("e2e_p95_s", "E2E p95", "dashdot")]
    if "ttfa_tb_p95_s" in rates:
        traces.append(("ttfa_tb_p95_s", "TTFA p95 (tts_bench rule)", "longdash"))
    for column, name, dash in traces:
        fig.add_trace(go.Scatter(x=x, y=rates[column] * 1000, name=name, mode="lines+markers", line={"dash": dash}))
    fig.add_hline(y=slo_ttfa_ms, line_color="#b91c1c", annotation_text=f"SLO {slo_ttfa_ms:g} ms")
    if capacity is not None:
        fig.add_vline(x=capacity, line_color="#15803d", annotation_text="capacity")
    fig.update_layout(title="Latency against offered load", xaxis_title=title, yaxis_title="ms", yaxis_type="log")
    return fig


def throughput_vs_load(rates: pd.DataFrame) -> go.Figure:
    x, title = _x(rates)
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=x, y=rates["throughput_per_min"], name="completed req/min", mode="lines+markers"))
    fig.add_trace(go.Scatter(x=x, y=rates["goodput_per_min"], name="goodput req/min (SLO met)", mode="lines+markers"))
    if "users" in rates and not (rates["users"] > 0).any():
        fig.add_trace(go.Scatter(x=x, y=x * 60, name="offered req/min", mode="lines", line={"dash": "dot"}))
    fig.update_layout(title="Throughput against offered load", xaxis_title=title, yaxis_title="requests/min")
    return fig


def ttfa_distribution(requests: pd.DataFrame) -> go.Figure:
    fig = go.Figure()
    measured = requests[(requests["warmup"] == 0) & (requests["status"] == "ok")]
    for label, group in measured.groupby("rate_label", sort=False):
        fig.add_trace(go.Box(y=group["audible_ttfa_s"] * 1000, name=str(label), boxpoints="all", jitter=0.4))
    fig.update_layout(title="Audible TTFA per load (lab rule: first sample over 0.02 full scale)", yaxis_title="ms",
                      showlegend=False)
    return fig


def request_timeline(requests: pd.DataFrame, rate_label: str | None = None, limit: int = 40) -> go.Figure:
    """One bar per request: lag, server queue, server synthesis to the first chunk, streaming; underruns red."""
    frame = requests[requests["warmup"] == 0]
    if rate_label is None and not frame.empty:
        rate_label = str(frame["rate_label"].iloc[-1])
    frame = frame[frame["rate_label"] == rate_label].head(limit)
    fig = go.Figure()
    shown: set[str] = set()

    def bar(y: str, start: float, length: float, kind: str, colour: str) -> None:
        if length is None or not math.isfinite(length) or length <= 0:
            return
        fig.add_trace(go.Bar(y=[y], x=[length], base=[start], orientation="h", marker_color=colour, name=kind,
                             showlegend=kind not in shown, legendgroup=kind))
        shown.add(kind)

    for _, row in frame.iterrows():
        data = json.loads(row["row_json"])
        server = json.loads(row["server_json"]) if isinstance(row.get("server_json"), str) else None
        y = f"#{data['index']}"
        ideal, dispatch = data["ideal_s"], data.get("dispatch_s")
        if dispatch is None:
            continue
        bar(y, ideal, dispatch - ideal, "lag", SERVER_COLOURS["lag"])
        if data["status"] != "ok":
            fig.add_trace(go.Scatter(x=[dispatch], y=[y], mode="markers", marker={"color": "#b91c1c", "symbol": "x"},
                                     name="failed", showlegend="failed" not in shown))
            shown.add("failed")
            continue
        cursor = dispatch
        if server and server.get("queue_wait_s") is not None:
            bar(y, cursor, server["queue_wait_s"], "queue", SERVER_COLOURS["queue"])
            cursor += server["queue_wait_s"]
            if server.get("first_chunk_s") is not None:
                bar(y, cursor, server["first_chunk_s"] - server["queue_wait_s"], "first chunk",
                    SERVER_COLOURS["first chunk"])
        first = dispatch + (data.get("ttfb_s") or 0.0)
        bar(y, first, dispatch + data["e2e_s"] - first, "streaming", SERVER_COLOURS["streaming"])
        if data.get("underruns"):
            fig.add_trace(go.Scatter(x=[first], y=[y], mode="markers", name="underrun",
                                     marker={"color": "#dc2626", "size": 10, "symbol": "triangle-down"},
                                     showlegend="underrun" not in shown))
            shown.add("underrun")
    fig.update_layout(title=f"Per-request timeline at {rate_label} (seconds from the load's start)",
                      barmode="overlay", xaxis_title="s", yaxis={"autorange": "reversed"}, height=500)
    return fig
