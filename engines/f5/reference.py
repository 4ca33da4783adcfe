"""Reference audio for cloning: read with soundfile (no torchaudio.load / torchcodec), mono, 24 kHz."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engines.base import Voice
from engines.errors import InputError
from engines.f5.checkpoint import f5_package_dir

DEFAULT_REFERENCE_TEXT = "Some call me nature, others call me mother nature."
#: F5 clips references to 12 s (preprocess_ref_audio_text); longer prompts leave no room to generate.
MAX_REFERENCE_S = 12.0
TARGET_RMS = 0.1


def default_reference_audio() -> Path:
    return f5_package_dir() / "infer" / "examples" / "basic" / "basic_ref_en.wav"


@dataclass(frozen=True)
class ReferenceAudio:
    samples: np.ndarray  # float32 mono at the file's rate
    sample_rate: int
    text: str
    path: Path


def resolve_voice(voice: Voice) -> tuple[Path, str]:
    """The reference file and transcript; refuses what would need the hub (Whisper)."""
    if voice.speaker:
        raise InputError("F5-TTS has no named speakers: give reference audio (and its text) instead")
    if voice.reference_audio is None:
        return default_reference_audio(), DEFAULT_REFERENCE_TEXT
    if not (voice.reference_text or "").strip():
        raise InputError(
            "F5-TTS needs the transcript of the reference audio (reference text); "
            "transcribing it would download Whisper"
        )
    return Path(voice.reference_audio), str(voice.reference_text).strip()


def read_reference(path: Path, text: str) -> ReferenceAudio:
    import soundfile

    try:
        samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (OSError, RuntimeError) as error:  # soundfile raises LibsndfileError (a RuntimeError)
        raise InputError(f"cannot read reference audio {path}: {error}") from None
    mono = samples.mean(axis=1).astype(np.float32)
    if len(mono) == 0:
        raise InputError(f"reference audio {path} is empty")
    mono = mono[: int(MAX_REFERENCE_S * rate)]
    return ReferenceAudio(mono, int(rate), f5_reference_text(text), path)


def f5_reference_text(text: str) -> str:
    """The prompt text as F5 feeds it: ends in a sentence end and a space
    (preprocess_ref_audio_text), plus one more space after a 1-byte last character
    (infer_batch_process)."""
    text = text.strip()
    if not text.endswith("。"):
        text = f"{text} " if text.endswith(".") else f"{text}. "
    if len(text[-1].encode("utf-8")) == 1:
        text += " "
    return text
