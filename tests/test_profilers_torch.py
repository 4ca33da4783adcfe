"""The profiler suite on a tiny torch engine (F5 with random-tiny weights, 2 ODE steps)."""

from __future__ import annotations

import json

import pytest

from engines.base import SynthesisSettings
from engines.registry import available_engines
from profiling.profilers import PROFILER_NAMES
from profiling.profilers.common import ProfileOptions, ProfilerStatus
from profiling.profilers.flamegraph import read_speedscope
from profiling.profilers.session import ProfileReport, ProfileRequest, run_profile
from profiling.run.runner import EnginePool
from profiling.store.results import ResultsStore

pytestmark = [
    pytest.mark.torch,
    pytest.mark.skipif("f5" not in available_engines(), reason="the f5 extra is not installed"),
]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> ProfileReport:
    store = ResultsStore(tmp_path_factory.mktemp("torch-profile"))
    settings = SynthesisSettings("f5", knobs={"weights": "random-tiny", "nfe_step": 2})
    request = ProfileRequest(
        settings, "Hello there.", profilers=PROFILER_NAMES,
        options=ProfileOptions(repeats=1, leak_runs=2, torch_memory=True, top=40),
    )
    return run_profile(request, EnginePool(), store)


def test_all_five_profilers_run_on_a_torch_engine(report: ProfileReport) -> None:
    assert report.error == ""
    for result in report.results:
        assert result.status is ProfilerStatus.OK, f"{result.profiler}: {result.message}"
        assert result.overhead is not None and result.overhead.ratio > 0


def test_torch_profiler_ranks_operators_with_shapes_and_writes_a_chrome_trace(report: ProfileReport) -> None:
    result = report.result("torch")
    operators = result.table("operators_cpu").frame
    assert {"input_shapes", "self_cpu_ms", "self_cpu_pct", "self_cpu_memory_mb"} <= set(operators.columns)
    assert operators["self_cpu_ms"].is_monotonic_decreasing
    top = set(operators.head(15)["operator"])
    assert top & {"aten::addmm", "aten::linear", "aten::mm", "aten::mkldnn_convolution", "aten::convolution"}
    addmm = operators[operators["operator"] == "aten::addmm"]
    assert not addmm.empty and addmm["input_shapes"].str.startswith("[[").all()
    stages = result.table("stages").frame
    ode = stages[stages["stage"] == "ode_solve"]
    assert not ode.empty and ode["cpu_total_ms"].iloc[0] == stages["cpu_total_ms"].max()
    trace_path = next(a.path for a in result.artifacts if a.kind == "torch:chrome_trace")
    events = json.loads(trace_path.read_text())["traceEvents"]
    names = {e.get("name") for e in events}
    assert "stage:ode_solve" in names and "aten::addmm" in names


def test_cprofile_line_and_pyspy_name_the_ode_solver(report: ProfileReport) -> None:
    cumulative = report.result("cprofile").table("cumulative").frame
    assert any((cumulative["function"] == "sample") & cumulative["location"].str.startswith("f5_tts/model/cfm.py"))
    own = report.result("cprofile").table("own").frame
    assert any("torch" in name for name in own.head(3)["function"])
    lines = report.result("line").table("lines").frame
    sample = lines[lines["function"] == "f5_tts.model.cfm.CFM.sample"]
    assert "odeint" in sample.sort_values("time_ms", ascending=False).iloc[0]["source"]
    pyspy = report.result("pyspy")
    functions = pyspy.table("functions").frame["function"]
    assert any(name.startswith("CFM.sample (f5_tts/model/cfm.py)") for name in functions)
    speedscope = next(a.path for a in pyspy.artifacts if a.kind == "pyspy:speedscope")
    assert read_speedscope(speedscope)


def test_memory_profile_of_a_torch_engine_names_its_stages(report: ProfileReport) -> None:
    stages = report.result("memory").table("stages").frame
    assert {"(synthesis)", "ode_solve", "vocoder_decode"} <= set(stages["stage"])
    assert "cuda_max_allocated_mb" not in stages.columns  # CPU run: no CUDA columns pretending zeros
