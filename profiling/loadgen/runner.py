"""A whole load test: start the target, run each rate (or user count) in turn, store each as it ends.

Shared by the CLI, the dashboard's Load tab and the notebook.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx

from engines.errors import InputError
from profiling.core.environment import capture_environment
from profiling.loadgen.capacity_search import (
    DEFAULT_START_RATE,
    CapacitySearch,
    SearchSettings,
    search_capacity,
    step_schedule,
)
from profiling.loadgen.client import ClientOptions, RateRun, RequestRow, run_rate
from profiling.loadgen.metrics import Capacity, RateMetrics, Slo, capacity, rate_metrics
from profiling.loadgen.schedule import Schedule, arrival_schedule, check_bounds, closed_loop
from profiling.loadgen.targets import Target, TargetSpec, check_target, running_target
from profiling.store.load import LoadStore, StoredRate
from profiling.store.results import ResultsStore
from profiling.texts.textsets import load_text_set

#: progress(rate label, rows finished so far in this rate, rows planned)
LoadProgress = Callable[[str, list[RequestRow], int], None]


@dataclass(frozen=True)
class LoadTest:
    target: TargetSpec
    rates: tuple[float, ...] = ()
    users: tuple[int, ...] = ()  # closed loop instead of rates when set
    duration_s: float = 20.0
    max_requests: int = 1000
    burstiness: float = 1.0
    seed: int = 0
    text_set: str = "medium"
    client: ClientOptions = field(default_factory=ClientOptions)
    slo: Slo = field(default_factory=Slo)
    label: str = ""
    #: Set: search the capacity (rates/users give only the starting load) instead of running each load.
    find_capacity: SearchSettings | None = None

    def schedules(self) -> list[Schedule]:
        """Each load's arrivals; a capacity search's steps are decided as it runs (its first step here)."""
        if self.find_capacity is not None:
            if self.rates and self.users:
                raise InputError("give either rates (open loop) or users (closed loop)")
            check_bounds(self.duration_s, self.max_requests)
            return [step_schedule(self.search_start(), bool(self.users), self.seed, self.duration_s,
                                  self.burstiness, self.find_capacity)]
        if bool(self.rates) == bool(self.users):
            raise InputError("give either rates (open loop) or users (closed loop)")
        if self.users:
            return [closed_loop(u, self.duration_s, self.seed, self.max_requests) for u in sorted(set(self.users))]
        # One seed per rate, derived from the test's: each rate's arrivals are reproducible on their own.
        return [arrival_schedule(r, self.duration_s, self.seed + i, self.burstiness, self.max_requests)
                for i, r in enumerate(sorted(set(self.rates)))]


    def check(self) -> None:
        """Every refusal before anything starts: loads, bounds, client options, the lab server's settings."""
        self.schedules()
        check_client_options(self.client)
        check_target(self.target)

    def search_start(self) -> float:
        settings = self.find_capacity or SearchSettings()
        if settings.start is not None:
            return settings.start
        if self.users:
            return float(min(self.users))
        return min(self.rates) if self.rates else DEFAULT_START_RATE


@dataclass
class LoadResult:
    test_id: str
    runs: list[RateRun]
    metrics: list[RateMetrics]
    capacity: Capacity
    ready_line: str = ""
    #: The capacity search, when the test asked for one (``capacity`` then says the same in short).
    search: CapacitySearch | None = None
    #: Loads planned but not run because the test was cancelled (labels; a search's next steps are unknown,
    #: so a cancelled search lists none and sets ``cancelled``).
    cut: tuple[str, ...] = ()
    cancelled: bool = False

    def cut_line(self) -> str:
        """What a cancel cut, in one line ("" when nothing was)."""
        if not self.cancelled:
            return ""
        kept = f"{len(self.metrics)} load{'s' if len(self.metrics) != 1 else ''} finished and stored"
        cut = f"not run: {', '.join(self.cut)}" if self.cut else "the capacity search stopped before its answer"
        return f"cancelled: {kept}; {cut}"


class LoadCancelled(Exception):
    """Raised inside a capacity search at a step boundary when the test is cancelled."""


def check_client_options(options: ClientOptions) -> None:
    if not 1 <= options.max_in_flight <= 10_000:
        raise InputError(f"max in flight must be between 1 and 10000, got {options.max_in_flight}")
    if options.connections is not None and not 1 <= options.connections <= 10_000:
        raise InputError(f"connections must be between 1 and 10000, got {options.connections}")
    if not 0 < options.request_timeout_s <= 3600:
        raise InputError(f"request timeout must be in (0, 3600] s, got {options.request_timeout_s}")
    if not 0 <= options.warmup <= 1000:
        raise InputError(f"warm-up must be between 0 and 1000 requests, got {options.warmup}")
    if not 1 <= options.warmup_concurrency <= 256:
        raise InputError(f"warm-up concurrency must be between 1 and 256, got {options.warmup_concurrency}")
    if options.response_format not in ("pcm", "wav"):
        raise InputError(f"response format must be pcm or wav, got {options.response_format!r}")


def run_load_test(test: LoadTest, store: ResultsStore | None, progress: LoadProgress | None = None,
                  on_rate: Callable[[RateMetrics], None] | None = None,
                  cancel: threading.Event | None = None) -> LoadResult:
    """Every rate in order; each rate is stored as soon as it ends (a killed test keeps them).

    ``cancel`` is checked at each load's boundary: the load running finishes and is stored, the rest are not
    run (``LoadResult.cut``)."""
    test.check()
    schedules = test.schedules()
    texts = [(item.id, item.text) for item in load_text_set(test.text_set).items]
    loads = LoadStore(store) if store is not None else None
    runs: list[RateRun] = []
    metrics: list[RateMetrics] = []
    with running_target(test.target) as target:
        test_id = ""
        if loads is not None:
            test_id = loads.start_test(test.label, test.target.label, test.seed, _settings(test, target.ready_line),
                                       asdict(capture_environment()))

        def measure(schedule: Schedule) -> RateMetrics:
            if cancel is not None and cancel.is_set():
                raise LoadCancelled(schedule.label)
            planned = schedule.users and schedule.max_requests or len(schedule.offsets_s)

            def report(rows: list[RequestRow], label: str = schedule.label, planned: int = planned) -> None:
                if progress is not None:
                    progress(label, rows, planned)

            run = run_rate(target, schedule, texts, test.client, report)
            figures = rate_metrics(run, test.slo)
            if loads is not None:
                loads.save_rate(test_id, _stored_rate(len(runs), run, figures), [asdict(r) for r in run.rows],
                                run.server)
            runs.append(run)
            metrics.append(figures)
            if on_rate is not None:
                on_rate(figures)
            return figures

        if test.find_capacity is None:
            for position, schedule in enumerate(schedules):
                try:
                    measure(schedule)
                except LoadCancelled:
                    return LoadResult(test_id, runs, metrics, capacity(metrics, test.slo), target.ready_line,
                                      cut=tuple(s.label for s in schedules[position:]), cancelled=True)
            return LoadResult(test_id, runs, metrics, capacity(metrics, test.slo), target.ready_line)
        settings, closed = test.find_capacity, bool(test.users)
        try:
            search = search_capacity(
                settings, closed, test.search_start(), test.slo,
                lambda load, seed: measure(step_schedule(load, closed, seed, test.duration_s, test.burstiness,
                                                         settings)),
                seed=test.seed, duration_s=test.duration_s, cores=server_cores(target))
        except LoadCancelled:
            # No answer: the steps run are stored as loads; the result reports them as an ordinary test.
            return LoadResult(test_id, runs, metrics, capacity(metrics, test.slo), target.ready_line,
                              cancelled=True)
        if loads is not None:
            loads.save_capacity(test_id, search.unit, search.capacity, search.streams_per_core, search.to_dict())
    return LoadResult(test_id, runs, metrics, search_as_capacity(search, metrics, test.slo), target.ready_line,
                      search)


def server_cores(target: Target) -> int:
    """The server machine's cores: its /health ``cpu_count`` when it says, else this machine's (lab and null
    targets run here, and URL targets are loopback)."""
    if target.spec.kind == "url":
        try:
            count = httpx.get(target.base_url + "/health", timeout=5.0, trust_env=False).json().get("cpu_count")
            if isinstance(count, int) and count > 0:
                return count
        except (httpx.HTTPError, ValueError, AttributeError):
            pass
    return os.cpu_count() or 1


def search_as_capacity(search: CapacitySearch, metrics: Sequence[RateMetrics], slo: Slo) -> Capacity:
    """The search's answer in the shape every load test reports (plots mark it)."""
    met = search.last_met
    streams = None
    if met is not None:
        figures = next((m for m in reversed(metrics) if m.label == met.label and m.slo_met), None)
        if figures is not None:
            ttfa = figures.dist("audible_ttfa_s").mean
            streams = figures.throughput_per_min / 60 * (figures.mean_audio_s + (ttfa if ttfa == ttfa else 0.0))
    missed = search.first_missed
    first_miss = f"{missed.label}: {missed.reason}" if missed else None
    if search.capacity is None:
        return Capacity(None, None, None, first_miss, slo)
    if search.closed:
        return Capacity(None, int(search.capacity), streams, first_miss, slo)
    return Capacity(search.capacity, None, streams, first_miss, slo)


def _settings(test: LoadTest, ready_line: str) -> dict[str, Any]:
    data = asdict(test)
    data["ready_line"] = ready_line
    return data


def _stored_rate(index: int, run: RateRun, m: RateMetrics) -> StoredRate:
    ttfa, e2e = m.dist("audible_ttfa_s"), m.dist("e2e_s")
    schedule = asdict(run.schedule)
    metrics = asdict(m)
    metrics.update(wall_s=run.wall_s, client_cpu_s=run.client_cpu_s, server_cpu_s=run.server_cpu_s,
                   started_unix=run.started_unix)
    return StoredRate(
        rate_index=index, label=m.label, offered_per_s=m.offered_per_s, users=m.users, slo_met=m.slo_met,
        sustainable=m.sustainable, ttfa=(ttfa.p50, ttfa.p95, ttfa.p99), e2e=(e2e.p50, e2e.p95, e2e.p99),
        throughput_per_min=m.throughput_per_min, goodput_per_min=m.goodput_per_min, error_rate=m.error_rate,
        underruns=m.underruns, client_cpu_fraction=m.client_cpu_fraction, schedule=schedule, metrics=metrics,
    )
