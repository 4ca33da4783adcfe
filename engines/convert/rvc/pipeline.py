"""One RVC v2 conversion, stage by stage (the arithmetic of RVC's offline ``Pipeline``).

Stages (under the run's ``rvc`` stage): ``resample_in`` (to 16 kHz), ``f0`` (whole padded input once),
then per segment ``hubert``, ``index_search`` (with an index) and ``synthesizer``, then ``rms_mix`` and
``resample_out``. Long input is split at its quietest point near every ``x_center`` seconds, as RVC does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from engines.convert.rvc.f0 import HOP, SAMPLE_RATE, F0Provider, pitch_track
from engines.hooks import StageHook


@dataclass(frozen=True)
class SegmentPlan:
    """RVC's long-audio geometry in seconds: reflection pad, search window, split spacing, split threshold."""

    x_pad: int
    x_query: int
    x_center: int
    x_max: int

    @classmethod
    def for_precision(cls, half: bool) -> SegmentPlan:
        # rvc-next's choice for fp16 GPUs and for everything else (its ChunkConfig.for_device).
        return cls(3, 10, 60, 65) if half else cls(1, 6, 38, 41)


@dataclass(frozen=True)
class ConversionKnobs:
    """The per-call knobs (synthesis phase)."""

    pitch: int
    index_rate: float
    protect: float
    filter_radius: int
    resample_rate: int
    rms_mix_rate: float


@dataclass
class RvcModels:
    net_g: Any
    hubert: Any
    f0: F0Provider
    index: Any | None  # rvc-next's LoadedIndex
    sample_rate: int
    device: str
    half: bool


def to_16k(samples: np.ndarray, sample_rate: int) -> np.ndarray:
    from rvc_next.engine.audio.resample import resample

    return resample(samples.astype(np.float32), sample_rate, SAMPLE_RATE)


def split_points(audio: np.ndarray, plan: SegmentPlan) -> list[int]:
    """Sample offsets (in the unpadded 16 kHz input) where long audio is cut: the quietest 10 ms nearby."""
    t_max, t_center, t_query = (SAMPLE_RATE * s for s in (plan.x_max, plan.x_center, plan.x_query))
    if audio.shape[0] + HOP <= t_max:
        return []
    padded = np.pad(audio, (HOP // 2, HOP // 2), mode="reflect")
    energy = np.zeros_like(audio)
    for i in range(HOP):
        energy += np.abs(padded[i : i - HOP])
    points = []
    for t in range(t_center, audio.shape[0], t_center):
        window = energy[t - t_query : t + t_query]
        points.append(t - t_query + int(np.argmin(window)))
    return points


def convert_16k(audio: np.ndarray, models: RvcModels, knobs: ConversionKnobs, hook: StageHook) -> np.ndarray:
    """Convert 16 kHz float audio; returns float32 audio at the model's rate (before rms mix and resampling)."""
    import torch
    from rvc_next.engine.audio.dsp import highpass_16k

    if audio.size == 0:  # an empty chunk stays empty (reflection padding needs samples)
        return np.zeros(0, dtype=np.float32)
    plan = SegmentPlan.for_precision(models.half)
    peak = float(np.abs(audio).max()) / 0.95
    if peak > 1:
        audio = audio / peak
    audio = highpass_16k(audio.astype(np.float32))
    points = split_points(audio, plan)
    t_pad = SAMPLE_RATE * plan.x_pad
    padded = np.pad(audio, (t_pad, t_pad), mode="reflect")
    frames = padded.shape[0] // HOP
    with hook.stage("f0"):
        f0 = models.f0.compute(padded, frames)
    hz, coarse = pitch_track(f0, knobs.pitch)
    pitch = torch.tensor(coarse[:frames], device=models.device).unsqueeze(0).long()
    pitchf = torch.tensor(hz[:frames].astype(np.float32), device=models.device).unsqueeze(0)
    out_pad = models.sample_rate * plan.x_pad
    pieces: list[np.ndarray] = []
    start = 0
    for point in [*points, None]:
        end = None if point is None else point // HOP * HOP + 2 * t_pad + HOP
        first, last = start // HOP, None if end is None else (end - HOP) // HOP
        segment = convert_segment(padded[start:end], pitch[:, first:last], pitchf[:, first:last], models, knobs, hook)
        pieces.append(segment[out_pad:-out_pad])
        if point is not None:
            start = point // HOP * HOP
    return np.concatenate(pieces).astype(np.float32)


def convert_segment(
    audio: np.ndarray, pitch: Any, pitchf: Any, models: RvcModels, knobs: ConversionKnobs, hook: StageHook
) -> np.ndarray:
    """One padded segment: content features, optional retrieval blend, protect, synthesizer."""
    import torch
    import torch.nn.functional as F
    from rvc_next.engine.features.hubert import extract_features
    from rvc_next.engine.index.retrieval import blend

    dtype = torch.float16 if models.half else torch.float32
    source = torch.from_numpy(audio).to(dtype).view(1, -1).to(models.device)
    with torch.no_grad():
        with hook.stage("hubert"):
            feats = extract_features(models.hubert, source, "v2")
        protect = knobs.protect < 0.5
        source_feats = feats.clone() if protect else None
        if models.index is not None and knobs.index_rate > 0:
            with hook.stage("index_search"):
                retrieved = blend(feats[0].float().cpu().numpy(), models.index)
                retrieved_t = torch.from_numpy(retrieved.astype(np.float32)).to(models.device, dtype).unsqueeze(0)
                feats = retrieved_t * knobs.index_rate + (1 - knobs.index_rate) * feats
        feats = F.interpolate(feats.permute(0, 2, 1), scale_factor=2).permute(0, 2, 1)
        frames = min(audio.shape[0] // HOP, feats.shape[1])
        pitch, pitchf = pitch[:, :frames], pitchf[:, :frames]
        if source_feats is not None:
            source_feats = F.interpolate(source_feats.permute(0, 2, 1), scale_factor=2).permute(0, 2, 1)
            # Voiced frames take the converted features; unvoiced ones keep `protect` of the source's.
            weight = torch.where(pitchf > 0, 1.0, knobs.protect).to(feats.dtype).unsqueeze(-1)
            feats = feats[:, :frames] * weight + source_feats[:, :frames] * (1 - weight)
        with hook.stage("synthesizer"):
            lengths = torch.tensor([frames], device=models.device).long()
            speaker = torch.tensor([0], device=models.device).long()
            wave = models.net_g.infer(feats[:, :frames], lengths, pitch, pitchf.to(dtype), speaker)[0]
            return wave[0, 0].float().cpu().numpy()


def finish(source_16k: np.ndarray, converted: np.ndarray, models: RvcModels, knobs: ConversionKnobs,
           hook: StageHook) -> tuple[np.ndarray, int]:
    """Loudness envelope mix and the output rate."""
    from rvc_next.engine.audio.dsp import change_rms
    from rvc_next.engine.audio.resample import resample

    rate = models.sample_rate
    if knobs.rms_mix_rate != 1 and converted.size:
        with hook.stage("rms_mix"):
            converted = change_rms(source_16k, SAMPLE_RATE, converted, rate, knobs.rms_mix_rate)
    if knobs.resample_rate and knobs.resample_rate != rate:
        with hook.stage("resample_out"):
            converted = resample(converted, rate, knobs.resample_rate)
        rate = knobs.resample_rate
    return converted.astype(np.float32), rate
