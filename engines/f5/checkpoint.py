"""Where a released F5-TTS checkpoint lives on disk, checked before anything loads.

The released layout: the DiT weights (``model_*.safetensors`` or ``.pt``, EMA
keys), the ``vocab.txt`` it was trained with, and a Vocos directory holding
``config.yaml`` and ``pytorch_model.bin``. Nothing here reaches the hub.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from engines.errors import LoadError

MODEL_SUFFIXES = (".safetensors", ".pt")
VOCOS_CONFIG = "config.yaml"
VOCOS_WEIGHTS = "pytorch_model.bin"


def f5_package_dir() -> Path:
    """The installed f5_tts package directory, found without importing it."""
    spec = importlib.util.find_spec("f5_tts")
    if spec is None or not spec.submodule_search_locations:
        raise LoadError("f5-tts is not installed: pip install -e .[f5]")
    return Path(next(iter(spec.submodule_search_locations)))


def shipped_vocab() -> Path:
    return f5_package_dir() / "infer" / "examples" / "vocab.txt"


def shipped_config(architecture: str) -> Path:
    return f5_package_dir() / "configs" / f"{architecture}.yaml"


@dataclass(frozen=True)
class CheckpointFiles:
    model_file: Path
    vocab_file: Path
    vocoder_dir: Path


def resolve_checkpoint_files(model_file_knob: str, vocab_file_knob: str, vocoder_dir_knob: str) -> CheckpointFiles:
    """The checkpoint paths from the knobs, or LoadError naming what is missing."""
    model_text = model_file_knob.strip()
    vocoder_text = vocoder_dir_knob.strip()
    vocab_text = vocab_file_knob.strip()
    if not model_text:
        raise LoadError("weights=checkpoint needs model_file (a .safetensors or .pt DiT checkpoint)")
    model_file = Path(model_text).expanduser()
    if model_file.suffix not in MODEL_SUFFIXES:
        raise LoadError(f"model_file must end in .safetensors or .pt, got {model_file.name}")
    if not model_file.is_file():
        raise LoadError(f"F5 model checkpoint not found: {model_file}")
    vocab_file = Path(vocab_text).expanduser() if vocab_text else shipped_vocab()
    if not vocab_file.is_file():
        raise LoadError(f"F5 vocab file not found: {vocab_file}")
    if not vocoder_text:
        raise LoadError(
            "weights=checkpoint needs vocoder_dir (a local Vocos directory with config.yaml and "
            "pytorch_model.bin); the lab never downloads it"
        )
    vocoder_dir = Path(vocoder_text).expanduser()
    if not vocoder_dir.is_dir():
        raise LoadError(f"Vocos directory not found: {vocoder_dir}")
    for name in (VOCOS_CONFIG, VOCOS_WEIGHTS):
        if not (vocoder_dir / name).is_file():
            raise LoadError(f"Vocos directory {vocoder_dir} lacks {name}")
    return CheckpointFiles(model_file, vocab_file, vocoder_dir)
