"""GPU memory and utilisation figures (issue 12), drawn from records that carry GPU values.

The records are data as a CUDA run stores them (fields set the way the runner fills them), so the
figures are checked here without a GPU; the CPU case is a real Piper record's shape: every GPU field None.
"""

from __future__ import annotations

import pytest

from profiling.analysis.run_plots import (
    NO_GPU_DATA,
    gpu_figure,
    gpu_memory_figure,
    gpu_stage_memory_figure,
    gpu_util_figure,
)
from profiling.core.records import RunRecord
from profiling.core.timer import StageTiming
from tests.test_store import make_record


def cuda_record(allocated: float, reserved: float, util: tuple[float, float] | None = (40.0, 90.0),
                warmup: bool = False) -> RunRecord:
    stages = [
        StageTiming("gpt", 1, 0.3, 0.1, 0, peak_allocated_mb=allocated * 0.8, peak_reserved_mb=reserved * 0.9),
        StageTiming("gpt/decode", 1, 0.2, 0.2, 1, peak_allocated_mb=allocated * 0.5, peak_reserved_mb=reserved * 0.9),
        StageTiming("vocoder", 1, 0.1, 0.1, 0, peak_allocated_mb=allocated, peak_reserved_mb=reserved),
    ]
    return make_record(
        engine="xtts", stages=stages, warmup=warmup, peak_rss_mb=2100.0, timing_mode="sync",
        gpu_peak_allocated_mb=allocated, gpu_peak_reserved_mb=reserved, gpu_memory_used_mb=reserved + 500.0,
        gpu_util_mean_pct=util[0] if util else None, gpu_util_max_pct=util[1] if util else None,
        gpu_sampling="nvml (12 samples)" if util else "skipped: pynvml not installed",
    )


def bars(figure: object) -> dict[str, list[object]]:
    return {trace.name: list(trace.y if trace.orientation != "h" else trace.x)  # type: ignore[attr-defined]
            for trace in figure.data}  # type: ignore[attr-defined]


def test_memory_per_run_shows_allocator_peaks_nvml_and_rss_of_measured_runs_only() -> None:
    records = [cuda_record(9999.0, 9999.0, warmup=True), cuda_record(1000.0, 1500.0), cuda_record(1100.0, 1600.0)]
    figure = gpu_memory_figure(records)
    assert bars(figure) == {
        "peak allocated (torch)": [1000.0, 1100.0],  # the warm-up's 9999 is left out, as in every summary
        "peak reserved (torch)": [1500.0, 1600.0],
        "device memory used (NVML)": [2000.0, 2100.0],
        "peak RSS (host)": [2100.0, 2100.0],
    }
    assert list(figure.data[0].x) == ["run 1", "run 2"]
    assert figure.layout.yaxis.title.text == "MiB"


def test_memory_per_stage_is_the_median_peak_in_pipeline_order() -> None:
    figure = gpu_stage_memory_figure([cuda_record(1000.0, 1500.0), cuda_record(1200.0, 1700.0)])
    assert list(figure.data[0].y) == ["gpt", "gpt/decode", "vocoder"]
    assert bars(figure)["peak allocated"] == pytest.approx([880.0, 550.0, 1100.0])
    assert bars(figure)["peak reserved"] == pytest.approx([1440.0, 1440.0, 1600.0])
    assert list(figure.layout.yaxis.ticktext) == ["gpt", "\u21b3 decode", "vocoder"]


def test_utilisation_per_run_is_mean_and_max_and_says_why_when_nvml_is_missing() -> None:
    figure = gpu_util_figure([cuda_record(1000.0, 1500.0, (40.0, 90.0)), cuda_record(1000.0, 1500.0, (60.0, 100.0))])
    assert bars(figure) == {"mean": [40.0, 60.0], "max": [90.0, 100.0]}
    assert tuple(figure.layout.yaxis.range) == (0, 100)
    no_nvml = gpu_util_figure([cuda_record(1000.0, 1500.0, util=None)])
    assert not no_nvml.data
    assert no_nvml.layout.annotations[0].text == "no NVML samples: skipped: pynvml not installed"


def test_the_dashboards_gpu_figure_holds_all_three_panels() -> None:
    records = [cuda_record(1000.0, 1500.0), cuda_record(1200.0, 1700.0)]
    figure = gpu_figure(records)
    by_axis: dict[str, list[str]] = {}
    for trace in figure.data:
        by_axis.setdefault(trace.xaxis, []).append(trace.name)
    assert by_axis == {
        "x": ["peak allocated (torch)", "peak reserved (torch)", "device memory used (NVML)", "peak RSS (host)"],
        "x2": ["mean", "max"],
        "x3": ["peak allocated", "peak reserved"],
    }
    stage_bars = [t for t in figure.data if t.xaxis == "x3"]
    assert list(stage_bars[0].x) == pytest.approx([880.0, 550.0, 1100.0])
    # Without NVML the utilisation panel carries its reason where its bars would be.
    partial = gpu_figure([cuda_record(1000.0, 1500.0, util=None)])
    assert {t.xaxis for t in partial.data} == {"x", "x3"}
    assert any(a.text == "no NVML samples: skipped: pynvml not installed" for a in partial.layout.annotations)


def test_cpu_runs_give_one_clear_note_not_empty_panels() -> None:
    records = [make_record(peak_rss_mb=180.0), make_record(peak_rss_mb=200.0)]
    assert all(r.gpu_peak_allocated_mb is None and r.gpu_util_mean_pct is None for r in records)
    for draw in (gpu_figure, gpu_memory_figure, gpu_stage_memory_figure, gpu_util_figure):
        figure = draw(records)
        assert not figure.data
        (note,) = figure.layout.annotations
        assert note.text.startswith(NO_GPU_DATA)
        assert "peak RSS median 190 MiB" in note.text
    assert gpu_figure([]).layout.annotations[0].text == NO_GPU_DATA


def test_synthesize_results_carry_the_gpu_figure_beside_the_summary() -> None:
    from dashboard.synthesize_tab import Outputs, result_outputs
    from profiling.run.runner import BenchResult

    records = [cuda_record(1000.0, 1500.0), cuda_record(1200.0, 1700.0)]
    outputs = result_outputs(BenchResult("batch", records, audio=None, load_s=None))
    assert len(outputs) == len(Outputs.__dataclass_fields__)
    figure = outputs[list(Outputs.__dataclass_fields__).index("gpu_plot")]
    assert bars(figure)["peak allocated (torch)"] == [1000.0, 1200.0]
    summary = outputs[list(Outputs.__dataclass_fields__).index("summary")]
    assert "| peak GPU allocated | 1100 MiB |" in summary and "GPU utilisation (NVML)" in summary
