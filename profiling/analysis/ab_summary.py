"""What an A/B session's stored runs say: B/A per metric, the switch penalty, the noise, and warnings.

Works on ``RunRecord``s (as ``run_ab`` returns them) through their ``ab_*`` annotations, so a session
read back from the store summarises the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from profiling.analysis.paired import MIN_CLUSTERS, MIN_SIGNED_RANK, PairedEstimate, pair_units, paired_estimate
from profiling.core.records import RunRecord, RunStatus

#: Timing metrics first; audio_s is there to read a timing ratio against (a longer output takes longer).
AB_METRICS: tuple[str, ...] = ("synth_s", "rtf", "ttfa_s", "audio_s")
PRIMARY_METRIC = "synth_s"
#: Without a target, the CLI says how many pairs this difference would need.
REFERENCE_TARGET = 0.03
#: A run's steal share (median over runs) above which the hypervisor is named as a noise source (%).
STEAL_WARNING_PCT = 5.0


def measured(records: Sequence[RunRecord]) -> list[RunRecord]:
    return [r for r in records if not r.warmup and r.status is RunStatus.OK]


@dataclass(frozen=True)
class Pairs:
    """The pairs both sides finished, in pair order: A's and B's values, each pair's epoch and index."""

    baseline: list[float]
    candidate: list[float]
    epochs: list[int]
    indices: list[int]

    def estimate(self, metric: str) -> PairedEstimate:
        """B/A over couples of adjacent pairs (``pair_units``), covering the spread between epochs."""
        return paired_estimate(metric, self.baseline, self.candidate, clusters=self.epochs,
                               units=pair_units(self.indices))


def paired_runs(records: Sequence[RunRecord], metric: str) -> Pairs:
    """The pairs of runs with ``ab_pair`` >= 0 that both sides finished."""
    sides: dict[str, dict[int, float]] = {"A": {}, "B": {}}
    epochs: dict[int, int] = {}
    for r in measured(records):
        pair = int(r.annotations.get("ab_pair", -1))
        if pair >= 0:
            sides[str(r.annotations["ab_side"])][pair] = float(getattr(r, metric))
            epochs[pair] = int(r.annotations.get("ab_epoch", 0))
    common = sorted(set(sides["A"]) & set(sides["B"]))
    return Pairs([sides["A"][i] for i in common], [sides["B"][i] for i in common], [epochs[i] for i in common],
                 common)


@dataclass(frozen=True)
class SwitchPenalty:
    """A run right after a switch of side against the next run of the same side (after a repeat)."""

    side: str
    estimate: PairedEstimate  # candidate = after switch, baseline = after repeat

    def describe(self) -> str:
        e = self.estimate
        scale, unit = (1000, " ms") if e.metric.endswith("_s") else (1, "")
        return (f"{self.side}: after a switch {e.ratio:.3f}x a run after a repeat "
                f"(95% CI {e.ci_low:.3f}..{e.ci_high:.3f}, {e.n} couples; medians {e.candidate_median * scale:.4g} vs "
                f"{e.baseline_median * scale:.4g}{unit})")


def switch_penalties(records: Sequence[RunRecord], metric: str = PRIMARY_METRIC) -> tuple[SwitchPenalty, ...]:
    """Per side: each after-switch run with the run that directly follows it on the same side."""
    runs = measured(records)
    couples: dict[str, tuple[list[float], list[float]]] = {"A": ([], []), "B": ([], [])}
    for first, second in zip(runs, runs[1:], strict=False):
        side = first.annotations.get("ab_side")
        if (first.annotations.get("ab_after") == "switch" and second.annotations.get("ab_after") == "repeat"
                and second.annotations.get("ab_side") == side):
            couples[str(side)][0].append(float(getattr(second, metric)))
            couples[str(side)][1].append(float(getattr(first, metric)))
    return tuple(SwitchPenalty(side, paired_estimate(metric, repeat, switch))
                 for side, (repeat, switch) in couples.items() if len(repeat) >= 2)


def signal_medians(records: Sequence[RunRecord]) -> dict[str, float]:
    """Median of each ``sys_*`` signal over the measured runs (only signals the kernel gave)."""
    values: dict[str, list[float]] = {}
    for r in measured(records):
        for key, value in r.annotations.items():
            if key.startswith("sys_") and isinstance(value, int | float) and not isinstance(value, bool):
                values.setdefault(key, []).append(float(value))
    return {k: float(np.median(v)) for k, v in values.items()}


@dataclass(frozen=True)
class AbSummary:
    estimates: tuple[PairedEstimate, ...]
    switch: tuple[SwitchPenalty, ...]
    signals: dict[str, float]
    primary: str = PRIMARY_METRIC
    #: The sides ran on two loaded models (blocks or alternate design), not one.
    two_models: bool = False

    def estimate(self, metric: str | None = None) -> PairedEstimate | None:
        return next((e for e in self.estimates if e.metric == (metric or self.primary)), None)

    @property
    def pairs(self) -> int:
        main = self.estimate()
        return main.n if main is not None else 0

    def sensitivity_line(self, target: float | None) -> str:
        """The smallest detectable difference, and the pairs a target (or 3 %) would need."""
        main = self.estimate()
        if main is None:
            return "no complete pair"
        goal = target if target is not None else REFERENCE_TARGET
        needed = main.pairs_needed(goal)
        line = f"smallest detectable difference ({main.metric}, {main.n} pairs): ±{main.detectable:.1%}"
        if needed is not None:
            line += f"; ±{goal:.0%} needs about {needed} pairs at this noise" if main.detectable > goal \
                else f"; ±{goal:.0%} reached"
        return line


def summarize(records: Sequence[RunRecord], metrics: Sequence[str] = AB_METRICS,
              primary: str = PRIMARY_METRIC) -> AbSummary:
    estimates = []
    for metric in metrics:
        pairs = paired_runs(records, metric)
        if pairs.baseline and all(v > 0 for v in pairs.baseline + pairs.candidate):
            estimates.append(pairs.estimate(metric))
    two = any(r.annotations.get("ab_design") in ("blocks", "alternate") for r in records)
    return AbSummary(tuple(estimates), switch_penalties(records, primary), signal_medians(records), primary, two)


def noise_warnings(summary: AbSummary, target: float | None, cores: int | None,
                   unsettled: Sequence[str] = ()) -> list[str]:
    """Why this session may not see the difference asked about, one line each."""
    lines = []
    main = summary.estimate()
    if main is not None and target is not None and not main.detectable <= target:
        needed = main.pairs_needed(target)
        lines.append(f"too noisy for a ±{target:.0%} difference here: ±{main.detectable:.1%} after {main.n} pairs"
                     + (f" (about {needed} pairs would do at this noise)" if needed else ""))
    if main is not None and summary.two_models and not main.clusters:
        lines.append(f"one loaded copy of each model for fewer than {MIN_CLUSTERS} epochs: two copies of the same "
                     "model can differ by a per cent or two, and that is inside this ratio (reload more often)")
    if main is not None and main.units and main.units < MIN_SIGNED_RANK:
        lines.append(f"{main.n} pairs make {main.units} couples of adjacent pairs, fewer than {MIN_SIGNED_RANK}: the "
                     f"interval spans them all and covers less than 95 % (run at least {2 * MIN_SIGNED_RANK} pairs)")
    if main is not None and main.outliers.severe:
        lines.append(f"{len(main.outliers.severe)} pair(s) far off the rest (severe outliers, kept: the estimate "
                     f"is robust to them)")
    steal = summary.signals.get("sys_steal_pct")
    if steal is not None and steal > STEAL_WARNING_PCT:
        lines.append(f"the hypervisor took {steal:.0f}% of CPU time from this VM during the runs (steal)")
    running = summary.signals.get("sys_procs_running")
    if running is not None and cores and running - 1 >= cores:  # this process is one of them
        lines.append(f"{running:.0f} runnable processes (median) on {cores} cores: other work competed for the CPU")
    for side in unsettled:
        lines.append(f"side {side}'s warm-up did not settle within its bound: its first runs may still be warming")
    return lines
