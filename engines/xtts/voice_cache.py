"""Voice-profile cache: XTTS conditioning (GPT latents + speaker embedding) per reference voice.

The key hashes the reference audio bytes, every setting that changes the
conditioning (lengths, normalisation) and what identifies the model (weights
fingerprint, device, precision), so a hit is only ever the same computation.
Entries live in memory and, optionally, on disk as safetensors: loading them
never unpickles anything.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

CACHE_MODES: tuple[str, ...] = ("memory+disk", "memory", "off")
DATA_DIR_ENV = "TTSPERF_DATA_DIR"


@dataclass(frozen=True)
class ConditioningSettings:
    """The inputs of XTTS conditioning besides the audio itself."""

    gpt_cond_len: int
    gpt_cond_chunk_len: int
    max_ref_len: int
    sound_norm_refs: bool


@dataclass(frozen=True)
class VoiceProfile:
    gpt_cond_latent: torch.Tensor  # [1, 32, d]
    speaker_embedding: torch.Tensor  # [1, 512, 1]
    #: Seconds the conditioning took when computed: what a cache hit saves.
    conditioning_s: float = 0.0


def default_cache_dir() -> Path:
    root = os.environ.get(DATA_DIR_ENV)
    base = Path(root).expanduser() if root else Path.home() / ".ttsperf"
    return base / "xtts_voice_cache"


def cache_key(audio_bytes: bytes, settings: ConditioningSettings, model_identity: str) -> str:
    digest = hashlib.sha256()
    digest.update(audio_bytes)
    digest.update(json.dumps(asdict(settings), sort_keys=True).encode())
    digest.update(model_identity.encode())
    return digest.hexdigest()


class VoiceCache:
    """Memory dict in front of an optional safetensors directory."""

    def __init__(self, disk_dir: Path | None) -> None:
        self._memory: dict[str, VoiceProfile] = {}
        self.disk_dir = disk_dir

    def get(self, key: str) -> tuple[VoiceProfile | None, str]:
        """The profile and where it came from: ``memory``, ``disk`` or ``""`` (miss)."""
        profile = self._memory.get(key)
        if profile is not None:
            return profile, "memory"
        profile = self._read(key)
        if profile is not None:
            self._memory[key] = profile
            return profile, "disk"
        return None, ""

    def put(self, key: str, profile: VoiceProfile) -> None:
        self._memory[key] = profile
        if self.disk_dir is not None:
            self._write(key, profile)

    def clear_memory(self) -> None:
        self._memory.clear()

    def _path(self, key: str) -> Path:
        assert self.disk_dir is not None
        return self.disk_dir / f"{key}.safetensors"

    def _read(self, key: str) -> VoiceProfile | None:
        if self.disk_dir is None or not self._path(key).is_file():
            return None
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            from safetensors import safe_open

            path = str(self._path(key))
            tensors = load_file(path)
            with safe_open(path, framework="pt") as handle:
                seconds = float((handle.metadata() or {}).get("conditioning_s", 0.0))
            return VoiceProfile(tensors["gpt_cond_latent"], tensors["speaker_embedding"], seconds)
        except (OSError, KeyError, ValueError, SafetensorError):
            return None  # a torn or foreign file is a miss, and gets rewritten

    def _write(self, key: str, profile: VoiceProfile) -> None:
        from safetensors.torch import save_file

        assert self.disk_dir is not None
        self.disk_dir.mkdir(parents=True, exist_ok=True)
        path = self._path(key)
        tmp = path.with_suffix(f".tmp{os.getpid()}")
        tensors = {
            "gpt_cond_latent": profile.gpt_cond_latent.detach().cpu().contiguous(),
            "speaker_embedding": profile.speaker_embedding.detach().cpu().contiguous(),
        }
        save_file(tensors, str(tmp), metadata={"conditioning_s": repr(profile.conditioning_s)})
        os.replace(tmp, path)  # atomic: a reader never sees half a file
