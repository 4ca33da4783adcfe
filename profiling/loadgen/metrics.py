"""Per-rate figures from request rows (pure): distributions with missing counts, throughput, errors,
sustainability, goodput under an SLO, and capacity over a sweep of rates. docs/load_methodology.md
gives every definition.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from engines.errors import InputError
from profiling.loadgen.client import RateRun, RequestRow

PERCENTILES: tuple[int, ...] = (50, 90, 95, 99)
#: Per-request metrics summarised per rate, in table order.
ROW_METRICS: tuple[str, ...] = (
    "lag_s", "ttfb_s", "first_playable_s", "audible_ttfa_s", "audible_ttfa_tb_s", "e2e_s", "rtf", "xrt",
    "gap_p95_s", "gap_p99_s", "leading_silence_s", "underrun_max_ms", "underrun_total_ms",
)
#: C100: a stream counts as continuous when its longest underrun is at most this (SGLang-Omni's C100).
C100_MS = 100.0
#: Answers that are the server refusing work up front (``serve --admit slo``), counted apart.
REFUSED_STATUS = "http_503"
#: The client is called the limit when its lag p95 passes this share of the SLO's TTFA bound, or this floor.
CLIENT_LIMIT_SHARE = 0.10
CLIENT_LIMIT_FLOOR_S = 0.050


@dataclass(frozen=True)
class Slo:
    """What a good request and a good rate are.

    Defaults: the issue's audible TTFA p95 <= 800 ms, no underrun at all, no error; C100 >= 99 % is then
    implied (no underrun means every stream is continuous), so the old meaning holds. To judge continuity
    the way SGLang-Omni does, allow underruns (``max_underruns=None``) and keep ``min_c100``.
    ``max_underrun_ms`` bounds one request's longest underrun (a good request's, for goodput).
    """

    ttfa_ms: float = 800.0
    percentile: int = 95
    #: Underruns allowed over the whole rate (all requests together); None = not counted.
    max_underruns: int | None = 0
    max_error_rate: float = 0.0
    #: Share of ok streams whose longest underrun is at most 100 ms; 0 = not checked.
    min_c100: float = 0.99
    max_underrun_ms: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.ttfa_ms) and self.ttfa_ms > 0):
            raise InputError(f"SLO TTFA must be a positive number of ms, got {self.ttfa_ms}")
        if self.percentile not in PERCENTILES:
            raise InputError(f"SLO percentile must be one of {PERCENTILES}, got {self.percentile}")
        if self.max_underruns is not None and self.max_underruns < 0:
            raise InputError(f"SLO underruns must be 0 or more (or none for no limit), got {self.max_underruns}")
        if not 0 <= self.max_error_rate <= 1:
            raise InputError(f"SLO error rate must be in [0, 1], got {self.max_error_rate}")
        if not (math.isfinite(self.min_c100) and 0 <= self.min_c100 <= 1):
            raise InputError(f"SLO C100 must be in [0, 1], got {self.min_c100}")
        if self.max_underrun_ms is not None and not (math.isfinite(self.max_underrun_ms)
                                                     and self.max_underrun_ms >= 0):
            raise InputError(f"SLO longest underrun must be 0 ms or more, got {self.max_underrun_ms}")

    def good(self, row: RequestRow) -> bool:
        if not (row.ok and row.audible_ttfa_s is not None and row.audible_ttfa_s * 1000 <= self.ttfa_ms):
            return False
        if self.max_underruns is not None and (row.underruns or 0) > self.max_underruns:
            return False
        return self.max_underrun_ms is None or (row.underrun_max_ms or 0.0) <= self.max_underrun_ms

    @property
    def label(self) -> str:
        parts = [f"audible TTFA p{self.percentile} <= {self.ttfa_ms:g} ms"]
        parts.append("underruns: any" if self.max_underruns is None else f"underruns <= {self.max_underruns}")
        if self.min_c100 > 0:
            parts.append(f"C100 >= {self.min_c100:.0%}")
        if self.max_underrun_ms is not None:
            parts.append(f"longest underrun <= {self.max_underrun_ms:g} ms")
        if self.max_error_rate > 0:
            parts.append(f"errors <= {self.max_error_rate:.1%}")
        return ", ".join(parts)


def nearest_rank(sorted_values: np.ndarray, percentile: float) -> float:
    """The nearest-rank percentile: a value that was observed, never an interpolation."""
    rank = max(1, math.ceil(percentile / 100 * len(sorted_values)))
    return float(sorted_values[rank - 1])


@dataclass(frozen=True)
class Distribution:
    name: str
    samples: int
    missing: int
    p50: float = math.nan
    p90: float = math.nan
    p95: float = math.nan
    p99: float = math.nan
    mean: float = math.nan
    maximum: float = math.nan

    @classmethod
    def of(cls, name: str, values: Sequence[float | None]) -> Distribution:
        present = np.sort(np.array([v for v in values if v is not None and math.isfinite(v)], dtype=float))
        missing = len(values) - len(present)
        if not len(present):
            return cls(name, 0, missing)
        p50, p90, p95, p99 = (nearest_rank(present, p) for p in PERCENTILES)
        return cls(name, len(present), missing, p50, p90, p95, p99, float(present.mean()), float(present[-1]))

    def percentile(self, p: int) -> float:
        return {50: self.p50, 90: self.p90, 95: self.p95, 99: self.p99}[p]


@dataclass(frozen=True)
class RateMetrics:
    label: str
    offered_per_s: float  # the schedule's rate (closed loop: the achieved rate)
    users: int
    sent: int  # measured requests (warm-up left out), dropped included
    ok: int
    errors: dict[str, int]
    window_s: float
    throughput_per_min: float
    audio_s_per_s: float
    goodput_per_min: float
    good_fraction: float
    error_rate: float
    underruns: int
    sustainable: bool
    unsustainable_reason: str
    client_limited: bool
    slo_met: bool
    slo_reason: str
    client_cpu_fraction: float
    server_cpu_fraction: float | None
    mean_audio_s: float
    distributions: dict[str, Distribution] = field(default_factory=dict)
    #: Median server-side split for requests joined by id: queue wait and synthesis to the first chunk.
    queue_wait_p50_s: float | None = None
    server_first_chunk_p50_s: float | None = None
    joined: int = 0
    #: Continuity: share of ok streams whose longest underrun <= 100 ms (NaN with none ok).
    c100: float = math.nan
    #: Inter-chunk gaps of every ok request pooled (vLLM's ITL): p99 and the largest, seconds.
    gap_p99_s: float = math.nan
    gap_max_s: float = math.nan
    #: 503 answers (admission refusals); goodput both ways: over every sent request, and over admitted ones.
    refused: int = 0
    admitted_good_fraction: float = math.nan
    #: Server side (timelines that carry the scheduler's deadlines): share of chunks ready after their deadline.
    late_chunk_share: float | None = None

    def dist(self, name: str) -> Distribution:
        return self.distributions[name]


def _sustainable(rows: Sequence[RequestRow]) -> tuple[bool, str]:
    dropped = sum(r.status == "dropped" for r in rows)
    if dropped:
        return False, f"{dropped} dropped over the in-flight cap"
    cut = sum(r.status == "timeout" for r in rows)
    if cut:
        return False, f"{cut} timed out or cut by the drain"
    # What a listener waits beyond real time: first audio plus every stall. Not E2E: a server that paces
    # streams to their playback (EDF) stretches E2E toward the audio's length by design, with no queue at all.
    done = sorted((r for r in rows if r.ok and r.audible_ttfa_s is not None), key=lambda r: r.ideal_s)
    if len(done) >= 6:
        third = len(done) // 3
        waited = [r.audible_ttfa_s + (r.stall_s or 0.0) for r in done]  # type: ignore[operator]
        first = float(np.median(waited[:third]))
        last = float(np.median(waited[-third:]))
        if last > 1.5 * first + 0.1:
            return False, (f"waiting grows over the test (median first audio + stalls {first:.2f} s -> "
                           f"{last:.2f} s): a queue builds")
    return True, ""


def rate_metrics(run: RateRun, slo: Slo) -> RateMetrics:
    rows = [r for r in run.rows if not r.warmup]
    ok = [r for r in rows if r.ok]
    errors = dict(Counter(r.status for r in rows if not r.ok))
    starts = [r.ideal_s for r in rows]
    ends = [r.dispatch_s + r.e2e_s for r in ok if r.dispatch_s is not None and r.e2e_s is not None]
    window = (max(ends) - min(starts)) if ends and starts else run.schedule.duration_s
    window = max(window, 1e-9)
    audio = sum(r.audio_s for r in ok)
    good = sum(slo.good(r) for r in rows)
    sustainable, why = _sustainable(rows)
    distributions = {name: Distribution.of(name, [getattr(r, name) for r in rows]) for name in ROW_METRICS}
    ttfa = distributions["audible_ttfa_s"].percentile(slo.percentile)
    underruns = sum(r.underruns or 0 for r in ok)
    c100 = sum((r.underrun_max_ms or 0.0) <= C100_MS for r in ok) / len(ok) if ok else math.nan
    gaps = pooled_gaps(ok)
    refused = sum(r.status == REFUSED_STATUS for r in rows)
    admitted = len(rows) - refused
    error_rate = (len(rows) - len(ok)) / len(rows) if rows else 1.0
    lag_p95 = distributions["lag_s"].p95
    client_limited = bool(np.isfinite(lag_p95)) and lag_p95 > max(CLIENT_LIMIT_FLOOR_S,
                                                                    CLIENT_LIMIT_SHARE * slo.ttfa_ms / 1000)
    reasons = []
    if not rows:
        reasons.append("no measured requests")
    if not sustainable:
        reasons.append("not sustainable")
    if error_rate > slo.max_error_rate:
        reasons.append(f"error rate {error_rate:.1%}")
    if not (np.isfinite(ttfa) and ttfa * 1000 <= slo.ttfa_ms):
        reasons.append(f"TTFA p{slo.percentile} {ttfa * 1000:.0f} ms")
    if slo.max_underruns is not None and underruns > slo.max_underruns:
        reasons.append(f"{underruns} underruns")
    if slo.min_c100 > 0 and ok and not c100 >= slo.min_c100:
        reasons.append(f"C100 {c100:.1%}")
    if client_limited:  # the offered rate was not really offered: it cannot count toward capacity
        reasons.append(f"client-limited (lag p95 {lag_p95 * 1000:.0f} ms)")
    queue, first_chunk, joined = _server_split(run, ok)
    late = late_chunk_share(run, ok)
    server_cpu = run.server_cpu_s / run.wall_s if run.server_cpu_s is not None and run.wall_s > 0 else None
    closed = run.schedule.kind == "closed"
    return RateMetrics(
        label=run.schedule.label,
        offered_per_s=len(ok) / window if closed else run.schedule.rate_per_s,
        users=run.schedule.users, sent=len(rows), ok=len(ok), errors=errors, window_s=window,
        throughput_per_min=60 * len(ok) / window, audio_s_per_s=audio / window,
        goodput_per_min=60 * good / window, good_fraction=good / len(rows) if rows else 0.0,
        error_rate=error_rate, underruns=underruns, sustainable=sustainable, unsustainable_reason=why,
        client_limited=client_limited, slo_met=not reasons, slo_reason="; ".join(reasons),
        client_cpu_fraction=run.client_cpu_fraction, server_cpu_fraction=server_cpu,
        mean_audio_s=audio / len(ok) if ok else 0.0, distributions=distributions,
        queue_wait_p50_s=queue, server_first_chunk_p50_s=first_chunk, joined=joined,
        c100=c100, gap_p99_s=nearest_rank(gaps, 99) if gaps.size else math.nan,
        gap_max_s=float(gaps[-1]) if gaps.size else math.nan, refused=refused,
        admitted_good_fraction=good / admitted if admitted else math.nan, late_chunk_share=late,
    )


def late_chunk_share(run: RateRun, ok: Sequence[RequestRow]) -> float | None:
    """Chunks with a negative slack (ready after the policy's deadline) over chunks with one; None when no
    timeline says (an older server, or a policy without deadlines). Read with .get: old timelines lack it."""
    slacks = [chunk.get("slack_s") for row in ok for chunk in (run.server.get(row.request_id) or {}).get("chunks", [])
              if isinstance(chunk, dict)]
    known = [s for s in slacks if s is not None]
    return sum(s < 0 for s in known) / len(known) if known else None


def pooled_gaps(rows: Sequence[RequestRow]) -> np.ndarray:
    """Every inter-chunk gap (seconds between body reads carrying audio) of ``rows``, sorted.

    From each row's kept reads (the first ``MAX_READS_KEPT``; a longer request's later reads are merged).
    """
    parts = [np.diff([at for at, _ in r.reads]) for r in rows if len(r.reads) > 1]
    return np.sort(np.concatenate(parts)) if parts else np.zeros(0)


def _server_split(run: RateRun, ok: Sequence[RequestRow]) -> tuple[float | None, float | None, int]:
    waits, firsts = [], []
    for row in ok:
        timeline = run.server.get(row.request_id)
        if timeline is None:
            continue
        if timeline.get("queue_wait_s") is not None:
            waits.append(float(timeline["queue_wait_s"]))
        if timeline.get("first_chunk_s") is not None and timeline.get("start_s") is not None:
            firsts.append(float(timeline["first_chunk_s"]) - float(timeline["start_s"]))
    median = lambda xs: float(np.median(xs)) if xs else None  # noqa: E731
    return median(waits), median(firsts), len(waits)


@dataclass(frozen=True)
class Capacity:
    """The highest offered rate (or user count) below the first that misses the SLO; None if the first misses."""

    rate_per_s: float | None
    users: int | None
    streams: float | None  # concurrent real-time streams at capacity (Little's law)
    first_miss: str | None
    slo: Slo

    def describe(self) -> str:
        if self.rate_per_s is None and self.users is None:
            miss = f" (first miss: {self.first_miss})" if self.first_miss else ""
            return f"capacity: below the lowest load tried{miss} under {self.slo.label}"
        load = f"{self.users} users" if self.users else f"{self.rate_per_s:g} req/s ({self.rate_per_s * 60:g} req/min)"
        streams = f", about {self.streams:.1f} concurrent real-time streams" if self.streams is not None else ""
        beyond = f"; next load missed: {self.first_miss}" if self.first_miss else "; every load tried met it"
        return f"capacity: {load}{streams} under {self.slo.label}{beyond}"


def capacity(metrics: Sequence[RateMetrics], slo: Slo) -> Capacity:
    best: RateMetrics | None = None
    first_miss = None
    for m in sorted(metrics, key=lambda m: (m.users, m.offered_per_s)):
        if not m.slo_met:
            first_miss = f"{m.label}: {m.slo_reason}"
            break
        best = m
    if best is None:
        return Capacity(None, None, None, first_miss, slo)
    ttfa = best.dist("audible_ttfa_s").mean
    streams = best.throughput_per_min / 60 * (best.mean_audio_s + (ttfa if math.isfinite(ttfa) else 0.0))
    return Capacity(None if best.users else best.offered_per_s, best.users or None, streams, first_miss, slo)
