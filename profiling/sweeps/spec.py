"""Sweep files: a YAML/TOML sweep becomes a typed, checked ``SweepSpec`` before anything loads."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from engines.base import DEFAULT_MAX_TEXT_CHARS, KnobValue, Voice
from engines.chunking import ChunkingSettings
from engines.errors import InputError
from engines.registry import capabilities, default_precision
from profiling.core.records import RunMode
from profiling.run.inputs import MAX_DOCUMENT_BYTES, load_yaml_mapping
from profiling.store.results import ResultsStore
from profiling.store.sweeps import stored_spec_data
from profiling.texts.textsets import TextSet, inline_text_set, load_text_set

_TOP_KEYS = {
    "name", "description", "engines", "texts", "repeats", "warmup", "mode", "shuffle", "seed",
    "save_audio", "reference", "chunking", "max_chars", "blocks",
}
_ENGINE_KEYS = {"engine", "device", "precisions", "knobs", "grid", "seed", "voice", "voices", "convert"}
_CONVERT_KEYS = {"stage", "precision", "knobs", "grid"}  # the stage runs on the engine's device
_VOICE_KEYS = {"speaker", "reference_audio", "reference_text"}
_AXIS_VOICE_KEYS = {"name", *_VOICE_KEYS}


@dataclass(frozen=True)
class ConversionGrid:
    """A post-synthesis stage after an engine: fixed knobs plus a grid of its knob values (grid axes too)."""

    stage: str
    precision: str = "fp32"
    knobs: Mapping[str, KnobValue] = field(default_factory=dict)
    grid: tuple[tuple[str, tuple[KnobValue, ...]], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"stage": self.stage, "precision": self.precision, "knobs": dict(self.knobs),
                "grid": {k: list(v) for k, v in self.grid}}


@dataclass(frozen=True)
class EngineGrid:
    """One engine's part of a sweep: fixed knobs plus a grid of knob values (cartesian product)."""

    engine: str
    device: str = "cpu"
    precisions: tuple[str, ...] = ("fp32",)
    knobs: Mapping[str, KnobValue] = field(default_factory=dict)
    grid: tuple[tuple[str, tuple[KnobValue, ...]], ...] = ()
    seed: int = 0
    voice: Voice = field(default_factory=Voice)
    #: Set when the voice is one value of a ``voices`` axis: shown in labels as ``voice=<name>``.
    voice_name: str = ""
    #: The stage every run's audio goes through (voice conversion); its grid multiplies the engine's.
    conversion: ConversionGrid | None = None


@dataclass(frozen=True)
class SweepSpec:
    name: str
    engines: tuple[EngineGrid, ...]
    text_sets: tuple[str, ...] = ("short",)
    inline_texts: tuple[str, ...] = ()
    repeats: int = 3
    warmup: int = 1
    mode: RunMode = RunMode.BATCH
    shuffle: bool = False
    seed: int = 0
    save_audio: bool = True
    #: Grid values (and optionally ``precision``) naming each engine's reference configuration.
    reference: Mapping[str, KnobValue] = field(default_factory=dict)
    #: STREAM mode: lab-chunker fields, each a list of values (a grid) or one value.
    chunking: tuple[tuple[str, tuple[Any, ...]], ...] = ()
    max_chars: int = DEFAULT_MAX_TEXT_CHARS
    description: str = ""
    #: Rounds each loaded model's runs are split into; units alternate round by round (None: min(repeats, 3)).
    blocks: int | None = None

    @property
    def block_count(self) -> int:
        return max(1, min(self.repeats, self.blocks if self.blocks is not None else 3))

    def text_sets_loaded(self) -> list[TextSet]:
        sets = [load_text_set(name) for name in self.text_sets]
        if self.inline_texts:
            sets.append(inline_text_set(list(self.inline_texts)))
        return sets

    def to_dict(self) -> dict[str, Any]:
        """The spec as plain data (YAML/JSON shape ``spec_from_mapping`` reads back)."""
        return {
            "name": self.name,
            "description": self.description,
            "engines": [
                {
                    "engine": e.engine, "device": e.device, "precisions": list(e.precisions),
                    "knobs": dict(e.knobs), "grid": {k: list(v) for k, v in e.grid}, "seed": e.seed,
                    **_voice_dict(e), **({"convert": e.conversion.to_dict()} if e.conversion else {}),
                }
                for e in self.engines
            ],
            "texts": {"sets": list(self.text_sets), "inline": list(self.inline_texts)},
            "repeats": self.repeats, "warmup": self.warmup, "mode": self.mode.value,
            "shuffle": self.shuffle, "seed": self.seed, "save_audio": self.save_audio,
            "reference": dict(self.reference), "chunking": {k: list(v) for k, v in self.chunking},
            "max_chars": self.max_chars, **({"blocks": self.blocks} if self.blocks is not None else {}),
        }


def _as_tuple(value: object) -> tuple[Any, ...]:
    return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def _mapping(value: object, what: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InputError(f"sweep: '{what}' must be a mapping, got {type(value).__name__}")
    return value


def _unknown(keys: Sequence[str], allowed: set[str], where: str) -> None:
    extra = sorted(set(keys) - allowed)
    if extra:
        raise InputError(f"sweep: unknown key(s) {', '.join(extra)} in {where} (allowed: {', '.join(sorted(allowed))})")


def _int(data: Mapping[str, Any], key: str, default: int) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"sweep: '{key}' must be an integer, got {value!r}")
    return value


def _voice_dict(grid: EngineGrid) -> dict[str, Any]:
    voice = {k: str(v) for k, v in asdict(grid.voice).items() if v is not None}
    return {"voices": [{"name": grid.voice_name, **voice}]} if grid.voice_name else {"voice": voice}


def _voice(voice: Mapping[str, Any]) -> Voice:
    reference_audio = Path(str(voice["reference_audio"])).expanduser() if voice.get("reference_audio") else None
    if reference_audio is not None and not reference_audio.is_file():
        raise InputError(f"sweep: reference audio not found: {reference_audio}")
    return Voice(
        speaker=str(voice["speaker"]) if voice.get("speaker") else None,
        reference_audio=reference_audio,
        reference_text=str(voice["reference_text"]) if voice.get("reference_text") else None,
    )


def _voices(entry: Mapping[str, Any]) -> list[tuple[str, Voice]]:
    """The entry's ``voice``, or each voice of its ``voices`` axis with its name."""
    if "voices" not in entry:
        voice = _mapping(entry.get("voice"), "voice")
        _unknown(list(voice), _VOICE_KEYS, "voice")
        return [("", _voice(voice))]
    if "voice" in entry:
        raise InputError("sweep: give an engine either 'voice' or a 'voices' axis, not both")
    raw = entry["voices"]
    if not isinstance(raw, list) or not raw:
        raise InputError("sweep: 'voices' must be a non-empty list of {name, reference_audio, reference_text}")
    voices = []
    for index, item in enumerate(raw):
        item = _mapping(item, "voices[]")
        _unknown(list(item), _AXIS_VOICE_KEYS, "a voices entry")
        voices.append((str(item.get("name") or f"voice{index}"), _voice(item)))
    names = [name for name, _ in voices]
    if len(set(names)) != len(names):
        raise InputError("sweep: every voice of a 'voices' axis needs its own name")
    return voices


def _conversion(entry: Mapping[str, Any]) -> ConversionGrid | None:
    if entry.get("convert") is None:
        return None
    raw = _mapping(entry["convert"], "convert")
    _unknown(list(raw), _CONVERT_KEYS, "convert")
    if not raw.get("stage"):
        raise InputError("sweep: 'convert' needs 'stage' (e.g. stage: rvc)")
    grid = tuple((str(k), _as_tuple(v)) for k, v in _mapping(raw.get("grid"), "convert.grid").items())
    if any(not values for _, values in grid):
        raise InputError("sweep: every convert.grid entry needs at least one value")
    return ConversionGrid(
        stage=str(raw["stage"]), precision=str(raw.get("precision", "fp32")),
        knobs=dict(_mapping(raw.get("knobs"), "convert.knobs")),
        grid=grid,
    )


def spec_from_mapping(data: Mapping[str, Any]) -> SweepSpec:
    """Build and check a spec from parsed YAML/TOML (or a dashboard form)."""
    data = _mapping(data, "the sweep file")
    _unknown(list(data), _TOP_KEYS, "the sweep")
    name = str(data.get("name", "")).strip()
    if not name or "/" in name:
        raise InputError("sweep: 'name' is required and may not contain '/'")
    engines_raw = data.get("engines")
    if not isinstance(engines_raw, list) or not engines_raw:
        raise InputError("sweep: 'engines' must be a non-empty list of {engine: ..., grid: ...}")
    engines = []
    for entry in engines_raw:
        entry = _mapping(entry, "engines[]")
        _unknown(list(entry), _ENGINE_KEYS, "an engines entry")
        if not entry.get("engine"):
            raise InputError("sweep: every engines entry needs 'engine'")
        grid = _mapping(entry.get("grid"), "grid")
        conversion = _conversion(entry)
        # No precisions: the engine's first (fp32; int8 for Kokoro's shipped file).
        wanted = entry.get("precisions", default_precision(str(entry["engine"])))
        precisions = tuple(str(p) for p in _as_tuple(wanted))
        for voice_name, voice in _voices(entry):
            engines.append(EngineGrid(
                engine=str(entry["engine"]),
                device=str(entry.get("device", "cpu")),
                precisions=precisions,
                knobs=dict(_mapping(entry.get("knobs"), "knobs")),
                grid=tuple((str(k), _as_tuple(v)) for k, v in grid.items()),
                seed=_int(entry, "seed", 0),
                voice=voice,
                voice_name=voice_name,
                conversion=conversion,
            ))
        if any(not values for _, values in engines[-1].grid):
            raise InputError("sweep: every grid entry needs at least one value")
    texts = data.get("texts", "short")
    if isinstance(texts, str):
        sets, inline = (texts,), ()
    elif isinstance(texts, list):
        sets, inline = tuple(str(t) for t in texts), ()
    else:
        texts = _mapping(texts, "texts")
        _unknown(list(texts), {"sets", "inline"}, "texts")
        sets = tuple(str(t) for t in _as_tuple(texts.get("sets", ())))
        inline = tuple(str(t) for t in _as_tuple(texts.get("inline", ())))
    try:
        mode = RunMode(str(data.get("mode", "batch")))
    except ValueError:
        raise InputError(f"sweep: 'mode' must be batch or stream, got {data.get('mode')!r}") from None
    chunking = tuple((str(k), _as_tuple(v)) for k, v in _mapping(data.get("chunking"), "chunking").items())
    known_chunking = {f.name for f in fields(ChunkingSettings)}
    _unknown([k for k, _ in chunking], known_chunking, "chunking")
    if chunking and mode is not RunMode.STREAM:
        raise InputError("sweep: 'chunking' only applies to mode: stream")
    spec = SweepSpec(
        name=name, engines=tuple(engines), text_sets=sets, inline_texts=inline,
        repeats=_int(data, "repeats", 3), warmup=_int(data, "warmup", 1), mode=mode,
        shuffle=bool(data.get("shuffle", False)), seed=_int(data, "seed", 0),
        save_audio=bool(data.get("save_audio", True)),
        reference=dict(_mapping(data.get("reference"), "reference")), chunking=chunking,
        max_chars=_int(data, "max_chars", DEFAULT_MAX_TEXT_CHARS),
        description=str(data.get("description", "")),
        blocks=_int(data, "blocks", 0) if "blocks" in data else None,
    )
    if spec.blocks is not None and spec.blocks < 1:
        raise InputError("sweep: blocks must be >= 1")
    if spec.repeats < 1 or spec.warmup < 0:
        raise InputError("sweep: repeats must be >= 1 and warmup >= 0")
    if not spec.text_sets and not spec.inline_texts:
        raise InputError("sweep: 'texts' names no text set and no inline text")
    return spec


def load_sweep_spec(path: Path | str) -> SweepSpec:
    """Read a ``.yaml``/``.yml`` or ``.toml`` sweep file."""
    path = Path(path)
    try:
        raw = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise InputError(f"cannot read sweep file {path}: {error}") from None
    if path.suffix.lower() != ".toml":
        return spec_from_mapping(load_yaml_mapping(raw, f"sweep file {path}"))
    if len(raw) > MAX_DOCUMENT_BYTES:
        raise InputError(f"sweep file {path} is {len(raw)} characters, over the limit of {MAX_DOCUMENT_BYTES}")
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - python 3.10
        import tomli as tomllib
    try:
        data = tomllib.loads(raw)
    except (tomllib.TOMLDecodeError, RecursionError) as error:
        raise InputError(f"sweep file {path} is not valid TOML: {error}") from None
    return spec_from_mapping(data)


def runnable_precisions(engine: str, wanted: Sequence[str], device: str = "cpu") -> list[str]:
    """The precisions of ``wanted`` the engine declares and does not refuse on ``device`` (for notebooks/forms)."""
    caps = capabilities(engine)
    kind = device.split(":", 1)[0]
    return [p for p in wanted if p in caps.precisions and caps.refusal(kind, p) is None]


def stored_spec(store: ResultsStore, name: str) -> SweepSpec:
    """The spec a stored sweep was registered with."""
    data = stored_spec_data(store, name)
    if data is None:
        raise InputError(f"no sweep named '{name}' in {store.db_path}")
    return spec_from_mapping(data)
