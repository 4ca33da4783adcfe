"""The profiler suite on real Piper runs: each profiler names the functions we know are hot.

One profiling session (all profilers, 2 paired runs each) is shared by the
module's tests to keep them fast; the tests that need their own run say why.
"""

from __future__ import annotations

import json
import os
import pstats
import shutil
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from engines.base import Audio, Capabilities, Engine, SynthesisSettings, Voice
from engines.errors import InputError
from engines.hooks import NULL_HOOK, StageHook
from profiling.core.records import RunMode
from profiling.profilers import PROFILER_NAMES, parse_profiler_names
from profiling.profilers.artifacts import load_table
from profiling.profilers.common import (
    PROFILER_ANNOTATION,
    ProfileContext,
    ProfileOptions,
    ProfilerStatus,
    ProfileTarget,
)
from profiling.profilers.flamegraph import read_speedscope
from profiling.profilers.line import resolve_function
from profiling.profilers.memory import MemoryProfiler
from profiling.profilers.session import ProfileReport, ProfileRequest, run_profile, validate_profile_request
from profiling.run.runner import EnginePool
from profiling.store.results import ResultsStore

TEXT = "The quick brown fox jumps over the lazy dog. Profilers tell us why."
ORT_WRAPPER = "onnxruntime/capi/onnxruntime_inference_collection.py"
LEAK_MIB = 40


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> ResultsStore:
    return ResultsStore(tmp_path_factory.mktemp("profile-store"))


@pytest.fixture(scope="module")
def report(store: ResultsStore) -> ProfileReport:
    request = ProfileRequest(
        SynthesisSettings("piper", knobs={"deterministic": True}), TEXT,
        options=ProfileOptions(repeats=2, leak_runs=4, line_functions=("engines.text.normalize_text",)),
    )
    return run_profile(request, EnginePool(), store)


def test_every_profiler_ran_or_says_why(report: ProfileReport) -> None:
    assert report.error == ""
    statuses = {r.profiler: r.status for r in report.results}
    assert list(statuses) == list(PROFILER_NAMES)
    assert statuses["torch"] is ProfilerStatus.SKIPPED
    assert "not a torch engine" in report.result("torch").message
    for name in ("cprofile", "line", "pyspy", "memory"):
        assert statuses[name] is ProfilerStatus.OK, report.result(name).message


def test_cprofile_names_onnx_run_and_phoneme_ids_to_audio(report: ProfileReport) -> None:
    result = report.result("cprofile")
    cumulative = result.table("cumulative").frame
    by_name = {(row.function, row.location.split(":")[0]): row for row in cumulative.itertuples()}
    assert ("run", ORT_WRAPPER) in by_name  # InferenceSession.run, the Python wrapper
    voice_row = by_name[("phoneme_ids_to_audio", "piper/voice.py")]
    assert "_synthesize_sentence" in voice_row.callers
    # By own time the ONNX Runtime C call dominates Piper: everything else is bookkeeping.
    own = result.table("own").frame
    assert "onnxruntime" in own.iloc[0]["function"] and own.iloc[0]["own_pct"] > 50
    assert "onnxruntime" in result.hot_spots[0]


def test_line_profiler_shows_the_session_run_line(report: ProfileReport) -> None:
    result = report.result("line")
    functions = result.table("functions").frame
    assert {"piper.voice.PiperVoice.phoneme_ids_to_audio", "engines.text.normalize_text"} <= set(
        functions["function"]
    )
    lines = result.table("lines").frame
    voice = lines[lines["function"] == "piper.voice.PiperVoice.phoneme_ids_to_audio"]
    heaviest = voice.sort_values("time_ms", ascending=False).iloc[0]
    assert "self.session.run(" in heaviest["source"]
    assert heaviest["pct_of_function"] > 50
    assert heaviest["hits"] >= 2  # two runs, at least one sentence each
    assert voice["pct_of_function"].sum() == pytest.approx(100.0, abs=0.5)


def test_pyspy_samples_name_onnx_run_and_draw_a_flame_graph(report: ProfileReport) -> None:
    result = report.result("pyspy")
    functions = result.table("functions").frame
    top = functions.iloc[0]
    assert top["function"].startswith("Session.run") and ORT_WRAPPER in top["function"]
    assert any(f.startswith("PiperVoice.phoneme_ids_to_audio") for f in functions["function"])
    # The table shows the synthesis call alone, not the lab storing the run inside the sampling window.
    assert not any("ResultsStore" in f or "measure_run" in f for f in functions["function"])
    files = {a.kind: a.path for a in result.artifacts}
    svg = ET.parse(files["pyspy:flamegraph"]).getroot()
    titles = [t.text or "" for t in svg.iter("{http://www.w3.org/2000/svg}title")]
    assert any(t.startswith("PiperVoice.phoneme_ids_to_audio") for t in titles)
    stacks: Counter = Counter()
    for artifact in result.artifacts:
        if artifact.kind == "pyspy:speedscope":
            stacks.update(read_speedscope(artifact.path))
    # Only the synthesis thread is kept. A raw file may hold a sample of that thread taken while
    # py-spy was attaching (before the run started); the weight over all runs is the profiled run's.
    inside = sum(w for stack, w in stacks.items() if any("ProfileTarget.run" in frame for frame in stack))
    assert stacks and inside >= 0.8 * sum(stacks.values())


def test_memory_charges_rss_to_stages_and_finds_the_audio_buffers(report: ProfileReport) -> None:
    result = report.result("memory")
    stages = result.table("stages").frame.set_index("stage")
    assert {"(synthesis)", "model_inference", "phonemization", "post_processing"} <= set(stages.index)
    inner = stages.drop(index="(synthesis)")
    assert inner["rss_samples"].idxmax() == "model_inference"  # where the time goes, the samples go
    assert (stages["peak_rss_mb"] > 50).all()
    assert stages.loc["(synthesis)", "peak_rss_mb"] >= inner["peak_rss_mb"].max()
    leak = result.table("leak").frame
    assert len(leak) >= 4
    sites = result.table("peak_sites").frame
    assert any(site.startswith("engines/piper_engine.py") for site in sites["site"])


def test_overhead_is_measured_beside_each_profiler(report: ProfileReport) -> None:
    for result in report.results:
        if result.status is not ProfilerStatus.OK:
            assert result.overhead is None
            continue
        overhead = result.overhead
        assert overhead is not None and overhead.repeats >= 2
        assert np.isfinite(overhead.ratio) and overhead.ratio > 0
        assert overhead.baseline_min_s <= overhead.baseline_median_s <= overhead.baseline_max_s
        assert "overhead" in overhead.describe()
        files = {a.kind: a.path for a in result.artifacts}
        saved = json.loads(files[f"{result.profiler}:overhead"].read_text())
        assert saved["ratio"] == pytest.approx(overhead.ratio)


def test_runs_and_artifacts_are_stored_and_reloadable(report: ProfileReport, store: ResultsStore) -> None:
    for result in report.results:
        if result.status is not ProfilerStatus.OK:
            continue
        run_id = result.run_id
        assert run_id is not None
        stored = store.load_run(run_id)
        assert stored.annotations[PROFILER_ANNOTATION] == result.profiler
        artifacts = store.artifacts(run_id)
        assert {a.kind for a in artifacts} == {a.kind for a in result.artifacts}
        for artifact in artifacts:
            assert artifact.path.parent == store.data_dir / "artifacts" / run_id
            assert artifact.path.is_file() and artifact.path.stat().st_size > 0
        for table in result.tables:
            for suffix in ("csv", "json"):
                path = next(a.path for a in artifacts if a.kind == f"{result.profiler}:table:{table.name}:{suffix}")
                assert load_table(path).shape == table.frame.shape
    prof = next(a.path for a in store.artifacts(report.result("cprofile").run_id) if a.kind == "cprofile:prof")
    assert any(key[2] == "phoneme_ids_to_audio" for key in pstats.Stats(str(prof)).stats)  # type: ignore[attr-defined]
    baseline = [store.load_run(r.run_id) for r in report.baseline]
    assert baseline and all(r.annotations[PROFILER_ANNOTATION] == "none" for r in baseline)
    assert not list((store.data_dir / "artifacts").glob(".staging-*"))


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None,
                    reason="needs root and setpriv to drop ptrace rights for real")
def test_pyspy_denied_ptrace_is_reported_and_the_rest_carries_on(tmp_path: Path) -> None:
    # setpriv runs py-spy as nobody: the kernel really refuses to let it ptrace this root process.
    prefix = ("setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups")
    request = ProfileRequest(
        SynthesisSettings("piper"), "Hello there.", profilers=("cprofile", "pyspy"), warmup=0,
        options=ProfileOptions(repeats=1, pyspy_prefix=prefix),
    )
    store = ResultsStore(tmp_path)
    report = run_profile(request, EnginePool(), store)
    pyspy = report.result("pyspy")
    assert pyspy.status is ProfilerStatus.DENIED
    assert "ptrace" in pyspy.message and "Permission" in pyspy.message
    assert pyspy.artifacts == [] and pyspy.overhead is None
    assert report.result("cprofile").status is ProfilerStatus.OK


def test_bad_profiler_input_is_one_line_input_error() -> None:
    with pytest.raises(InputError, match="unknown profiler 'flame'"):
        parse_profiler_names("cprofile,flame")
    assert parse_profiler_names("memory, cprofile") == ("cprofile", "memory")
    assert parse_profiler_names("all") == PROFILER_NAMES
    for name, fragment in [
        ("no.such.module.fn", "no importable module"),
        ("piper.voice.PiperVoice.nope", "has no attribute 'nope'"),
        ("os.getpid", "not a Python function"),
        ("not a name", "not a dotted name"),
    ]:
        with pytest.raises(InputError, match=fragment) as caught:
            resolve_function(name)
        assert "\n" not in str(caught.value)
    strict = ProfileRequest(SynthesisSettings("piper"), "Hi.", profilers=("torch",), strict=True)
    with pytest.raises(InputError, match="not a torch engine"):
        validate_profile_request(strict)


class LeakyEngine(Engine):
    """A real (tiny) engine that keeps 40 MiB per call: the leak users report, on purpose.

    40 MiB is above glibc's largest mmap threshold (32 MiB), so a block is mapped fresh unless a free chunk of the
    heap can hold it; in a process that freed much before, one can, and only the profiler's handing free pages
    back (``return_free_heap``) makes the block show in RSS (the test after this one).
    """

    name = "leaky"
    capabilities = Capabilities(devices=("cpu",), precisions=("fp32",), streaming=False, voice_cloning=False,
                                sample_rate=16000)
    hot_functions = ()

    def __init__(self) -> None:
        super().__init__()
        self.kept: list[bytearray] = []

    def load(self, settings: SynthesisSettings, hook: StageHook = NULL_HOOK) -> None:
        self.settings = settings

    def synthesize(self, text: str, voice: Voice, settings: SynthesisSettings, hook: StageHook = NULL_HOOK) -> Audio:
        with hook.stage("model_inference"):
            block = bytearray(LEAK_MIB * 2**20)
            block[::4096] = b"\x01" * len(block[::4096])  # touch every page so RSS really grows
            self.kept.append(block)
        return Audio(np.zeros(1600, dtype=np.float32), 16000)


def test_leak_check_flags_an_engine_whose_memory_grows(tmp_path: Path) -> None:
    engine = LeakyEngine()
    settings = SynthesisSettings("leaky")
    engine.load(settings)
    target = ProfileTarget(engine, "x", Voice(), settings, RunMode.BATCH, store=None)
    ctx = ProfileContext(target, tmp_path, ProfileOptions(repeats=2, leak_runs=6, tracemalloc=False), "b", "p")
    result = MemoryProfiler().profile(ctx)
    leak = result.table("leak").frame
    slope = np.polyfit(np.arange(len(leak)), leak["rss_mb"], 1)[0]
    assert len(leak) == 6 and slope == pytest.approx(LEAK_MIB, abs=4.0)
    assert "LIKELY LEAK" in result.message and result.notes == ["LIKELY LEAK"]
    stages = result.table("stages").frame.set_index("stage")
    assert stages.loc["model_inference", "rss_added_mb"] == pytest.approx(LEAK_MIB, abs=4.0)



#: Fills the heap with 2 GiB of freed, still-resident 64 KiB chunks (below the mmap threshold), as a long test
#: session or dashboard does, then runs the leak check of the test above in that process.
_AFTER_FREED_HEAP = """
import sys, tempfile
from pathlib import Path
blocks = [bytearray(64 * 1024) for _ in range(32768)]
for block in blocks:
    block[::4096] = b"\\x01" * len(block[::4096])
del blocks
from tests.test_profilers import test_leak_check_flags_an_engine_whose_memory_grows as check
with tempfile.TemporaryDirectory() as tmp:
    check(Path(tmp))
print("ok")
"""


def test_a_leak_shows_in_a_process_that_freed_much_before() -> None:
    # Without the free pages handed back before each reading, each 40 MiB leaked reused resident freed chunks
    # and RSS stayed flat (the suite found it: slope 0.0 MiB/run in a worker holding 2.5 GB of freed heap).
    import subprocess
    import sys

    from tests.conftest import REPO_ROOT

    done = subprocess.run([sys.executable, "-c", _AFTER_FREED_HEAP], cwd=REPO_ROOT, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0 and done.stdout.strip().endswith("ok"), done.stderr[-2000:]
