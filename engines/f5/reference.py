"""Reference audio for cloning: read with soundfile (no torchaudio.load / torchcodec), mono, 24 kHz.

``reference_preprocess=f5`` (the default) does to the reference what F5's own API does before
anything else (``utils_infer.preprocess_ref_audio_text``): clip references over 12 s at a
silence, trim the silent edges and append 50 ms of silence, all with pydub as F5 does. The
duration estimate scales with the prompt's length, so skipping this changes how much audio F5
generates for the same text. ``none`` measures the file as given (hard cut at 12 s).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

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


def read_reference(path: Path, text: str, preprocess: str = "f5") -> ReferenceAudio:
    if preprocess == "f5":
        samples, rate = _preprocess_like_f5(path)
    else:
        samples, rate = _read_as_given(path)
    mono = samples.mean(axis=1).astype(np.float32)
    if len(mono) == 0:
        raise InputError(f"reference audio {path} is empty")
    if preprocess != "f5":
        mono = mono[: int(MAX_REFERENCE_S * rate)]
    return ReferenceAudio(mono, int(rate), f5_reference_text(text), path)


def _read_as_given(path: Path) -> tuple[np.ndarray, int]:
    import soundfile

    try:
        samples, rate = soundfile.read(str(path), dtype="float32", always_2d=True)
    except (OSError, RuntimeError) as error:  # soundfile raises LibsndfileError (a RuntimeError)
        raise InputError(f"cannot read reference audio {path}: {error}") from None
    return samples, int(rate)


def _preprocess_like_f5(path: Path) -> tuple[np.ndarray, int]:
    """F5's ``preprocess_ref_audio_text`` audio steps, step for step with the same pydub calls;
    returns (frames, channels) float32 as F5's later ``torchaudio.load`` of its temp WAV reads it."""
    from f5_tts.infer.utils_infer import remove_silence_edges
    from pydub import AudioSegment, silence

    try:
        segment = AudioSegment.from_file(str(path))
    except Exception as error:  # noqa: BLE001 - pydub raises bare exceptions for unreadable files
        raise InputError(f"cannot read reference audio {path}: {_first_line(error)}") from None
    # 1. clip at a long silence, 2. failing that at a short one, 3. failing both, hard at 12 s.
    clipped = _join_until_12s(silence.split_on_silence(
        segment, min_silence_len=1000, silence_thresh=-50, keep_silence=1000, seek_step=10))
    if len(clipped) > 12000:
        clipped = _join_until_12s(silence.split_on_silence(
            segment, min_silence_len=100, silence_thresh=-40, keep_silence=1000, seek_step=10))
    if len(clipped) > 12000:
        clipped = clipped[:12000]
    clipped = remove_silence_edges(clipped) + AudioSegment.silent(duration=50)
    # F5 exports a WAV and reads it back: same rate, width and channels, integers scaled to [-1, 1).
    samples = np.array(clipped.get_array_of_samples(), dtype=np.float32).reshape(-1, clipped.channels)
    scale = float(1 << (8 * clipped.sample_width - 1))
    return samples / scale, int(clipped.frame_rate)


def _join_until_12s(segments: list[Any]) -> Any:
    from pydub import AudioSegment

    joined = AudioSegment.silent(duration=0)
    for segment in segments:
        if len(joined) > 6000 and len(joined + segment) > 12000:
            break
        joined += segment
    return joined


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


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
