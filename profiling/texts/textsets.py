"""Text sets that ship with the lab: short / medium / long, sets sized by audio length, Harvard sentences.

Each set is a UTF-8 file in ``profiling/texts/data/``: an optional ``#`` description
line, then one text per line. Texts get stable ids (``<set>-<nn>``) so a sweep's
run keys stay the same between runs of the same set.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from engines.errors import InputError

TEXTSET_DIR = Path(__file__).resolve().parent / "data"

#: Roughly how much audio each sized set is written for (seconds, Piper joe at length_scale 1).
TARGET_AUDIO_S: dict[str, float] = {"audio_1s": 1.0, "audio_5s": 5.0, "audio_10s": 10.0, "audio_30s": 30.0}

#: The fixed sentence set for relative word error rate.
WER_SET = "harvard"

#: Language of each set that is not English (an XTTS language code; the length model reads it).
TEXT_SET_LANGUAGES: dict[str, str] = {"pt_br": "pt", "es": "es", "fr": "fr", "de": "de"}


@dataclass(frozen=True)
class TextItem:
    id: str
    text: str

    @property
    def digest(self) -> str:
        """Short hash of the text: a run key changes if the words change under the same id."""
        return hashlib.sha1(self.text.encode("utf-8")).hexdigest()[:8]


@dataclass(frozen=True)
class TextSet:
    name: str
    description: str
    items: tuple[TextItem, ...]
    target_audio_s: float | None = None
    language: str = "en"

    def __len__(self) -> int:
        return len(self.items)


def text_set_names() -> tuple[str, ...]:
    return tuple(sorted(path.stem for path in TEXTSET_DIR.glob("*.txt")))


def load_text_set(name: str) -> TextSet:
    path = TEXTSET_DIR / f"{name}.txt"
    if not path.is_file():
        raise InputError(f"unknown text set '{name}' (known: {', '.join(text_set_names())})")
    description = ""
    texts: list[str] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            description = description or stripped.lstrip("# ")
        elif stripped:
            texts.append(stripped)
    items = tuple(TextItem(f"{name}-{index:02d}", text) for index, text in enumerate(texts))
    return TextSet(name, description, items, TARGET_AUDIO_S.get(name), TEXT_SET_LANGUAGES.get(name, "en"))


def inline_text_set(texts: list[str], name: str = "inline") -> TextSet:
    """Texts written straight into a sweep file."""
    cleaned = [t.strip() for t in texts if isinstance(t, str) and t.strip()]
    if len(cleaned) != len(texts):
        raise InputError("inline texts must be non-empty strings")
    items = tuple(TextItem(f"{name}-{i:02d}", t) for i, t in enumerate(cleaned))
    return TextSet(name, "texts given in the sweep", items)
