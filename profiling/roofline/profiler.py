"""The roofline profiler: each stage's achieved FLOP/s and bytes/s against the device's measured ceilings, and a
verdict. It lives with the roofline it runs; the profiler suite (profiling.profilers.PROFILERS) names it.

Timed runs are plain runs (paired with plain baseline runs as every profiler's are, so
the overhead line shows the timing is untouched); FLOPs, bytes and operator counts come
from one separate counting pass (``counting`` here), never from a timed run.
Torch engines only: ONNX engines have no FlopCounterMode (see ``unavailable_reason``).
"""

from __future__ import annotations

import importlib.util

from engines.base import Engine
from profiling.profilers.artifacts import write_table
from profiling.profilers.common import (
    ArtifactFile,
    ProfileContext,
    Profiler,
    ProfilerResult,
    ProfilerStatus,
    ProfileTable,
)
from profiling.profilers.torchprof import is_torch_engine

CEILINGS_DIR = "ceilings"


class RooflineProfiler(Profiler):
    name = "roofline"
    title = "Roofline (FLOPs, bytes, ceilings)"

    def unavailable_reason(self, engine_cls: type[Engine]) -> str | None:
        if not is_torch_engine(engine_cls):
            return (f"'{engine_cls.name}' does not run on torch: FLOPs are counted with torch's FlopCounterMode. "
                    "For ONNX models see `python -m profiling.roofline.onnx_flops [--engine kokoro] [--model M]` "
                    "(per-operator time from ONNX Runtime's profiler; FLOPs from the shapes, MatMul/Gemm/Conv "
                    "and their int8 forms only)")
        if importlib.util.find_spec("torch") is None:
            return "torch is not installed"
        return None

    def profile(self, ctx: ProfileContext) -> ProfilerResult:
        from profiling.roofline.analysis import ceilings_frame, roofline_frame, stage_rooflines
        from profiling.roofline.ceilings import load_or_measure
        from profiling.roofline.counting import count_stages
        from profiling.roofline.plot import roofline_figure

        target = ctx.target
        settings = target.settings
        device = settings.device if ":" in settings.device or settings.device_kind == "cpu" else f"{settings.device}:0"
        cache_dir = target.store.data_dir / CEILINGS_DIR if target.store is not None else None
        ceilings, cached = load_or_measure(device, cache_dir)
        records = ctx.paired_runs(self.name, ctx.options.repeats)  # plain, timed
        counts = count_stages(target.engine, target.text, target.voice, settings, target.mode)  # untimed
        rows = stage_rooflines(counts, records, ceilings, settings.precision)
        stages = roofline_frame(rows, ceilings, settings.precision)
        limits = ceilings_frame(ceilings)
        tables = [
            ProfileTable("stages", "Stages against the roofline (times: timed runs; FLOPs/bytes: counting pass)",
                         stages),
            ProfileTable("ceilings", "Device ceilings: measured here (cached per machine) and datasheet", limits),
        ]
        ctx.out_dir.mkdir(parents=True, exist_ok=True)
        artifacts: list[ArtifactFile] = []
        for table in tables:
            artifacts += write_table(table, ctx.out_dir, self.name)
        plot_path = ctx.out_dir / "roofline-plot.json"
        plot_path.write_text(roofline_figure(stages, limits, settings.precision).to_json(), encoding="utf-8")
        artifacts.append(ArtifactFile("roofline:plot", plot_path, "Plotly JSON of the roofline plot"))
        ranked = sorted((r for r in rows if r.stage != "(whole synthesis)"), key=lambda r: r.time_s, reverse=True)
        hot = [
            f"{r.stage}: {r.verdict}; {r.flops_per_s / 1e9:.2f} GFLOP/s ({r.compute_utilisation:.1%} of peak), "
            f"{r.bytes_per_s / 1e9:.2f} GB/s ({r.memory_utilisation:.1%} of copy bandwidth), "
            f"{r.intensity:.1f} FLOP/byte, {r.ops / max(r.steps or r.calls, 1):.0f} ops per "
            f"{'step' if r.steps else 'call'}"
            for r in ranked[:4]
        ]
        peak = ceilings.peak_flops(settings.precision)
        notes = [
            f"ceilings {'from the cache' if cached else 'measured now'} ({ceilings.device_name}, "
            f"{ceilings.threads} threads): matmul {settings.precision} {peak / 1e9:.1f} GFLOP/s, copy "
            f"{ceilings.bandwidth / 1e9:.1f} GB/s; {ceilings.datasheet_source}",
            "bytes = weights read + attention operands (KV cache in decode): a lower bound on traffic; "
            "mb_io_upper counts every operator's inputs and outputs (no cache reuse)",
            "FLOPs, bytes and ops come from one separate counting pass; stage times from the plain timed runs",
        ]
        return ProfilerResult(
            self.name, ProfilerStatus.OK, f"{len(records)} timed runs + 1 counting pass; {len(rows)} stages",
            tables=tables, artifacts=artifacts, records=records, hot_spots=hot, notes=notes,
        )
