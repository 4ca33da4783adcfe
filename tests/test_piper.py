"""The Piper engine on the bundled joe voice: real audio, real stages, real knobs."""

from __future__ import annotations

import numpy as np
import pytest

from engines.base import DEFAULT_VOICE, SynthesisSettings, Voice
from engines.errors import InputError, LoadError
from engines.piper_engine import PiperEngine
from profiling.core.timer import StageTimer

TEXT = "The quick brown fox jumps over the lazy dog. It was a sunny day!"


@pytest.fixture(scope="module")
def engine() -> PiperEngine:
    engine = PiperEngine()
    engine.load(SynthesisSettings("piper"))
    return engine


def settings(**knobs: object) -> SynthesisSettings:
    defaults = PiperEngine.capabilities.default_knobs()
    return SynthesisSettings("piper", knobs={**defaults, **knobs})


def test_speech_is_non_silent_with_plausible_duration(engine: PiperEngine) -> None:
    audio = engine.synthesize(TEXT, DEFAULT_VOICE, settings(deterministic=True))
    assert audio.samples.dtype == np.float32 and audio.sample_rate == 22050
    # ~13 words: a human reads that in roughly 2.5-6 s.
    assert 2.0 < audio.duration_s < 8.0
    rms = float(np.sqrt(np.mean(audio.samples**2)))
    assert rms > 0.02
    assert float(np.abs(audio.samples).max()) <= 1.0


def test_deterministic_mode_repeats_exactly_and_noise_does_not(engine: PiperEngine) -> None:
    first = engine.synthesize(TEXT, DEFAULT_VOICE, settings(deterministic=True))
    second = engine.synthesize(TEXT, DEFAULT_VOICE, settings(deterministic=True))
    assert np.array_equal(first.samples, second.samples)
    noisy = [engine.synthesize(TEXT, DEFAULT_VOICE, settings()).samples for _ in range(2)]
    assert len(noisy[0]) != len(noisy[1]) or not np.array_equal(noisy[0], noisy[1])


def test_stages_are_reported(engine: PiperEngine) -> None:
    timer = StageTimer()
    engine.synthesize(TEXT, DEFAULT_VOICE, settings(deterministic=True), timer)
    names = {t.name: t for t in timer.timings()}
    for stage in ("text_normalization", "phonemization", "model_inference", "post_processing"):
        assert stage in names
    # One inference per sentence.
    assert names["model_inference"].calls == 2


def test_length_scale_slows_speech(engine: PiperEngine) -> None:
    normal = engine.synthesize(TEXT, DEFAULT_VOICE, settings(deterministic=True))
    slow = engine.synthesize(TEXT, DEFAULT_VOICE, settings(deterministic=True, length_scale=2.0))
    assert slow.duration_s > 1.6 * normal.duration_s


def test_stream_yields_one_chunk_per_sentence(engine: PiperEngine) -> None:
    chunks = list(engine.stream(TEXT, DEFAULT_VOICE, settings(deterministic=True)))
    assert [c.text for c in chunks] == ["The quick brown fox jumps over the lazy dog.", "It was a sunny day!"]
    assert [c.index for c in chunks] == [0, 1]
    whole = engine.synthesize(TEXT, DEFAULT_VOICE, settings(deterministic=True))
    streamed = sum(c.audio.duration_s for c in chunks)
    assert streamed == pytest.approx(whole.duration_s, rel=0.02)


@pytest.mark.parametrize(
    "knobs",
    [
        {"intra_op_threads": 1, "graph_optimization": "disable"},
        {"execution_mode": "parallel", "inter_op_threads": 2, "graph_optimization": "basic"},
    ],
)
def test_session_options_load_and_run(knobs: dict) -> None:
    engine = PiperEngine()
    engine.load(settings(**knobs))
    audio = engine.synthesize("Hello.", DEFAULT_VOICE, settings(deterministic=True))
    assert audio.duration_s > 0.2


def test_missing_voice_file_is_a_clear_load_error(tmp_path) -> None:
    with pytest.raises(LoadError, match="Piper voice model not found"):
        PiperEngine().load(settings(model_path=str(tmp_path / "missing.onnx")))


def test_reference_audio_is_refused(engine: PiperEngine, tmp_path) -> None:
    with pytest.raises(InputError, match="does not clone"):
        engine.synthesize("Hi.", Voice(reference_audio=tmp_path / "x.wav"), settings())


def test_unpronounceable_text_is_a_clear_error(engine: PiperEngine) -> None:
    with pytest.raises(InputError, match="nothing Piper can pronounce"):
        engine.synthesize("...", DEFAULT_VOICE, settings())
