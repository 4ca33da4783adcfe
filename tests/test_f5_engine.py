"""F5-TTS engine on the tiny random model: real f5_tts code, real torch, real audio arrays.

Nothing full-size: the tiny DiT (~0.8 M) and tiny Vocos run a synthesis in well under a second.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

pytest.importorskip("f5_tts")
pytest.importorskip("torch")

from engines.base import Audio, SynthesisSettings, Voice  # noqa: E402
from engines.errors import InputError  # noqa: E402
from engines.f5.capabilities import (  # noqa: E402
    EPSS_STEPS,
    F5_CAPABILITIES,  # noqa: E402
    PRECISION_CHOICES,
)
from engines.f5.chunking import CrossfadeJoiner, f5_max_bytes, plan_chunks  # noqa: E402
from engines.f5.engine import F5Engine  # noqa: E402
from engines.validation import resolve_settings  # noqa: E402
from profiling.audio.quality import log_mel_distance  # noqa: E402
from profiling.core.timer import StageTimer  # noqa: E402
from tests.conftest import REPO_ROOT  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("one_torch_thread")]

SHORT = "Hello there, this is a short test."
LONG = (
    "Flow matching turns noise into speech in a few steps. Each step runs the whole transformer, "
    "so the number of steps sets the cost. The vocoder then turns the mel frames into a waveform, "
    "and the chunks are joined with a short cross-fade."
)
PIPELINE_STAGES = {
    "reference_audio_load", "reference_mel", "text_preparation", "duration_estimate",
    "ode_solve", "vocoder_decode", "crossfade",
}


def settings(precision: str = "fp32", **knobs: object) -> SynthesisSettings:
    base = {"weights": "random-tiny", "nfe_step": 4, "torch_threads": 1}
    return resolve_settings(
        F5Engine.capabilities, SynthesisSettings("f5", precision=precision, knobs={**base, **knobs}), ("cpu",)
    )


@pytest.fixture(scope="module")
def engine() -> F5Engine:
    loaded = F5Engine()
    loaded.load(settings())
    return loaded


@pytest.fixture(scope="module")
def voice(tmp_path_factory: pytest.TempPathFactory) -> Voice:
    """The first 1.5 s of F5's shipped reference: a shorter prompt keeps the DiT sequence (and the tests) short."""
    import soundfile

    from engines.f5.reference import default_reference_audio

    samples, rate = soundfile.read(default_reference_audio(), dtype="float32")
    path = tmp_path_factory.mktemp("f5ref") / "short_ref.wav"
    soundfile.write(path, samples[: int(1.5 * rate)], rate)
    return Voice(reference_audio=path, reference_text="Some call me nature.")


def run(engine: F5Engine, voice: Voice, text: str = SHORT, **knobs: object) -> tuple[Audio, StageTimer]:
    timer = StageTimer()
    audio = engine.synthesize(text, voice, settings(**knobs), timer)
    return audio, timer


def test_module_import_stays_light() -> None:
    code = "import sys, engines.f5.engine as m; m.F5Engine.capabilities; print('torch' in sys.modules, " \
           "'f5_tts' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    assert result.stdout.split() == ["False", "False"], result.stderr


def test_every_stage_is_reported_and_each_nfe_step_timed(engine: F5Engine) -> None:
    audio, timer = run(engine, Voice(), nfe_step=6)  # the default voice: F5's shipped reference
    names = {timing.name for timing in timer.timings()}
    assert PIPELINE_STAGES <= names
    assert len(timer.series["nfe_step_s"]) == 6
    assert all(value > 0 for value in timer.series["nfe_step_s"])
    ode = next(t for t in timer.timings() if t.name == "ode_solve")
    assert sum(timer.series["nfe_step_s"]) <= ode.inclusive_s  # the steps happen inside the solve
    assert audio.sample_rate == 24000 and audio.duration_s > 0.5
    assert np.isfinite(audio.samples).all() and np.abs(audio.samples).max() > 1e-3  # randomised: not silent
    for key in ("dtype.dit_params", "dtype.ode_solve", "dtype.vocoder_decode", "dtype.reference_mel"):
        assert timer.annotations[key] == "torch.float32"
    assert engine.random_weights and engine.describe_model()["weights"] == "random"


@pytest.mark.parametrize("nfe_step", [*EPSS_STEPS, 3, 8])
def test_each_nfe_value_uses_f5s_schedule(engine: F5Engine, voice: Voice, nfe_step: int) -> None:
    from engines.f5.ode import ode_timesteps

    _, timer = run(engine, voice, "Short one.", nfe_step=nfe_step, sway_sampling_coef=-1.0)
    assert len(timer.series["nfe_step_s"]) == nfe_step
    expected = ode_timesteps(nfe_step, -1.0)[:-1]  # the DiT is evaluated at each step's start time
    assert timer.series["nfe_t"] == pytest.approx(expected, abs=1e-6)
    assert timer.annotations["ode_schedule"] == ("epss" if nfe_step in EPSS_STEPS else "uniform")


def test_epss_and_uniform_grids_differ() -> None:
    from engines.f5.ode import ode_timesteps

    epss, uniform = ode_timesteps(16, None), ode_timesteps(15, None)
    assert epss[1] == pytest.approx(1 / 32) and uniform[1] == pytest.approx(1 / 15)


def test_midpoint_evaluates_twice_per_step(engine: F5Engine, voice: Voice) -> None:
    _, timer = run(engine, voice, "Short one.", nfe_step=4, ode_method="midpoint")
    assert len(timer.series["nfe_step_s"]) == 8 and timer.annotations["nfe_evaluations"] == 8


def test_fixed_seed_repeats_exactly_and_seed_changes_audio(engine: F5Engine, voice: Voice) -> None:
    first, _ = run(engine, voice)
    again, _ = run(engine, voice)
    other = engine.synthesize(SHORT, voice, replace(settings(), seed=7))
    assert np.array_equal(first.samples, again.samples)
    assert log_mel_distance(other, first) > 0.01


def test_no_cfg_skips_the_unconditional_pass(engine: F5Engine, voice: Voice) -> None:
    with_cfg, _ = run(engine, voice, cfg_strength=2.0)
    without, _ = run(engine, voice, cfg_strength=0.0)
    assert len(with_cfg.samples) == len(without.samples)
    assert not np.array_equal(with_cfg.samples, without.samples)


@pytest.mark.parametrize(
    ("precision", "mode", "vocoder"),
    list(itertools.product(PRECISION_CHOICES, ("autocast", "cast"), PRECISION_CHOICES)),
)
def test_each_precision_mode_runs_or_is_refused(voice: Voice, precision: str, mode: str, vocoder: str) -> None:
    knobs = {"precision_mode": mode, "vocoder_precision": vocoder, "nfe_step": 2}
    candidate = F5Engine()
    if [r for r in F5_CAPABILITIES.knob_refusals if r.matches("cpu", knobs)]:
        with pytest.raises(InputError, match="refused: .*float16"):
            settings(precision, **knobs)  # refused with the settings, before any engine is touched
        unresolved = SynthesisSettings("f5", precision=precision, knobs={"weights": "random-tiny", **knobs})
        with pytest.raises(InputError, match="refused: .*float16"):
            candidate.load(unresolved)  # and by the engine itself when called directly
        assert candidate.describe_model() == {}  # refused before anything was built
        return
    chosen = settings(precision, **knobs)
    candidate.load(chosen)
    timer = StageTimer()
    audio = candidate.synthesize(SHORT, voice, chosen, timer)
    assert np.isfinite(audio.samples).all() and np.abs(audio.samples).max() > 1e-3
    names = {"fp32": "torch.float32", "fp16": "torch.float16", "bf16": "torch.bfloat16"}
    cast = mode == "cast" and precision != "fp32"
    assert timer.annotations["dtype.dit_params"] == (names[precision] if cast else "torch.float32")
    assert timer.annotations["dtype.ode_solve"] == names[precision]  # what the DiT actually returned
    assert timer.annotations["dtype.vocoder_params"] == names[vocoder]


def test_fidelity_of_each_precision_against_fp32(voice: Voice) -> None:
    """Same seed, same weights: fp32 is reproduced exactly; lower precisions move the audio a little
    under autocast, and a lot when cast (F5 then draws its initial noise in the cast dtype)."""
    distances = {}
    reference = None
    for precision, mode in [("fp32", "autocast"), ("bf16", "autocast"), ("fp16", "autocast"), ("bf16", "cast")]:
        chosen = settings(precision, precision_mode=mode, nfe_step=4)
        candidate = F5Engine()
        candidate.load(chosen)
        audio = candidate.synthesize(SHORT, voice, chosen)
        reference = reference or audio
        distances[(precision, mode)] = log_mel_distance(audio, reference)
    assert distances[("fp32", "autocast")] == 0.0
    assert 0.0 < distances[("bf16", "autocast")] < distances[("bf16", "cast")]
    assert 0.0 < distances[("fp16", "autocast")] < distances[("bf16", "cast")]


def test_chunked_stream_equals_the_one_shot_audio(engine: F5Engine, voice: Voice) -> None:
    chosen = settings(chunker="lab", first_chunk_max_chars=20, nfe_step=2)
    timer = StageTimer()
    chunks = list(engine.stream(LONG, voice, chosen, timer))
    assert len(chunks) >= 2 and [c.index for c in chunks] == list(range(len(chunks)))
    assert len(chunks[0].text) <= 20 < max(len(c.text) for c in chunks[1:])  # the first chunk is short
    assert len(timer.series["nfe_step_s"]) == 2 * len(chunks)  # each chunk solved on its own
    streamed = Audio.concatenate([c.audio for c in chunks])
    whole = engine.synthesize(LONG, voice, chosen)
    assert np.allclose(streamed.samples, whole.samples, atol=1e-6)  # the held-back fade is exact
    assert timer.annotations["stream_mode"] == "chunked"


def test_pseudo_stream_slices_whole_chunks(engine: F5Engine, voice: Voice) -> None:
    chosen = settings(stream_mode="pseudo", stream_slice_samples=2048, nfe_step=2)
    timer = StageTimer()
    pieces = list(engine.stream(SHORT, voice, chosen, timer))
    assert len(pieces) > 2 and all(len(p.audio.samples) == 2048 for p in pieces[:-1])
    assert len(timer.series["nfe_step_s"]) == 2  # one chunk, generated whole before the first slice
    whole = engine.synthesize(SHORT, voice, chosen)
    assert np.allclose(Audio.concatenate([p.audio for p in pieces]).samples, whole.samples, atol=1e-6)


def test_chunk_batches_share_one_solve(engine: F5Engine, voice: Voice) -> None:
    single, timer_single = run(engine, voice, LONG, chunker="lab", chunk_batch_size=1, nfe_step=2)
    batched, timer_batched = run(engine, voice, LONG, chunker="lab", chunk_batch_size=16, nfe_step=2)
    chunks = int(timer_single.annotations["chunks"])
    assert chunks >= 2
    assert len(timer_single.series["nfe_step_s"]) == 2 * chunks
    assert len(timer_batched.series["nfe_step_s"]) == 2  # all chunks in one padded batch
    assert len(batched.samples) == len(single.samples)


def test_f5_chunker_is_f5s_chunk_text() -> None:
    from f5_tts.infer.utils_infer import chunk_text

    ref_text, ref_seconds = "Some call me nature, others call me mother nature. ", 5.33
    text = " ".join([LONG] * 3)
    max_bytes = f5_max_bytes(ref_text, ref_seconds, 1.0)
    assert max_bytes == int(len(ref_text.encode()) / ref_seconds * (22 - ref_seconds))
    assert plan_chunks(text, "f5", ref_text, ref_seconds, 1.0, 20) == chunk_text(text, max_chars=max_bytes)
    lab = plan_chunks(text, "lab", ref_text, ref_seconds, 1.0, 20)
    assert len(lab[0]) <= 20 and "".join(lab).split() == text.split()


def _f5_crossfade(waves: list[np.ndarray], samples: int) -> np.ndarray:
    """F5's one-shot cross-fade, as written in utils_infer.infer_batch_process."""
    final = waves[0]
    for wave in waves[1:]:
        n = min(samples, len(final), len(wave))
        if n <= 0:
            final = np.concatenate([final, wave])
            continue
        mixed = final[-n:] * np.linspace(1, 0, n) + wave[:n] * np.linspace(0, 1, n)
        final = np.concatenate([final[:-n], mixed, wave[n:]])
    return final


@pytest.mark.parametrize("lengths", [[5000, 7000, 4000], [100, 3000, 50, 9000], [4000], [10, 20]])
def test_incremental_crossfade_matches_f5(lengths: list[int]) -> None:
    rng = np.random.default_rng(0)
    waves = [rng.standard_normal(n).astype(np.float32) for n in lengths]
    joiner = CrossfadeJoiner(3600)
    pieces = [joiner.push(w) for w in waves] + [joiner.finish()]
    assert np.allclose(np.concatenate(pieces), _f5_crossfade(waves, 3600), atol=1e-5)


def test_voice_errors_are_clear(engine: F5Engine, tmp_path) -> None:
    with pytest.raises(InputError, match="transcript"):
        engine.synthesize(SHORT, Voice(reference_audio=tmp_path / "x.wav"), settings())
    with pytest.raises(InputError, match="named speakers"):
        engine.synthesize(SHORT, Voice(speaker="joe"), settings())
    with pytest.raises(InputError, match="cannot read reference audio"):
        engine.synthesize(SHORT, Voice(reference_audio=tmp_path / "missing.wav", reference_text="Hi."), settings())


def test_reference_at_another_rate_is_resampled(engine: F5Engine, tmp_path) -> None:
    import soundfile

    rate = 16000
    t = np.arange(int(2.0 * rate)) / rate
    path = tmp_path / "ref16k.wav"
    soundfile.write(path, (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate)
    timer = StageTimer()
    audio = engine.synthesize(SHORT, Voice(reference_audio=path, reference_text="A two second tone."),
                              settings(), timer)
    assert audio.sample_rate == 24000 and np.isfinite(audio.samples).all()
    assert {"reference_audio_load", "reference_mel"} <= {s.name for s in timer.timings()}


def test_warmup_at_load_runs_outside_the_measured_runs(voice: Voice) -> None:
    chosen = settings(warmup=1, nfe_step=2)
    load_timer = StageTimer()
    warmed = F5Engine()
    warmed.load(chosen, load_timer)
    warmup = next(t for t in load_timer.timings() if t.name == "warmup")
    assert warmup.calls == 1 and warmup.inclusive_s > 0
    _, timer = run(warmed, voice, nfe_step=2)
    assert "warmup" not in {t.name for t in timer.timings()}


def test_hot_functions_resolve() -> None:
    import importlib

    for dotted in F5Engine.hot_functions:
        parts = dotted.split(".")
        for cut in range(len(parts) - 1, 0, -1):
            try:
                target = importlib.import_module(".".join(parts[:cut]))
            except ImportError:
                continue
            for attribute in parts[cut:]:
                target = getattr(target, attribute)
            assert callable(target), dotted
            break
        else:
            pytest.fail(f"{dotted} does not import")


def test_bf16_cast_time_grid_is_refused_with_the_reason(voice: Voice, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(InputError, match="nfe_step=16 .* round to"):
        F5Engine().load(settings("bf16", precision_mode="cast", nfe_step=16))
    cast = F5Engine()
    cast.load(settings("bf16", precision_mode="cast", nfe_step=2))
    with pytest.raises(InputError, match="nfe_step=32 .*bfloat16"):
        cast.synthesize(SHORT, voice, settings("bf16", precision_mode="cast", nfe_step=32))
    autocast = F5Engine()
    autocast.load(settings("bf16", nfe_step=16))  # autocast keeps the grid in fp32: it runs
    assert np.isfinite(autocast.synthesize("Short one.", voice, settings("bf16", nfe_step=16)).samples).all()
    # The refusal is honest: without it, F5's own sampler fails on the same settings.
    monkeypatch.setattr(F5Engine, "_check_time_grid", staticmethod(lambda *_: None))
    with pytest.raises(AssertionError, match="strictly increasing"):
        cast.synthesize(SHORT, voice, settings("bf16", precision_mode="cast", nfe_step=32))


def test_torch_threads_knob_is_applied_and_recorded(voice: Voice) -> None:
    import torch

    before = torch.get_num_threads()
    try:
        two = F5Engine()
        two.load(settings(torch_threads=2, nfe_step=2))
        _, timer = run(two, voice, torch_threads=2, nfe_step=2)
        assert torch.get_num_threads() == 2 and timer.annotations["torch_threads"] == 2
    finally:
        torch.set_num_threads(before)  # process-wide: leave the test process as it was


@pytest.mark.parametrize(
    ("precision", "knobs", "message"),
    [
        ("fp32", {"vocoder_precision": "fp16"}, "vocoder_precision=fp16 on cpu is refused"),
        ("bf16", {"precision_mode": "cast", "nfe_step": 16}, "cannot run with the DiT cast to bfloat16"),
    ],
)
def test_refusals_come_before_anything_is_loaded_or_stored(
    tmp_path, precision: str, knobs: dict, message: str
) -> None:
    from profiling.run.runner import BenchRequest, EnginePool, run_bench
    from profiling.store.results import ResultsStore

    store = ResultsStore(tmp_path)
    pool = EnginePool()
    request = BenchRequest(
        SynthesisSettings("f5", precision=precision, knobs={"weights": "random-tiny", "torch_threads": 1, **knobs}),
        text=SHORT, repeats=1, warmup=0,
    )
    with pytest.raises(InputError, match=message):
        run_bench(request, pool, store)
    assert store.count_runs() == 0
    assert pool._engines == {}  # refused before any model was built
