"""A whole load test: start the target, run each rate (or user count) in turn, store each as it ends.

Shared by the CLI, the dashboard's Load tab and the notebook.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from engines.errors import InputError
from profiling.core.environment import capture_environment
from profiling.loadgen.client import ClientOptions, RateRun, RequestRow, run_rate
from profiling.loadgen.metrics import Capacity, RateMetrics, Slo, capacity, rate_metrics
from profiling.loadgen.schedule import Schedule, arrival_schedule, closed_loop
from profiling.loadgen.targets import TargetSpec, running_target
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

    def schedules(self) -> list[Schedule]:
        if bool(self.rates) == bool(self.users):
            raise InputError("give either rates (open loop) or users (closed loop)")
        if self.users:
            return [closed_loop(u, self.duration_s, self.seed, self.max_requests) for u in sorted(set(self.users))]
        # One seed per rate, derived from the test's: each rate's arrivals are reproducible on their own.
        return [arrival_schedule(r, self.duration_s, self.seed + i, self.burstiness, self.max_requests)
                for i, r in enumerate(sorted(set(self.rates)))]


@dataclass
class LoadResult:
    test_id: str
    runs: list[RateRun]
    metrics: list[RateMetrics]
    capacity: Capacity
    ready_line: str = ""


def check_client_options(options: ClientOptions) -> None:
    if not 1 <= options.max_in_flight <= 10_000:
        raise InputError(f"max in flight must be between 1 and 10000, got {options.max_in_flight}")
    if options.connections is not None and not 1 <= options.connections <= 10_000:
        raise InputError(f"connections must be between 1 and 10000, got {options.connections}")
    if not 0 < options.request_timeout_s <= 3600:
        raise InputError(f"request timeout must be in (0, 3600] s, got {options.request_timeout_s}")
    if not 0 <= options.warmup <= 1000:
        raise InputError(f"warm-up must be between 0 and 1000 requests, got {options.warmup}")
    if options.response_format not in ("pcm", "wav"):
        raise InputError(f"response format must be pcm or wav, got {options.response_format!r}")


def run_load_test(test: LoadTest, store: ResultsStore | None, progress: LoadProgress | None = None,
                  on_rate: Callable[[RateMetrics], None] | None = None) -> LoadResult:
    """Every rate in order; each rate is stored as soon as it ends (a killed test keeps them)."""
    schedules = test.schedules()
    check_client_options(test.client)
    texts = [(item.id, item.text) for item in load_text_set(test.text_set).items]
    loads = LoadStore(store) if store is not None else None
    runs: list[RateRun] = []
    metrics: list[RateMetrics] = []
    with running_target(test.target) as target:
        test_id = ""
        if loads is not None:
            test_id = loads.start_test(test.label, test.target.label, test.seed, _settings(test, target.ready_line),
                                       asdict(capture_environment()))
        for index, schedule in enumerate(schedules):
            planned = schedule.users and schedule.max_requests or len(schedule.offsets_s)

            def report(rows: list[RequestRow], label: str = schedule.label, planned: int = planned) -> None:
                if progress is not None:
                    progress(label, rows, planned)

            run = run_rate(target, schedule, texts, test.client, report)
            figures = rate_metrics(run, test.slo)
            runs.append(run)
            metrics.append(figures)
            if loads is not None:
                loads.save_rate(test_id, _stored_rate(index, run, figures), [asdict(r) for r in run.rows], run.server)
            if on_rate is not None:
                on_rate(figures)
    return LoadResult(test_id, runs, metrics, capacity(metrics, test.slo), target.ready_line)


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
