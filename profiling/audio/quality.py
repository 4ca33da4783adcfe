"""Quality beside speed: how far one setting's audio is from a reference setting's."""

from __future__ import annotations

import numpy as np

from engines.base import Audio


def log_mel_spectrogram(audio: Audio, n_mels: int = 80, n_fft: int = 1024, hop: int = 256) -> np.ndarray:
    """Log-mel magnitude (frames x mels) with a Slaney-style triangular filterbank, numpy only."""
    samples = audio.samples.astype(np.float64)
    if len(samples) < n_fft:
        samples = np.pad(samples, (0, n_fft - len(samples)))
    frames = 1 + (len(samples) - n_fft) // hop
    index = np.arange(n_fft)[None, :] + hop * np.arange(frames)[:, None]
    spectrum = np.abs(np.fft.rfft(samples[index] * np.hanning(n_fft), axis=1))
    mel_max = 2595.0 * np.log10(1.0 + (audio.sample_rate / 2) / 700.0)
    hz = 700.0 * (10 ** (np.linspace(0.0, mel_max, n_mels + 2) / 2595.0) - 1.0)
    bins = np.fft.rfftfreq(n_fft, 1.0 / audio.sample_rate)
    lower, center, upper = hz[:-2, None], hz[1:-1, None], hz[2:, None]
    filters = np.maximum(0.0, np.minimum((bins - lower) / (center - lower), (upper - bins) / (upper - center)))
    return np.log(np.maximum(spectrum @ filters.T, 1e-5))


def log_mel_distance(candidate: Audio, reference: Audio) -> float:
    """Mean absolute log-mel difference over the common length (0 = identical).

    Lengths may differ (a precision can change durations); the shorter one bounds
    the comparison and the length mismatch is added as a penalty per missing frame.
    """
    if candidate.sample_rate != reference.sample_rate:
        raise ValueError("log_mel_distance needs equal sample rates")
    a, b = log_mel_spectrogram(candidate), log_mel_spectrogram(reference)
    frames = min(len(a), len(b))
    distance = float(np.mean(np.abs(a[:frames] - b[:frames])))
    mismatch = abs(len(a) - len(b)) / max(len(a), len(b))
    return distance + mismatch * float(np.mean(np.abs(b)))
