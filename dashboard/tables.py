"""Tables for the Synthesize tab (pandas, shown by gr.Dataframe)."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from profiling.api.types import SeriesSummary, StageTiming, Summary

STAGE_COLUMNS: tuple[str, ...] = ("stage", "n", "median_ms", "p95_ms", "min_ms", "max_ms")


def stage_table(
    stages: Sequence[Summary], series: Sequence[SeriesSummary] = (), load_stages: Sequence[StageTiming] = ()
) -> pd.DataFrame:
    """The model load's stages ("load: ..."; one load, so n = 1), then one row per synthesis stage (full
    "a/b" path), then one per item series (per token / per step), in ms."""
    rows = [
        (f"load: {t.name}", 1, *([round(t.inclusive_s * 1000, 3)] * 4))
        for t in load_stages
    ]
    rows += [
        (s.name, s.n, *(round(v * 1000, 3) for v in (s.median, s.p95, s.minimum, s.maximum)))
        for s in stages
    ]
    rows += [
        (
            f"per item: {s.name} ({s.items_per_run:g}/run, {s.rate_per_s:.2f}/s)", s.item.n,
            *(round(v * 1000, 3) for v in (s.item.median, s.item.p95, s.item.minimum, s.item.maximum)),
        )
        for s in series
    ]
    return pd.DataFrame(rows, columns=list(STAGE_COLUMNS))


def empty_stage_table() -> pd.DataFrame:
    return pd.DataFrame(columns=list(STAGE_COLUMNS))
