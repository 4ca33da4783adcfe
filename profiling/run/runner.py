"""Measured synthesis: load once, warm up, repeat, record every run.

Model load time is measured apart from synthesis and kept on the records;
warm-up runs are recorded too, flagged, and left out of summaries.
"""

from __future__ import annotations

import gc
import random
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from engines.base import DEFAULT_MAX_TEXT_CHARS, Audio, AudioChunk, Engine, SynthesisSettings, Voice
from engines.chunking import ChunkingSettings, chunk_text, synthesize_chunks
from engines.convert.base import ConversionSettings, Converter
from engines.errors import InputError
from engines.registry import create_engine, engine_class
from engines.validation import check_characters, resolve_settings, validate_text
from profiling.audio.playback import PlaybackSettings, analyse_stream, stream_annotations
from profiling.core.compile_stats import compile_counts, compile_delta
from profiling.core.device import TimingMode, stage_instruments
from profiling.core.environment import run_environment
from profiling.core.hardware import cuda_device_info
from profiling.core.nvml import GpuUsageReader
from profiling.core.records import ChunkTiming, RunMode, RunRecord, RunStatus
from profiling.core.rss import PeakRssSampler
from profiling.core.stats import Summary, summarize_metrics, summarize_stages
from profiling.core.timer import SpanTiming, StageTimer, StageTiming
from profiling.run.conversion import ConversionClock, ConverterLoad, ConverterPool, validate_conversion
from profiling.run.zerogpu import gpu_entry
from profiling.store.results import RunSink

#: Called after each run with (runs done, runs total, the record just made).
ProgressCallback = Callable[[int, int, RunRecord], None]


@dataclass(frozen=True)
class BenchRequest:
    settings: SynthesisSettings
    text: str
    voice: Voice = field(default_factory=Voice)
    mode: RunMode = RunMode.BATCH
    repeats: int = 5
    warmup: int = 1
    max_chars: int = DEFAULT_MAX_TEXT_CHARS
    save_audio: bool = False
    label: str = ""
    #: STREAM mode only: None = the engine's own streaming; set = the lab chunker (issue 5).
    chunking: ChunkingSettings | None = None
    #: STREAM mode only: the simulated player (issue 5).
    playback: PlaybackSettings = field(default_factory=PlaybackSettings)
    #: torch on CUDA: synchronise at stage edges (sync) or CUDA events with one wait (events).
    timing: TimingMode = TimingMode.SYNC
    #: A post-synthesis stage (voice conversion) every run's audio goes through; None = the engine alone.
    conversion: ConversionSettings | None = None


@dataclass(frozen=True)
class LoadReport:
    """One model load: its wall time and the stages the engine timed inside it."""

    seconds: float
    stages: list[StageTiming]
    timing_mode: TimingMode
    #: Each stage execution, 0 = the load began (what a trace draws).
    spans: list[SpanTiming] = field(default_factory=list)


@dataclass
class BenchResult:
    batch_id: str
    records: list[RunRecord]
    audio: Audio | None
    load_s: float | None
    load_stages: list[StageTiming] = field(default_factory=list)

    @property
    def stage_summary(self) -> list[Summary]:
        return summarize_stages(self.records)

    @property
    def metric_summary(self) -> list[Summary]:
        return summarize_metrics(self.records)

    def metric(self, name: str) -> Summary:
        return next(s for s in self.metric_summary if s.name == name)


def validate_request(request: BenchRequest) -> tuple[str, SynthesisSettings]:
    """Check everything the user typed before any model is touched.

    Returns the stripped text and the settings with every knob default filled in.
    """
    if request.repeats < 1:
        raise InputError(f"repeats must be at least 1, got {request.repeats}")
    if request.warmup < 0:
        raise InputError(f"warmup must be 0 or more, got {request.warmup}")
    text = validate_text(request.text, request.max_chars)
    for what, value in (("label", request.label), ("speaker", request.voice.speaker),
                        ("reference text", request.voice.reference_text)):
        if value:
            check_characters(value, what)
    cls = engine_class(request.settings.engine)
    if request.mode is RunMode.STREAM and not cls.capabilities.streaming:
        raise InputError(f"engine '{cls.name}' does not stream")
    if request.voice.reference_audio is not None and not cls.capabilities.voice_cloning:
        raise InputError(f"engine '{cls.name}' does not clone voices: remove the reference audio")
    devices = cls.machine_devices()
    capability = cls.device_capability(request.settings.device) if request.settings.device_kind == "cuda" else None
    settings = resolve_settings(cls.capabilities, request.settings, devices, capability)
    cls.check_request(settings, request.voice)
    return text, settings


class EnginePool:
    """Loaded engines keyed by what a load depends on, so repeated requests skip the load.

    One model per engine at a time: a request that needs another load of the same engine unloads the
    resident one first (and hands CUDA's cached blocks back), then loads. Two full-size torch models
    resident at once would not fit a GPU.
    """

    def __init__(self, factory: Callable[[str], Engine] = create_engine) -> None:
        self._engines: dict[tuple[object, ...], Engine] = {}
        self._lock = threading.Lock()
        self._factory = factory
        #: The post-synthesis stages' model cache, beside the engines.
        self.converters = ConverterPool()

    def is_loaded(self, settings: SynthesisSettings) -> bool:
        """Whether ``acquire(settings)`` would reuse a loaded model (no load, so no warm-up needed)."""
        key = settings.load_key(engine_class(settings.engine).capabilities)
        with self._lock:
            return key in self._engines

    def acquire(self, settings: SynthesisSettings) -> tuple[Engine, float | None]:
        """The engine for ``settings`` and its load time (None if it was already loaded)."""
        engine, load = self.acquire_timed(settings)
        return engine, load.seconds if load is not None else None

    def acquire_timed(
        self, settings: SynthesisSettings, timing: TimingMode = TimingMode.SYNC
    ) -> tuple[Engine, LoadReport | None]:
        """The engine for ``settings`` and its load with its stages (None if it was already loaded)."""
        cls = engine_class(settings.engine)
        key = settings.load_key(cls.capabilities)
        with self._lock:
            engine = self._engines.get(key)
            if engine is not None:
                return engine, None
            # One model per engine at a time, unloaded before the next loads: full-size torch models
            # do not fit twice.
            stale = [k for k in self._engines if k[0] == settings.engine]
            for old_key in stale:
                self._engines.pop(old_key).unload()
            if stale:
                release_device_memory()
            engine = self._factory(settings.engine)
            # Edges bind to torch lazily: the load imports it, and the stages after that are synchronised.
            timer = run_timer(settings, cls.capabilities.framework, timing)
            start = time.perf_counter()
            engine.load(settings, timer)
            timer.finish()
            load = LoadReport(time.perf_counter() - start, timer.timings(), _applied_mode(timer),
                              timer.span_timings(since=start))
            self._engines[key] = engine
            return engine, load

    def loaded(self) -> list[Engine]:
        """The engines resident now."""
        with self._lock:
            return list(self._engines.values())

    def clear(self) -> None:
        with self._lock:
            for engine in self._engines.values():
                engine.unload()
            self._engines.clear()
            self.converters.clear()
            release_device_memory()


def release_device_memory() -> None:
    """Collect what an unloaded model left and return CUDA's cached blocks (no torch import if unused)."""
    gc.collect()
    if "torch" in sys.modules:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def run_timer(settings: SynthesisSettings, framework: str, timing: TimingMode) -> StageTimer:
    """A stage timer whose edges and memory probe target the run's own device (torch on CUDA)."""
    edges, memory, _ = stage_instruments(settings.device, framework, timing)
    return StageTimer(edges=edges, memory=memory)


def _applied_mode(timer: StageTimer) -> TimingMode:
    return timer.edges.mode if timer.edges is not None else TimingMode.WALL  # type: ignore[attr-defined]


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    if "torch" in sys.modules:
        import torch

        torch.manual_seed(seed)


def measure_run(
    engine: Engine,
    text: str,
    voice: Voice,
    settings: SynthesisSettings,
    mode: RunMode,
    batch_id: str,
    chunking: ChunkingSettings | None = None,
    playback: PlaybackSettings | None = None,
    on_chunk: Callable[[AudioChunk], None] | None = None,
    timing: TimingMode = TimingMode.SYNC,
    converter: tuple[Converter, ConversionSettings] | None = None,
) -> tuple[RunRecord, Audio | None]:
    """One synthesis under the stage timer and RSS sampler. Engine errors become an ERROR record.

    STREAM mode: ``chunking`` set = the lab chunker (one synthesize per chunk), None = the
    engine's own stream(); the player is simulated with ``playback`` and the joins checked.
    ``on_chunk`` sees each chunk as it is ready (the dashboard plays them live).
    ``converter``: a loaded post-synthesis stage; the audio (each chunk, when streaming) goes through it
    inside the measured time, its stages under its name.
    """
    record = RunRecord(
        engine=settings.engine, settings=settings, mode=mode, text=text, voice=voice,
        environment=run_environment(settings.device), batch_id=batch_id,
    )
    timer = run_timer(settings, engine.capabilities.framework, timing)
    record.timing_mode = _applied_mode(timer).value
    clock = ConversionClock(converter[0], converter[1], timer) if converter is not None else None
    seed_everything(settings.seed)
    audio: Audio | None = None
    compiled_before = compile_counts()
    # Both readers work outside the timed window: nothing runs beside the synthesis.
    with PeakRssSampler() as rss, _gpu_usage(settings) as gpu:
        start = time.perf_counter()
        try:
            if mode is RunMode.STREAM:
                parts = []
                if chunking is None:
                    stream = engine.stream(text, voice, settings, timer)
                else:
                    plan = chunk_text(text, chunking)
                    record.chunk_warnings = list(plan.warnings)
                    stream = synthesize_chunks(engine, plan, voice, settings, timer)
                if clock is not None:
                    stream = clock.chunks(stream)
                for chunk in stream:
                    ready = time.perf_counter() - start
                    parts.append(chunk.audio)
                    record.chunks.append(
                        ChunkTiming(chunk.index, chunk.text, ready, chunk.audio.duration_s)
                    )
                    if on_chunk is not None:
                        on_chunk(chunk)
                audio = Audio.concatenate(parts)
                record.ttfa_s = record.chunks[0].ready_s
            else:
                audio = engine.synthesize(text, voice, settings, timer)
                if clock is not None:
                    audio = clock.convert(audio)
            timer.finish()  # events mode: the one wait, inside the measured time
            record.synth_s = time.perf_counter() - start
            if mode is RunMode.STREAM:  # after the clock stops: analysis is not synthesis time
                record.playback, record.joins = analyse_stream(
                    parts, [c.ready_s for c in record.chunks], playback or PlaybackSettings()
                )
            if mode is RunMode.BATCH:
                record.ttfa_s = record.synth_s
        except InputError as error:
            record.status, record.error = RunStatus.ERROR, str(error)
        except Exception as error:  # an engine crash is data about the setting, not a lost run
            record.status, record.error = RunStatus.ERROR, f"{type(error).__name__}: {error}"
    try:
        timer.finish()  # after an error too: pending events must complete before they are read
    except Exception as error:  # a device error surfacing at the wait: the run failed
        if record.status is RunStatus.OK:
            record.status, record.error = RunStatus.ERROR, f"{type(error).__name__}: {error}"
    record.peak_rss_mb = rss.peak_mb
    record.gpu_peak_allocated_mb, record.gpu_peak_reserved_mb = timer.peak_memory()
    usage = gpu.usage
    record.gpu_util_mean_pct, record.gpu_util_max_pct = usage.util_mean_pct, usage.util_max_pct
    record.gpu_memory_used_mb, record.gpu_sampling = usage.memory_used_mb, usage.note
    compiled = compile_delta(compiled_before, compile_counts())
    if compiled is not None:
        record.recompiles, record.graph_breaks = compiled.frames, compiled.graph_breaks
    record.stages = timer.timings()
    record.spans = timer.span_timings(since=start)  # on the chunks' clock: 0 = the measured window opened
    record.series = timer.series
    record.annotations = timer.annotations
    record.random_weights = engine.random_weights
    record.model = engine.describe_model()
    if clock is not None:
        record.conversion = clock.settings
        record.convert_s = clock.seconds
        record.annotations["engine_random_weights"] = record.random_weights
        record.random_weights = record.random_weights or clock.converter.random_weights  # the audio heard
        record.model.update(clock.converter.describe_model())
    if audio is not None:
        record.audio_s = audio.duration_s
        record.sample_rate = audio.sample_rate
    return record, audio


def _acquire_converter(
    pool: EnginePool, conversion: ConversionSettings | None, timing: TimingMode
) -> tuple[tuple[Converter, ConversionSettings] | None, ConverterLoad | None]:
    """The cached (or newly loaded) converter for every run: each run records whether the cache hit."""
    if conversion is None:
        return None, None
    timer = run_timer(conversion, "torch", timing)
    converter, load = pool.converters.acquire(conversion, timer)
    return (converter, conversion), load


def _note_converter_load(record: RunRecord, load: ConverterLoad) -> None:
    record.annotations["convert_cache"] = "hit" if load.hit else "miss"
    record.annotations["convert_acquire_ms"] = round(load.acquire_s * 1000, 3)
    if not load.hit:
        record.convert_load_s = load.load_s
        record.load_stages = [*record.load_stages, *load.stages]


def _gpu_usage(settings: SynthesisSettings) -> GpuUsageReader:
    if settings.device_kind != "cuda":
        return GpuUsageReader()
    info = cuda_device_info(settings.device)
    return GpuUsageReader(info.uuid, info.physical)


@gpu_entry  # ZeroGPU attaches the GPU for this call only; a no-op elsewhere
def run_bench(
    request: BenchRequest,
    pool: EnginePool,
    store: RunSink | None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    on_chunk: Callable[[AudioChunk], None] | None = None,
) -> BenchResult:
    """Validate, load (or reuse), then warm-up + repeats; each run stored as it finishes."""
    text, settings = validate_request(request)
    conversion = validate_conversion(request.conversion) if request.conversion is not None else None
    if conversion is not None and conversion.device != settings.device:
        # One run, one device: the stage timer synchronises the run's device at every edge, both stages'.
        raise InputError(f"the conversion stage runs on the engine's device ({settings.device}), "
                         f"not {conversion.device}")
    engine, load = pool.acquire_timed(settings, request.timing)
    load_s = load.seconds if load is not None else None
    batch_id = uuid.uuid4().hex
    total = request.warmup + request.repeats
    records: list[RunRecord] = []
    last_audio: Audio | None = None
    for index in range(total):
        if cancel is not None and cancel.is_set():
            break
        converter, converter_load = _acquire_converter(pool, conversion, request.timing)
        record, audio = measure_run(
            engine, text, request.voice, settings, request.mode, batch_id,
            request.chunking, request.playback, on_chunk, request.timing, converter,
        )
        if request.mode is RunMode.STREAM:
            record.annotations.update(stream_annotations(request.chunking, request.playback))
        record.warmup = index < request.warmup
        record.repeat_index = index - request.warmup
        record.label = request.label
        record.load_s = load_s if index == 0 else None
        if index == 0 and load is not None:
            record.load_stages = list(load.stages)
            record.load_spans = list(load.spans)
        if converter_load is not None:
            _note_converter_load(record, converter_load)
        record.annotations.setdefault("model_reused", load_s is None)
        if store is not None:
            keep_audio = request.save_audio and audio is not None and index == total - 1
            store.save_run(record, audio if keep_audio else None)
        records.append(record)
        last_audio = audio if audio is not None else last_audio
        if progress is not None:
            progress(index + 1, total, record)
        if record.status is RunStatus.ERROR:
            break  # the same settings will fail again; stop, keep what was stored
    return BenchResult(
        batch_id=batch_id, records=records, audio=last_audio, load_s=load_s,
        load_stages=list(load.stages) if load is not None else [],
    )
