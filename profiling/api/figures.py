"""Plotly figures of runs, sweeps, load tests and profiles: what the dashboard draws, for any front end.

Each takes the API's results or the store's DataFrames (``runs().to_dataframe()``, a load test's ``rates`` and
``requests``) and returns a ``plotly.graph_objects.Figure``.
"""

from __future__ import annotations

from profiling.analysis.load_plots import latency_vs_load, request_timeline, throughput_vs_load, ttfa_distribution
from profiling.analysis.plots import (
    first_chunks,
    pareto,
    ratio_forest,
    rtf_box,
    rtf_vs_length,
    stage_breakdown,
    ttfa_vs_first_chunk,
)
from profiling.analysis.run_plots import gpu_figure, rtf_figure, stage_breakdown_figure, timeline_figure, ttfa_figure
from profiling.roofline.plot import roofline_figure

__all__ = [
    # one batch or stream of runs (RunRecords and their summaries)
    "gpu_figure", "rtf_figure", "stage_breakdown_figure", "timeline_figure", "ttfa_figure",
    # many stored runs (the store's DataFrames): sweeps, comparisons
    "first_chunks", "pareto", "ratio_forest", "rtf_box", "rtf_vs_length", "stage_breakdown", "ttfa_vs_first_chunk",
    # load tests (per-load rates, per-request rows)
    "latency_vs_load", "request_timeline", "throughput_vs_load", "ttfa_distribution",
    # the roofline profiler's stages against the device's ceilings
    "roofline_figure",
]
