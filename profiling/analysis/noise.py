"""A/A calibration: how far apart two batches of the SAME settings land on this machine.

``calibrate`` (``profiling.run.calibrate``) runs N separate batches of one setting back to back (each
its own ``run_bench`` call, warm-up included, as a researcher's batches are), stores them, and this
module compares every pair of batches. Two numbers come out (``profiling.store.noise.NoiseFloor``):

- the share of A/A pairs the within-batch bootstrap calls "different" at 95 % (should be ~5 %; on a
  shared machine it is far more, because resampling inside a batch cannot see what moves between them);
- ``between_sigma``: the spread of the log ratio of two batch medians beyond what the within-batch
  intervals explain. Compare widens every separate-batch interval by it; the widened false-positive rate
  is measured leave-one-batch-out (a pair is judged with a spread estimated without either batch).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from profiling.analysis.compare import CONFIDENCE, ratio
from profiling.store.noise import NoiseFloor

_Z = 1.959963984540054  # two-sided 95 %


@dataclass(frozen=True)
class PairCheck:
    first: int
    second: int
    log_ratio: float
    within_flagged: bool
    widened_flagged: bool


def between_sigma(pairs: Sequence[tuple[float, float]]) -> float:
    """From (log ratio, within-batch SE of it) per A/A pair: the extra SD the pairs show, 0 if none."""
    if not pairs:
        return 0.0
    d = np.array([p[0] for p in pairs])
    se = np.array([p[1] for p in pairs])
    return float(np.sqrt(max(0.0, float(np.mean(d**2) - np.mean(se**2)))))


def aa_checks(batches: Sequence[Sequence[float]], seed: int = 0) -> tuple[list[PairCheck], float]:
    """Every pair of batches compared: within-batch verdict, widened verdict (leave-one-out), and the spread."""
    if len(batches) < 3:
        raise ValueError("an A/A calibration needs at least 3 batches")
    index_pairs = list(itertools.combinations(range(len(batches)), 2))
    raw: dict[tuple[int, int], tuple[float, float, bool]] = {}
    for i, j in index_pairs:
        r = ratio("rtf", batches[i], batches[j], seed=seed)
        se = (np.log(r.ci_high) - np.log(r.ci_low)) / (2 * _Z)
        raw[(i, j)] = (float(np.log(r.ratio)), float(se), not (r.ci_low <= 1.0 <= r.ci_high))
    sigma = between_sigma([(d, se) for d, se, _ in raw.values()])
    checks = []
    for i, j in index_pairs:
        others = [(d, se) for (a, b), (d, se, _) in raw.items() if not {a, b} & {i, j}]
        held_out = between_sigma(others) if others else sigma
        widened = ratio("rtf", batches[i], batches[j], seed=seed, between_sigma=held_out)
        d, _, within = raw[(i, j)]
        checks.append(PairCheck(i, j, d, within, not (widened.ci_low <= 1.0 <= widened.ci_high)))
    return checks, sigma


def floor_from_batches(
    batches: Sequence[Sequence[float]], machine: str, engine: str, label: str, seed: int = 0,
) -> NoiseFloor:
    checks, sigma = aa_checks(batches, seed)
    return NoiseFloor(
        machine=machine, engine=engine, label=label, batches=len(batches),
        runs_per_batch=int(np.median([len(b) for b in batches])), between_sigma=sigma, pairs=len(checks),
        false_positive_within=float(np.mean([c.within_flagged for c in checks])),
        false_positive_widened=float(np.mean([c.widened_flagged for c in checks])),
        median_rtf=float(np.median([v for b in batches for v in b])),
        batch_medians=tuple(float(np.median(b)) for b in batches),
    )


__all__ = ["CONFIDENCE", "PairCheck", "aa_checks", "between_sigma", "floor_from_batches"]
