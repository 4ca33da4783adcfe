"""The XTTS length model: random weights generate as many audio tokens as the text needs."""

from __future__ import annotations

from pathlib import Path

import pytest

from engines.base import SynthesisSettings, Voice
from engines.xtts.length_model import (
    AUDIO_TOKENS_PER_S,
    count_syllables,
    estimate_audio_tokens,
    speech_rate,
)
from profiling.core.timer import StageTimer

SHORT = "Hello world, this is a test."
LONG = " ".join([SHORT] * 4)


def test_syllables_follow_spelling_in_several_scripts() -> None:
    assert count_syllables("The birch canoe slid on the smooth planks.") in range(8, 11)  # 9 by dictionary
    assert count_syllables("Olá, tudo bem?") == 5
    assert count_syllables("你好世界") == 4
    assert count_syllables(LONG) == 4 * count_syllables(SHORT)


def test_estimate_scales_with_text_and_language_rate() -> None:
    short, long = estimate_audio_tokens(SHORT, "en", 602), estimate_audio_tokens(LONG, "en", 602)
    assert 3.5 <= long / short <= 4.5
    seconds = short / AUDIO_TOKENS_PER_S
    assert count_syllables(SHORT) / seconds == pytest.approx(speech_rate("en").syllables_per_s, rel=0.1)
    # Spanish is spoken faster than German in syllables per second (Pellegrino et al. 2011).
    assert speech_rate("es").syllables_per_s > speech_rate("de").syllables_per_s
    assert "not measured" in speech_rate("pt").source
    assert estimate_audio_tokens(LONG * 20, "en", 602) == 602  # the GPT's own limit caps it


@pytest.mark.torch
def test_random_xtts_audio_grows_with_text(one_torch_thread: None, tmp_path: Path) -> None:
    pytest.importorskip("TTS")
    from engines.xtts.engine import XttsEngine

    settings = SynthesisSettings("xtts", knobs={"weights": "random-tiny", "warmup": 0, "voice_cache": "off"})
    engine = XttsEngine()
    engine.load(settings)
    reference = _reference_wav(tmp_path)
    timers = {}
    lengths = {}
    for name, text in (("short", SHORT), ("long", LONG)):
        timers[name] = StageTimer()
        lengths[name] = len(engine.synthesize(text, Voice(reference_audio=reference), settings, timers[name]).samples)
    assert timers["short"].annotations["audio_token_rule"] == "length_model"
    assert timers["short"].annotations["gpt_tokens"] == estimate_audio_tokens(SHORT, "en", 602)
    assert lengths["long"] >= 3 * lengths["short"]  # 4x the text, several times the audio
    # Streaming: the chunks arrive as the tokens do (one per stream_chunk_size tokens).
    streamed = SynthesisSettings("xtts", knobs={**settings.knobs, "stream_chunk_size": 20})
    chunks = list(engine.stream(LONG, Voice(reference_audio=reference), streamed))
    tokens = estimate_audio_tokens(LONG, "en", 602)
    assert len(chunks) == -(-tokens // 20)


def _reference_wav(directory: Path) -> Path:
    """One second of Piper speech as the voice: XTTS needs a reference to clone."""
    import soundfile

    from engines.piper_engine import PiperEngine

    piper = PiperEngine()
    piper_settings = SynthesisSettings("piper", knobs={"deterministic": True})
    piper.load(piper_settings)
    audio = piper.synthesize("A short reference voice.", Voice(), piper_settings)
    path = directory / "reference.wav"
    soundfile.write(path, audio.samples, audio.sample_rate)
    return path
