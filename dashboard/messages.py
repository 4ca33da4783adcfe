"""The text the Synthesize tab shows: status lines, the weights banner, the run summary.

Errors are always one line (no stack trace reaches the page).
"""

from __future__ import annotations

from engines.errors import InputError
from profiling.api.tables import environment_lines
from profiling.api.types import BenchResult, RunRecord, RunStatus, Summary

RANDOM_WEIGHTS_TEXT = "RANDOM WEIGHTS — AUDIO IS NOISE"
# Words, not emoji: headless and minimal systems often lack an emoji font.
OK_PREFIX = "**Done:**"
ERROR_PREFIX = "**Error:**"
FAILED_PREFIX = "**Synthesis failed:**"
_MAX_MESSAGE_CHARS = 400


def one_line(error: BaseException) -> str:
    """The error as one short line: InputError's own text, else the type and first line."""
    text = str(error) if isinstance(error, InputError) else f"{type(error).__name__}: {error}"
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    line = lines[0] if lines else type(error).__name__
    return line if len(line) <= _MAX_MESSAGE_CHARS else line[: _MAX_MESSAGE_CHARS - 1] + "…"


def error_status(message: str) -> str:
    return f"{ERROR_PREFIX} {message}"


def seconds(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value * 1000:.1f} ms" if value < 1 else f"{value:.2f} s"


def load_text(load_s: float | None) -> str:
    return "reused (already loaded)" if load_s is None else seconds(load_s)


def run_status(result: BenchResult) -> str:
    """One line: what ran and what was stored, or why synthesis failed."""
    records = result.records
    stored = f"{len(records)} run{'s' if len(records) != 1 else ''} stored"
    failed = next((r for r in records if r.status is RunStatus.ERROR), None)
    if failed is not None:
        return f"{FAILED_PREFIX} {failed.error} ({stored}, batch {result.batch_id[:8]})"
    first = records[0]
    warmups = sum(r.warmup for r in records)
    return (
        f"{OK_PREFIX} {first.engine} on {first.settings.device} {first.settings.precision}, {first.mode.value} mode: "
        f"{len(records) - warmups} measured + {warmups} warm-up, {stored} (batch {result.batch_id[:8]})"
    )


def weights_banner(records: list[RunRecord]) -> str:
    """A loud banner when the model had random weights; empty otherwise."""
    if any(r.random_weights for r in records):
        return f'<div class="ttsperf-random-weights">⚠ {RANDOM_WEIGHTS_TEXT}</div>'
    return ""


def _metric(metrics: list[Summary], name: str) -> Summary | None:
    return next((m for m in metrics if m.name == name), None)


def summary_markdown(result: BenchResult) -> str:
    """Headline numbers as a small Markdown table: RTF, TTFA, durations, memory, model load."""
    metrics = result.metric_summary
    rows = [f"| model load | {load_text(result.load_s)} | |"]
    stage = result.records[0].conversion if result.records else None
    if stage is not None:
        first = result.records[0]
        cached = "cached (model reused)" if first.annotations.get("convert_cache") == "hit" else seconds(
            first.convert_load_s)
        rows.append(f"| {stage.engine} model load | {cached} | |")
    for name, title in (("rtf", "RTF" if stage is None else "RTF (whole pipeline)"),
                        ("tts_rtf", "RTF: the engine's part"), ("convert_rtf", "RTF: the conversion's part"),
                        ("ttfa_s", "TTFA"), ("synth_s", "synthesis time"),
                        ("audio_s", "audio duration"), ("peak_rss_mb", "peak RSS"),
                        ("gpu_peak_allocated_mb", "peak GPU allocated"), ("gpu_peak_reserved_mb", "peak GPU reserved"),
                        ("gpu_util_mean_pct", "GPU utilisation (NVML)")):
        summary = _metric(metrics, name)
        if summary is None:
            continue
        if name.endswith("rtf"):
            cells = (f"{summary.median:.3f}", f"{summary.p95:.3f}")
        elif name.endswith("_mb"):
            cells = (f"{summary.median:.0f} MiB", f"{summary.p95:.0f} MiB")
        elif name.endswith("_pct"):
            cells = (f"{summary.median:.0f} %", f"{summary.p95:.0f} %")
        else:
            cells = (seconds(summary.median), seconds(summary.p95))
        rows.append(f"| {title} | {cells[0]} | {cells[1]} |")
    chunks = next((r.chunks for r in reversed(result.records) if r.chunks), None)
    if chunks:
        rows.append(f"| stream chunks | {len(chunks)} | |")
    table = "\n".join(["| | median | p95 |", "|---|---:|---:|", *rows])
    if not result.records:
        return table
    first = result.records[0]
    lines = environment_lines(first.environment, first.timing_mode)
    return table + "\n\n" + "\n".join(f"- {line}" for line in lines)
