"""Summaries over repeats: median, p95, min, max (and mean, std) per stage and metric."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from profiling.core.records import RunRecord, RunStatus


@dataclass(frozen=True)
class Summary:
    name: str
    n: int
    median: float
    p95: float
    minimum: float
    maximum: float
    mean: float
    std: float

    @classmethod
    def of(cls, name: str, values: Sequence[float]) -> Summary:
        if not values:
            raise ValueError(f"no values to summarise for {name!r}")
        array = np.asarray(values, dtype=float)
        return cls(
            name=name,
            n=len(array),
            median=float(np.median(array)),
            p95=float(np.percentile(array, 95)),
            minimum=float(array.min()),
            maximum=float(array.max()),
            mean=float(array.mean()),
            std=float(array.std(ddof=1)) if len(array) > 1 else 0.0,
        )


#: Whole-run metrics summarised next to the stages, in this order.
RUN_METRICS: tuple[str, ...] = ("synth_s", "ttfa_s", "rtf", "audio_s", "peak_rss_mb")
#: Metrics only some runs have (CUDA, NVML, conversion): summarised when every measured run has a value.
OPTIONAL_METRICS: tuple[str, ...] = (
    "gpu_peak_allocated_mb", "gpu_peak_reserved_mb", "gpu_util_mean_pct", "gpu_memory_used_mb",
    "convert_s", "tts_rtf", "convert_rtf",
)


def measured(records: Iterable[RunRecord]) -> list[RunRecord]:
    """The records that count: finished, and not warm-up."""
    return [r for r in records if r.status is RunStatus.OK and not r.warmup]


def summarize_stages(records: Iterable[RunRecord], exclusive: bool = False) -> list[Summary]:
    """Inclusive (or exclusive) time per stage over the measured runs, in pipeline order."""
    values: dict[str, list[float]] = {}
    for record in measured(records):
        for timing in record.stages:
            seconds = timing.exclusive_s if exclusive else timing.inclusive_s
            values.setdefault(timing.name, []).append(seconds)
    return [Summary.of(name, vals) for name, vals in values.items()]


def summarize_metrics(records: Iterable[RunRecord]) -> list[Summary]:
    runs = measured(records)
    if not runs:
        return []
    summaries = [Summary.of(metric, [float(getattr(r, metric)) for r in runs]) for metric in RUN_METRICS]
    for metric in OPTIONAL_METRICS:
        values = [getattr(r, metric) for r in runs]
        if all(v is not None for v in values):
            summaries.append(Summary.of(metric, [float(v) for v in values]))
    return summaries


@dataclass(frozen=True)
class SeriesSummary:
    """A per-item series (e.g. seconds per GPT token or per NFE step) pooled over measured runs."""

    name: str
    items_per_run: float
    item: Summary

    @property
    def rate_per_s(self) -> float:
        """Items per second at the median item time (tokens/s, steps/s)."""
        return 1.0 / self.item.median if self.item.median > 0 else float("inf")


def summarize_series(records: Iterable[RunRecord]) -> list[SeriesSummary]:
    """Time series only: by convention a series named ``*_s`` holds seconds per item."""
    pooled: dict[str, list[float]] = {}
    counts: dict[str, list[int]] = {}
    for record in measured(records):
        for name, values in record.series.items():
            if values and name.endswith("_s"):
                pooled.setdefault(name, []).extend(values)
                counts.setdefault(name, []).append(len(values))
    return [
        SeriesSummary(name, float(np.median(counts[name])), Summary.of(name, values))
        for name, values in pooled.items()
    ]
