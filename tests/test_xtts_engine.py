"""XTTS engine on the tiny random architecture: stages, cache, streaming, precision, checkpoints.

The reference voice is real speech from the bundled Piper voice. Nothing here is
full size; each synthesis generates a handful of GPT tokens.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engines.base import SynthesisSettings, Voice
from engines.errors import InputError, LoadError
from engines.validation import resolve_knobs, validate_precision
from profiling.core.timer import StageTimer
from tests.cli_in_process import run_main

pytest.importorskip("TTS")
torch = pytest.importorskip("torch")

pytestmark = pytest.mark.torch

ROOT = Path(__file__).resolve().parent.parent
TEXT = "Hello world, this is a test."
TOKENS = 6
#: GPT stages every synthesis reports (conditioning only when the voice cache misses).
BATCH_STAGES = (
    "reference_audio_load", "text_normalization", "tokenization", "gpt_prefill", "gpt_decode",
    "gpt_latent_pass", "hifigan_decode", "post_processing",
)
CONDITIONING_STAGES = (
    "speaker_conditioning", "speaker_conditioning/speaker_embedding", "speaker_conditioning/gpt_conditioning",
)


@pytest.fixture(scope="module")
def reference_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few seconds of real speech from Piper (deterministic), saved as WAV."""
    import soundfile

    from engines.piper_engine import PiperEngine

    engine = PiperEngine()
    settings = SynthesisSettings("piper", knobs={"deterministic": True})
    engine.load(settings)
    audio = engine.synthesize("This is a reference voice for the cloning tests. It speaks a few words.", Voice(),
                              settings)
    path = tmp_path_factory.mktemp("ref") / "reference.wav"
    soundfile.write(path, audio.samples, audio.sample_rate)
    return path


def xtts_settings(precision: str = "fp32", **knobs: object) -> SynthesisSettings:
    base: dict[str, object] = {
        "weights": "random-tiny", "warmup": 0, "voice_cache": "off", "max_audio_tokens": TOKENS,
    }
    return SynthesisSettings("xtts", precision=precision, knobs={**base, **knobs})


def loaded(settings: SynthesisSettings):
    from engines.xtts.engine import XttsEngine

    engine = XttsEngine()
    engine.load(settings)
    return engine


@pytest.fixture(scope="module")
def engine():
    return loaded(xtts_settings())


def names(timer: StageTimer) -> list[str]:
    return [t.name for t in timer.timings()]


def test_registry_reads_capabilities_without_torch() -> None:
    code = (
        "import sys; from engines.registry import capabilities; c = capabilities('xtts'); "
        "print(len(c.knobs), 'torch' in sys.modules, 'TTS' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    count, torch_loaded, tts_loaded = out.stdout.split()
    assert int(count) > 20
    assert (torch_loaded, tts_loaded) == ("False", "False")


def test_every_knob_is_typed_once_and_generation_settings_derive_from_the_knobs(engine) -> None:
    from dataclasses import fields

    from engines.torch_settings import TorchSettings
    from engines.xtts.capabilities import RANDOM_DEFAULT_TOKENS, XTTS_CAPABILITIES, GenerationKnobs, XttsKnobs
    from engines.xtts.pipeline import GenerationSettings

    typed = [f.name for f in (*fields(XttsKnobs), *fields(TorchSettings))]
    declared = set(XTTS_CAPABILITIES.knob_names()) | {"use_deepspeed"}  # a knob only where deepspeed is
    assert len(typed) == len(set(typed)) and set(typed) == declared
    generation = [f.name for f in fields(GenerationKnobs)]
    assert [f.name for f in fields(GenerationSettings)] == [*generation, "fixed_length", "length_model"]
    changed = {"language": "de", "temperature": 0.3, "top_k": 7, "top_p": 0.5, "repetition_penalty": 2.0,
               "length_penalty": 0.5, "do_sample": False, "speed": 1.5, "enable_text_splitting": True}
    assert set(changed) == set(generation) - {"max_audio_tokens"}
    gen = engine._generation_settings(xtts_settings(**changed, max_audio_tokens=0))
    assert {name: getattr(gen, name) for name in changed} == changed
    # Derived from the random weights: the length model decides each sentence, up to the default cap.
    assert (gen.max_audio_tokens, gen.fixed_length, gen.length_model) == (RANDOM_DEFAULT_TOKENS, True, True)
    fixed = engine._generation_settings(xtts_settings(max_audio_tokens=9))
    assert (fixed.max_audio_tokens, fixed.length_model) == (9, False)


def test_every_stage_reported_with_per_token_times(engine, reference_wav: Path) -> None:
    timer = StageTimer()
    audio = engine.synthesize(TEXT, Voice(reference_audio=reference_wav), xtts_settings(), timer)
    stages = names(timer)
    for stage in (*BATCH_STAGES, *CONDITIONING_STAGES):
        assert stage in stages, stage
    # Random weights: the stop token is suppressed, so exactly TOKENS are generated.
    assert timer.annotations["gpt_tokens"] == TOKENS
    assert len(timer.series["gpt_token_s"]) == TOKENS - 1  # the first token comes out of prefill
    assert timer.annotations["gpt_tokens_per_s"] > 0
    # 1024 GPT samples at 22.05 kHz per token, HiFi-GAN out at 24 kHz.
    assert audio.sample_rate == 24000
    assert abs(len(audio.samples) - TOKENS * 1024 * 24000 / 22050) < 300
    assert np.isfinite(audio.samples).all() and np.abs(audio.samples).max() > 0
    for key in ("dtype.gpt_prefill", "dtype.gpt_decode", "dtype.gpt_latent_pass", "dtype.hifigan_decode"):
        assert timer.annotations[key] == "float32"
    assert "gpt=float32" in str(timer.annotations["dtype.params"])
    assert engine.random_weights and engine.describe_model()["weights"] == "random-tiny"


def test_no_voice_is_a_clear_error(engine) -> None:
    with pytest.raises(InputError, match="reference audio"):
        engine.synthesize(TEXT, Voice(), xtts_settings())


def test_voice_cache_hit_skips_conditioning_and_survives_a_new_engine(
    engine, reference_wav: Path, tmp_path: Path
) -> None:
    settings = xtts_settings(voice_cache="memory+disk", voice_cache_dir=str(tmp_path))
    voice = Voice(reference_audio=reference_wav)
    first, second = StageTimer(), StageTimer()
    engine.synthesize(TEXT, voice, settings, first)
    engine.synthesize(TEXT, voice, settings, second)
    assert first.annotations["voice_cache"] == "miss"
    assert "speaker_conditioning" in names(first)
    assert second.annotations["voice_cache"] == "hit"
    assert second.annotations["voice_cache_source"] == "memory"
    assert not set(CONDITIONING_STAGES) & set(names(second))  # the hit ran no conditioning at all
    paid = next(t.inclusive_s for t in first.timings() if t.name == "speaker_conditioning")
    saved = second.annotations["voice_cache_saving_s"]
    assert 0 < saved and abs(saved - paid) <= 0.5 * paid  # the saving shown is what the miss paid
    assert list(tmp_path.glob("*.safetensors"))

    fresh = loaded(settings)  # a new instance: only the disk can answer
    third = StageTimer()
    fresh.synthesize(TEXT, voice, settings, third)
    assert third.annotations["voice_cache"] == "hit"
    assert third.annotations["voice_cache_source"] == "disk"
    assert "speaker_conditioning" not in names(third)
    assert third.annotations["voice_cache_saving_s"] == pytest.approx(saved)  # kept in the file's metadata

    changed = StageTimer()  # a setting that changes the conditioning is a different entry
    engine.synthesize(TEXT, voice, settings.with_knobs(gpt_cond_len=2), changed)
    assert changed.annotations["voice_cache"] == "miss"


@pytest.mark.parametrize("decoder", ["coqui", "windowed"])
def test_streaming_yields_chunks(engine, reference_wav: Path, decoder: str) -> None:
    settings = xtts_settings(max_audio_tokens=12, stream_chunk_size=4, stream_decoder=decoder)
    timer = StageTimer()
    chunks = list(engine.stream(TEXT, Voice(reference_audio=reference_wav), settings, timer))
    assert len(chunks) >= 3
    assert [c.index for c in chunks] == list(range(len(chunks)))
    decode = next(t for t in timer.timings() if t.name == "hifigan_decode")
    assert decode.calls == len(chunks)
    assert timer.annotations["gpt_tokens"] == 12
    total = sum(len(c.audio.samples) for c in chunks)
    assert abs(total - 12 * 1024 * 24000 / 22050) < 300


def test_windowed_decoder_matches_coqui_stream(engine, reference_wav: Path) -> None:
    """Same seed, same tokens: the windowed path must give (nearly) coqui's streamed audio."""
    outputs = {}
    for decoder in ("coqui", "windowed"):
        torch.manual_seed(0)
        settings = xtts_settings(max_audio_tokens=16, stream_chunk_size=5, stream_decoder=decoder)
        chunks = list(engine.stream(TEXT, Voice(reference_audio=reference_wav), settings))
        outputs[decoder] = np.concatenate([c.audio.samples for c in chunks])
    coqui, windowed = outputs["coqui"], outputs["windowed"]
    assert len(coqui) == len(windowed)
    relative = np.sqrt(np.mean((coqui - windowed) ** 2)) / np.sqrt(np.mean(coqui**2))
    assert relative < 0.05


@pytest.mark.parametrize(
    ("precision", "mode", "compute"),
    [
        ("bf16", "autocast", "bfloat16"),
        ("bf16", "cast", "bfloat16"),
        ("fp16", "autocast", "float16"),
        ("fp16", "cast", "float16"),
        ("int8", "autocast", "float32"),
    ],
)
def test_precision_modes_run_and_record_dtypes(
    reference_wav: Path, precision: str, mode: str, compute: str
) -> None:
    settings = xtts_settings(precision, precision_mode=mode, max_audio_tokens=4)
    engine = loaded(settings)
    timer = StageTimer()
    audio = engine.synthesize(TEXT, Voice(reference_audio=reference_wav), settings, timer)
    assert audio.samples.dtype == np.float32 and np.isfinite(audio.samples).all()
    notes = timer.annotations
    assert notes["dtype.gpt_prefill"] == notes["dtype.gpt_decode"] == compute
    params = str(notes["dtype.params"])
    if precision == "int8":
        assert "qint8" in params  # GPT linears (incl. GPT-2's Conv1D) quantised
    else:
        assert notes["dtype.hifigan_decode"] == compute
    if mode == "cast" and precision != "int8":
        assert f"hifigan={compute}" in params
        assert "speaker_encoder=float32" in params  # kept fp32 on purpose
    else:
        assert "hifigan=float32" in params


def test_refusals_are_stated_up_front() -> None:
    from engines.xtts.capabilities import XTTS_CAPABILITIES

    with pytest.raises(InputError, match="CPU kernels only"):
        validate_precision(XTTS_CAPABILITIES, "cuda", "int8")
    validate_precision(XTTS_CAPABILITIES, "cpu", "int8")  # runs on CPU: no refusal


def test_checkpoint_round_trip_through_coqui_loader(engine, reference_wav: Path, tmp_path: Path) -> None:
    from engines.xtts import build

    model, config = engine._runtime.model, engine._runtime.config
    directory = build.save_checkpoint(model, config, tmp_path / "ckpt", build.TINY)
    assert {p.name for p in directory.iterdir()} >= {"config.json", "model.pth", "vocab.json"}

    settings = xtts_settings(weights="checkpoint", checkpoint_dir=str(directory))
    restored = loaded(settings)
    original, loaded_state = model.state_dict(), restored._runtime.model.state_dict()
    assert set(original) == set(loaded_state)
    assert all(torch.equal(original[k], loaded_state[k]) for k in original)
    assert not restored.random_weights
    assert restored.describe_model()["weights"] == "checkpoint"
    audio = restored.synthesize(TEXT, Voice(reference_audio=reference_wav), settings)
    assert 0 < len(audio.samples) <= TOKENS * 1200  # trained-weights path: the cap still holds

    (directory / "model.pth").unlink()
    with pytest.raises(LoadError, match="model.pth"):
        loaded(settings)


def test_checkpoint_settings_validated(tmp_path: Path) -> None:
    from engines.xtts.capabilities import XTTS_CAPABILITIES

    with pytest.raises(InputError, match="directory not found"):
        resolve_knobs(XTTS_CAPABILITIES, {"checkpoint_dir": str(tmp_path / "nope")})
    with pytest.raises(LoadError, match="needs checkpoint_dir"):
        loaded(xtts_settings(weights="checkpoint"))


def test_run_bench_and_cli(reference_wav: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from profiling.core.records import RunMode, RunStatus
    from profiling.run.runner import BenchRequest, EnginePool, run_bench
    from profiling.store.results import ResultsStore

    store = ResultsStore(tmp_path / "data")
    request = BenchRequest(
        xtts_settings(max_audio_tokens=4), TEXT, Voice(reference_audio=reference_wav), RunMode.STREAM,
        repeats=1, warmup=0,
    )
    result = run_bench(request, EnginePool(), store)
    record = result.records[0]
    assert record.status is RunStatus.OK and record.random_weights
    assert record.chunks and record.ttfa_s <= record.synth_s
    stages = store.stages_dataframe()
    assert {"gpt_prefill", "gpt_decode", "hifigan_decode"} <= set(stages["stage"])

    # `main` in this process: a second interpreter would import torch and coqui again. A fresh interpreter loads
    # XTTS in tests/test_serve_voices.py (`profiling serve --engine xtts`); `bench` as a process: test_cli.py.
    cli = run_main("bench", "--engine", "xtts", "--knob", "weights=random-tiny", "--knob", "max_audio_tokens=4",
                   "--knob", "warmup=0", "--reference-audio", str(reference_wav), "--repeats", "1", "--warmup", "0",
                   "--no-progress", "--text", TEXT, "--data-dir", str(tmp_path / "cli"), capsys=capsys)
    assert cli.returncode == 0, cli.stderr[-2000:]
    assert "RANDOM WEIGHTS" in cli.stdout
    assert "gpt_decode" in cli.stdout and "hifigan_decode" in cli.stdout

    bad = run_main("bench", "--engine", "xtts", "--knob", "weights=random-huge", "--data-dir", str(tmp_path / "cli"),
                   capsys=capsys)
    assert bad.returncode == 2
    assert "random-huge" in bad.stderr and "Traceback" not in bad.stderr


def test_missing_voice_is_refused_before_load_and_store(tmp_path: Path) -> None:
    from profiling.run.runner import BenchRequest, EnginePool, run_bench
    from profiling.store.results import ResultsStore

    store, pool = ResultsStore(tmp_path), EnginePool()
    for voice, message in (
        (Voice(), "XTTS clones a voice"),
        (Voice(reference_audio=tmp_path / "missing.wav"), "reference audio not found"),
    ):
        request = BenchRequest(SynthesisSettings("xtts", knobs={"weights": "random-tiny"}), text="Hi there.",
                               voice=voice, repeats=1, warmup=0)
        with pytest.raises(InputError, match=message):
            run_bench(request, pool, store)
    assert store.count_runs() == 0 and pool._engines == {}
