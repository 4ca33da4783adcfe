"""What the Synthesize tab (or its JSON API) asks for, as one typed request.

Both the form's controls and the ``synthesize_json`` endpoint end up as a
``SynthForm``; ``to_request`` turns it into the runner's ``BenchRequest``. Every
problem is an ``InputError`` with a one-line message.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from pathlib import Path

from engines.base import SynthesisSettings, Voice
from engines.chunking import ChunkingSettings
from engines.errors import InputError
from engines.registry import DEFAULT_ENGINE
from profiling import api
from profiling.api.inputs import parse_json_object
from profiling.api.types import BenchRequest, PlaybackSettings, RunMode, TimingMode

#: Chunker choices: the engine's own streaming, or the lab's text chunker in front of it.
CHUNKER_ENGINE = "engine"
CHUNKER_LAB = "lab"
CHUNKERS: tuple[str, ...] = (CHUNKER_ENGINE, CHUNKER_LAB)

#: A request holds the (single) synthesis queue while it runs: keep one from holding it for hours.
MAX_REPEATS = 1000

_DEFAULT_CHUNKING = ChunkingSettings()
_DEFAULT_PLAYBACK = PlaybackSettings()


def _whole_number(name: str, value: object, minimum: int, maximum: int | None = None) -> int:
    """Gradio number boxes send floats; accept whole numbers only."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InputError(f"{name} must be a whole number, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise InputError(f"{name} must be a whole number, got {value!r}") from None
    if not math.isfinite(number) or not number.is_integer():
        raise InputError(f"{name} must be a whole number, got {value!r}")
    if number < minimum:
        raise InputError(f"{name} must be at least {minimum}, got {int(number)}")
    if maximum is not None and number > maximum:
        raise InputError(f"{name} must be at most {maximum}, got {int(number)}")
    return int(number)


def _number(name: str, value: object, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InputError(f"{name} must be a number, got {value!r}")
    try:
        number = float(value)
    except ValueError:
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise InputError(f"{name} must be a finite number, got {value!r}")
    if number < minimum:
        raise InputError(f"{name} must be at least {minimum:g}, got {value!r}")
    return number


@dataclass(frozen=True)
class SynthForm:
    text: str
    engine: str = DEFAULT_ENGINE
    device: str = "cpu"
    precision: str = "fp32"
    knobs: dict[str, object] = field(default_factory=dict)
    mode: str = RunMode.BATCH.value
    repeats: int | float = 1
    warmup: int | float = 0
    seed: int | float = 0
    chunker: str = CHUNKER_ENGINE
    first_chunk_max_chars: int | float = _DEFAULT_CHUNKING.first_chunk_max_chars
    chunk_max_chars: int | float = _DEFAULT_CHUNKING.max_chars
    prebuffer_ms: float = _DEFAULT_PLAYBACK.prebuffer_ms
    reference_audio: str | None = None
    reference_text: str = ""
    #: torch on CUDA: sync or events (``bench --timing``); other runs record wall whatever is asked.
    timing: str = TimingMode.SYNC.value
    #: A post-synthesis stage ("rvc") and its knobs; "" = the engine's audio as it is.
    convert: str = ""
    convert_knobs: dict[str, object] = field(default_factory=dict)
    label: str = "dashboard"

    @classmethod
    def from_json(cls, raw: str) -> SynthForm:
        """Parse the JSON API's settings object; unknown fields are refused, not ignored."""
        data = parse_json_object(raw or "")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"unknown settings field(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        if "text" not in data:
            raise InputError("settings need a 'text' field")
        for name in ("knobs", "convert_knobs"):
            if not isinstance(data.get(name, {}), dict):
                raise InputError(f"'{name}' must be an object of name: value")
        for name in ("text", "engine", "device", "precision", "mode", "chunker", "reference_text", "timing",
                     "convert"):
            if name in data and not isinstance(data[name], str):
                raise InputError(f"'{name}' must be a string, got {data[name]!r}")
        return cls(**data)

    def _mode(self) -> RunMode:
        try:
            return RunMode(self.mode)
        except ValueError:
            raise InputError(
                f"mode '{self.mode}' is not one of {', '.join(m.value for m in RunMode)}"
            ) from None

    def _voice(self) -> Voice:
        if not self.reference_audio:
            return Voice()
        path = Path(self.reference_audio)
        if not path.is_file():
            raise InputError(f"reference audio not found: {self.reference_audio}")
        return Voice(reference_audio=path, reference_text=self.reference_text.strip() or None)

    def _chunking(self, mode: RunMode) -> ChunkingSettings | None:
        if mode is not RunMode.STREAM or self.chunker == CHUNKER_ENGINE:
            return None
        if self.chunker != CHUNKER_LAB:
            raise InputError(f"chunker '{self.chunker}' is not one of {', '.join(CHUNKERS)}")
        first = _whole_number("first chunk max chars", self.first_chunk_max_chars, 1)
        rest = _whole_number("chunk max chars", self.chunk_max_chars, 1)
        return ChunkingSettings(first_chunk_max_chars=first, max_chars=rest)

    def to_request(self, max_chars: int) -> BenchRequest:
        """The runner's request (built by the API); engine, device, precision and knobs are checked when it runs."""
        mode = self._mode()
        voice = self._voice()
        return api.bench_request(
            self.engine, self.text, device=self.device, precision=self.precision, knobs=dict(self.knobs),
            seed=_whole_number("seed", self.seed, 0), mode=mode,
            reference_audio=voice.reference_audio, reference_text=voice.reference_text,
            repeats=_whole_number("repeats", self.repeats, 1, MAX_REPEATS),
            warmup=_whole_number("warm-up runs", self.warmup, 0, MAX_REPEATS),
            max_chars=max_chars, label=self.label, chunking=self._chunking(mode),
            playback=PlaybackSettings(prebuffer_ms=_number("prebuffer ms", self.prebuffer_ms, 0.0)),
            timing=self.timing, conversion=self._conversion(),
        )

    def _conversion(self) -> SynthesisSettings | None:
        if not self.convert:
            if self.convert_knobs:
                raise InputError("convert_knobs need a conversion stage (convert: rvc)")
            return None
        return api.conversion_settings(self.convert, device=self.device, seed=_whole_number("seed", self.seed, 0),
                                       knobs=dict(self.convert_knobs))
