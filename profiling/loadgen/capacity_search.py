"""Capacity search: the largest open-loop rate (or closed-loop user count) that meets the SLO.

The search steps the load up by ``factor`` from a start until a step misses, or down until one meets,
then bisects between the last load that met and the first that missed until they are within
``resolution`` (one user in closed loop), ``max_steps`` loads have run, or the time budget would be
passed. Each step runs long enough for ``min_requests`` measured requests.

Robustness to one slow request: while the search is still bracketing, a miss is run once more with a
new seed before it counts; the retry's verdict stands (both runs are stored). A single outlier at a low
load (the issue's "capacity: below the lowest load tried" while higher loads met) is then a retry, not
the answer. During bisection a miss is not retried: the bracket's low end has already met.

The step decisions are pure (``search_capacity`` takes a ``measure`` callable), so the logic is tested
without a server and the runner supplies real measurements.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import Any

from engines.errors import InputError
from profiling.loadgen.metrics import RateMetrics, Slo
from profiling.loadgen.schedule import (
    MAX_RATE_PER_S,
    MAX_REQUESTS,
    MAX_USERS,
    Schedule,
    arrival_schedule,
    closed_loop,
)

#: The first open-loop rate when the test gives none (req/s).
DEFAULT_START_RATE = 0.5
MIN_RATE_PER_S = 0.01


@dataclass(frozen=True)
class SearchSettings:
    min_requests: int = 100
    max_steps: int = 8
    #: Bisection stops when (first missed - last met) / last met is at most this (open loop).
    resolution: float = 0.05
    factor: float = 1.5
    #: The first load; None = the test's first rate or user count, else 0.5 req/s.
    start: float | None = None
    #: One step never runs longer than this (its request count is then below ``min_requests``).
    max_step_s: float = 600.0
    #: The whole search stops before a step that would end past this.
    budget_s: float = 3600.0

    def __post_init__(self) -> None:
        if not 1 <= self.min_requests <= MAX_REQUESTS:
            raise InputError(f"min requests must be between 1 and {MAX_REQUESTS}, got {self.min_requests}")
        if not 1 <= self.max_steps <= 50:
            raise InputError(f"max steps must be between 1 and 50, got {self.max_steps}")
        if not (math.isfinite(self.resolution) and 0 < self.resolution < 1):
            raise InputError(f"resolution must be in (0, 1), got {self.resolution:g}")
        if not (math.isfinite(self.factor) and 1.05 <= self.factor <= 10):
            raise InputError(f"step factor must be in [1.05, 10], got {self.factor:g}")
        if self.start is not None and not (math.isfinite(self.start) and self.start > 0):
            raise InputError(f"the search's start must be positive, got {self.start:g}")
        if not (math.isfinite(self.max_step_s) and 0 < self.max_step_s <= 3600):
            raise InputError(f"max step duration must be in (0, 3600] s, got {self.max_step_s:g}")
        if not (math.isfinite(self.budget_s) and 0 < self.budget_s <= 24 * 3600):
            raise InputError(f"time budget must be in (0, 86400] s, got {self.budget_s:g}")


@dataclass(frozen=True)
class SearchStep:
    load: float  # req/s, or users in closed loop
    label: str
    seed: int
    met: bool
    reason: str
    retry: bool  # a re-run of a miss with a new seed
    measured: int
    ttfa_s: float  # audible TTFA at the SLO's percentile
    c100: float
    achieved_per_s: float  # completed requests per second
    mean_audio_s: float


@dataclass(frozen=True)
class CapacitySearch:
    closed: bool
    capacity: float | None  # req/s, or users; None when even the lowest load tried missed
    last_met: SearchStep | None
    first_missed: SearchStep | None
    steps: tuple[SearchStep, ...]
    cores: int
    #: Capacity x mean audio seconds per request / cores: real-time streams each core carries.
    streams_per_core: float | None
    stopped: str
    slo_label: str

    @property
    def unit(self) -> str:
        return "users" if self.closed else "req/s"

    def describe(self) -> str:
        if self.capacity is None:
            miss = f" ({self.first_missed.label}: {self.first_missed.reason})" if self.first_missed else ""
            return f"capacity search: no load tried met {self.slo_label}{miss}; {len(self.steps)} steps, {self.stopped}"
        met = self.last_met
        assert met is not None
        load = f"{met.load:g} users" if self.closed else f"{met.load:g} req/s ({met.load * 60:.0f} req/min)"
        per_core = "" if self.streams_per_core is None else \
            f", {self.streams_per_core:.2f} streams per core ({self.cores} cores)"
        missed = f"first missed {self.first_missed.label} ({self.first_missed.reason})" if self.first_missed \
            else "no load tried missed"
        return (f"capacity: {load} under {self.slo_label}{per_core}; last met {met.label}, {missed}; "
                f"{len(self.steps)} steps, {self.stopped}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CapacitySearch:
        def step(item: dict[str, Any] | None) -> SearchStep | None:
            return None if item is None else SearchStep(**item)

        data = dict(data)
        steps = tuple(SearchStep(**s) for s in data.pop("steps", ()))
        return cls(last_met=step(data.pop("last_met", None)), first_missed=step(data.pop("first_missed", None)),
                   steps=steps, **data)


def step_schedule(load: float, closed: bool, seed: int, duration_s: float, burstiness: float,
                  settings: SearchSettings) -> Schedule:
    """One step's arrivals: at least ``min_requests`` (bounded by ``max_step_s``).

    Open loop: max(duration, min_requests / rate) seconds' worth of arrivals, the count not the clock
    ending the step; closed loop: the users until ``min_requests`` requests have been sent.
    """
    if closed:
        return closed_loop(int(load), settings.max_step_s, seed, max_requests=settings.min_requests)
    wanted = min(MAX_REQUESTS, max(settings.min_requests, math.ceil(load * duration_s)))
    horizon = min(settings.max_step_s, 2 * wanted / load + 1)  # generous: the count, not the horizon, ends it
    schedule = arrival_schedule(load, horizon, seed, burstiness, max_requests=wanted)
    if schedule.offsets_s:
        schedule = replace(schedule, duration_s=max(schedule.offsets_s[-1], 1e-3))
    return schedule


def _predicted_s(load: float, closed: bool, duration_s: float, settings: SearchSettings) -> float:
    if closed:
        return min(settings.max_step_s, duration_s)  # unknown pace: at least the test's duration
    wanted = max(settings.min_requests, math.ceil(load * duration_s))
    return min(settings.max_step_s, wanted / load)


def _up(load: float, closed: bool, factor: float) -> float | None:
    if closed:
        nxt = max(int(load) + 1, math.ceil(load * factor))
        return float(nxt) if nxt <= MAX_USERS else None
    nxt = _tidy(load * factor)
    return nxt if nxt <= MAX_RATE_PER_S else None


def _down(load: float, closed: bool, factor: float) -> float | None:
    if closed:
        nxt = min(int(load) - 1, math.floor(load / factor))
        return float(nxt) if nxt >= 1 else None
    nxt = _tidy(load / factor)
    return nxt if nxt >= MIN_RATE_PER_S else None


def _narrow(met: float, missed: float, closed: bool, resolution: float) -> bool:
    return missed - met <= 1 if closed else (missed - met) / met <= resolution


def _mid(met: float, missed: float, closed: bool) -> float:
    return float((int(met) + int(missed)) // 2) if closed else _tidy((met + missed) / 2)


def _tidy(rate: float) -> float:
    """Three significant figures: readable labels, far finer than any resolution the search stops at."""
    return float(f"{rate:.3g}")


def search_capacity(settings: SearchSettings, closed: bool, start: float, slo: Slo,
                    measure: Callable[[float, int], RateMetrics], *, seed: int = 0, duration_s: float = 20.0,
                    cores: int = 1, clock: Callable[[], float] = time.monotonic) -> CapacitySearch:
    """Run the search; ``measure(load, seed)`` runs one step and returns its figures."""
    if closed:
        start = float(max(1, round(start)))
    steps: list[SearchStep] = []
    met: SearchStep | None = None
    missed: SearchStep | None = None
    began = clock()
    stopped = ""

    def allowed(load: float) -> bool:
        nonlocal stopped
        if len(steps) >= settings.max_steps:
            stopped = f"max steps ({settings.max_steps}) reached"
            return False
        if clock() - began + _predicted_s(load, closed, duration_s, settings) > settings.budget_s:
            stopped = f"time budget ({settings.budget_s:g} s) reached"
            return False
        return True

    def run(load: float, retry: bool) -> SearchStep:
        step_seed = seed + len(steps) + (1000 if retry else 0)
        m = measure(load, step_seed)
        step = SearchStep(load=load, label=m.label, seed=step_seed, met=m.slo_met, reason=m.slo_reason, retry=retry,
                          measured=m.sent, ttfa_s=m.dist("audible_ttfa_s").percentile(slo.percentile), c100=m.c100,
                          achieved_per_s=m.throughput_per_min / 60, mean_audio_s=m.mean_audio_s)
        steps.append(step)
        return step

    load: float | None = start
    while load is not None and allowed(load):  # bracketing
        step = run(load, retry=False)
        if not step.met and allowed(load):
            step = run(load, retry=True)  # one slow request must not decide: confirm with a new seed
        if step.met:
            met = step
            if missed is not None:
                break
            load = _up(load, closed, settings.factor)
            if load is None:
                stopped = "the highest load allowed met"
        else:
            missed = step
            if met is not None:
                break
            load = _down(step.load, closed, settings.factor)
            if load is None:
                stopped = "the lowest load allowed missed"
        if stopped:
            break
    while met is not None and missed is not None and not stopped:  # bisection
        if _narrow(met.load, missed.load, closed, settings.resolution):
            stopped = "resolution reached" if not closed else "adjacent user counts"
            break
        mid = _mid(met.load, missed.load, closed)
        if not allowed(mid):
            break
        step = run(mid, retry=False)
        if step.met:
            met = step
        else:
            missed = step
    per_core = None
    if met is not None and cores > 0:
        rate = met.achieved_per_s if closed else met.load
        per_core = rate * met.mean_audio_s / cores
    return CapacitySearch(closed=closed, capacity=None if met is None else met.load, last_met=met,
                          first_missed=missed, steps=tuple(steps), cores=cores, streams_per_core=per_core,
                          stopped=stopped or "done", slo_label=slo.label)
