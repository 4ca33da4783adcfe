"""The post-synthesis stage in a measured run: validate its settings, cache its models, convert under the timer.

A converted run's stages read ``<tts stages>`` then ``rvc`` with ``rvc/hubert``, ``rvc/f0``, ... below it, all
in the same record. The TTS stages keep their names, so a run with conversion compares stage by stage with
the same engine alone.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

from engines.base import Audio, AudioChunk
from engines.convert.base import ConversionSettings, Converter
from engines.convert.registry import converter_class, create_converter
from engines.validation import check_characters, resolve_settings
from profiling.core.timer import StageTimer, StageTiming


def validate_conversion(settings: ConversionSettings) -> ConversionSettings:
    """The conversion settings with defaults filled, or InputError before any model loads or run is stored."""
    cls = converter_class(settings.engine)
    capability = cls.device_capability(settings.device) if settings.device_kind == "cuda" else None
    for name, value in settings.knobs.items():
        if isinstance(value, str):
            check_characters(value, f"conversion knob {name}")
    resolved = resolve_settings(cls.capabilities, settings, cls.machine_devices(), capability)
    cls.check_request(resolved)
    return resolved


@dataclass(frozen=True)
class ConverterLoad:
    """Acquiring a converter: a cache hit (no load) or a miss with the load's time and stages."""

    hit: bool
    acquire_s: float
    load_s: float | None
    stages: list[StageTiming]


class ConverterPool:
    """Loaded converters keyed by their load knobs (the model cache): a repeated request reuses the models.

    One converter model per name at a time, as with engines: another load of the same converter unloads
    the resident one first.
    """

    def __init__(self) -> None:
        self._loaded: dict[tuple[object, ...], Converter] = {}
        self._lock = threading.Lock()

    def is_loaded(self, settings: ConversionSettings) -> bool:
        """Whether ``acquire(settings)`` would hit the cache (so a sweep needs no warm-up for it)."""
        with self._lock:
            return settings.load_key(converter_class(settings.engine).capabilities) in self._loaded

    def acquire(self, settings: ConversionSettings, timer: StageTimer | None = None) -> tuple[Converter, ConverterLoad]:
        """The converter for ``settings``; ``timer`` times a load (one whose edges wait for the device)."""
        start = time.perf_counter()
        cls = converter_class(settings.engine)
        key = settings.load_key(cls.capabilities)
        with self._lock:
            converter = self._loaded.get(key)
            if converter is not None:
                return converter, ConverterLoad(True, time.perf_counter() - start, None, [])
            for old in [k for k in self._loaded if k[0] == settings.engine]:
                self._loaded.pop(old).unload()
            converter = create_converter(settings.engine)
            timer = timer or StageTimer()
            load_start = time.perf_counter()
            with timer.stage(settings.engine):
                converter.load(settings, timer)
            timer.finish()
            load_s = time.perf_counter() - load_start
            self._loaded[key] = converter
            return converter, ConverterLoad(False, time.perf_counter() - start, load_s, timer.timings())

    def clear(self) -> None:
        with self._lock:
            for converter in self._loaded.values():
                converter.unload()
            self._loaded.clear()


@dataclass
class ConversionClock:
    """Converts under the run's timer (stage = the converter's name) and adds up the time it took."""

    converter: Converter
    settings: ConversionSettings
    timer: StageTimer
    seconds: float = 0.0

    def convert(self, audio: Audio) -> Audio:
        start = time.perf_counter()
        with self.timer.stage(self.converter.name):
            converted = self.converter.convert(audio, self.settings, self.timer)
        self.seconds += time.perf_counter() - start
        return converted

    def chunks(self, stream: Iterator[AudioChunk]) -> Iterator[AudioChunk]:
        """Each chunk converted as it arrives: a chunk is ready for the listener once converted."""
        for chunk in stream:
            yield AudioChunk(self.convert(chunk.audio), chunk.text, chunk.index)
