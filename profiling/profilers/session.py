"""Run one request plain (the overhead baseline) and then under each chosen profiler.

Every run is stored as a normal run whose ``profiler`` annotation says which
profiler was on ("none" for the baseline). Each profiler's files go to
``<data_dir>/artifacts/<run_id>/`` (``run_id`` = its first profiled run) and are
registered with ``ResultsStore.add_artifact``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from engines.base import DEFAULT_MAX_TEXT_CHARS, SynthesisSettings, Voice
from engines.errors import InputError
from engines.registry import engine_class
from profiling.core.records import RunMode, RunRecord, RunStatus
from profiling.profilers import PROFILER_NAMES, get_profiler
from profiling.profilers.common import (
    ArtifactFile,
    Overhead,
    ProfileContext,
    ProfileOptions,
    ProfilerResult,
    ProfilerStatus,
    ProfileTarget,
)
from profiling.run.runner import BenchRequest, EnginePool, validate_request
from profiling.run.zerogpu import gpu_entry
from profiling.store.results import Artifact, ResultsStore

#: Told what the session is doing, for progress bars and the dashboard.
ProgressCallback = Callable[[str], None]

ARTIFACTS_DIR = "artifacts"
#: The message of a profiler a cancel kept from running.
CANCELLED = "cancelled before it ran"


@dataclass(frozen=True)
class ProfileRequest:
    settings: SynthesisSettings
    text: str
    voice: Voice = field(default_factory=Voice)
    mode: RunMode = RunMode.BATCH
    profilers: tuple[str, ...] = PROFILER_NAMES
    options: ProfileOptions = field(default_factory=ProfileOptions)
    #: True: a named profiler that cannot run for this engine is an input error (the user asked for it).
    #: False: it is skipped with the reason (e.g. torch.profiler within "all" on Piper).
    strict: bool = False
    warmup: int = 1
    max_chars: int = DEFAULT_MAX_TEXT_CHARS
    label: str = ""


@dataclass
class ProfileReport:
    engine: str
    settings: SynthesisSettings
    baseline: list[RunRecord]
    results: list[ProfilerResult]
    load_s: float | None
    error: str = ""

    def result(self, name: str) -> ProfilerResult:
        for result in self.results:
            if result.profiler == name:
                return result
        raise KeyError(name)


def validate_profile_request(request: ProfileRequest) -> tuple[str, SynthesisSettings]:
    """Every check that needs no model: text, settings, profiler names and options."""
    options = request.options
    if options.repeats < 1:
        raise InputError(f"repeats must be at least 1, got {options.repeats}")
    if options.top < 1:
        raise InputError(f"top must be at least 1, got {options.top}")
    if "memory" in request.profilers and options.leak_runs < 2:
        raise InputError(f"the leak check needs at least 2 runs, got {options.leak_runs}")
    if not request.profilers:
        raise InputError(f"choose at least one profiler ({', '.join(PROFILER_NAMES)})")
    text, settings = validate_request(BenchRequest(
        settings=request.settings, text=request.text, voice=request.voice, mode=request.mode,
        repeats=options.repeats, warmup=request.warmup, max_chars=request.max_chars,
    ))
    cls = engine_class(settings.engine)
    for name in request.profilers:
        profiler = get_profiler(name)
        reason = profiler.unavailable_reason(cls)
        if reason and request.strict:
            raise InputError(f"{profiler.title} cannot run for engine '{settings.engine}': {reason}")
        if not reason:
            profiler.validate(cls, options)
    return text, settings


@gpu_entry  # ZeroGPU: the GPU is attached for this call only; a no-op elsewhere
def run_profile(
    request: ProfileRequest,
    pool: EnginePool,
    store: ResultsStore | None,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
) -> ProfileReport:
    """Warm-up, then each profiler in turn; ``cancel`` is checked between profilers (what ran is kept)."""
    text, settings = validate_profile_request(request)
    say = progress or (lambda _message: None)
    say(f"loading {settings.engine}")
    engine, load_s = pool.acquire(settings)
    target = ProfileTarget(engine, text, request.voice, settings, request.mode, store, request.label)
    options = request.options

    say("warm-up")
    warmup_batch = uuid.uuid4().hex
    for index in range(request.warmup):
        record = target.run("none", warmup_batch, index, warmup=True)
        if record.status is RunStatus.ERROR:
            return ProfileReport(settings.engine, settings, [], [], load_s, error=record.error)
    baseline: list[RunRecord] = []

    artifacts_root = store.data_dir / ARTIFACTS_DIR if store else Path(tempfile.mkdtemp(prefix="ttsperf-profile-"))
    cls = engine_class(settings.engine)
    results = []
    for name in request.profilers:
        if cancel is not None and cancel.is_set():
            results.append(ProfilerResult(name, ProfilerStatus.SKIPPED, CANCELLED))
            continue
        profiler = get_profiler(name)
        reason = profiler.unavailable_reason(cls)
        if reason:
            results.append(ProfilerResult(name, ProfilerStatus.SKIPPED, reason))
            continue
        say(f"profiling with {profiler.title}")
        staging = artifacts_root / f".staging-{uuid.uuid4().hex}"
        ctx = ProfileContext(target, staging, options, uuid.uuid4().hex, uuid.uuid4().hex)
        try:
            result = profiler.profile(ctx)
        except InputError:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        except Exception as error:  # one profiler breaking must not cost the others
            result = ProfilerResult(name, ProfilerStatus.FAILED, f"{type(error).__name__}: {error}")
        result.overhead = Overhead.from_runs(ctx.baseline, result.records)
        baseline += ctx.baseline
        failed = next((r for r in [*ctx.baseline, *result.records] if r.status is RunStatus.ERROR), None)
        if failed is not None and result.status is ProfilerStatus.OK:
            result.status, result.message = ProfilerStatus.FAILED, f"synthesis failed: {failed.error}"
        _file_artifacts(result, staging, artifacts_root, store)
        results.append(result)
    say("done")
    return ProfileReport(settings.engine, settings, baseline, results, load_s)


def _file_artifacts(
    result: ProfilerResult, staging: Path, artifacts_root: Path, store: ResultsStore | None
) -> None:
    """Move the profiler's files under its first run's id and register them in the store."""
    run_id = result.run_id
    if run_id is None or not staging.exists():
        shutil.rmtree(staging, ignore_errors=True)
        result.artifacts = []
        return
    if result.overhead is not None:
        overhead_path = staging / f"{result.profiler}-overhead.json"
        overhead = result.overhead
        overhead_path.write_text(json.dumps({
            "profiler": result.profiler, "baseline_median_s": overhead.baseline_median_s,
            "baseline_min_s": overhead.baseline_min_s, "baseline_max_s": overhead.baseline_max_s,
            "profiled_median_s": overhead.profiled_median_s, "ratio": overhead.ratio, "repeats": overhead.repeats,
        }), encoding="utf-8")
        result.artifacts.append(ArtifactFile(f"{result.profiler}:overhead", overhead_path, overhead.describe()))
    final = artifacts_root / run_id
    if final.exists():  # a second profiler on the same run: keep both sets of files
        for path in staging.iterdir():
            path.replace(final / path.name)
        staging.rmdir()
    else:
        staging.replace(final)
    result.artifacts = [replace(a, path=final / a.path.relative_to(staging)) for a in result.artifacts]
    if store is not None:
        for artifact in result.artifacts:
            store.add_artifact(Artifact(run_id, artifact.kind, artifact.path, artifact.description))
