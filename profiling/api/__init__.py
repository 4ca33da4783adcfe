"""The lab from Python: ``bench``, ``stream``, ``profile``, ``sweep``, ``ab`` and ``runs``.

Plain arguments in (engine name, text, device, precision, knobs as keywords), typed
results out, each with ``.to_dataframe()`` and ``.plot()`` (a plotly figure). The CLI
and the dashboard build their requests with the ``*_request`` functions here and run
them with ``run_request`` / ``run_profile_request`` / ``sweep``: one code path.

    from profiling import bench
    result = bench("piper", "Hello there.", repeats=3, length_scale=1.2)
    result.to_dataframe()
    result.plot()

Every run is stored in the results store (``data_dir``, default ``$TTSPERF_DATA_DIR`` or
``~/.ttsperf``) unless ``save=False``. Loaded models are kept between calls in one
process-wide pool, so a second ``bench`` on the same engine skips the load.

This package is the one surface front ends use (the CLI, the dashboard, notebooks); beside the functions
here it holds, re-exported from where each is declared:

- ``profiling.api.types``: requests, results, records, settings and the stores;
- ``profiling.api.figures``: the plotly figures of runs, sweeps, load tests and profiles;
- ``profiling.api.tables``: stored-run groups, selections, comparisons, reports;
- ``profiling.api.inputs``: parsing what a person types, and the choices a form offers.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import tempfile
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from engines.base import AudioChunk, KnobValue, SynthesisSettings, Voice
from engines.chunking import ChunkingSettings
from engines.errors import InputError
from engines.registry import DEFAULT_ENGINE, default_precision, engine_class
from profiling.analysis import load_plots, plots
from profiling.analysis.compare import per_config_table, reference_ratios, run_groups
from profiling.analysis.run_plots import (
    rtf_figure,
    stage_breakdown_figure,
    timeline_figure,
    ttfa_figure,
)
from profiling.audio.playback import PlaybackSettings
from profiling.core.device import TimingMode
from profiling.core.records import RunMode, RunRecord, RunStatus
from profiling.core.stats import Summary, measured
from profiling.loadgen.capacity_search import CapacitySearch, SearchSettings
from profiling.loadgen.client import ClientOptions
from profiling.loadgen.compare import COMPARE_COLUMNS as LOAD_COMPARE_COLUMNS
from profiling.loadgen.compare import LIST_COLUMNS as LOAD_LIST_COLUMNS
from profiling.loadgen.compare import (
    LoadComparison,
    StoredLoadTest,
    compare_load_tests,
    load_test_list,
    open_load_test,
)
from profiling.loadgen.metrics import RateMetrics, Slo
from profiling.loadgen.null_target import FaultSettings
from profiling.loadgen.runner import LoadProgress, LoadResult, LoadTest, run_load_test
from profiling.loadgen.targets import TargetSpec
from profiling.profilers import parse_profiler_names
from profiling.profilers.artifacts import zip_files
from profiling.profilers.common import ProfileOptions, ProfilerStatus
from profiling.profilers.session import ProfileReport, ProfileRequest, run_profile
from profiling.run.ab import AbProgress, AbRequest, AbResult, run_ab, validate_ab
from profiling.run.ab_design import DEFAULT_RELOAD_EVERY, AbDesign
from profiling.run.calibrate import calibrate as run_calibrate
from profiling.run.conversion import validate_conversion
from profiling.run.inputs import DEFAULT_TEXT, default_max_chars
from profiling.run.runner import BenchRequest, BenchResult, EnginePool, ProgressCallback, run_bench, validate_request
from profiling.store.load import LoadStore
from profiling.store.noise import NoiseFloor
from profiling.store.results import ResultsStore
from profiling.store.sweeps import list_sweeps, sweep_runs_dataframe
from profiling.sweeps.execute import ExecutorChoice, SweepOutcome, SweepProgressCallback, run_sweep
from profiling.sweeps.spec import SweepSpec, load_sweep_spec, spec_from_mapping
from profiling.sweeps.streaming import StreamingSweep, SweepResult, run_streaming_sweep
from profiling.sweeps.streaming import SweepProgress as StreamingSweepProgress
from profiling.trace import LoadRate, load_trace, profile_trace, runs_trace, trace_for, write_trace

__all__ = [
    # one call each: run, store, return a result object
    "ab", "bench", "calibrate", "find_capacity", "load", "profile", "stream", "stream_sweep", "sweep",
    # for front ends: build a request from plain arguments, check it, run it
    "CHUNKERS", "CHUNKER_ENGINE", "CHUNKER_LAB", "bench_request", "chunking_settings", "conversion_settings",
    "default_device", "device_for", "open_store", "profile_request", "run_ab_request", "run_calibration",
    "run_load", "run_profile_request", "run_request", "settings", "shared_pool", "stream_request", "sweep_spec",
    "validate_ab", "validate_conversion", "validate_request", "voice",
    # what the runs return
    "AbRun", "BenchRun", "LoadRun", "ProfileRun", "Runs", "StreamRun", "SweepRun", "records_dataframe",
    # the store read back: runs, load tests, traces, downloads
    "LOAD_COMPARE_COLUMNS", "LOAD_LIST_COLUMNS", "LoadComparison", "StoredLoadTest", "compare_load",
    "has_load_tests", "load_test", "load_tests", "runs", "trace", "trace_file", "trace_for", "zip_artifacts",
]

#: Chunker choices for ``stream``: the lab's text chunker (one synthesis per chunk) or the engine's own.
CHUNKER_LAB = "lab"
CHUNKER_ENGINE = "engine"
CHUNKERS: tuple[str, ...] = (CHUNKER_LAB, CHUNKER_ENGINE)

_POOL: EnginePool | None = None
_POOL_LOCK = threading.Lock()


def shared_pool() -> EnginePool:
    """The process-wide pool the API loads engines into (a notebook's second call reuses the model)."""
    global _POOL
    with _POOL_LOCK:
        if _POOL is None:
            _POOL = EnginePool()
        return _POOL


def open_store(data_dir: Path | str | None = None) -> ResultsStore:
    """The store in ``data_dir`` (default ``$TTSPERF_DATA_DIR`` or ``~/.ttsperf``); InputError if it cannot open."""
    try:
        return ResultsStore(data_dir)
    except OSError as error:
        raise InputError(f"cannot open the results store in {data_dir}: {error}") from None


def _store_for(save: bool, store: ResultsStore | None, data_dir: Path | str | None) -> ResultsStore | None:
    if store is not None:
        return store
    return open_store(data_dir) if save else None


# --- devices ---------------------------------------------------------------------------------


def default_device() -> str:
    """``cuda`` when torch is installed and sees a GPU, else ``cpu`` (torch is imported only if installed)."""
    if importlib.util.find_spec("torch") is None:
        return "cpu"
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def device_for(engine: str, wanted: str | None = None) -> str:
    """``wanted`` (default: ``default_device()``) if ``engine`` runs there on this machine, else ``cpu``."""
    device = wanted or default_device()
    cls = engine_class(engine)
    here = {d.split(":", 1)[0] for d in cls.machine_devices()} & set(cls.capabilities.devices)
    return device if device.split(":", 1)[0] in here else "cpu"


# --- requests from plain arguments -------------------------------------------------------------


def settings(
    engine: str = DEFAULT_ENGINE, device: str = "cpu", precision: str = "", seed: int = 0,
    knobs: Mapping[str, KnobValue] | None = None,
) -> SynthesisSettings:
    return SynthesisSettings(engine=engine.strip(), device=(device or "cpu").strip(),
                             precision=(precision or "").strip() or default_precision(engine.strip()),
                             knobs=dict(knobs or {}), seed=seed)



def voice(
    speaker: str | None = None, reference_audio: Path | str | None = None, reference_text: str | None = None
) -> Voice:
    if reference_audio is None or str(reference_audio) == "":
        return Voice(speaker=speaker or None)
    path = Path(reference_audio)
    if not path.is_file():
        raise InputError(f"reference audio not found: {reference_audio}")
    return Voice(speaker=speaker or None, reference_audio=path, reference_text=(reference_text or "").strip() or None)


def _mode(mode: str | RunMode) -> RunMode:
    try:
        return RunMode(mode)
    except ValueError:
        raise InputError(f"mode '{mode}' is not one of {', '.join(m.value for m in RunMode)}") from None


def bench_request(
    engine: str = DEFAULT_ENGINE, text: str = DEFAULT_TEXT, *, device: str = "cpu", precision: str = "",
    repeats: int = 5, warmup: int = 1, seed: int = 0, mode: str | RunMode = RunMode.BATCH,
    speaker: str | None = None, reference_audio: Path | str | None = None, reference_text: str | None = None,
    label: str = "", save_audio: bool = False, max_chars: int | None = None,
    chunking: ChunkingSettings | None = None, playback: PlaybackSettings | None = None,
    knobs: Mapping[str, KnobValue] | None = None, timing: str | TimingMode = TimingMode.SYNC,
    conversion: SynthesisSettings | None = None,
) -> BenchRequest:
    """The runner's request; engine, precision and knobs are checked when it runs (``validate_request``).

    ``timing`` (torch on CUDA): ``sync`` waits for the device at each stage edge; ``events`` records CUDA
    events there and waits once at the end. ``conversion``: a post-synthesis stage (``conversion_settings``).
    """
    return BenchRequest(
        settings=settings(engine, device, precision, seed, knobs),
        text=text,
        voice=voice(speaker, reference_audio, reference_text),
        mode=_mode(mode),
        repeats=repeats,
        warmup=warmup,
        max_chars=default_max_chars() if max_chars is None else max_chars,
        save_audio=save_audio,
        label=label,
        chunking=chunking,
        playback=playback or PlaybackSettings(),
        timing=_timing(timing),
        conversion=conversion,
    )


def conversion_settings(
    converter: str = "rvc", *, device: str = "cpu", precision: str = "", seed: int = 0,
    knobs: Mapping[str, KnobValue] | None = None,
) -> SynthesisSettings:
    """Settings of a post-synthesis stage (``converters()`` lists them); checked when the request runs."""
    return settings(converter, device, precision, seed, knobs)


def _timing(timing: str | TimingMode) -> TimingMode:
    if isinstance(timing, TimingMode):
        return timing
    if timing not in (TimingMode.SYNC.value, TimingMode.EVENTS.value):
        raise InputError(f"timing '{timing}' is not one of sync, events")
    return TimingMode(timing)


def chunking_settings(
    chunker: str = CHUNKER_LAB, first_chunk_max_chars: int | None = None, max_chars_per_chunk: int | None = None,
    sentence_only_after_s: float | None = None,
) -> ChunkingSettings | None:
    """The lab chunker's settings (None given = its default), or None for the engine's own streaming."""
    if chunker not in CHUNKERS:
        raise InputError(f"chunker '{chunker}' is not one of {', '.join(CHUNKERS)}")
    given = {"first_chunk_max_chars": first_chunk_max_chars, "max_chars_per_chunk": max_chars_per_chunk,
             "sentence_only_after_s": sentence_only_after_s}
    if chunker == CHUNKER_ENGINE:
        named = [name for name, value in given.items() if value is not None]
        if named:
            raise InputError(f"{', '.join(named)} only apply to the lab chunker")
        return None
    defaults = ChunkingSettings()
    return ChunkingSettings(
        first_chunk_max_chars=defaults.first_chunk_max_chars if first_chunk_max_chars is None
        else first_chunk_max_chars,
        max_chars=defaults.max_chars if max_chars_per_chunk is None else max_chars_per_chunk,
        sentence_only_after_s=defaults.sentence_only_after_s if sentence_only_after_s is None
        else sentence_only_after_s,
    )


def stream_request(
    engine: str = DEFAULT_ENGINE, text: str = DEFAULT_TEXT, *, chunker: str = CHUNKER_LAB,
    first_chunk_max_chars: int | None = None, max_chars_per_chunk: int | None = None,
    sentence_only_after_s: float | None = None, prebuffer_ms: float = 0.0, audio_block_ms: float = 20.0,
    repeats: int = 1, warmup: int = 1, **common: Any,
) -> BenchRequest:
    """A STREAM-mode request: the chunker and the simulated player; ``common`` as in ``bench_request``."""
    return bench_request(
        engine, text, mode=RunMode.STREAM, repeats=repeats, warmup=warmup,
        chunking=chunking_settings(chunker, first_chunk_max_chars, max_chars_per_chunk, sentence_only_after_s),
        playback=PlaybackSettings(prebuffer_ms=prebuffer_ms, audio_block_ms=audio_block_ms), **common,
    )


# --- results -------------------------------------------------------------------------------------------------


def _traced(trace: dict[str, Any], path: Path | str | None) -> dict[str, Any]:
    """The trace dict, also written as JSON to ``path`` when one is given."""
    if path is not None:
        write_trace(trace, path)
    return trace


def records_dataframe(records: list[RunRecord]) -> pd.DataFrame:
    """One row per run with the store's headline columns (warm-ups included, flagged)."""
    rows = [{
        "run_id": r.run_id, "batch_id": r.batch_id, "engine": r.engine, "device": r.settings.device,
        "precision": r.settings.precision, "mode": r.mode.value, "label": r.label, "status": r.status.value,
        "warmup": r.warmup, "repeat_index": r.repeat_index, "random_weights": r.random_weights,
        "text_chars": r.text_chars, "synth_s": r.synth_s, "audio_s": r.audio_s, "rtf": r.rtf,
        "ttfa_s": r.ttfa_s, "load_s": r.load_s, "peak_rss_mb": r.peak_rss_mb, "error": r.error,
        "convert": r.conversion.engine if r.conversion is not None else "", "convert_s": r.convert_s,
        "tts_rtf": r.tts_rtf, "convert_rtf": r.convert_rtf,
    } for r in records]
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class BenchRun:
    """A finished ``bench``: the runner's result and where its runs were stored (None: not stored)."""

    result: BenchResult
    db_path: Path | None

    @property
    def records(self) -> list[RunRecord]:
        return self.result.records

    @property
    def batch_id(self) -> str:
        return self.result.batch_id

    @property
    def failed(self) -> RunRecord | None:
        return next((r for r in self.records if r.status is RunStatus.ERROR), None)

    def metric(self, name: str) -> Summary:
        """``rtf``, ``ttfa_s``, ``synth_s``... over the measured runs (median, p95, CI)."""
        return self.result.metric(name)

    def to_dataframe(self) -> pd.DataFrame:
        return records_dataframe(self.records)

    def stages_dataframe(self) -> pd.DataFrame:
        """Stage summaries over the measured runs (median, p95 ... in seconds)."""
        return pd.DataFrame([vars(s) for s in self.result.stage_summary])

    def plot(self) -> go.Figure:
        """Where the time goes: the stage breakdown (median per stage)."""
        synth = next((m for m in self.result.metric_summary if m.name == "synth_s"), None)
        return stage_breakdown_figure(self.result.stage_summary, synth)

    def plot_rtf(self) -> go.Figure:
        return rtf_figure(self.records, next((m for m in self.result.metric_summary if m.name == "rtf"), None))

    def plot_ttfa(self) -> go.Figure:
        return ttfa_figure(self.records, next((m for m in self.result.metric_summary if m.name == "ttfa_s"), None))

    def trace(self, path: Path | str | None = None) -> dict[str, Any]:
        """The runs as a Chrome trace (Perfetto, chrome://tracing): stages nested in each run, the load before
        the first; streams add chunk synthesis beside playback. Written to ``path`` (JSON) when given."""
        return _traced(runs_trace(self.records, f"batch {self.batch_id}"), path)


@dataclass(frozen=True)
class StreamRun(BenchRun):
    """A finished ``stream``: per-run player figures; ``plot()`` is the last run's timeline."""

    def to_dataframe(self) -> pd.DataFrame:
        frame = super().to_dataframe()
        reports = [r.playback for r in self.records]
        for column in ("first_audible_s", "underrun_count", "total_stall_s", "itl_p95_s"):
            frame[column] = [getattr(p, column) if p is not None else None for p in reports]
        frame["chunks"] = [len(r.chunks) for r in self.records]
        return frame

    def plot(self) -> go.Figure:
        runs = measured(self.records) or self.records
        return timeline_figure(runs[-1])


def run_request(
    request: BenchRequest, *, data_dir: Path | str | None = None, save: bool = True,
    store: ResultsStore | None = None, pool: EnginePool | None = None, progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None, on_chunk: Callable[[AudioChunk], None] | None = None,
) -> BenchRun:
    """Run a request the ``*_request`` functions built (what ``bench`` and ``stream`` do)."""
    target = _store_for(save, store, data_dir)
    result = run_bench(request, pool or shared_pool(), target, progress, cancel, on_chunk)
    run_type = StreamRun if request.mode is RunMode.STREAM else BenchRun
    return run_type(result, target.db_path if target is not None else None)


def bench(
    engine: str = DEFAULT_ENGINE, text: str = DEFAULT_TEXT, *, device: str = "cpu", precision: str = "",
    repeats: int = 5, warmup: int = 1, seed: int = 0, mode: str = "batch", speaker: str | None = None,
    reference_audio: Path | str | None = None, reference_text: str | None = None, label: str = "",
    save_audio: bool = False, max_chars: int | None = None, data_dir: Path | str | None = None,
    save: bool = True, progress: ProgressCallback | None = None, timing: str = "sync",
    convert: str | None = None, convert_knobs: Mapping[str, KnobValue] | None = None, **knobs: KnobValue,
) -> BenchRun:
    """Load (or reuse) ``engine``, run ``warmup`` + ``repeats`` measured syntheses of ``text``; knobs as keywords.
    ``convert="rvc"`` sends each run's audio through that stage (``convert_knobs``), on the same device.

    >>> bench("piper", "Hello there.", repeats=2, length_scale=1.2).to_dataframe()  # doctest: +SKIP
    """
    conversion = (conversion_settings(convert, device=device, seed=seed, knobs=convert_knobs)
                  if convert else None)
    request = bench_request(
        engine, text, device=device, precision=precision, repeats=repeats, warmup=warmup, seed=seed, mode=mode,
        speaker=speaker, reference_audio=reference_audio, reference_text=reference_text, label=label,
        save_audio=save_audio, max_chars=max_chars, knobs=knobs, timing=timing, conversion=conversion,
    )
    return run_request(request, data_dir=data_dir, save=save, progress=progress)


def stream(
    engine: str = DEFAULT_ENGINE, text: str = DEFAULT_TEXT, *, device: str = "cpu", precision: str = "",
    chunker: str = CHUNKER_LAB, first_chunk_max_chars: int | None = None, max_chars_per_chunk: int | None = None,
    sentence_only_after_s: float | None = None, prebuffer_ms: float = 0.0, audio_block_ms: float = 20.0,
    repeats: int = 1, warmup: int = 1, seed: int = 0, label: str = "", max_chars: int | None = None,
    data_dir: Path | str | None = None, save: bool = True, progress: ProgressCallback | None = None,
    **knobs: KnobValue,
) -> StreamRun:
    """A measured stream: chunks, TTFA, first audible, underruns against a simulated player."""
    request = stream_request(
        engine, text, chunker=chunker, first_chunk_max_chars=first_chunk_max_chars,
        max_chars_per_chunk=max_chars_per_chunk, sentence_only_after_s=sentence_only_after_s,
        prebuffer_ms=prebuffer_ms, audio_block_ms=audio_block_ms, repeats=repeats, warmup=warmup,
        device=device, precision=precision, seed=seed, label=label, max_chars=max_chars, knobs=knobs,
    )
    result = run_request(request, data_dir=data_dir, save=save, progress=progress)
    assert isinstance(result, StreamRun)
    return result


def stream_sweep(
    base: BenchRequest, first_chunk_max_chars: Sequence[int], prebuffers_ms: Sequence[float] = (), *,
    data_dir: Path | str | None = None, save: bool = True, store: ResultsStore | None = None,
    pool: EnginePool | None = None, progress: StreamingSweepProgress | None = None,
    cancel: threading.Event | None = None,
) -> SweepResult:
    """A streaming sweep: ``base`` (a ``stream_request`` with the lab chunker) at each first-chunk size, every
    run replayed against each pre-buffer (none given: ``base``'s). Runs are stored as they finish, labelled
    ``stream-sweep <id> first=<n>``; ``.points`` holds TTFA, first audible and stall per pair."""
    if base.chunking is None:
        raise InputError("the sweep varies the lab chunker's first chunk: choose the lab chunker")
    validate_request(base)
    sweep = StreamingSweep(base, tuple(first_chunk_max_chars), tuple(prebuffers_ms) or (base.playback.prebuffer_ms,))
    return run_streaming_sweep(sweep, pool or shared_pool(), _store_for(save, store, data_dir), progress, cancel)


# --- profile ----------------------------------------------------------------------------------------


def profile_request(
    engine: str = DEFAULT_ENGINE, text: str = DEFAULT_TEXT, *, profilers: str | tuple[str, ...] | list[str] = "all",
    device: str = "cpu", precision: str = "", repeats: int = 3, warmup: int = 1, seed: int = 0,
    mode: str | RunMode = RunMode.BATCH, top: int = 25, line_functions: tuple[str, ...] | list[str] = (),
    pyspy_rate: int = 200, pyspy_native: bool = False, pyspy_prefix: str = "", torch_memory: bool = False,
    leak_runs: int = 6, tracemalloc: bool = True, strict: bool | None = None, label: str = "",
    max_chars: int | None = None, speaker: str | None = None, reference_audio: Path | str | None = None,
    reference_text: str | None = None, knobs: Mapping[str, KnobValue] | None = None,
) -> ProfileRequest:
    """``profilers``: "all" (skips what cannot run) or names (then one that cannot run is an error)."""
    if isinstance(profilers, str):
        names = parse_profiler_names(profilers)
        strict = profilers.strip().lower() != "all" if strict is None else strict
    else:
        names = parse_profiler_names(",".join(profilers)) if profilers else ()
        strict = True if strict is None else strict
    return ProfileRequest(
        settings=settings(engine, device, precision, seed, knobs),
        text=text,
        voice=voice(speaker, reference_audio, reference_text),
        mode=_mode(mode),
        profilers=names,
        strict=strict,
        options=ProfileOptions(
            repeats=repeats, top=top, line_functions=tuple(line_functions), pyspy_rate=pyspy_rate,
            pyspy_native=pyspy_native, pyspy_prefix=tuple(shlex.split(pyspy_prefix)), torch_memory=torch_memory,
            leak_runs=leak_runs, tracemalloc=tracemalloc,
        ),
        warmup=warmup,
        max_chars=default_max_chars() if max_chars is None else max_chars,
        label=label,
    )


@dataclass(frozen=True)
class ProfileRun:
    """A finished ``profile``: each profiler's result (tables, hot spots, overhead, files)."""

    report: ProfileReport
    db_path: Path | None

    @property
    def results(self) -> list[Any]:
        return self.report.results

    def tables(self) -> dict[str, pd.DataFrame]:
        """Every profiler table by ``"<profiler>: <title>"``."""
        return {f"{r.profiler}: {t.title}": t.frame for r in self.report.results for t in r.tables}

    def artifact_paths(self) -> list[Path]:
        return [a.path for r in self.report.results for a in r.artifacts if a.path.is_file()]

    def to_dataframe(self) -> pd.DataFrame:
        """One row per profiler: status, message, overhead ratio, run id, number of files."""
        return pd.DataFrame([{
            "profiler": r.profiler, "status": r.status.value, "message": r.message,
            "overhead_ratio": r.overhead.ratio if r.overhead is not None else None,
            "run_id": r.run_id, "files": len(r.artifacts),
        } for r in self.report.results])

    def plot(self) -> go.Figure:
        """Each profiler's overhead: profiled run time over the plain run just before it."""
        ok = [r for r in self.report.results if r.status is ProfilerStatus.OK and r.overhead is not None]
        figure = go.Figure(go.Bar(x=[r.profiler for r in ok], y=[r.overhead.ratio for r in ok]))
        figure.add_hline(y=1.0, line_dash="dot", annotation_text="no overhead")
        figure.update_layout(title=f"Profiler overhead on {self.report.engine} (profiled / plain)",
                             yaxis_title="time ratio", template="plotly_white", height=340)
        return figure

    def trace(self, path: Path | str | None = None) -> dict[str, Any]:
        """Plain and profiled runs with their stages, torch.profiler's own trace merged on the same clock
        where it ran (docs/traces.md). Written to ``path`` (JSON) when given."""
        records = [*self.report.baseline, *(r for result in self.report.results for r in result.records)]
        torch_traces = [a.path for result in self.report.results for a in result.artifacts
                        if a.kind == "torch:chrome_trace"]
        return _traced(profile_trace(records, torch_traces, f"profile {self.report.engine}"), path)


def run_profile_request(
    request: ProfileRequest, *, data_dir: Path | str | None = None, save: bool = True,
    store: ResultsStore | None = None, pool: EnginePool | None = None,
    progress: Callable[[str], None] | None = None, cancel: threading.Event | None = None,
) -> ProfileRun:
    """``cancel`` stops it between profilers: those not run are reported as skipped ("cancelled")."""
    target = _store_for(save, store, data_dir)
    report = run_profile(request, pool or shared_pool(), target, progress, cancel)
    return ProfileRun(report, target.db_path if target is not None else None)


def profile(
    engine: str = DEFAULT_ENGINE, text: str = DEFAULT_TEXT, *, profilers: str | list[str] = "all",
    device: str = "cpu", precision: str = "", repeats: int = 3, warmup: int = 1, seed: int = 0,
    mode: str = "batch", data_dir: Path | str | None = None, save: bool = True, **knobs: KnobValue,
) -> ProfileRun:
    """Repeat a run under profilers (each paired with a plain run for the overhead); files stored as artifacts."""
    request = profile_request(engine, text, profilers=profilers, device=device, precision=precision,
                              repeats=repeats, warmup=warmup, seed=seed, mode=mode, knobs=knobs)
    return run_profile_request(request, data_dir=data_dir, save=save)


# --- sweeps and the store ---------------------------------------------------------------------------------


def sweep_spec(spec: SweepSpec | Mapping[str, Any] | Path | str) -> SweepSpec:
    """A sweep from a spec, a mapping (the YAML's shape) or a YAML/TOML file path."""
    if isinstance(spec, SweepSpec):
        return spec
    if isinstance(spec, Mapping):
        return spec_from_mapping(spec)
    return load_sweep_spec(spec)


@dataclass(frozen=True)
class SweepRun:
    """A sweep as stored (a resumed sweep includes the runs of earlier attempts)."""

    outcome: SweepOutcome
    store: ResultsStore

    @property
    def name(self) -> str:
        return self.outcome.name

    def to_dataframe(self) -> pd.DataFrame:
        """Measured runs with configuration key/label, text id, repeat and the varied knobs."""
        return sweep_runs_dataframe(self.store, self.name)

    def table(self, metric: str = "rtf", by: str = "config_label") -> pd.DataFrame:
        """Per configuration: median, p95, mean, std and the 95% bootstrap interval of the median."""
        return per_config_table(self.to_dataframe(), by=by, metric=metric)

    def versus_reference(self, metrics: Sequence[str] = ("rtf", "synth_s")) -> pd.DataFrame:
        """Each configuration against its engine's reference: ratio, 95% interval, smallest detectable difference."""
        return reference_ratios(self.to_dataframe(), metrics)

    def plot(self, x: str = "config_label", color: str = "precision") -> go.Figure:
        return plots.rtf_box(self.to_dataframe(), x=x, color=color)

    def trace(self, path: Path | str | None = None) -> dict[str, Any]:
        """One track per scheduler unit, every run (warm-ups too) with its load and stages. Written to ``path``
        (JSON) when given."""
        return _traced(trace_for("sweep", self.name, self.store), path)


def sweep(
    spec: SweepSpec | Mapping[str, Any] | Path | str, *, data_dir: Path | str | None = None,
    store: ResultsStore | None = None, pool: EnginePool | None = None,
    progress: SweepProgressCallback | None = None, cancel: threading.Event | None = None,
    executor: ExecutorChoice | None = None,
) -> SweepRun:
    """Run a sweep (engines x knob grid x texts); what is stored already is not run again.

    ``executor``: ``ExecutorChoice("ray", address=...)`` runs it on Ray; the default runs it here.
    """
    parsed = sweep_spec(spec)
    target = store or open_store(data_dir)
    outcome = run_sweep(parsed, target, pool or shared_pool(), progress, cancel, executor)
    return SweepRun(outcome, target)


# --- A/B --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AbRun:
    """An A/B session: B/A per metric from adjacent pairs, what it could detect, and the switch penalty."""

    result: AbResult
    store: ResultsStore | None

    @property
    def detectable(self) -> float:
        """Smallest relative difference of the steering metric this session could tell from none."""
        main = self.result.summary.estimate()
        return main.detectable if main is not None else float("nan")

    def pairs_needed(self, target: float) -> int | None:
        """Pairs this noise would need for ``target`` (0.03 = 3 %) to be detectable."""
        main = self.result.summary.estimate()
        return main.pairs_needed(target) if main is not None else None

    def table(self) -> pd.DataFrame:
        """Per metric: medians, B/A, its 95 % interval, the smallest detectable difference, outlier pairs."""
        return pd.DataFrame([{
            "metric": e.metric, "a_median": e.baseline_median, "b_median": e.candidate_median, "ratio": e.ratio,
            "ci_low": e.ci_low, "ci_high": e.ci_high, "detectable": e.detectable, "pairs": e.n,
            "outliers_mild": len(e.outliers.mild), "outliers_severe": len(e.outliers.severe), "verdict": e.verdict,
        } for e in self.result.summary.estimates])

    def switch_penalty(self) -> pd.DataFrame:
        """Per side: a run right after a switch over the next run of that side (after a repeat)."""
        return pd.DataFrame([{
            "side": p.side, "ratio": p.estimate.ratio, "ci_low": p.estimate.ci_low, "ci_high": p.estimate.ci_high,
            "after_switch_median": p.estimate.candidate_median, "after_repeat_median": p.estimate.baseline_median,
            "couples": p.estimate.n,
        } for p in self.result.summary.switch])

    def to_dataframe(self) -> pd.DataFrame:
        """Every run (warm-ups flagged) with its side, pair, role and what came before it."""
        frame = records_dataframe(list(self.result.records))
        for key in ("ab_side", "ab_pair", "ab_role", "ab_after", "ab_position"):
            frame[key] = [r.annotations.get(key) for r in self.result.records]
        return frame


def _side(base: SynthesisSettings, overrides: Mapping[str, KnobValue] | None) -> SynthesisSettings:
    knobs = dict(overrides or {})
    device, precision = str(knobs.pop("device", base.device)), str(knobs.pop("precision", base.precision))
    return SynthesisSettings(base.engine, device, precision, {**base.knobs, **knobs}, base.seed)


def ab(
    engine: str = DEFAULT_ENGINE, text: str = DEFAULT_TEXT, *, a: Mapping[str, KnobValue] | None = None,
    b: Mapping[str, KnobValue] | None = None, device: str = "cpu", precision: str = "", seed: int = 0,
    pairs: int = 20, design: str = "auto", target_detectable: float | None = None, max_pairs: int = 200,
    reload_every: int = DEFAULT_RELOAD_EVERY,
    max_seconds: float = 600.0, metric: str = "synth_s", warmup: int = 1, warmup_max: int = 8, name: str = "",
    max_chars: int | None = None, data_dir: Path | str | None = None, save: bool = True,
    progress: AbProgress | None = None, **knobs: KnobValue,
) -> AbRun:
    """B against A on one text: shared ``knobs`` as keywords, ``a``/``b`` override knobs (or ``precision``,
    ``device``) per side. One loaded model when only per-call knobs differ; otherwise two, in segments whose
    first run after a switch is kept apart, both reloaded every ``reload_every`` segments.
    ``target_detectable=0.03`` adds pairs until 3 % is detectable.

    >>> ab("piper", "Hello there.", a={"length_scale": 1.0}, b={"length_scale": 1.05}).table()  # doctest: +SKIP
    """
    try:
        chosen = AbDesign(design)
    except ValueError:
        raise InputError(f"design '{design}' is not one of {', '.join(d.value for d in AbDesign)}") from None
    base = settings(engine, device, precision, seed, knobs)
    request = AbRequest(
        _side(base, a), _side(base, b), text, pairs=pairs, warmup=warmup, warmup_max=warmup_max,
        max_chars=default_max_chars() if max_chars is None else max_chars, name=name, design=chosen,
        target_detectable=target_detectable, max_pairs=max_pairs, max_seconds=max_seconds, metric=metric,
        reload_every=reload_every,
    )
    return run_ab_request(request, data_dir=data_dir, save=save, progress=progress)


def run_ab_request(
    request: AbRequest, *, data_dir: Path | str | None = None, save: bool = True, store: ResultsStore | None = None,
    progress: AbProgress | None = None, cancel: threading.Event | None = None,
) -> AbRun:
    """Run a prepared ``AbRequest`` (what the CLI builds from ``--a``/``--b``); checked first (``validate_ab``),
    so bad input fails before any model loads."""
    validate_ab(request)
    target = _store_for(save, store, data_dir)
    return AbRun(run_ab(request, target, progress, cancel), target)


# --- the machine's noise floor ----------------------------------------------------------------------------


def run_calibration(
    synthesis: SynthesisSettings, text: str = DEFAULT_TEXT, *, voice: Voice | None = None, batches: int = 8,
    repeats: int = 5, warmup: int = 1, data_dir: Path | str | None = None, store: ResultsStore | None = None,
    progress: Callable[[int, int], None] | None = None, cancel: threading.Event | None = None,
) -> NoiseFloor:
    """An A/A run: ``batches`` separate batches of one setting (each loads its own model, as separate ``bench``
    calls would), stored with the noise floor ``compare`` widens separate-batch intervals by."""
    if batches < 4 or repeats < 2:
        raise InputError("calibrate needs 4 or more batches and 2 or more repeats")
    # its own pool: each batch clears it, which must not unload the shared pool's models
    return run_calibrate(synthesis, text, _store(data_dir, store), batches, repeats, warmup, voice, None, progress,
                         cancel)


def calibrate(
    engine: str = DEFAULT_ENGINE, text: str = DEFAULT_TEXT, *, batches: int = 8, repeats: int = 5, warmup: int = 1,
    device: str = "cpu", precision: str = "", seed: int = 0, data_dir: Path | str | None = None,
    progress: Callable[[int, int], None] | None = None, **knobs: KnobValue,
) -> NoiseFloor:
    """This machine's noise floor for ``engine`` (knobs as keywords): see ``run_calibration``.

    >>> calibrate("piper", batches=4, repeats=3).between_pct  # doctest: +SKIP
    """
    return run_calibration(settings(engine, device, precision, seed, knobs), text, batches=batches,
                           repeats=repeats, warmup=warmup, data_dir=data_dir, progress=progress)


# --- load tests -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadRun:
    """A load test as measured: per-load metrics, the capacity under the SLO, and every request."""

    test: LoadTest
    result: LoadResult
    store: ResultsStore | None

    @property
    def capacity_search(self) -> CapacitySearch | None:
        """The capacity search (``find_capacity``): capacity, last met and first missed step, streams per core."""
        return self.result.search

    def to_dataframe(self) -> pd.DataFrame:
        """One row per offered load (rate or users): percentiles, continuity, throughput, goodput, errors, SLO.

        ``ttfa_*`` is audible TTFA by the lab's rule (first sample > 0.02 full scale), ``ttfa_tb_*`` by
        tts_bench's (two 20 ms frames >= -45 dBFS); docs/load_methodology.md defines every column.
        """
        rows = []
        for m in self.result.metrics:
            ttfa, tb, e2e = m.dist("audible_ttfa_s"), m.dist("audible_ttfa_tb_s"), m.dist("e2e_s")
            underrun = m.dist("underrun_max_ms")
            rows.append({
                "load": m.label, "offered_per_s": m.offered_per_s, "users": m.users, "sent": m.sent, "ok": m.ok,
                "ttfa_p50_s": ttfa.p50, "ttfa_p95_s": ttfa.p95, "ttfa_p99_s": ttfa.p99,
                "ttfa_tb_p50_s": tb.p50, "ttfa_tb_p95_s": tb.p95, "ttfa_tb_p99_s": tb.p99,
                "e2e_p50_s": e2e.p50, "e2e_p95_s": e2e.p95, "e2e_p99_s": e2e.p99,
                "throughput_per_min": m.throughput_per_min, "goodput_per_min": m.goodput_per_min,
                "good_fraction": m.good_fraction, "admitted_good_fraction": m.admitted_good_fraction,
                "refused_503": m.refused, "error_rate": m.error_rate, "underruns": m.underruns, "c100": m.c100,
                "underrun_p95_ms": underrun.p95, "underrun_p99_ms": underrun.p99, "gap_p99_s": m.gap_p99_s,
                "late_chunk_share": m.late_chunk_share,
                "sustainable": m.sustainable, "client_limited": m.client_limited, "slo_met": m.slo_met,
            })
        return pd.DataFrame(rows)

    def requests(self) -> pd.DataFrame:
        """Every request of every load (the client's timeline of each)."""
        return pd.DataFrame([{**asdict(row), "load": run.schedule.label} for run in self.result.runs
                             for row in run.rows])

    def plot(self) -> go.Figure:
        """Audible TTFA percentiles against offered load, with the SLO line and the capacity marked."""
        capacity = self.result.capacity
        at = capacity.users if self.test.users else capacity.rate_per_s
        # A capacity search runs its loads out of order: draw them by load.
        frame = self.to_dataframe().sort_values(["users", "offered_per_s"], kind="stable")
        return load_plots.latency_vs_load(frame, self.test.slo.ttfa_ms, at)

    def trace(self, path: Path | str | None = None) -> dict[str, Any]:
        """One track per request, client and server side by side on the client's clock, one process per server
        worker (docs/traces.md). Written to ``path`` (JSON) when given."""
        rates = [LoadRate(run.schedule.label, run.started_unix, [asdict(row) for row in run.rows], run.server)
                 for run in self.result.runs]
        return _traced(load_trace(rates, f"load test {self.result.test_id or self.test.target.label}"), path)


def _load_test(
    engine: str, rates: Sequence[float], users: Sequence[int], workers: int, duration_s: float, max_requests: int,
    url: str, null_target: bool, device: str, seed: int, text_set: str, warmup: int, warmup_concurrency: int,
    convert: str, convert_knobs: Mapping[str, KnobValue] | None, serving: Mapping[str, Any], slo: Slo,
    find: SearchSettings | None, voice: str, knobs: Mapping[str, KnobValue], faults: FaultSettings | None,
) -> LoadTest:
    kind = "url" if url else "null" if null_target else "lab"
    spec = TargetSpec(kind=kind, engine=engine, workers=workers, device=device, faults=faults or FaultSettings(),
                      knobs=tuple((k, str(v)) for k, v in knobs.items()), url=url, convert=convert,
                      convert_knobs=tuple((k, str(v)) for k, v in (convert_knobs or {}).items()), **serving)
    return LoadTest(target=spec, rates=tuple(float(r) for r in rates), users=tuple(int(u) for u in users),
                    duration_s=duration_s, max_requests=max_requests, seed=seed, text_set=text_set,
                    client=ClientOptions(warmup=warmup, warmup_concurrency=warmup_concurrency, voice=voice),
                    slo=slo, find_capacity=find)


def _serving(precision: str | None, policy: str | None, chunker: str | None, first_chunk_chars: int | None,
             chunk_chars: int | None, sentence_only_after_s: float | None, ttfa_target_ms: float | None,
             admit: str | None) -> dict[str, Any]:
    """The lab server's settings given (None keeps TargetSpec's default)."""
    given = dict(precision=precision, policy=policy, chunker=chunker, first_chunk_chars=first_chunk_chars,
                 chunk_chars=chunk_chars, sentence_only_after_s=sentence_only_after_s,
                 ttfa_target_ms=ttfa_target_ms, admit=admit)
    return {k: v for k, v in given.items() if v is not None}


def load(
    engine: str = DEFAULT_ENGINE, rates: Sequence[float] = (1.0,), *, users: Sequence[int] = (), workers: int = 1,
    duration_s: float = 20.0, max_requests: int = 1000, url: str = "", null_target: bool = False,
    device: str = "cpu", slo_ttfa_ms: float = 800.0, slo_percentile: int = 95, slo_underruns: int | None = 0,
    slo_error_rate: float = 0.0, slo_c100: float = 0.99, slo_max_underrun_ms: float | None = None,
    seed: int = 0, text_set: str = "medium", warmup: int = 2, warmup_concurrency: int = 4, voice: str = "default",
    precision: str | None = None, policy: str | None = None, chunker: str | None = None,
    first_chunk_chars: int | None = None, chunk_chars: int | None = None, sentence_only_after_s: float | None = None,
    ttfa_target_ms: float | None = None, admit: str | None = None,
    find_capacity: bool | SearchSettings = False, faults: FaultSettings | None = None,
    data_dir: Path | str | None = None, store: ResultsStore | None = None, save: bool = True,
    progress: LoadProgress | None = None, convert: str = "", convert_knobs: Mapping[str, KnobValue] | None = None,
    **knobs: KnobValue,
) -> LoadRun:
    """A load test: ``engine`` served here (``workers`` replicas, knobs as keywords), the null target, or a
    loopback ``url``; open-loop ``rates`` (requests/s) or closed-loop ``users``; every loop bounded by
    ``duration_s`` and ``max_requests``. ``convert="rvc"``: the served engine's every chunk goes through that
    stage (``convert_knobs``) before it is sent. ``precision`` .. ``admit``: the lab server's ``serve`` flags
    (None = serve's default). The SLO: ``slo_*`` (``slo_underruns=None``: underruns not counted, continuity
    judged by ``slo_c100``). ``find_capacity=True`` (or ``SearchSettings``): search the capacity instead,
    ``rates``/``users`` giving the start (see ``find_capacity``). ``faults``: the null target's behaviour.

    >>> load("piper", rates=(1, 2, 4), workers=2, duration_s=20).to_dataframe()  # doctest: +SKIP
    """
    find = find_capacity if isinstance(find_capacity, SearchSettings) else SearchSettings() if find_capacity \
        else None
    slo = Slo(ttfa_ms=slo_ttfa_ms, percentile=slo_percentile, max_underruns=slo_underruns,
              max_error_rate=slo_error_rate, min_c100=slo_c100, max_underrun_ms=slo_max_underrun_ms)
    serving = _serving(precision, policy, chunker, first_chunk_chars, chunk_chars, sentence_only_after_s,
                       ttfa_target_ms, admit)
    test = _load_test(engine, rates, users, workers, duration_s, max_requests, url, null_target, device, seed,
                      text_set, warmup, warmup_concurrency, convert, convert_knobs, serving, slo, find, voice, knobs,
                      faults)
    test.check()
    return run_load(test, store=store or (open_store(data_dir) if save else None), progress=progress)


def find_capacity(
    engine: str = DEFAULT_ENGINE, *, start: float | None = None, users: bool = False, min_requests: int = 100,
    max_steps: int = 8, resolution: float = 0.05, factor: float = 1.5, max_step_s: float = 600.0,
    budget_s: float = 3600.0, **load_args: Any,
) -> LoadRun:
    """The largest open-loop rate (``users=True``: closed-loop user count) meeting the SLO, each step at least
    ``min_requests`` measured requests; every other keyword as ``load``. ``.capacity_search`` holds the
    capacity, the bracketing steps and streams per core; every step is stored as a load.

    >>> find_capacity("piper", workers=2, min_requests=100).capacity_search.describe()  # doctest: +SKIP
    """
    settings = SearchSettings(min_requests=min_requests, max_steps=max_steps, resolution=resolution, factor=factor,
                              start=start, max_step_s=max_step_s, budget_s=budget_s)
    if users:
        load_args.setdefault("users", (int(start or 1),))
        load_args["rates"] = ()
    else:
        load_args.setdefault("rates", ())
    return load(engine, find_capacity=settings, **load_args)


def run_load(test: LoadTest, *, store: ResultsStore | None = None, progress: LoadProgress | None = None,
             on_rate: Callable[[RateMetrics], None] | None = None,
             cancel: threading.Event | None = None) -> LoadRun:
    """Run a prepared ``LoadTest`` (what the CLI and the Load tab build); each load stored as it ends.
    ``cancel`` (set from another thread) stops it at the next load's boundary (``result.cut_line()``)."""
    return LoadRun(test, run_load_test(test, store, progress, on_rate, cancel), store)


@dataclass(frozen=True)
class Runs:
    """The results store as DataFrames."""

    store: ResultsStore

    def to_dataframe(self) -> pd.DataFrame:
        """Every stored run, one row each (warm-ups included, flagged)."""
        return self.store.runs_dataframe()

    def stages(self) -> pd.DataFrame:
        return self.store.stages_dataframe()

    def groups(self) -> pd.DataFrame:
        """Bench batches and sweep configurations with their ``compare`` selectors."""
        return run_groups(self.store)

    def sweeps(self) -> pd.DataFrame:
        return list_sweeps(self.store)

    def sweep(self, name: str) -> pd.DataFrame:
        return sweep_runs_dataframe(self.store, name)

    def plot(self) -> go.Figure:
        """RTF of every measured run by engine and precision."""
        frame = self.to_dataframe()
        return plots.rtf_box(frame[~frame["warmup"]] if not frame.empty else frame, x="engine")


def runs(data_dir: Path | str | None = None) -> Runs:
    return Runs(open_store(data_dir))


def trace(ident: str, path: Path | str | None = None, *, kind: str | None = None,
          data_dir: Path | str | None = None, store: ResultsStore | None = None) -> dict[str, Any]:
    """A stored run, batch, stream, profile, load test or sweep as a Chrome trace (``kind`` None: found from
    the id). ``trace_for(kind, id, store)`` is the same for callers holding a store (the dashboard)."""
    return _traced(trace_for(kind, ident, store or open_store(data_dir)), path)


def trace_file(kind: str | None, ident: str, store: ResultsStore, folder: Path | str | None = None) -> Path:
    """``trace_for`` written as JSON to a fresh file in ``folder`` (default: a new temporary directory), for a
    download: the dashboard serves files from the temporary directory only."""
    target = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix="ttsperf-trace-"))
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", ident.strip())[:80] or "trace"
    return write_trace(trace_for(kind, ident, store), target / f"trace-{name}.json")


def zip_artifacts(paths: Sequence[Path], target: Path) -> Path:
    """Files (a profile's artifacts) in one zip at ``target``, for a download."""
    return zip_files(list(paths), target)


# --- stored load tests ----------------------------------------------------------------------------------------


def _store(data_dir: Path | str | None, store: ResultsStore | None) -> ResultsStore:
    return store if store is not None else open_store(data_dir)


def load_tests(data_dir: Path | str | None = None, *, store: ResultsStore | None = None) -> pd.DataFrame:
    """Every stored load test, newest first: id, when, engine, policy, workers, target, loads, capacity."""
    return load_test_list(LoadStore(_store(data_dir, store)))


def has_load_tests(store: ResultsStore) -> bool:
    """Whether any load test is stored (cheap: no figures are read)."""
    return not LoadStore(store).tests().empty


def load_test(test_id: str, data_dir: Path | str | None = None, *,
              store: ResultsStore | None = None) -> StoredLoadTest:
    """One stored load test reopened: per-load figures (``metrics``), capacity, rates and request rows."""
    return open_load_test(LoadStore(_store(data_dir, store)), test_id)


def compare_load(baseline: str, candidate: str, data_dir: Path | str | None = None, *,
                 store: ResultsStore | None = None, seed: int = 0) -> LoadComparison:
    """Two stored load tests: capacity, and at each load both ran TTFA p95 and C100 with bootstrap intervals
    (called only when the interval excludes no difference) and throughput. ``.table()``, ``.describe()``."""
    loads = LoadStore(_store(data_dir, store))
    return compare_load_tests(open_load_test(loads, baseline), open_load_test(loads, candidate), seed=seed)
