"""Tables and verdicts from stored runs: groups, selections, comparisons with intervals, sweep quality, reports.

What ``compare``, the History and Compare tabs and the CLI's printed tables are made of; each reads the
results store (or its DataFrames) and returns DataFrames, typed comparisons or text.
"""

from __future__ import annotations

from profiling.analysis.compare import (
    CONFIG_COLUMNS,
    RATIO_COLUMNS,
    compare_runs,
    compare_selections,
    environment_note,
    gate,
    parse_threshold,
    per_config_table,
    ratio_table,
    reference_drift,
    reference_ratios,
    run_groups,
    select_runs,
)
from profiling.analysis.pareto import sweep_quality
from profiling.analysis.report import environment_lines, format_table
from profiling.core.stats import measured, summarize_series
from profiling.store.sweeps import completed_keys, list_sweeps, sweep_runs_dataframe

__all__ = [
    # finding stored runs: bench batches and sweep configurations, selectors, sweeps
    "completed_keys", "list_sweeps", "run_groups", "select_runs", "sweep_runs_dataframe",
    # comparing them: ratios with 95 % intervals, the regression gate, per-configuration statistics
    "CONFIG_COLUMNS", "RATIO_COLUMNS", "compare_runs", "compare_selections", "environment_note", "gate",
    "parse_threshold", "per_config_table", "ratio_table", "reference_drift", "reference_ratios",
    # a sweep's quality (WER, mel distance) against its speed
    "sweep_quality",
    # summaries and text
    "environment_lines", "format_table", "measured", "summarize_series",
]
