"""Plain-text tables for the CLI (and anything else that prints)."""

from __future__ import annotations

from collections.abc import Sequence

from profiling.core.environment import EnvironmentInfo
from profiling.core.stats import SeriesSummary, Summary
from profiling.core.timer import StageTiming

_UNITS = {
    "rtf": "x", "tts_rtf": "x", "convert_rtf": "x",
    "peak_rss_mb": "MiB", "audio_s": "s", "gpu_peak_allocated_mb": "MiB", "gpu_peak_reserved_mb": "MiB",
    "gpu_memory_used_mb": "MiB", "gpu_util_mean_pct": "%",
}


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
    return f"{value:.3f}{unit}" if name.endswith("rtf") else f"{value:.1f} {unit}".strip()


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


def load_stage_table(stages: Sequence[StageTiming], load_s: float | None) -> str:
    """The stages the engine timed while loading (import, weights, to-device, compile, warm-up)."""
    headers = ("load stage", "time", "peak GPU alloc")
    rows = [
        (
            "  " * t.depth + t.name.rsplit("/", 1)[-1], _seconds(t.inclusive_s),
            f"{t.peak_allocated_mb:.0f} MiB" if t.peak_allocated_mb is not None else "",
        )
        for t in stages
    ]
    if load_s is not None:
        rows.append(("(model load, total)", _seconds(load_s), ""))
    return format_table(headers, rows, right=(1, 2))


def stage_memory_table(stages: Sequence[StageTiming]) -> str:
    """Peak GPU memory per stage of one run (empty string when no stage has it)."""
    rows = [
        ("  " * t.depth + t.name.rsplit("/", 1)[-1], f"{t.peak_allocated_mb:.0f}", f"{t.peak_reserved_mb or 0:.0f}")
        for t in stages if t.peak_allocated_mb is not None
    ]
    if not rows:
        return ""
    return format_table(("stage", "peak alloc MiB", "peak reserved MiB"), rows, right=(1, 2))


def _flag(value: bool | None) -> str:
    return "?" if value is None else ("on" if value else "off")


def environment_lines(env: EnvironmentInfo, timing_mode: str = "") -> list[str]:
    """What decides the numbers, in a few lines: CPU and its ISA, the device used, torch's build and switches."""
    isa = ", ".join(env.cpu_isa) or "none of the tracked flags"
    cpu = f"CPU: {env.cpu_model}, {env.logical_cores} logical cores; ISA {isa}"
    if env.torch_cpu_capability:
        cpu += f"; torch CPU capability {env.torch_cpu_capability}"
    lines = [cpu]
    device = env.device
    if device.is_cuda:
        visible = f", CUDA_VISIBLE_DEVICES={device.visible_devices}" if device.visible_devices is not None else ""
        memory = f"{device.memory_gib:g} GiB" if device.memory_gib is not None else "? GiB"
        lines.append(
            f"device: {device.id} = {device.name or '?'} (machine GPU {device.physical or '?'}{visible}), "
            f"{memory}, compute capability {device.capability or '?'}, driver {device.driver or env.gpu_driver or '?'}"
        )
    else:
        lines.append(f"device: {device.id or 'cpu'}")
    if env.torch_cuda or env.tf32_matmul is not None:
        torch_version = env.packages.get("torch", "?")
        lines.append(
            f"torch {torch_version}, CUDA {env.torch_cuda or '-'}, cuDNN {env.cudnn or '-'}; TF32 matmul "
            f"{_flag(env.tf32_matmul)} (float32 matmul precision {env.float32_matmul_precision or '?'}), "
            f"TF32 cuDNN {_flag(env.tf32_cudnn)}, cudnn.benchmark {_flag(env.cudnn_benchmark)}"
        )
    if timing_mode:
        lines.append(f"stage timing: {timing_mode}")
    return lines
