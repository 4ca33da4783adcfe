"""The typed data a front end builds, holds and reads: requests, results, records, settings, stores.

Re-exported from where each is declared, so a front end (the CLI, the dashboard, a notebook) imports
``profiling.api`` and nothing else from profiling. The API's own result objects (``BenchRun`` ...) are in
``profiling.api`` itself.
"""

from __future__ import annotations

from profiling.audio.playback import PlaybackSettings
from profiling.core.device import TimingMode
from profiling.core.records import RunMode, RunRecord, RunStatus
from profiling.core.stats import SeriesSummary, Summary
from profiling.core.timer import StageTiming
from profiling.loadgen.capacity_search import CapacitySearch, SearchSettings
from profiling.loadgen.client import ClientOptions, RequestRow
from profiling.loadgen.metrics import RateMetrics, Slo
from profiling.loadgen.null_target import FaultSettings
from profiling.loadgen.runner import LoadResult, LoadTest
from profiling.loadgen.targets import TargetSpec
from profiling.profilers.common import ProfilerResult, ProfilerStatus
from profiling.profilers.session import CANCELLED, ProfileReport, ProfileRequest
from profiling.run.ab import STEERING_METRICS, AbRequest, AbResult
from profiling.run.ab_design import DEFAULT_RELOAD_EVERY, AbDesign
from profiling.run.runner import BenchRequest, BenchResult, EnginePool
from profiling.store.load import LoadStore
from profiling.store.noise import NoiseFloor
from profiling.store.results import ResultsStore
from profiling.sweeps.execute import SweepOutcome, SweepProgress
from profiling.sweeps.spec import SweepSpec
from profiling.sweeps.streaming import StreamingSweep, SweepResult
from profiling.sweeps.work import ExecutorChoice

__all__ = [
    # runs
    "BenchRequest", "BenchResult", "EnginePool", "LoadStore", "PlaybackSettings", "ResultsStore", "RunMode",
    "RunRecord", "RunStatus", "SeriesSummary", "StageTiming", "Summary", "TimingMode",
    # A/B and the noise floor
    "STEERING_METRICS", "DEFAULT_RELOAD_EVERY", "AbDesign", "AbRequest", "AbResult", "NoiseFloor",
    # sweeps
    "ExecutorChoice", "StreamingSweep", "SweepOutcome", "SweepProgress", "SweepResult", "SweepSpec",
    # profiles
    "CANCELLED", "ProfileReport", "ProfileRequest", "ProfilerResult", "ProfilerStatus",
    # load tests
    "CapacitySearch", "ClientOptions", "FaultSettings", "LoadResult", "LoadTest", "RateMetrics", "RequestRow",
    "SearchSettings", "Slo", "TargetSpec",
]
