"""Boundary artefacts at chunk joins: repeated audio and clicks.

Repeat: the speech at the head of chunk i+1 (after its leading silence) is searched for in
the tail of chunk i by normalised cross-correlation over every lag (FFT). A score near 1
means the same samples are played twice: the overlap or cross-fade bookkeeping of a streaming
implementation went wrong. Audio re-synthesised from repeated *text* is not sample-identical
and scores lower; the chunker's no-overlap invariant is what guards against that.

Click: a jump in the waveform at the join, compared with the typical (95th percentile)
sample-to-sample step in the audio around it. Speech changes smoothly at audio rates, so a step many times the local
ones is heard as a click.

Each join's ``JoinCheck`` is plain data declared in ``profiling.core.audio_report``, beside the run record.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engines.base import Audio
from profiling.core.audio_report import JoinCheck


@dataclass(frozen=True)
class JoinSettings:
    #: How much of the end of chunk i is searched for the head of chunk i+1.
    tail_s: float = 1.0
    #: Length of the head of chunk i+1 that is looked for.
    probe_s: float = 0.15
    repeat_threshold: float = 0.9
    #: Amplitude below which audio counts as silence (trimmed before the repeat search).
    silence_threshold: float = 0.02
    #: Samples either side of the join inspected for the jump.
    click_span: int = 2
    #: Audio either side of the join whose steps set the local scale.
    click_context_s: float = 0.02
    #: Percentile of the nearby steps taken as their scale (robust to a single spike).
    click_percentile: float = 95.0
    click_ratio: float = 5.0
    click_min_jump: float = 0.1


def leading_silence_s(audio: Audio, threshold: float = JoinSettings.silence_threshold) -> float:
    """Seconds before the first sample louder than ``threshold`` (the whole length if none)."""
    loud = np.flatnonzero(np.abs(audio.samples) > threshold)
    return (loud[0] if loud.size else len(audio.samples)) / audio.sample_rate


def _trim(samples: np.ndarray, threshold: float) -> np.ndarray:
    loud = np.flatnonzero(np.abs(samples) > threshold)
    return samples[loud[0] : loud[-1] + 1] if loud.size else samples[:0]


def _best_correlation(tail: np.ndarray, probe: np.ndarray, min_energy: float) -> tuple[float, int]:
    """Max normalised cross-correlation of ``probe`` against every window of ``tail``, and its lag."""
    m = len(probe)
    if m == 0 or len(tail) < m:
        return 0.0, 0
    probe = probe - probe.mean()
    probe_norm = float(np.sqrt(np.sum(probe**2)))
    if probe_norm < min_energy:
        return 0.0, 0
    size = 1 << int(np.ceil(np.log2(len(tail) + m)))
    dots = np.fft.irfft(np.fft.rfft(tail, size) * np.conj(np.fft.rfft(probe, size)), size)[: len(tail) - m + 1]
    # Window sums and energies by cumulative sums: zero-mean NCC over each window of the tail.
    c1 = np.concatenate(([0.0], np.cumsum(tail, dtype=float)))
    c2 = np.concatenate(([0.0], np.cumsum(tail.astype(float) ** 2)))
    sums = c1[m:] - c1[:-m]
    energy = np.maximum(c2[m:] - c2[:-m] - sums**2 / m, 0.0)
    norms = np.sqrt(energy)
    valid = norms > min_energy
    scores = np.where(valid, dots / np.where(valid, norms, 1.0) / probe_norm, 0.0)
    lag = int(np.argmax(scores))
    return float(scores[lag]), lag


def check_join(left: Audio, right: Audio, settings: JoinSettings, left_index: int = 0,
               right_index: int = 1) -> JoinCheck:
    rate = left.sample_rate
    a, b = left.samples.astype(np.float64), right.samples.astype(np.float64)
    # Repeat: trimmed head of the right chunk searched in the trimmed tail of the left one.
    tail = _trim(a, settings.silence_threshold)[-int(settings.tail_s * rate):]
    head = _trim(b, settings.silence_threshold)[: int(settings.probe_s * rate)]
    min_energy = settings.silence_threshold * np.sqrt(max(len(head), 1)) / 2
    score, lag = _best_correlation(tail, head, min_energy)
    offset_s = (len(tail) - lag) / rate if score > 0 else 0.0
    # Click: the biggest step at the join against the biggest step nearby.
    span, context = settings.click_span, max(int(settings.click_context_s * rate), 1)
    around = np.concatenate((a[-span:], b[:span]))
    jump = float(np.max(np.abs(np.diff(around)))) if around.size > 1 else 0.0
    nearby = np.concatenate((np.diff(a[-context - span : -span]), np.diff(b[span : span + context])))
    local = float(np.percentile(np.abs(nearby), settings.click_percentile)) if nearby.size else 0.0
    ratio = jump / max(local, 1e-4)
    return JoinCheck(
        left=left_index, right=right_index,
        repeat_score=score, repeat_offset_s=offset_s, repeated=score >= settings.repeat_threshold,
        click_jump=jump, click_ratio=ratio,
        click=jump >= settings.click_min_jump and ratio >= settings.click_ratio,
    )


def check_joins(parts: Sequence[Audio], settings: JoinSettings = JoinSettings()) -> list[JoinCheck]:
    """One check per join between consecutive non-empty chunks (indexes are positions in ``parts``)."""
    audible = [(i, p) for i, p in enumerate(parts) if len(p.samples)]
    return [
        check_join(left, right, settings, i, j)
        for (i, left), (j, right) in zip(audible, audible[1:], strict=False)
    ]
