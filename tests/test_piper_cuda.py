"""Piper on CUDA without a CUDA build of ONNX Runtime: refused with the reason, never run on the CPU
and stored as CUDA (this machine has the CPU build, so the refusal is what a real run here does)."""

from __future__ import annotations

import onnxruntime
import pytest

from engines.base import SynthesisSettings
from engines.errors import InputError, LoadError
from engines.onnx_runtime import CUDA_PROVIDER, provider_refusal
from engines.piper_engine import PIPER_CAPABILITIES, PiperEngine
from engines.validation import resolve_knobs
from profiling.run.runner import BenchRequest, EnginePool, run_bench

pytestmark = pytest.mark.skipif(
    CUDA_PROVIDER in onnxruntime.get_available_providers(), reason="this onnxruntime has the CUDA provider"
)


def cuda_settings(**knobs: object) -> SynthesisSettings:
    return SynthesisSettings("piper", device="cuda:0", knobs=resolve_knobs(PIPER_CAPABILITIES, knobs))


def test_a_session_that_fell_back_to_the_cpu_is_refused_after_it_is_built() -> None:
    engine = PiperEngine()
    with pytest.raises(LoadError, match="would run this on the CPU") as refused:
        engine.load(cuda_settings(gpu_mem_limit=512, cudnn_conv_algo_search="HEURISTIC"))
    assert "onnxruntime-gpu" in str(refused.value)
    assert engine.settings is None  # nothing loaded that a run could use


def test_a_cuda_request_is_refused_before_any_run_is_stored(tmp_path) -> None:
    from profiling.store.results import ResultsStore

    store = ResultsStore(tmp_path)
    with pytest.raises(InputError, match="not present on this machine"):
        run_bench(BenchRequest(SynthesisSettings("piper", device="cuda"), "Hello.", repeats=1), EnginePool(), store)
    assert store.runs_dataframe().empty


def test_provider_refusal_reads_what_the_session_used() -> None:
    assert provider_refusal("cpu", ["CPUExecutionProvider"], ["CPUExecutionProvider"]) is None
    assert provider_refusal("cuda", [CUDA_PROVIDER, "CPUExecutionProvider"], [CUDA_PROVIDER]) is None
    failed = provider_refusal("cuda", ["CPUExecutionProvider"], [CUDA_PROVIDER, "CPUExecutionProvider"])
    assert failed is not None and "failed to load" in failed


def test_cuda_provider_options_come_from_the_knobs() -> None:
    (name, options), = PiperEngine._providers(
        cuda_settings(arena_extend_strategy="kSameAsRequested", gpu_mem_limit=256, cudnn_conv_algo_search="DEFAULT")
    )
    assert name == CUDA_PROVIDER
    assert options == {
        "device_id": 0, "arena_extend_strategy": "kSameAsRequested", "cudnn_conv_algo_search": "DEFAULT",
        "gpu_mem_limit": 256 * 2**20,
    }
