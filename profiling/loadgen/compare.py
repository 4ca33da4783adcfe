"""Stored load tests: listed, reopened from their stored rows, and two compared with honest uncertainty.

A comparison matches the loads both tests ran (by label, e.g. ``5/s`` or ``4 users``). TTFA p95 and C100
get a bootstrap interval over the stored requests of each load; a verdict is called only when the interval
excludes no difference. Capacity and throughput are one figure per test or load: they are shown, never
called. Requests are resampled within one test each, so the interval holds the noise between requests, not
between two runs of the same test: nothing here is A/A-calibrated, and the text says so.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from engines.errors import InputError
from profiling.analysis.load_plots import latency_vs_load, request_timeline, throughput_vs_load, ttfa_distribution
from profiling.loadgen.capacity_search import CapacitySearch
from profiling.loadgen.metrics import C100_MS, Capacity, Distribution, RateMetrics, Slo, capacity
from profiling.store.load import LoadStore

#: Fewer measured requests than this at a load: its p95 is close to its maximum, so it is not called.
MIN_REQUESTS = 20
BOOTSTRAP = 2000
LIST_COLUMNS = ["test_id", "when", "engine", "policy", "workers", "target", "loads", "capacity"]
COMPARE_COLUMNS = ["metric", "load", "baseline", "candidate", "ratio", "95% CI", "verdict"]
_METRIC_FIELDS = {f.name for f in fields(RateMetrics)}


@dataclass(frozen=True)
class StoredLoadTest:
    """One stored load test as the Load tab drew it: per-load figures, the capacity, every request."""

    test_id: str
    created_at: str
    target: str
    engine: str
    policy: str
    workers: int
    slo: Slo
    metrics: tuple[RateMetrics, ...]
    capacity: Capacity
    #: The capacity search as stored (``CapacitySearch.to_dict``), None when the test did not search.
    search: dict[str, Any] | None
    rates: pd.DataFrame
    requests: pd.DataFrame

    @property
    def closed(self) -> bool:
        return any(m.users for m in self.metrics)

    @property
    def capacity_search(self) -> CapacitySearch | None:
        """The stored capacity search with its steps (what the Load tab showed), None when it did not search."""
        return CapacitySearch.from_dict(self.search) if self.search is not None else None

    @property
    def capacity_value(self) -> float | None:
        """Requests per second (open loop) or users (closed loop); None below the lowest load tried."""
        if self.search is not None:
            value = self.search.get("capacity")
            return None if value is None else float(value)
        found = self.capacity.users if self.closed else self.capacity.rate_per_s
        return None if found is None else float(found)

    @property
    def capacity_text(self) -> str:
        value = self.capacity_value
        if value is None:
            return "below the lowest load"
        return f"{value:g} users" if self.closed else f"{value:g}/s"

    def figures(self) -> tuple[go.Figure, go.Figure, go.Figure, go.Figure]:
        """As the Load tab draws them: latency vs load (SLO line, capacity), throughput vs load, TTFA per load,
        the per-request timeline."""
        rates = self.rates.copy()
        if len(rates) == len(self.metrics):  # the stored columns keep the lab rule's TTFA; add tts_bench's
            rates["ttfa_tb_p95_s"] = [m.dist("audible_ttfa_tb_s").p95 for m in self.metrics]
        rates = rates.sort_values(["users", "offered_per_s"], kind="stable")  # a search runs loads out of order
        return (latency_vs_load(rates, self.slo.ttfa_ms, self.capacity_value), throughput_vs_load(rates),
                ttfa_distribution(self.requests), request_timeline(self.requests))

    def describe(self) -> str:
        how = "capacity search" if self.search is not None else "highest load meeting the SLO"
        return (f"{self.test_id}: {self.target}, {len(self.metrics)} loads, capacity {self.capacity_text} "
                f"({how}) under {self.slo.label}")


def stored_metrics(rates: pd.DataFrame) -> list[RateMetrics]:
    """Each stored rate's figures as the runner computed them (``metrics_json`` holds them whole)."""
    metrics = []
    for raw in rates["metrics_json"]:
        data = json.loads(raw)
        known = {k: v for k, v in data.items() if k in _METRIC_FIELDS}
        known["distributions"] = {name: Distribution(**d) for name, d in (data.get("distributions") or {}).items()}
        metrics.append(RateMetrics(**known))
    return metrics


def _target(settings: dict[str, Any]) -> dict[str, Any]:
    target = settings.get("target")
    return target if isinstance(target, dict) else {}


def _slo(settings: dict[str, Any]) -> Slo:
    data = settings.get("slo")
    return Slo(**{k: v for k, v in data.items() if k in {f.name for f in fields(Slo)}}) if isinstance(
        data, dict) else Slo()


def _open(loads: LoadStore, row: pd.Series, with_requests: bool) -> StoredLoadTest:
    test_id = str(row["test_id"])
    settings = loads.settings(test_id)
    target, slo = _target(settings), _slo(settings)
    rates = loads.rates(test_id)
    metrics = stored_metrics(rates) if not rates.empty else []
    kind = target.get("kind", "lab")
    return StoredLoadTest(
        test_id=test_id, created_at=str(row["created_at"]), target=str(row["target"]),
        engine=str(target.get("engine", "")) if kind == "lab" else kind,
        policy=str(target.get("policy", "")) if kind == "lab" else "",
        workers=int(target.get("workers", 1) or 1), slo=slo, metrics=tuple(metrics),
        capacity=capacity(metrics, slo), search=loads.capacity(test_id), rates=rates,
        requests=loads.requests(test_id) if with_requests else pd.DataFrame())


def open_load_test(loads: LoadStore, test_id: str) -> StoredLoadTest:
    """The test with this id from the store; InputError (one line) when none has it."""
    test_id = (test_id or "").strip()
    if not test_id:
        raise InputError("pick a load test")
    tests = loads.tests()
    row = tests[tests["test_id"] == test_id]
    if row.empty:
        raise InputError(f"no load test has the id {test_id!r}")
    return _open(loads, row.iloc[0], with_requests=True)


def load_test_list(loads: LoadStore) -> pd.DataFrame:
    """One row per stored load test, newest first: engine, policy, workers, loads run, capacity, when.

    Reads each test's loads, never its request rows (a long test stores thousands)."""
    rows = []
    for _, row in loads.tests().iloc[::-1].iterrows():
        test = _open(loads, row, with_requests=False)
        when = test.created_at.replace("T", " ")[:19]
        rows.append([test.test_id, when, test.engine, test.policy, test.workers, test.target,
                     ", ".join(m.label for m in test.metrics), test.capacity_text])
    return pd.DataFrame(rows, columns=LIST_COLUMNS)


# --- comparing two tests ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadMetricRow:
    """One metric at one load (or for the whole test): both values, the ratio, its interval, the verdict."""

    metric: str
    load: str
    baseline: float
    candidate: float
    ratio: float
    ci_low: float | None = None
    ci_high: float | None = None
    verdict: str = ""

    @property
    def called(self) -> bool:
        return not self.verdict.startswith(("not called", "shown, not called"))


@dataclass(frozen=True)
class LoadComparison:
    baseline: StoredLoadTest
    candidate: StoredLoadTest
    rows: tuple[LoadMetricRow, ...]
    common_loads: tuple[str, ...]

    def table(self) -> pd.DataFrame:
        def number(value: float) -> float | None:
            return None if not math.isfinite(value) else round(value, 4)

        rows = [[r.metric, r.load, number(r.baseline), number(r.candidate), number(r.ratio),
                 "" if r.ci_low is None or r.ci_high is None else f"{r.ci_low:.3f}..{r.ci_high:.3f}", r.verdict]
                for r in self.rows]
        return pd.DataFrame(rows, columns=COMPARE_COLUMNS)

    def describe(self) -> str:
        """The headline: which loads matched, what was called, and how sure it is."""
        a, b = self.baseline, self.candidate
        head = f"{a.test_id} → {b.test_id}"
        if not self.common_loads:
            return (f"{head}: not called — the tests ran at different loads ({', '.join(m.label for m in a.metrics)}"
                    f" vs {', '.join(m.label for m in b.metrics)}); only capacities are shown.")
        called = [r for r in self.rows if r.called]
        verdicts = "; ".join(f"{r.metric} at {r.load}: {r.verdict}" for r in called) or \
            "nothing called: every interval includes no difference"
        return (f"{head} at {', '.join(self.common_loads)}: {verdicts}. Intervals: bootstrap over each test's "
                "requests (95%); not A/A-calibrated, so a difference between two runs of the same settings can "
                "still be called: repeat both tests before trusting a small one.")


def _rows_by_load(test: StoredLoadTest) -> dict[str, pd.DataFrame]:
    requests = test.requests
    if requests.empty:
        return {}
    measured = requests[requests["warmup"] == 0]
    return {str(label): group for label, group in measured.groupby("rate_label", sort=False)}


def _ttfa(rows: pd.DataFrame) -> np.ndarray:
    ok = rows[(rows["status"] == "ok") & rows["audible_ttfa_s"].notna()]
    return ok["audible_ttfa_s"].to_numpy(dtype=float)


def _within_c100(rows: pd.DataFrame) -> np.ndarray:
    """1 per ok stream whose longest underrun is at most 100 ms, else 0 (the stored row has the figure)."""
    ok = rows[rows["status"] == "ok"]
    longest = [json.loads(raw).get("underrun_max_ms") or 0.0 for raw in ok["row_json"]]
    return np.array([float(v <= C100_MS) for v in longest])


def _p95(values: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.percentile(values, 95, axis=axis, method="inverted_cdf")  # nearest rank, as the load metrics


def _ratio_interval(a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    """95% bootstrap interval of p95(b) / p95(a), each side resampled on its own."""
    boot_a = _p95(rng.choice(a, size=(BOOTSTRAP, len(a))), axis=1)
    boot_b = _p95(rng.choice(b, size=(BOOTSTRAP, len(b))), axis=1)
    ratios = boot_b / boot_a
    return float(np.percentile(ratios, 2.5)), float(np.percentile(ratios, 97.5))


def _ttfa_row(load: str, a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> LoadMetricRow:
    if min(len(a), len(b)) < MIN_REQUESTS:
        base = float(_p95(a)) if len(a) else math.nan
        cand = float(_p95(b)) if len(b) else math.nan
        return LoadMetricRow("TTFA p95 (s)", load, base, cand, cand / base if base else math.nan,
                             verdict=f"not called: fewer than {MIN_REQUESTS} answered requests "
                                     f"({len(a)} vs {len(b)})")
    base, cand = float(_p95(a)), float(_p95(b))
    low, high = _ratio_interval(a, b, rng)
    if low > 1:
        verdict = "candidate slower"
    elif high < 1:
        verdict = "candidate faster"
    else:
        verdict = "not called: the interval includes no difference"
    return LoadMetricRow("TTFA p95 (s)", load, base, cand, cand / base if base else math.nan, low, high, verdict)


def _c100_row(load: str, a: np.ndarray, b: np.ndarray, rng: np.random.Generator) -> LoadMetricRow:
    """C100 as a share; the interval is of the difference (candidate - baseline), in the ratio column's place."""
    if min(len(a), len(b)) < MIN_REQUESTS:
        return LoadMetricRow("C100 (share)", load, float(a.mean()) if len(a) else math.nan,
                             float(b.mean()) if len(b) else math.nan, math.nan,
                             verdict=f"not called: fewer than {MIN_REQUESTS} answered requests ({len(a)} vs {len(b)})")
    diffs = rng.choice(b, size=(BOOTSTRAP, len(b))).mean(axis=1) - rng.choice(a, size=(BOOTSTRAP, len(a))).mean(axis=1)
    low, high = float(np.percentile(diffs, 2.5)), float(np.percentile(diffs, 97.5))
    if low > 0:
        verdict = "candidate smoother (difference interval above 0)"
    elif high < 0:
        verdict = "candidate starves more (difference interval below 0)"
    else:
        verdict = "not called: the difference interval includes 0"
    base, cand = float(a.mean()), float(b.mean())
    return LoadMetricRow("C100 (share)", load, base, cand, cand / base if base else math.nan, low, high, verdict)


def compare_load_tests(baseline: StoredLoadTest, candidate: StoredLoadTest, seed: int = 0) -> LoadComparison:
    """Capacity (shown), then per load both ran: TTFA p95 and C100 (bootstrap-called), throughput (shown)."""
    rng = np.random.default_rng(seed)
    rows = []
    cap_a, cap_b = baseline.capacity_value, candidate.capacity_value
    same_unit = baseline.closed == candidate.closed
    rows.append(LoadMetricRow(
        "capacity", "users" if baseline.closed else "req/s", math.nan if cap_a is None else cap_a,
        math.nan if cap_b is None else cap_b,
        cap_b / cap_a if cap_a and cap_b is not None and same_unit else math.nan,
        verdict="shown, not called: one figure per test (repeat each test for an interval)" if same_unit
        else "not called: one test is open loop, the other closed loop"))
    by_a, by_b = _rows_by_load(baseline), _rows_by_load(candidate)
    labels_b = {m.label for m in candidate.metrics}
    common = tuple(dict.fromkeys(m.label for m in baseline.metrics if m.label in labels_b))
    for load in common:
        a_rows, b_rows = by_a.get(load), by_b.get(load)
        if a_rows is None or b_rows is None:
            continue
        rows.append(_ttfa_row(load, _ttfa(a_rows), _ttfa(b_rows), rng))
        rows.append(_c100_row(load, _within_c100(a_rows), _within_c100(b_rows), rng))
        thr_a = float(np.mean([m.throughput_per_min for m in baseline.metrics if m.label == load]))
        thr_b = float(np.mean([m.throughput_per_min for m in candidate.metrics if m.label == load]))
        rows.append(LoadMetricRow("throughput (req/min)", load, thr_a, thr_b, thr_b / thr_a if thr_a else math.nan,
                                  verdict="shown, not called: one figure per load"))
    return LoadComparison(baseline, candidate, tuple(rows), common)
