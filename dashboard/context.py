"""What every dashboard tab shares: the results store, the pool of loaded engines, the lane, cancel tokens,
and what must be reloaded from the store when a page opens or something is stored (``dashboard.freshness``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dashboard.freshness import Refresher
from dashboard.lane import MeasurementLane
from dashboard.sessions import SessionCancels
from engines.base import DEFAULT_MAX_TEXT_CHARS
from profiling.api.types import EnginePool, ResultsStore


@dataclass
class DashboardContext:
    store: ResultsStore
    pool: EnginePool = field(default_factory=EnginePool)
    max_chars: int = DEFAULT_MAX_TEXT_CHARS
    #: One measurement at a time across every tab.
    lane: MeasurementLane = field(default_factory=MeasurementLane)
    #: What each browser session runs, so only that session can cancel it.
    cancels: SessionCancels = field(default_factory=SessionCancels)
    #: Views of the store (History, Sweeps, empty states): run when a page opens and after ``storing``.
    refreshers: list[Refresher] = field(default_factory=list)
    #: The events that store something (gradio dependencies); each is followed by the refreshers.
    storing: list[Any] = field(default_factory=list)
