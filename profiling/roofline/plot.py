"""The roofline plot: arithmetic intensity against achieved FLOP rate, one point per stage, two ceilings."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go


def roofline_figure(stages: pd.DataFrame, ceilings: pd.DataFrame, precision: str) -> go.Figure:
    """``stages`` and ``ceilings`` are the roofline profiler's tables (``roofline_frame``, ``ceilings_frame``)."""
    figure = go.Figure()
    matmul = ceilings[ceilings["ceiling"] == f"matmul {precision}"]
    if matmul.empty:
        matmul = ceilings[ceilings["ceiling"] == "matmul fp32"]
    peak = float(matmul["measured"].iloc[0]) if not matmul.empty else float("nan")
    bandwidth = float(ceilings.loc[ceilings["ceiling"] == "copy bandwidth", "measured"].iloc[0])
    intensities = [v for v in stages.get("intensity_flop_per_byte", pd.Series(dtype=float)) if v > 0]
    low = min([*intensities, peak / bandwidth]) / 10 if intensities else 0.01
    high = max([*intensities, peak / bandwidth]) * 10 if intensities else 1000.0
    x = np.logspace(math.log10(low), math.log10(high), 200)
    figure.add_trace(go.Scatter(x=x, y=np.minimum(bandwidth * x, peak), mode="lines", name="measured roof",
                                line={"color": "black"}))
    figure.add_trace(go.Scatter(x=[low, high], y=[peak, peak], mode="lines", name=f"matmul {precision} peak",
                                line={"dash": "dot", "color": "firebrick"}))
    figure.add_trace(go.Scatter(x=x, y=bandwidth * x, mode="lines", name="copy bandwidth x intensity",
                                line={"dash": "dot", "color": "royalblue"}))
    if not stages.empty:
        figure.add_trace(go.Scatter(
            x=stages["intensity_flop_per_byte"], y=stages["gflop_per_s"], mode="markers+text",
            text=stages["stage"], textposition="top center", name="stages",
            customdata=stages[["verdict", "time_s"]].to_numpy(),
            hovertemplate="%{text}<br>%{x:.2f} FLOP/byte, %{y:.2f} GFLOP/s<br>%{customdata[0]}"
                          "<br>%{customdata[1]:.3f} s<extra></extra>",
        ))
    device = str(ceilings["device"].iloc[0]) if "device" in ceilings and not ceilings.empty else ""
    figure.update_layout(
        title=f"Roofline: {device}", xaxis={"type": "log", "title": "arithmetic intensity (FLOP / byte read)"},
        yaxis={"type": "log", "title": "achieved GFLOP/s"}, height=480, margin={"t": 50, "l": 60, "r": 20},
    )
    return figure
