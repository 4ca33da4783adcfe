"""The torch engines' shared knobs, typed knob reading, refusals as data, ZeroGPU (issues 12 and 16)."""

from __future__ import annotations

import dataclasses

import pytest

from engines.base import KnobRefusal, SynthesisSettings, read_knobs
from engines.errors import InputError
from engines.f5.capabilities import F5_CAPABILITIES, F5Knobs
from engines.piper_engine import PIPER_CAPABILITIES, PiperKnobs
from engines.torch_devices import ZEROGPU_ENV, zerogpu_refusal
from engines.torch_settings import BF16_CUDA_REFUSAL, TORCH_KNOB_REFUSALS, TorchSettings
from engines.validation import resolve_settings
from engines.xtts.capabilities import XTTS_CAPABILITIES, XttsKnobs
from profiling.run.zerogpu import gpu_entry

SHARED = tuple(f.name for f in dataclasses.fields(TorchSettings))


def test_xtts_and_f5_declare_the_shared_knobs_alike() -> None:
    for name in SHARED:
        xtts, f5 = XTTS_CAPABILITIES.knob(name), F5_CAPABILITIES.knob(name)
        assert (xtts.kind, xtts.phase, xtts.choices, xtts.minimum, xtts.maximum) == (
            f5.kind, f5.phase, f5.choices, f5.minimum, f5.maximum
        ), name
    assert "dit_precision_mode" not in F5_CAPABILITIES.knob_names()
    assert {"tf32", "cudnn_benchmark"} <= set(SHARED)


def test_typed_knobs_take_defaults_from_the_declaration_and_coerce() -> None:
    torch_settings = TorchSettings.of(F5_CAPABILITIES, {"warmup": "2", "compile": "true"})
    assert torch_settings.warmup == 2 and torch_settings.compile is True
    assert torch_settings.precision_mode == F5_CAPABILITIES.knob("precision_mode").default
    f5 = F5Knobs.of({"nfe_step": 8})
    assert f5.nfe_step == 8 and f5.cfg_strength == F5_CAPABILITIES.knob("cfg_strength").default
    xtts = read_knobs(XttsKnobs, XTTS_CAPABILITIES, {})
    assert xtts.use_deepspeed is False  # a knob only where deepspeed is installed: the field's default
    piper = PiperKnobs.of(SynthesisSettings("piper", knobs={"gpu_mem_limit": 256}))
    assert piper.gpu_mem_limit == 256 and piper.deterministic is PIPER_CAPABILITIES.knob("deterministic").default
    with pytest.raises(InputError, match="knob 'nfe_step'"):
        F5Knobs.of({"nfe_step": 0})


def test_refusals_are_data_with_their_conditions() -> None:
    assert BF16_CUDA_REFUSAL.matches("cuda", "bf16", (7, 5))  # a Turing GPU
    assert not BF16_CUDA_REFUSAL.matches("cuda", "bf16", (9, 0))  # Hopper
    assert not BF16_CUDA_REFUSAL.matches("cuda", "bf16", None)  # no such device known here
    assert XTTS_CAPABILITIES.refusal("cuda", "bf16", (7, 0)) and F5_CAPABILITIES.refusal("cuda", "bf16", (6, 1))
    assert XTTS_CAPABILITIES.refusal("cuda", "bf16", (8, 0)) is None
    deepspeed = next(r for r in TORCH_KNOB_REFUSALS if r.knob == "use_deepspeed")
    assert isinstance(deepspeed, KnobRefusal)
    assert deepspeed.matches("cpu", {"use_deepspeed": True}) and not deepspeed.matches("cuda", {"use_deepspeed": True})
    with pytest.raises(InputError, match="vocoder_precision=fp16 on cpu is refused"):
        resolve_settings(F5_CAPABILITIES, SynthesisSettings("f5", knobs={"vocoder_precision": "fp16"}), ("cpu",))


def test_compile_is_refused_on_zerogpu_only(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ZEROGPU_ENV, raising=False)
    assert zerogpu_refusal(True) is None
    monkeypatch.setenv(ZEROGPU_ENV, "true")
    assert "ZeroGPU" in (zerogpu_refusal(True) or "") and zerogpu_refusal(False) is None


def test_without_spaces_the_gpu_decorator_returns_the_function() -> None:
    pytest.importorskip("engines")
    try:
        import spaces  # noqa: F401
    except ImportError:
        def measure() -> int:
            return 1

        assert gpu_entry(measure) is measure
    else:
        pytest.skip("spaces is installed here")


@pytest.mark.torch
def test_tf32_and_cudnn_benchmark_knobs_set_torchs_switches() -> None:
    import torch

    cuda, cudnn = torch.backends.cuda, torch.backends.cudnn
    before = (cuda.matmul.allow_tf32, cudnn.allow_tf32, cudnn.benchmark)
    try:
        TorchSettings.of(XTTS_CAPABILITIES, {"tf32": True, "cudnn_benchmark": True}).apply("cuda")
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
        assert torch.backends.cudnn.benchmark
        from profiling.core.hardware import torch_switches

        assert torch_switches().tf32_matmul is True and torch_switches().cudnn_benchmark is True
        TorchSettings.of(XTTS_CAPABILITIES, {}).apply("cuda")
        assert not torch.backends.cuda.matmul.allow_tf32 and not torch.backends.cudnn.benchmark
    finally:
        cuda.matmul.allow_tf32, cudnn.allow_tf32, cudnn.benchmark = before


def test_f5_trainer_only_imports_get_placeholders_only_when_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util
    import sys

    from engines.f5 import trainer_imports

    monkeypatch.setattr(trainer_imports, "TRAINER_ONLY", ("ttsperf_absent_trainer_pkg", "json"))
    monkeypatch.delitem(sys.modules, "ttsperf_absent_trainer_pkg", raising=False)
    assert trainer_imports.stand_in_for_trainer_imports() == ["ttsperf_absent_trainer_pkg"]  # json is real
    placeholder = sys.modules["ttsperf_absent_trainer_pkg"]
    assert importlib.util.find_spec("ttsperf_absent_trainer_pkg") is not None  # probes by find_spec still work
    with pytest.raises(ImportError, match="inference does not"):
        placeholder.Dataset()
    monkeypatch.delitem(sys.modules, "ttsperf_absent_trainer_pkg")
