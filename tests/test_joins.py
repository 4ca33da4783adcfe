"""Boundary artefacts: planted repeats and clicks are found, clean joins (synthetic and real Piper) are not."""

from __future__ import annotations

import numpy as np
import pytest

from engines.base import Audio, SynthesisSettings, Voice
from engines.chunking import ChunkingSettings, chunk_text, synthesize_chunks
from engines.registry import create_engine
from profiling.audio.joins import JoinSettings, check_join, check_joins, leading_silence_s

RATE = 22050


def speech_like(seconds: float, seed: int) -> np.ndarray:
    """Low-passed noise with a syllable-rate envelope: smooth like speech, never periodic."""
    rng = np.random.default_rng(seed)
    n = int(seconds * RATE)
    kernel = np.hanning(32)
    noise = np.convolve(rng.standard_normal(n + 31), kernel / kernel.sum(), mode="valid")
    envelope = 0.6 + 0.4 * np.sin(np.linspace(0, 2 * np.pi * 4 * seconds, n))
    signal = noise * envelope
    return (0.5 * signal / np.abs(signal).max()).astype(np.float32)


def faded(samples: np.ndarray, seconds: float = 0.01) -> np.ndarray:
    """Fade in and out, so a planted phrase starts and ends near zero (no click of its own)."""
    n = int(seconds * RATE)
    out = samples.copy()
    out[:n] *= np.linspace(0, 1, n, dtype=np.float32)
    out[-n:] *= np.linspace(1, 0, n, dtype=np.float32)
    return out


def audio(samples: np.ndarray) -> Audio:
    return Audio(np.asarray(samples, dtype=np.float32), RATE)


def test_a_clean_join_has_no_repeat_and_no_click() -> None:
    speech = speech_like(2.0, seed=1)
    check = check_join(audio(speech[:RATE]), audio(speech[RATE:]), JoinSettings())
    assert not check.repeated and check.repeat_score < 0.5
    assert not check.click and check.click_ratio < 2


def test_a_planted_repeat_is_found_where_it_was_planted() -> None:
    speech, phrase = speech_like(2.0, seed=2), faded(speech_like(0.3, seed=3))
    left = np.concatenate([faded(speech[:RATE]), phrase])
    right = np.concatenate([phrase, faded(speech[RATE:])])  # the phrase is played twice
    check = check_join(audio(left), audio(right), JoinSettings())
    assert check.repeated and check.repeat_score > 0.99
    assert check.repeat_offset_s == pytest.approx(0.3, abs=0.01)
    assert not check.click  # the waveform itself is continuous at the join


def test_a_planted_click_is_found() -> None:
    speech = speech_like(2.0, seed=4)
    left, right = speech[:RATE].copy(), speech[RATE:].copy()
    left[-200:] *= np.linspace(1, 0, 200)  # left fades out cleanly ...
    right += 0.4  # ... and right starts on a DC step
    check = check_join(audio(left), audio(np.clip(right, -1, 1)), JoinSettings())
    assert check.click and check.click_jump > 0.1 and check.click_ratio > 5
    assert not check.repeated


def test_both_artefacts_in_one_stream_are_reported_per_join() -> None:
    speech, phrase = speech_like(3.0, seed=5), faded(speech_like(0.3, seed=6))
    clean_a, clean_b = speech[:RATE], speech[RATE : 2 * RATE]
    repeated_b = np.concatenate([clean_b, phrase])  # a -> b is a clean cut of one signal
    repeated_c = np.concatenate([phrase, faded(speech[2 * RATE :])])
    clicked_d = speech_like(0.5, seed=7) + 0.5  # starts on a DC step after c's fade-out
    parts = [audio(clean_a), audio(clean_b[:0]), audio(repeated_b), audio(repeated_c), audio(np.clip(clicked_d, -1, 1))]
    checks = check_joins(parts)
    assert [(c.left, c.right) for c in checks] == [(0, 2), (2, 3), (3, 4)]  # the empty chunk is skipped
    assert [c.repeated for c in checks] == [False, True, False]
    assert [c.click for c in checks] == [False, False, True]


def test_leading_silence() -> None:
    samples = np.concatenate([np.zeros(RATE // 2, dtype=np.float32), speech_like(0.5, seed=8)])
    assert leading_silence_s(audio(samples)) == pytest.approx(0.5, abs=0.01)
    assert leading_silence_s(audio(np.zeros(100, dtype=np.float32))) == pytest.approx(100 / RATE)


def test_real_piper_chunk_joins_are_clean() -> None:
    settings = SynthesisSettings("piper", knobs={"deterministic": True})
    engine = create_engine("piper")
    engine.load(settings)
    plan = chunk_text(
        "Streaming speech, one chunk at a time, should sound seamless. The joins must not click.",
        ChunkingSettings(first_chunk_max_chars=20, max_chars=40, min_chars=5),
    )
    parts = [c.audio for c in synthesize_chunks(engine, plan, Voice(), settings)]
    assert len(parts) >= 3
    checks = check_joins(parts)
    assert len(checks) == len(parts) - 1
    assert not any(c.repeated or c.click for c in checks), checks
    # Planting a copy of chunk 1's opening at the end of chunk 0 is caught on real speech too.
    head = parts[1].samples[: int(0.4 * parts[1].sample_rate)]
    planted = Audio(np.concatenate([parts[0].samples, head]), parts[0].sample_rate)
    assert check_joins([planted, parts[1]])[0].repeated
