"""Statistics that separate a real change from noise: bootstrap intervals, A-vs-B ratios, a regression gate.

A ratio is candidate / baseline of the medians (> 1 = candidate slower for a time). How its 95%
interval is made depends on how the two sides were run (``arrangement``):

- **paired** (``python -m profiling ab``: adjacent A and B runs in one process): the log ratio of each
  pair, its Hodges-Lehmann centre and signed-rank interval (``profiling.analysis.paired``); what drifts
  between pairs cancels inside each one.

Every ratio states its smallest detectable difference (``Ratio.detectable``: half the interval's width).
- **interleaved** (a sweep's configurations, alternating runs): both sides resampled independently;
  drift fell on both alike.
- **separate batches** (one batch, later another): resampling inside each batch cannot see what moved
  between them (clock, cache, other tenants), so the interval is widened by the batch-to-batch spread
  the machine's A/A calibration measured (``profiling.analysis.noise``); with no calibration stored for
  the machine the verdict refuses to name a difference.

When the interval covers 1 the verdict is "no measurable difference". The gate fails a metric only when
the WHOLE interval lies above 1 + threshold: slower beyond the threshold with confidence.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np
import pandas as pd

from profiling.analysis.paired import pair_units, paired_estimate
from profiling.core.stats import Summary
from profiling.store.noise import NoiseFloor, latest_noise_floor, machine_key
from profiling.store.results import ResultsStore
from profiling.store.sweeps import list_sweeps, sweep_configs_dataframe, sweep_runs_dataframe

NO_DIFFERENCE = "no measurable difference"
DEFAULT_RESAMPLES = 4000
CONFIDENCE = 0.95
#: Stages shorter than this (median, both sides) are not gated: microsecond stages are all jitter.
MIN_GATED_STAGE_S = 0.001
#: Whole-run metrics the gate checks (times: bigger is worse).
GATED_METRICS: tuple[str, ...] = ("rtf", "ttfa_s", "synth_s")
#: Side switches (in start-time order) from which two groups count as interleaved rather than separate.
MIN_ALTERNATIONS = 3
#: The difference a paired comparison says how many pairs it would need for, when it cannot see it yet.
SENSITIVITY_TARGET = 0.03
UNCALIBRATED = "separate batches and no A/A noise floor for this machine (run `python -m profiling calibrate`)"


class Arrangement(str, Enum):
    PAIRED = "paired"
    INTERLEAVED = "interleaved"
    SEPARATE = "separate batches"


@dataclass(frozen=True)
class ConfigStats:
    """Median, p95, mean, std and a bootstrap 95% interval of the median, for one metric of one configuration."""

    name: str
    summary: Summary
    ci_low: float
    ci_high: float

    @property
    def n(self) -> int:
        return self.summary.n

    @property
    def median(self) -> float:
        return self.summary.median


@dataclass(frozen=True)
class Ratio:
    metric: str
    baseline_median: float
    candidate_median: float
    ratio: float
    ci_low: float
    ci_high: float
    n_baseline: int
    n_candidate: int
    arrangement: Arrangement = Arrangement.INTERLEAVED
    #: Batch-to-batch spread (log SD) folded into the interval; 0 for paired and interleaved sides.
    between_sigma: float = 0.0
    #: Set when a difference must not be named (separate batches on an uncalibrated machine).
    refused: str = ""

    @property
    def detectable(self) -> float:
        """Smallest relative difference this interval could tell from none (half its width, in log terms)."""
        if not (self.ci_low > 0 and self.ci_high > 0):
            return float("nan")
        return float(np.exp((np.log(self.ci_high) - np.log(self.ci_low)) / 2) - 1)

    @property
    def verdict(self) -> str:
        if self.ci_low <= 1.0 <= self.ci_high:
            return NO_DIFFERENCE
        if self.refused:
            return "not called: " + self.refused.split(" (")[0]
        word = "slower" if self.ratio > 1 else "faster"
        factor = self.ratio if self.ratio > 1 else 1 / self.ratio
        return f"candidate {factor:.2f}x {word}"

    def regressed(self, max_regression: float) -> bool:
        """Slower beyond the threshold with confidence: the interval's lower end is above 1 + threshold."""
        return self.ci_low > 1.0 + max_regression


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def bootstrap_ci(
    values: Sequence[float], statistic: str = "median", resamples: int = DEFAULT_RESAMPLES, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval (95%) of the median (or mean) of ``values``."""
    array = np.asarray(values, dtype=float)
    if array.size == 0:
        raise ValueError("no values for a confidence interval")
    if array.size == 1:
        return float(array[0]), float(array[0])
    reduce = np.median if statistic == "median" else np.mean
    samples = _rng(seed).choice(array, size=(resamples, array.size), replace=True)
    stats = reduce(samples, axis=1)
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(stats, [tail, 100 - tail])
    return float(low), float(high)


def config_stats(name: str, values: Sequence[float], seed: int = 0) -> ConfigStats:
    low, high = bootstrap_ci(values, seed=seed)
    return ConfigStats(name, Summary.of(name, list(values)), low, high)


def ratio(
    metric: str, baseline: Sequence[float], candidate: Sequence[float],
    resamples: int = DEFAULT_RESAMPLES, seed: int = 0, between_sigma: float = 0.0,
    arrangement: Arrangement = Arrangement.INTERLEAVED, refused: str = "",
) -> Ratio:
    """candidate/baseline ratio of medians with a 95% bootstrap interval (both sides resampled).

    ``between_sigma`` > 0 adds the batch-to-batch spread: each bootstrap ratio is multiplied by a
    draw of exp(N(0, sigma)), so the interval is that of within-batch AND between-batch variation.
    """
    a = np.asarray(baseline, dtype=float)
    b = np.asarray(candidate, dtype=float)
    if a.size == 0 or b.size == 0:
        raise ValueError(f"{metric}: both sides need at least one value")
    rng = _rng(seed)
    med_a = np.median(rng.choice(a, size=(resamples, a.size), replace=True), axis=1)
    med_b = np.median(rng.choice(b, size=(resamples, b.size), replace=True), axis=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = med_b / med_a
    if between_sigma > 0:
        ratios = ratios * np.exp(rng.normal(0.0, between_sigma, ratios.size))
    ratios = ratios[np.isfinite(ratios)]
    tail = (1 - CONFIDENCE) / 2 * 100
    low, high = (np.percentile(ratios, [tail, 100 - tail]) if ratios.size else (np.nan, np.nan))
    point = float(np.median(b) / np.median(a)) if np.median(a) else float("nan")
    return Ratio(metric, float(np.median(a)), float(np.median(b)), point, float(low), float(high), a.size, b.size,
                 arrangement, between_sigma, refused)


def paired_ratio(metric: str, baseline: Sequence[float], candidate: Sequence[float],
                 units: Sequence[int] | None = None) -> Ratio:
    """B/A from pairs: the Hodges-Lehmann centre of the per-pair (or per-unit: couples of adjacent pairs) log
    ratios with the signed-rank 95 % interval (``profiling.analysis.paired``; what ``ab`` reports)."""
    e = paired_estimate(metric, baseline, candidate, units=units)
    return Ratio(metric, e.baseline_median, e.candidate_median, e.ratio, e.ci_low, e.ci_high, e.n, e.n,
                 Arrangement.PAIRED)


# --- runs from the store -----------------------------------------------------------------
def measured_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Finished, non-warm-up runs (what statistics are about)."""
    return runs[(runs["status"] == "ok") & (~runs["warmup"].astype(bool))]


def metric_values(runs: pd.DataFrame, metric: str) -> list[float]:
    values = pd.to_numeric(measured_runs(runs)[metric], errors="coerce").dropna()
    return [float(v) for v in values]


def stage_values(stages: pd.DataFrame, run_ids: Sequence[str]) -> dict[str, list[float]]:
    """Inclusive seconds per stage over the given runs."""
    chosen = stages[stages["run_id"].isin(set(run_ids))]
    return {name: [float(v) for v in group["inclusive_s"]] for name, group in chosen.groupby("stage", sort=False)}


def per_config_table(runs: pd.DataFrame, by: str = "config_label", metric: str = "rtf") -> pd.DataFrame:
    """Per configuration: n, median, p95, mean, std and the bootstrap 95% interval of the median."""
    rows = []
    for name, group in measured_runs(runs).groupby(by, sort=False):
        values = metric_values(group, metric)
        if not values:
            continue
        stats = config_stats(str(name), values)
        s = stats.summary
        rows.append({
            by: name, "metric": metric, "n": s.n, "median": s.median, "p95": s.p95, "mean": s.mean,
            "std": s.std, "ci_low": stats.ci_low, "ci_high": stats.ci_high,
        })
    return pd.DataFrame(rows)


RATIO_COLUMNS = ("metric", "baseline", "candidate", "ratio", "ci_low", "ci_high", "detectable", "verdict")
CONFIG_COLUMNS = ("metric", "n", "median", "p95", "mean", "std", "ci_low", "ci_high")


def ratio_table(ratios: Sequence[Ratio]) -> pd.DataFrame:
    return pd.DataFrame(columns=list(RATIO_COLUMNS), data=[
        {
            "metric": r.metric, "baseline": r.baseline_median, "candidate": r.candidate_median,
            "ratio": r.ratio, "ci_low": r.ci_low, "ci_high": r.ci_high, "verdict": r.verdict,
            "detectable": r.detectable, "how": r.arrangement.value,
        }
        for r in ratios
    ] or None)


def arrangement(baseline_runs: pd.DataFrame, candidate_runs: pd.DataFrame) -> Arrangement:
    """How the two sides were run: pairs of one A/B session, alternating runs, or separate batches."""
    a, b = measured_runs(baseline_runs), measured_runs(candidate_runs)
    if set(a["batch_id"]) & set(b["batch_id"]):
        return Arrangement.PAIRED  # one A/B session stores both sides under one batch id
    sides = pd.concat([a[["created_at"]].assign(side=0), b[["created_at"]].assign(side=1)])
    order = sides.sort_values("created_at", kind="stable")["side"].to_numpy()
    switches = int(np.count_nonzero(np.diff(order))) if order.size else 0
    return Arrangement.INTERLEAVED if switches >= MIN_ALTERNATIONS else Arrangement.SEPARATE


def _paired_values(runs_a: pd.DataFrame, runs_b: pd.DataFrame,
                   metric: str) -> tuple[list[float], list[float], list[int]]:
    """Values of pairs present (and finished) on both sides, matched on (batch, pair index), and each pair's unit
    (a couple of adjacent pairs of one session, ``pair_units``)."""
    a = measured_runs(runs_a).set_index(["batch_id", "repeat_index"])[metric]
    b = measured_runs(runs_b).set_index(["batch_id", "repeat_index"])[metric]
    both = pd.concat([a.rename("a"), b.rename("b")], axis=1, join="inner").apply(pd.to_numeric, errors="coerce")
    both = both.dropna().sort_index()
    keys = [(batch, unit) for batch, unit in zip(both.index.get_level_values(0),
                                                 pair_units(both.index.get_level_values(1)), strict=True)]
    numbered = {key: i for i, key in enumerate(dict.fromkeys(keys))}
    return [float(v) for v in both["a"]], [float(v) for v in both["b"]], [numbered[k] for k in keys]


def compare_runs(
    baseline_runs: pd.DataFrame, candidate_runs: pd.DataFrame, stages: pd.DataFrame | None = None,
    metrics: Sequence[str] = GATED_METRICS, min_stage_s: float = MIN_GATED_STAGE_S, seed: int = 0,
    how: Arrangement | None = None, between_sigma: float = 0.0, refused: str = "",
) -> list[Ratio]:
    """Ratios for whole-run metrics, then for each stage both sides have (stages too short are skipped).

    ``how`` defaults to the detected arrangement; paired sides get paired ratios, separate batches the
    ``between_sigma`` widening (and ``refused`` when there is nothing to widen by).
    """
    how = how or arrangement(baseline_runs, candidate_runs)
    results = []
    for metric in metrics:
        if how is Arrangement.PAIRED:
            a, b, units = _paired_values(baseline_runs, candidate_runs, metric)
            if a:
                results.append(paired_ratio(metric, a, b, units))
            continue
        a, b = metric_values(baseline_runs, metric), metric_values(candidate_runs, metric)
        if a and b:
            results.append(ratio(metric, a, b, seed=seed, between_sigma=between_sigma, arrangement=how,
                                 refused=refused))
    if stages is not None:
        a_stages = stage_values(stages, list(measured_runs(baseline_runs)["run_id"]))
        b_stages = stage_values(stages, list(measured_runs(candidate_runs)["run_id"]))
        for name, a in a_stages.items():
            b = b_stages.get(name)
            if not b or max(np.median(a), np.median(b)) < min_stage_s:
                continue
            results.append(ratio(f"stage:{name}", a, b, seed=seed, between_sigma=between_sigma,
                                 arrangement=Arrangement.INTERLEAVED if how is Arrangement.PAIRED else how,
                                 refused=refused))
    return results


@dataclass(frozen=True)
class Comparison:
    """Ratios plus what they rest on: how the sides were run and the machine's noise floor (if measured)."""

    arrangement: Arrangement
    floor: NoiseFloor | None
    ratios: tuple[Ratio, ...]

    def describe(self) -> str:
        """One line a researcher reads before the table."""
        if self.arrangement is Arrangement.PAIRED:
            how = "paired (one A/B session): signed-rank interval over per-pair log ratios"
        elif self.arrangement is Arrangement.INTERLEAVED:
            how = "interleaved runs: interval from resampling both sides"
        elif self.floor is not None:
            how = (f"separate batches: interval widened by this machine's batch-to-batch spread "
                   f"(±{self.floor.between_pct:.1f}% per batch, A/A calibration {self.floor.created_at[:10]})")
        else:
            how = f"{UNCALIBRATED}: differences are not named"
        return f"how the sides were run: {how}"

    def noise_line(self) -> str:
        """The smallest difference detectable at this sample size, and the A/A false-positive rate measured."""
        first = next((r for r in self.ratios if r.metric == "rtf"), self.ratios[0] if self.ratios else None)
        detect = f"smallest detectable difference (rtf, n={first.n_baseline}/{first.n_candidate}): " \
                 f"±{first.detectable:.1%}" if first is not None else "no ratio"
        if first is not None and self.arrangement is Arrangement.PAIRED and first.detectable > SENSITIVITY_TARGET:
            # the paired half-width shrinks as 1/sqrt(pairs): scale it to the target
            scale = math.log1p(first.detectable) / math.log1p(SENSITIVITY_TARGET)
            needed = math.ceil(first.n_baseline * scale**2)
            detect += f" (±{SENSITIVITY_TARGET:.0%} would need about {needed} pairs)"
        if self.floor is None:
            return f"{detect}; A/A false-positive rate: not measured on this machine"
        return (f"{detect}; A/A false-positive rate on this machine ({self.floor.pairs} pairs of "
                f"{self.floor.runs_per_batch}-run batches): {self.floor.false_positive_within:.0%} within-batch "
                f"interval, {self.floor.false_positive_widened:.0%} widened")


def runs_machine(store: ResultsStore, runs: pd.DataFrame) -> str | None:
    """The machine (CPU model x cores) the first measured run was made on."""
    measured = measured_runs(runs)
    if measured.empty:
        return None
    return machine_key(store.load_run(str(measured["run_id"].iloc[0])).environment)


def compare_selections(
    store: ResultsStore, baseline_runs: pd.DataFrame, candidate_runs: pd.DataFrame,
    stages: pd.DataFrame | None = None, metrics: Sequence[str] = GATED_METRICS, seed: int = 0,
) -> Comparison:
    """Detect how the sides were run, look up the machine's noise floor, and compute the ratios accordingly."""
    how = arrangement(baseline_runs, candidate_runs)
    machine = runs_machine(store, baseline_runs)
    engine = str(measured_runs(baseline_runs)["engine"].iloc[0]) if not measured_runs(baseline_runs).empty else None
    floor = latest_noise_floor(store, machine, engine) if machine else None
    sigma, refused = 0.0, ""
    if how is Arrangement.SEPARATE:
        if floor is None:
            refused = UNCALIBRATED
        else:
            sigma = floor.between_sigma
    ratios = compare_runs(baseline_runs, candidate_runs, stages, metrics, seed=seed, how=how,
                          between_sigma=sigma, refused=refused)
    return Comparison(how, floor, tuple(ratios))


@dataclass(frozen=True)
class GateResult:
    max_regression: float
    ratios: tuple[Ratio, ...]

    @property
    def regressions(self) -> tuple[Ratio, ...]:
        return tuple(r for r in self.ratios if r.regressed(self.max_regression))

    @property
    def passed(self) -> bool:
        return not self.regressions


def gate(ratios: Sequence[Ratio], max_regression: float) -> GateResult:
    return GateResult(max_regression, tuple(ratios))


def parse_threshold(text: str) -> float:
    """'5%' or '0.05' -> 0.05."""
    from engines.errors import InputError

    raw = text.strip()
    try:
        value = float(raw[:-1]) / 100 if raw.endswith("%") else float(raw)
    except ValueError:
        raise InputError(f"--max-regression expects e.g. 5% or 0.05, got {text!r}") from None
    if not np.isfinite(value) or value < 0:
        raise InputError(f"--max-regression must be 0 or more, got {text!r}")
    return value


def drift(runs: pd.DataFrame, metric: str = "rtf") -> float | None:
    """Relative trend of a configuration's metric over the sweep: the fitted change from its first to its last
    scheduled run, as a fraction of the median (needs ``seq``; None with fewer than 3 runs)."""
    frame = measured_runs(runs).dropna(subset=["seq", metric])
    if len(frame) < 3 or frame["seq"].nunique() < 2:
        return None
    x, y = frame["seq"].to_numpy(dtype=float), frame[metric].to_numpy(dtype=float)
    slope = float(np.polyfit(x, y, 1)[0])
    return slope * float(x.max() - x.min()) / float(np.median(y))


def reference_drift(runs: pd.DataFrame, metric: str = "rtf") -> str:
    """One line on the control (reference) configuration's trend over the sweep, or "" without one."""
    if "is_reference" not in runs or not runs["is_reference"].any():
        return ""
    reference = runs[runs["is_reference"]]
    change = drift(reference, metric)
    if change is None:
        return ""
    return (f"drift: the reference configuration ({reference['config_label'].iloc[0]}) moved {change:+.1%} in "
            f"{metric} from the first to the last run of the schedule (linear fit)")


def reference_ratios(runs: pd.DataFrame, metrics: Sequence[str] = ("rtf", "synth_s")) -> pd.DataFrame:
    """A sweep's configurations against their engine's reference configuration: ratio, 95 % interval and the
    smallest difference each could detect (``detectable``), one row per configuration and metric."""
    rows = []
    if "is_reference" not in runs:
        return pd.DataFrame(columns=["engine", "configuration", "vs reference", *RATIO_COLUMNS])
    for engine, group in runs.groupby("engine", sort=False):
        reference = group[group["is_reference"].astype(bool)]
        if reference.empty:
            continue
        for label, candidate in group[~group["is_reference"].astype(bool)].groupby("config_label", sort=False):
            for r in compare_runs(reference, candidate, None, metrics=metrics):
                rows.append({"engine": engine, "configuration": label,
                             "vs reference": reference["config_label"].iloc[0], **ratio_table([r]).iloc[0].to_dict()})
    return pd.DataFrame(rows, columns=["engine", "configuration", "vs reference", *RATIO_COLUMNS])


# --- choosing runs: batch ids, sweep configurations, labels ----------------------------------------
@dataclass(frozen=True)
class Selection:
    """Runs picked by a selector string, with a readable name for tables and plots."""

    selector: str
    name: str
    runs: pd.DataFrame


def select_runs(store: ResultsStore, selector: str) -> Selection:
    """Resolve ``selector``, tried in this order:

    1. ``sweep:NAME/CONFIG``: a sweep configuration (CONFIG = key, key prefix, or exact label);
    2. a batch id, or a unique prefix of one (6+ characters);
    3. a run label (``bench --label``; sweep runs carry their configuration's label).
    """
    from engines.errors import InputError

    selector = selector.strip()
    if not selector:
        raise InputError("empty run selector: give a batch id, sweep:NAME/CONFIG or a label")
    if selector.startswith("sweep:"):
        name, _, config = selector[len("sweep:"):].partition("/")
        runs = sweep_runs_dataframe(store, name)
        if runs.empty:
            raise InputError(f"sweep '{name}' has no stored runs")
        if not config:
            return Selection(selector, f"sweep {name}", runs)
        configs = sweep_configs_dataframe(store, name)
        hits = configs[(configs["label"] == config) | configs["config_key"].str.startswith(config)]
        if len(hits) != 1:
            known = "; ".join(f"{k} ({lab})" for k, lab in zip(configs["config_key"], configs["label"], strict=True))
            raise InputError(f"'{config}' matches {len(hits)} configurations of sweep '{name}' (known: {known})")
        key, label = hits.iloc[0]["config_key"], hits.iloc[0]["label"]
        return Selection(selector, label, runs[runs["config_key"] == key])
    runs = store.runs_dataframe()
    if len(selector) >= 6:
        batches = runs.loc[runs["batch_id"].str.startswith(selector), "batch_id"].unique()
        if len(batches) == 1:
            chosen = runs[runs["batch_id"] == batches[0]]
            label = chosen["label"].iloc[0] or f"{chosen['engine'].iloc[0]} batch {batches[0][:8]}"
            return Selection(selector, label, chosen)
        if len(batches) > 1:
            raise InputError(f"'{selector}' is the start of {len(batches)} batch ids: give more characters")
    labelled = runs[runs["label"] == selector]
    if labelled.empty:
        raise InputError(
            f"no runs match '{selector}' (give a batch id, sweep:NAME/CONFIG, or a label stored with runs)"
        )
    return Selection(selector, selector, labelled)


def environment_note(baseline: pd.DataFrame, candidate: pd.DataFrame) -> str:
    """A warning when the two sides ran in different environments (lock file, commit, uncommitted changes)."""
    a, b = (sorted(set(measured_runs(side)["provenance"])) for side in (baseline, candidate))
    if a == b and len(a) == 1:
        return ""
    return f"different environments: baseline {'; '.join(a)} / candidate {'; '.join(b)}"


def run_groups(store: ResultsStore) -> pd.DataFrame:
    """What the History tab lists: sweep configurations (sweep:NAME/KEY) and plain bench batches (batch id)."""

    runs = store.runs_dataframe()
    measured = measured_runs(runs)
    rows = []
    in_sweeps: set[str] = set()
    for name in list_sweeps(store)["name"]:
        frame = measured_runs(sweep_runs_dataframe(store, name))
        in_sweeps |= set(sweep_runs_dataframe(store, name)["batch_id"])
        for (key, label), group in frame.groupby(["config_key", "config_label"], sort=False):
            rows.append(_group_row(f"sweep:{name}/{key}", label, group))
    for batch, group in measured[~measured["batch_id"].isin(in_sweeps)].groupby("batch_id", sort=False):
        if group["label"].nunique() > 1:  # an A/B session: one group per side, selected by its label
            for label, side in group.groupby("label", sort=False):
                rows.append(_group_row(str(label), str(label), side))
            continue
        rows.append(_group_row(str(batch), group["label"].iloc[0] or str(batch)[:8], group))
    columns = ["selector", "name", "engine", "device", "precision", "mode", "runs", "median_rtf", "last_run",
               "environment"]
    frame = pd.DataFrame(rows, columns=columns)
    return frame.sort_values("last_run", ascending=False, ignore_index=True)


def _group_row(selector: str, name: str, group: pd.DataFrame) -> dict[str, object]:
    engine = str(group["engine"].iloc[0])
    stage = group["convert"].iloc[0] if "convert" in group else ""
    return {
        # A converted group reads "piper+rvc": its RTF is the whole pipeline's, not the engine's alone.
        "selector": selector, "name": name, "engine": f"{engine}+{stage}" if stage else engine,
        "device": group["device"].iloc[0],
        "precision": group["precision"].iloc[0], "mode": group["mode"].iloc[0], "runs": len(group),
        "median_rtf": float(group["rtf"].median()), "last_run": group["created_at"].max(),
        "environment": "; ".join(sorted(set(group["provenance"]))),
    }
