"""CUDA measurement paths that can be checked without a GPU (issue 12), and the ones that cannot (``gpu``).

No CUDA here: the tests check which function each run would call and the fields it records; the
``gpu`` tests at the end run the same paths on a real device where one exists.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import pytest

from engines.base import SynthesisSettings
from profiling.analysis.report import environment_lines
from profiling.core.device import CudaEdges, CudaMemory, TimingMode, stage_instruments
from profiling.core.environment import EnvironmentInfo, run_environment
from profiling.core.hardware import DeviceInfo, cpu_isa, cpu_precision_notes, physical_device
from profiling.core.nvml import GpuUsageReader, summarise_samples
from profiling.core.records import RunMode, RunRecord
from profiling.core.timer import StageTimer
from profiling.run.runner import BenchRequest, EnginePool, run_bench
from profiling.store.results import ResultsStore
from tests.conftest import REPO_ROOT


class StepClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class RecordedEvents:
    """Edges that stand for a device queue: each mark is the device time the queue reached."""

    def __init__(self) -> None:
        self.device_time = 0.0
        self.finished = 0

    def mark(self) -> float:
        return self.device_time

    def elapsed_s(self, start: object, end: object) -> float:
        assert self.finished, "events read before the one wait"
        return float(end) - float(start)  # type: ignore[arg-type]

    def finish(self) -> None:
        self.finished += 1


class PeakCounter:
    """A memory probe over a list of allocations: the peak since the last reset."""

    def __init__(self) -> None:
        self.current = 0.0
        self.peak = 0.0

    def allocate(self, mib: float) -> None:
        self.current += mib
        self.peak = max(self.peak, self.current)

    def free(self, mib: float) -> None:
        self.current -= mib

    def reset(self) -> None:
        self.peak = self.current

    def peaks(self) -> tuple[float, float]:
        return self.peak, self.peak * 2


# --- which function a run uses ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("device", "framework", "mode", "expected"),
    [
        ("cpu", "torch", TimingMode.SYNC, TimingMode.WALL),
        ("cuda:0", "onnxruntime", TimingMode.EVENTS, TimingMode.WALL),  # ORT calls return when done
        ("cuda:1", "torch", TimingMode.EVENTS, TimingMode.EVENTS),
        ("cuda", "torch", TimingMode.SYNC, TimingMode.SYNC),
    ],
)
def test_timing_mode_applies_only_to_torch_on_cuda(device, framework, mode, expected) -> None:
    edges, memory, applied = stage_instruments(device, framework, mode)
    assert applied is expected
    assert (edges is None) == (expected is TimingMode.WALL) == (memory is None)


@pytest.mark.torch
def test_sync_targets_the_runs_own_device_not_the_current_one() -> None:
    import torch

    edges = CudaEdges("cuda:1", TimingMode.SYNC)
    sync = edges.bind()
    assert isinstance(sync, functools.partial)
    assert sync.func is torch.cuda.synchronize
    assert sync.args == (torch.device("cuda:1"),)
    assert CudaEdges("cuda", TimingMode.SYNC).bind().args == (torch.device("cuda:0"),)  # type: ignore[union-attr]
    assert CudaMemory("cuda:3").device == "cuda:3"


def test_edges_bind_once_torch_is_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first load imports torch after its timer exists: edges before that are not synchronised,
    edges after it are (the old code chose "no sync" once, before the import, for the whole load)."""
    monkeypatch.delitem(sys.modules, "torch", raising=False)
    edges = CudaEdges("cuda:0", TimingMode.SYNC)
    assert edges.bind() is None and edges.mark() is None
    calls: list[object] = []

    class Cuda:
        @staticmethod
        def synchronize(device: object) -> None:
            calls.append(device)

    class LateTorch:  # what `import torch` puts in sys.modules halfway through the load
        cuda = Cuda
        backends = None

        @staticmethod
        def device(name: str) -> str:
            return f"device({name})"

    monkeypatch.setitem(sys.modules, "torch", LateTorch)
    assert edges.mark() is None
    assert calls == ["device(cuda:0)"]


# --- events mode and memory per stage ----------------------------------------------------------


def test_events_mode_replaces_wall_time_by_device_time_after_one_wait() -> None:
    clock, events = StepClock(), RecordedEvents()
    timer = StageTimer(clock=clock, edges=events)
    with timer.stage("outer"):
        clock.now += 0.001  # launches return at once ...
        events.device_time += 1.0  # ... the device works a second
        with timer.stage("inner"):
            clock.now += 0.001
            events.device_time += 3.0
    assert events.finished == 0
    timer.finish()
    timer.finish()
    assert events.finished == 1
    timings = {t.name: t for t in timer.timings()}
    assert timings["outer"].inclusive_s == pytest.approx(4.0)
    assert timings["outer/inner"].inclusive_s == pytest.approx(3.0)
    assert timings["outer"].exclusive_s == pytest.approx(1.0)


def test_a_stage_that_began_before_torch_keeps_its_wall_time() -> None:
    clock = StepClock()
    marks = iter([None, 5.0])  # "import": no event at its start, one at its end

    class HalfBound(RecordedEvents):
        def mark(self) -> float | None:
            return next(marks)

    timer = StageTimer(clock=clock, edges=HalfBound())
    with timer.stage("import"):
        clock.now += 2.0
    timer.finish()
    assert timer.timings()[0].inclusive_s == pytest.approx(2.0)


def test_peak_memory_per_stage_nests_and_the_run_peak_covers_all() -> None:
    probe = PeakCounter()
    probe.allocate(100)  # the model: resident before the run
    timer = StageTimer(memory=probe)
    with timer.stage("encode"):
        probe.allocate(50)
        probe.free(50)
        with timer.stage("attention"):
            probe.allocate(300)
            probe.free(300)
    with timer.stage("decode"):
        probe.allocate(20)
        probe.free(20)
    timings = {t.name: t for t in timer.timings()}
    assert timings["encode"].peak_allocated_mb == 400  # its own 150 and its child's 400
    assert timings["encode/attention"].peak_allocated_mb == 400
    assert timings["decode"].peak_allocated_mb == 120
    assert timings["decode"].peak_reserved_mb == 240
    assert timer.peak_memory() == (400, 800)
    assert StageTimer().peak_memory() == (None, None)


# --- what a run records ---------------------------------------------------------------------------


def test_a_cpu_run_records_wall_timing_load_stages_and_the_isa(tmp_path: Path) -> None:
    pytest.importorskip("piper")  # absent on the GPU machine and in its rehearsal
    pool = EnginePool()
    request = BenchRequest(
        SynthesisSettings("piper", knobs={"deterministic": True}), "Hello there.", repeats=1, warmup=1,
        timing=TimingMode.EVENTS,
    )
    store = ResultsStore(tmp_path)
    result = run_bench(request, pool, store)
    first, second = result.records
    assert first.timing_mode == second.timing_mode == "wall"  # nothing to wait for on the CPU
    assert [t.name for t in first.load_stages] == ["read_config", "create_session"]
    assert second.load_stages == []  # the load belongs to the batch's first record
    assert first.gpu_peak_allocated_mb is None and first.gpu_sampling == "skipped: not a CUDA run"
    assert first.environment.device == DeviceInfo("cpu")
    assert first.environment.cpu_isa == list(cpu_isa())
    stored = store.load_batch(result.batch_id)
    assert [t.name for t in stored[0].load_stages] == ["read_config", "create_session"]
    again = run_bench(request, pool, store)
    assert again.load_stages == [] and again.records[0].load_stages == []


def test_a_record_stored_before_these_fields_still_loads() -> None:
    record = RunRecord(
        engine="piper", settings=SynthesisSettings("piper"), mode=RunMode.BATCH,
        text="x", environment=run_environment("cpu"), batch_id="b",
    )
    data = record.to_dict()
    for key in ("timing_mode", "load_stages", "gpu_peak_allocated_mb", "recompiles", "graph_breaks"):
        data.pop(key)
    for key in ("cpu_isa", "device", "tf32_matmul", "cudnn_benchmark"):
        data["environment"].pop(key)
    old = RunRecord.from_dict(data)
    assert old.timing_mode == "wall" and old.load_stages == [] and old.environment.cpu_isa == []
    assert old.environment.device == DeviceInfo()


def test_cuda_environment_is_shown_with_the_device_actually_used() -> None:
    env = EnvironmentInfo(
        python="3.12", platform="linux", cpu_model="EPYC", logical_cores=16, physical_cores=8, memory_gib=128,
        gpu_driver="580.1", packages={"torch": "2.11.0"}, cpu_isa=["avx2", "avx512f"], torch_cpu_capability="AVX512",
        torch_cuda="13.0", cudnn="91900", tf32_matmul=False, tf32_cudnn=True,
        device=DeviceInfo("cuda:1", name="NVIDIA H200", memory_gib=139.8, capability="9.0", physical="3",
                          visible_devices="2,3"),
        float32_matmul_precision="highest", cudnn_benchmark=False,
    )
    text = "\n".join(environment_lines(env, "events"))
    for part in ("cuda:1 = NVIDIA H200", "machine GPU 3", "CUDA_VISIBLE_DEVICES=2,3", "compute capability 9.0",
                 "driver 580.1", "CUDA 13.0", "cuDNN 91900", "TF32 matmul off", "TF32 cuDNN on",
                 "cudnn.benchmark off", "ISA avx2, avx512f", "torch CPU capability AVX512", "stage timing: events"):
        assert part in text


def test_cuda_visible_devices_maps_process_index_to_machine_gpu() -> None:
    assert physical_device(1, "2,3") == "3"
    assert physical_device(0, None) == "0"
    assert physical_device(0, "GPU-abc, GPU-def") == "GPU-abc"
    assert physical_device(2, "5").startswith("?")


def test_precision_notes_say_when_the_cpu_emulates(tmp_path: Path) -> None:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx2 fma\nprocessor\t: 1\n")
    isa = cpu_isa.__wrapped__(cpuinfo)
    assert isa == ("avx2",)
    notes = cpu_precision_notes(isa, ("fp32", "fp16", "bf16", "int8"))
    assert set(notes) == {"fp16", "bf16"} and "emulated" in notes["bf16"]
    assert "bf16" not in cpu_precision_notes(("avx2", "avx512_bf16"), ("bf16",))
    assert cpu_precision_notes(isa, ("fp32",)) == {}


# --- memory and GPU readers ---------------------------------------------------------------------


_RSS_BLOCKS = """
import json
import numpy as np
from profiling.core.rss import PeakRssSampler
big = np.ones(300 * 2**20 // 8)  # 300 MiB, touched
del big
with PeakRssSampler() as quiet:
    pass
with PeakRssSampler() as busy:
    block = np.ones(120 * 2**20 // 8)
    del block
print(json.dumps([quiet.method, quiet.peak_mb, busy.peak_mb]))
"""


def test_rss_peak_is_this_blocks_not_the_processes_lifetime() -> None:
    # The blocks run in a fresh interpreter, where a new 120 MiB array is new resident memory. In the test process
    # after the RVC tests it was not: glibc's heap held ~500 MiB freed by their tensors, still resident, and served
    # the array from it (mallinfo2: in-use +120 MiB, mmapped unchanged), so RSS, and rightly its peak, did not move.
    out = subprocess.run([sys.executable, "-c", _RSS_BLOCKS], cwd=REPO_ROOT, capture_output=True, text=True,
                         timeout=120, check=True)
    method, quiet_mb, busy_mb = json.loads(out.stdout.strip().splitlines()[-1])
    assert method in ("kernel", "sampled")
    if method == "kernel":  # the earlier 300 MiB does not leak into either block's peak
        assert busy_mb - quiet_mb > 60
    assert busy_mb >= quiet_mb


def test_nvml_reading_is_skipped_with_a_reason_off_cuda() -> None:
    reader = GpuUsageReader()
    with reader:
        pass
    assert reader.usage.note == "skipped: not a CUDA run"
    with GpuUsageReader(physical="0") as asked:
        pass
    if asked.usage.util_mean_pct is None:  # no NVML here: why, not a silent blank
        assert asked.usage.note.startswith(("skipped", "nvml"))
    assert summarise_samples([10.0, 30.0], 512.0).util_mean_pct == 20.0
    assert "0 samples" in summarise_samples([], None).note


# --- on a real GPU --------------------------------------------------------------------------------


@pytest.mark.gpu
def test_gpu_events_and_sync_both_charge_a_matmul_to_its_stage() -> None:
    import torch

    a = torch.randn(4096, 4096, device="cuda:0")
    times = {}
    for mode in (TimingMode.SYNC, TimingMode.EVENTS):
        edges, memory, _ = stage_instruments("cuda:0", "torch", mode)
        timer = StageTimer(edges=edges, memory=memory)
        with timer.stage("idle"):
            pass
        with timer.stage("matmul"):
            for _ in range(20):
                a = a @ a / 4096
        timer.finish()
        stages = {t.name: t for t in timer.timings()}
        times[mode] = stages["matmul"].inclusive_s
        assert stages["matmul"].inclusive_s > stages["idle"].inclusive_s
        assert stages["matmul"].peak_allocated_mb is not None and stages["matmul"].peak_allocated_mb >= 64
    assert times[TimingMode.EVENTS] > 0


@pytest.mark.gpu
def test_gpu_environment_names_the_device_used() -> None:
    import torch

    torch.zeros(1, device="cuda:0")
    env = run_environment("cuda:0")
    assert env.device.name == torch.cuda.get_device_name(0)
    assert env.device.capability and env.torch_cuda and env.tf32_matmul is not None
