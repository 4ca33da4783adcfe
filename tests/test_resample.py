"""The streaming resampler: chunk by chunk gives exactly the whole-signal samples, at the right length and pitch."""

from __future__ import annotations

import numpy as np
import pytest

from profiling.audio.resample import StreamResampler, resample


@pytest.mark.parametrize(("source", "target"), [(22050, 24000), (24000, 22050), (16000, 24000), (48000, 24000)])
def test_a_tone_keeps_its_pitch_and_the_signal_its_length(source: int, target: int) -> None:
    tone = np.sin(2 * np.pi * 300 * np.arange(source) / source).astype(np.float32)
    out = resample(tone, source, target)
    assert len(out) == target and out.dtype == np.float32
    ideal = np.sin(2 * np.pi * 300 * np.arange(target) / target)
    assert np.abs(out[200:-200] - ideal[200:-200]).max() < 1e-3  # away from the edges, the same tone


def test_any_chunking_gives_the_same_samples_as_the_whole_signal() -> None:
    rng = np.random.default_rng(0)
    signal = (rng.standard_normal(22050 * 2) * 0.1).astype(np.float32)
    whole = resample(signal, 22050, 24000)
    for _ in range(10):
        cuts = sorted(rng.integers(0, len(signal), size=int(rng.integers(1, 12))))
        resampler, parts, previous = StreamResampler(22050, 24000), [], 0
        for cut in [*cuts, len(signal)]:
            parts.append(resampler.process(signal[previous:cut]))
            previous = cut
        parts.append(resampler.flush())
        joined = np.concatenate(parts)
        assert len(joined) == len(whole) and np.array_equal(joined, whole)


def test_equal_rates_pass_the_samples_through() -> None:
    samples = np.linspace(-0.5, 0.5, 100, dtype=np.float32)
    resampler = StreamResampler(24000, 24000)
    assert resampler.identity and np.array_equal(resampler.process(samples), samples)
    assert resampler.flush().size == 0
