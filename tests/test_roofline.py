"""The roofline: FLOP and byte counts against analytic values, utilisations, and untouched stage times."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from engines.base import Audio, AudioChunk, Capabilities, Engine, SynthesisSettings, Voice
from engines.hooks import NULL_HOOK, StageHook
from engines.registry import available_engines
from profiling.core.records import RunMode

torch = pytest.importorskip("torch")

pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("one_torch_thread")]

BATCH, IN, OUT = 8, 64, 32
CHANNELS_IN, CHANNELS_OUT, KERNEL, LENGTH = 4, 6, 3, 50
STEPS = 3


class LinearConvEngine(Engine):
    """Two stages of known cost: a linear layer run STEPS times (one observation each) and a conv."""

    name = "linearconv"
    capabilities = Capabilities(devices=("cpu",), precisions=("fp32",), streaming=False, voice_cloning=False,
                                sample_rate=16000)

    def load(self, settings: SynthesisSettings, hook: StageHook = NULL_HOOK) -> None:
        self.linear = torch.nn.Linear(IN, OUT)
        self.conv = torch.nn.Conv1d(CHANNELS_IN, CHANNELS_OUT, KERNEL)

    def synthesize(self, text: str, voice: Voice, settings: SynthesisSettings, hook: StageHook = NULL_HOOK) -> Audio:
        with torch.inference_mode():
            with hook.stage("linear"):
                for _ in range(STEPS):
                    self.linear(torch.randn(BATCH, IN))
                    hook.observe("step_s", 0.0)
            with hook.stage("conv"):
                out = self.conv(torch.randn(1, CHANNELS_IN, LENGTH))
        return Audio(out.flatten().numpy().astype(np.float32), 16000)

    def stream(self, text: str, voice: Voice, settings: SynthesisSettings,
               hook: StageHook = NULL_HOOK) -> Iterator[AudioChunk]:
        yield AudioChunk(self.synthesize(text, voice, settings, hook), text, 0)


def test_flop_and_byte_counts_match_analytic_counts() -> None:
    from profiling.roofline.counting import count_stages

    engine = LinearConvEngine()
    settings = SynthesisSettings("linearconv")
    engine.load(settings)
    counts = count_stages(engine, "x", Voice(), settings, RunMode.BATCH)
    linear, conv = counts.stages["linear"], counts.stages["conv"]
    assert linear.flops == STEPS * 2 * BATCH * IN * OUT
    out_length = LENGTH - KERNEL + 1
    assert conv.flops == 2 * CHANNELS_OUT * out_length * CHANNELS_IN * KERNEL
    assert linear.weight_bytes == STEPS * (IN * OUT + OUT) * 4  # weights read once per call
    assert conv.weight_bytes == (CHANNELS_OUT * CHANNELS_IN * KERNEL + CHANNELS_OUT) * 4
    assert linear.steps == STEPS and conv.steps == 0
    assert counts.totals.flops == linear.flops + conv.flops


@pytest.fixture(scope="module")
def f5_report(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    if "f5" not in available_engines():
        pytest.skip("the f5 extra is not installed")
    from profiling.profilers.common import ProfileOptions
    from profiling.profilers.session import ProfileRequest, run_profile
    from profiling.run.runner import EnginePool
    from profiling.store.results import ResultsStore

    store = ResultsStore(tmp_path_factory.mktemp("roofline"))
    settings = SynthesisSettings("f5", knobs={"weights": "random-tiny", "nfe_step": 2, "torch_threads": 1})
    request = ProfileRequest(settings, "Hello there.", profilers=("roofline",), options=ProfileOptions(repeats=3))
    return run_profile(request, EnginePool(), store), store


def test_utilisations_on_this_cpu_are_fractions_of_the_measured_ceilings(f5_report) -> None:  # noqa: ANN001
    report, store = f5_report
    result = report.result("roofline")
    assert result.status.value == "ok", result.message
    stages = result.table("stages").frame
    assert {"ode_solve", "vocoder_decode"} <= set(stages["stage"])
    for column in ("compute_util", "memory_util"):
        assert ((stages[column] > 0) & (stages[column] <= 1)).all(), stages[["stage", column]]
    ode = stages.set_index("stage").loc["ode_solve"]
    assert ode["steps"] == 2  # one observation per NFE step
    ceilings = result.table("ceilings").frame
    assert (ceilings["measured"] > 0).all()
    assert any(Path(store.data_dir / "ceilings").glob("*.json"))  # cached per machine


def test_counting_pass_is_not_inside_the_timed_runs(f5_report) -> None:  # noqa: ANN001
    report, store = f5_report
    result = report.result("roofline")
    # Only the timed runs are stored as roofline runs; the counting pass (several times slower
    # under its counters) is not one of them, so the timed runs match the plain runs beside them.
    assert len(result.records) == 3
    assert result.overhead is not None and result.overhead.ratio < 1.5
    plain = np.median([r.stage("ode_solve").inclusive_s for r in report.baseline])
    timed = np.median([r.stage("ode_solve").inclusive_s for r in result.records])
    assert timed < 1.5 * plain
