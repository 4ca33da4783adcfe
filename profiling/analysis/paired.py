"""Paired statistics: B/A from adjacent runs, its interval, what it could detect, and the outliers.

Each pair gives one log ratio d = log(b / a). The estimate is the Hodges-Lehmann centre of the d's
(the median of all pairwise averages) with the exact Wilcoxon signed-rank 95 % interval: distribution
free, no resampling noise, and robust to a few wild pairs (a run that met a noisy neighbour). The
smallest detectable difference is the interval's half-width; the pairs needed for a target come from
the per-pair spread (the half-width shrinks as 1/sqrt(n)).

Adjacent pairs are taken as one unit. ``ab`` runs its pairs A B | B A | A B ..., so the two B's of a
couple of pairs (and the next two A's) run back to back and share any burst of noise longer than a
run: over 100 A/A sessions here (2026-12-06) consecutive pairs correlated (+0.15 at lag 1), and an
interval that took the pairs as independent was 1.16x too narrow (the sessions' centres spread with SD
1.20 % against the 1.04 % it implied; 5-8 % of A/A sessions called different). The mean of an AB + BA
couple cancels that and a linear drift, and couples barely correlate (-0.06): so with ``units`` the
interval is the signed-rank interval of the units' means. On 100 fresh A/A sessions it called 4
different, centres' SD 1.25 % against 1.26 % implied (docs/benchmarks/comparison-sensitivity-cpu.md).

Pairs may come in clusters that share something a pair cannot average away: in the blocks design of
``ab``, each epoch's pairs run on one loaded copy of each model, and two copies of one model can differ
by a per cent or two. With at least ``MIN_CLUSTERS`` clusters the interval is widened to also cover the
Student-t interval of the cluster medians (a median, so one wild pair does not move its cluster), so
the spread between copies is inside it.

Outliers are classified with Tukey's fences on the d's (mild: beyond 1.5 IQR, severe: beyond 3 IQR),
reported and kept: the estimate does not need them dropped.

Pure numpy on purpose: ``profiling.run`` may import this, and nothing here imports a runner.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

CONFIDENCE = 0.95
_Z = 1.959963984540054
#: Above this many pairs the signed-rank distribution is taken as normal (exact below).
_EXACT_MAX_N = 300
#: Efficiency of Hodges-Lehmann vs the mean under normal noise: its SE is sqrt(pi/3) x sigma/sqrt(n).
_HL_SE_FACTOR = math.sqrt(math.pi / 3)
NO_DIFFERENCE = "no measurable difference"
#: Consecutive pairs (by pair index) averaged into one unit: an AB + BA couple.
PAIRS_PER_UNIT = 2
#: Fewest values whose signed-rank interval reaches 95 % (below it the interval spans them all and covers less).
MIN_SIGNED_RANK = 6
#: Fewest clusters whose medians say anything about the spread between them.
MIN_CLUSTERS = 3
#: Two-sided 97.5 % Student-t quantiles for 1..30 degrees of freedom.
_T975 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
         2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
         2.045, 2.042)


def t975(df: int) -> float:
    """The 97.5 % quantile of Student's t (95 % two-sided), from the table; ~normal beyond 30 df."""
    if df < 1:
        raise ValueError("t needs at least one degree of freedom")
    return _T975[df - 1] if df <= len(_T975) else _Z + (_T975[-1] - _Z) * len(_T975) / df


def pair_units(pairs: Sequence[int]) -> list[int]:
    """The unit of each pair index: consecutive pairs two by two (0 and 1, 2 and 3, ...)."""
    return [int(p) // PAIRS_PER_UNIT for p in pairs]


def unit_means(d: np.ndarray, units: np.ndarray) -> np.ndarray:
    """The mean of ``d`` per unit label, in order of first appearance."""
    labels = list(dict.fromkeys(units.tolist()))
    return np.array([d[units == label].mean() for label in labels])


def cluster_interval(d: Sequence[float], clusters: Sequence[int]) -> tuple[float, float, int]:
    """(low, high, k): the t interval over the k cluster medians of ``d`` (k < MIN_CLUSTERS: unbounded)."""
    values, labels = np.asarray(d, dtype=float), np.asarray(clusters)
    medians = np.array([np.median(values[labels == c]) for c in np.unique(labels)])
    if medians.size < MIN_CLUSTERS:
        return -math.inf, math.inf, int(medians.size)
    half = t975(medians.size - 1) * float(medians.std(ddof=1)) / math.sqrt(medians.size)
    return float(medians.mean() - half), float(medians.mean() + half), int(medians.size)


@lru_cache(maxsize=64)
def _signed_rank_cdf(n: int) -> np.ndarray:
    """P(T <= t) for t = 0 .. n(n+1)/2, T the Wilcoxon signed-rank statistic of n pairs (no ties)."""
    top = n * (n + 1) // 2
    prob = np.zeros(top + 1)
    prob[0] = 1.0
    for k in range(1, n + 1):  # each rank is in the positive set with probability 1/2
        shifted = np.zeros_like(prob)
        shifted[k:] = prob[:-k]
        prob = (prob + shifted) / 2
    return np.cumsum(prob)


def signed_rank_critical(n: int, confidence: float = CONFIDENCE) -> int:
    """Largest c with P(T <= c) <= alpha/2 (0 when even c = 0 is too likely: tiny n, whole range used)."""
    alpha = 1 - confidence
    if n > _EXACT_MAX_N:
        mean, sd = n * (n + 1) / 4, math.sqrt(n * (n + 1) * (2 * n + 1) / 24)
        return max(0, int(math.floor(mean - _Z * sd - 0.5)))
    below = np.nonzero(_signed_rank_cdf(n) <= alpha / 2)[0]
    return int(below[-1]) if below.size else 0


def hodges_lehmann(d: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """(centre, low, high) of the d's: the median of the Walsh averages and the signed-rank interval."""
    values = np.asarray(d, dtype=float)
    if values.size == 0:
        raise ValueError("no pairs")
    i, j = np.triu_indices(values.size)
    walsh = np.sort((values[i] + values[j]) / 2)
    c = signed_rank_critical(values.size, confidence)
    # The interval runs from the (c+1)-th smallest to the (c+1)-th largest Walsh average.
    return float(np.median(walsh)), float(walsh[c]), float(walsh[walsh.size - 1 - c])


@dataclass(frozen=True)
class Outliers:
    """Indices (into the pairs) beyond Tukey's fences: mild 1.5-3 IQR out, severe beyond 3 IQR."""

    mild: tuple[int, ...] = ()
    severe: tuple[int, ...] = ()

    def describe(self) -> str:
        if not (self.mild or self.severe):
            return "none"
        return f"{len(self.mild)} mild, {len(self.severe)} severe"


def tukey_outliers(values: Sequence[float]) -> Outliers:
    x = np.asarray(values, dtype=float)
    if x.size < 4:
        return Outliers()
    q1, q3 = np.percentile(x, [25, 75])
    iqr = q3 - q1
    outside = lambda k: (x < q1 - k * iqr) | (x > q3 + k * iqr)  # noqa: E731
    severe, beyond_mild = outside(3.0), outside(1.5)
    return Outliers(tuple(int(i) for i in np.nonzero(beyond_mild & ~severe)[0]),
                    tuple(int(i) for i in np.nonzero(severe)[0]))


def robust_sd(values: Sequence[float]) -> float:
    """1.4826 x the median absolute deviation: the SD of normal noise, untouched by a few wild values."""
    x = np.asarray(values, dtype=float)
    return float(1.4826 * np.median(np.abs(x - np.median(x)))) if x.size else float("nan")


def pct_to_log(fraction: float) -> float:
    return math.log1p(fraction)


@dataclass(frozen=True)
class PairedEstimate:
    """candidate/baseline from n adjacent pairs: ratio, 95 % interval, spread and outliers."""

    metric: str
    n: int
    baseline_median: float
    candidate_median: float
    ratio: float
    ci_low: float
    ci_high: float
    #: Robust SD of the per-pair log ratios (what one pair tells; the interval shrinks from it).
    spread: float
    outliers: Outliers = Outliers()
    #: Clusters (loaded copies, ``ab``'s epochs) the interval also covers the spread of; 0: pairs only.
    clusters: int = 0
    #: Units (couples of adjacent pairs) the interval was taken over; 0: over the pairs themselves.
    units: int = 0

    @property
    def detectable(self) -> float:
        """Smallest relative difference this interval could tell from none: half its width, in log terms."""
        if not (self.ci_low > 0 and self.ci_high > 0):
            return float("nan")
        return float(math.expm1((math.log(self.ci_high) - math.log(self.ci_low)) / 2))

    @property
    def different(self) -> bool:
        return not (self.ci_low <= 1.0 <= self.ci_high)

    @property
    def verdict(self) -> str:
        if not self.different:
            return NO_DIFFERENCE
        factor = self.ratio if self.ratio > 1 else 1 / self.ratio
        if self.metric == "audio_s":
            return f"candidate {factor:.3f}x {'longer' if self.ratio > 1 else 'shorter'}"
        return f"candidate {factor:.3f}x {'slower' if self.ratio > 1 else 'faster'}"

    def pairs_needed(self, target: float) -> int | None:
        """Pairs for the interval's half-width to reach ``target`` (e.g. 0.03) at this noise.

        From the per-pair spread; with clusters or units, from this interval (the half-width shrinks as
        1/sqrt(n) while the pairs per cluster or unit stay the same). About 50 % power against a true
        difference of exactly ``target``; 80 % power needs ~2x as many.
        """
        if target <= 0 or not math.isfinite(self.spread):
            return None
        if self.spread == 0:
            return 6  # noiseless (audio length of a deterministic engine): the signed-rank minimum
        from_spread = (_Z * _HL_SE_FACTOR * self.spread / pct_to_log(target)) ** 2
        if (self.clusters or self.units) and math.isfinite(self.detectable):
            from_spread = max(from_spread, self.n * (math.log1p(self.detectable) / pct_to_log(target)) ** 2)
        return max(6, math.ceil(from_spread))


def paired_estimate(metric: str, baseline: Sequence[float], candidate: Sequence[float],
                    confidence: float = CONFIDENCE, clusters: Sequence[int] | None = None,
                    units: Sequence[int] | None = None) -> PairedEstimate:
    """The estimate from baseline_i / candidate_i taken as pairs (same length, positive values).

    ``units``: a label per pair (``pair_units``); pairs sharing one are averaged first, and the centre and
    interval come from the units' means (outliers and spread stay per pair).

    ``clusters``: a label per pair (``ab``'s epoch); from ``MIN_CLUSTERS`` distinct labels on, the interval
    also covers the t interval of the cluster medians (95 % only).
    """
    a, b = np.asarray(baseline, dtype=float), np.asarray(candidate, dtype=float)
    if a.size != b.size or a.size == 0:
        raise ValueError(f"{metric}: paired sides need the same number (> 0) of values, got {a.size} and {b.size}")
    keep = (a > 0) & (b > 0) & np.isfinite(a) & np.isfinite(b)
    if not keep.any():
        raise ValueError(f"{metric}: no positive pair")
    a, b = a[keep], b[keep]
    d = np.log(b) - np.log(a)
    values = d
    if units is not None:
        values = unit_means(d, _labels(metric, "unit", units, keep))
    centre, low, high = hodges_lehmann(values, confidence)
    if values.size < 2:  # one pair (unit) says nothing about the noise: an unbounded interval, not a zero-width one
        low, high = -math.inf, math.inf
    used = 0
    if clusters is not None:
        c_low, c_high, found = cluster_interval(d, _labels(metric, "cluster", clusters, keep))
        if found >= MIN_CLUSTERS:
            low, high, used = min(low, c_low), max(high, c_high), found
    return PairedEstimate(metric, int(d.size), float(np.median(a)), float(np.median(b)), math.exp(centre),
                          math.exp(low), math.exp(high), robust_sd(d), tukey_outliers(d), used,
                          int(values.size) if units is not None else 0)


def _labels(metric: str, what: str, labels: Sequence[int], keep: np.ndarray) -> np.ndarray:
    if len(labels) != keep.size:
        raise ValueError(f"{metric}: {len(labels)} {what} labels for {keep.size} pairs")
    return np.asarray(labels)[keep]


def settled(values: Sequence[float], window: int, tolerance: float) -> bool:
    """Warm-up rule: the median of the last ``window`` runs moved by at most ``tolerance`` since one run ago."""
    if window < 1 or len(values) < window + 1:
        return False
    now, before = float(np.median(values[-window:])), float(np.median(values[-window - 1:-1]))
    return before > 0 and abs(now / before - 1) <= tolerance
