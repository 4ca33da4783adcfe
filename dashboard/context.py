"""What every dashboard tab shares: the results store and the pool of loaded engines."""

from __future__ import annotations

from dataclasses import dataclass, field

from dashboard.lane import MeasurementLane
from engines.base import DEFAULT_MAX_TEXT_CHARS
from profiling.run.runner import EnginePool
from profiling.store.results import ResultsStore


@dataclass
class DashboardContext:
    store: ResultsStore
    pool: EnginePool = field(default_factory=EnginePool)
    max_chars: int = DEFAULT_MAX_TEXT_CHARS
    #: One measurement at a time across every tab.
    lane: MeasurementLane = field(default_factory=MeasurementLane)
