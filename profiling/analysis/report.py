"""Plain-text tables for the CLI (and anything else that prints)."""

from __future__ import annotations

from collections.abc import Sequence

from profiling.core.stats import SeriesSummary, Summary

_UNITS = {"rtf": "x", "peak_rss_mb": "MiB", "audio_s": "s"}


def format_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()
) -> str:
    """Aligned columns; the column indexes in ``right`` (numbers) are right-aligned."""
    widths = [max([len(h), *(len(r[i]) for r in rows)]) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(w) if i in right else cell.ljust(w)
            for i, (cell, w) in enumerate(zip(cells, widths, strict=True))
        ).rstrip()

    separator = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), separator, *(line(r) for r in rows)])


def _seconds(value: float) -> str:
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


def _metric(name: str, value: float) -> str:
    if name.endswith("_s"):
        return _seconds(value)
    unit = _UNITS.get(name, "")
    return f"{value:.3f}{unit}" if name == "rtf" else f"{value:.1f} {unit}".strip()


def summary_table(stages: Sequence[Summary], metrics: Sequence[Summary]) -> str:
    """Stages (time, indented by nesting) then whole-run metrics: median, p95, min, max."""
    headers = ("stage / metric", "n", "median", "p95", "min", "max")
    rows = []
    for s in stages:
        indent = "  " * s.name.count("/")
        label = indent + s.name.rsplit("/", 1)[-1]
        rows.append((label, str(s.n), *(_seconds(v) for v in (s.median, s.p95, s.minimum, s.maximum))))
    for m in metrics:
        rows.append((m.name, str(m.n), *(_metric(m.name, v) for v in (m.median, m.p95, m.minimum, m.maximum))))
    return format_table(headers, rows, right=range(1, len(headers)))


def series_table(series: Sequence[SeriesSummary]) -> str:
    """Per-item series (seconds per token / per step): median, p95, min, max per item and rate."""
    headers = ("series", "items/run", "median", "p95", "min", "max", "items/s")
    rows = [
        (
            s.name, f"{s.items_per_run:g}",
            *(_seconds(v) for v in (s.item.median, s.item.p95, s.item.minimum, s.item.maximum)),
            f"{s.rate_per_s:.2f}",
        )
        for s in series
    ]
    return format_table(headers, rows, right=range(1, len(headers)))
