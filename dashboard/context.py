"""What every dashboard tab shares: the results store and the pool of loaded engines."""

from __future__ import annotations

from dataclasses import dataclass, field

from engines.base import DEFAULT_MAX_TEXT_CHARS
from profiling.runner import EnginePool
from profiling.store import ResultsStore


@dataclass
class DashboardContext:
    store: ResultsStore
    pool: EnginePool = field(default_factory=EnginePool)
    max_chars: int = DEFAULT_MAX_TEXT_CHARS
