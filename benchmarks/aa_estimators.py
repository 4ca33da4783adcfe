"""Judge interval estimators offline on stored A/A sessions of ``ab`` (``comparison_sensitivity.py --keep-store``).

For each estimator: how many sessions it called different, its median and 90th-percentile half-width, and the
calibration of its centres (their SD over sessions against the SD its intervals imply). Then what explains a
miscalibration: the correlation of each pair's log ratio with the next pair's in the same session (lag 1..3),
and a resampling check that takes couples of adjacent pairs as the independent unit (couples drawn from all
sessions, each flipped A<->B at random, as an A/A allows): the false-call rate each estimator would have if the
couples were all that carried the noise.

    python benchmarks/aa_estimators.py STORE_DIR [--resamples 8000] [--out page.md]
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from profiling.analysis.ab_summary import paired_runs  # noqa: E402
from profiling.analysis.paired import PAIRS_PER_UNIT, hodges_lehmann, pair_units, t975, unit_means  # noqa: E402
from profiling.store.results import ResultsStore  # noqa: E402

#: (centre, low, high) in log ratio from one session's per-pair log ratios.
Estimator = Callable[[np.ndarray], tuple[float, float, float]]
Z95 = 1.959963984540054


def _couples(d: np.ndarray) -> np.ndarray:
    return unit_means(d, np.asarray(pair_units(range(d.size))))


def _student(values: np.ndarray) -> tuple[float, float, float]:
    half = t975(values.size - 1) * float(values.std(ddof=1)) / math.sqrt(values.size)
    return float(values.mean()), float(values.mean() - half), float(values.mean() + half)


ESTIMATORS: dict[str, Estimator] = {
    "signed rank over pairs (ab before)": lambda d: hodges_lehmann(d),
    "signed rank over couples of adjacent pairs (ab now)": lambda d: hodges_lehmann(_couples(d)),
    "Student t over pairs": _student,
    "Student t over couples": lambda d: _student(_couples(d)),
}


@dataclass(frozen=True)
class Judged:
    name: str
    sessions: int
    called: int
    median_half: float
    p90_half: float
    centre_sd: float
    implied_sd: float


def sessions_of(store: ResultsStore, metric: str = "synth_s", min_pairs: int = 6) -> list[np.ndarray]:
    """Per-pair log ratios (B over A, pair order) of every stored A/A session (both sides' settings equal) with
    at least ``min_pairs`` pairs; sessions of planted changes are left out."""
    out = []
    for batch in dict.fromkeys(store.runs_dataframe()["batch_id"]):
        records = store.load_batch(str(batch))
        settings = {str(r.annotations.get("ab_side")): r.settings for r in records}
        pairs = paired_runs(records, metric)
        if settings.get("A") == settings.get("B") and len(pairs.baseline) >= min_pairs:
            out.append(np.log(pairs.candidate) - np.log(pairs.baseline))
    return out


def judge(name: str, estimator: Estimator, sessions: Sequence[np.ndarray]) -> Judged:
    results = np.array([estimator(d) for d in sessions])
    centre, low, high = results[:, 0], results[:, 1], results[:, 2]
    half = (high - low) / 2
    return Judged(name, len(sessions), int(np.sum((low > 0) | (high < 0))), float(np.median(half)),
                  float(np.percentile(half, 90)), float(centre.std(ddof=1)), float(np.median(half) / Z95))


def lag_correlation(sessions: Sequence[np.ndarray], lag: int) -> float:
    """Pooled correlation of a pair's log ratio with the one ``lag`` pairs later (each session centred)."""
    first, second = [], []
    for d in sessions:
        x = d - d.mean()
        first.extend(x[:-lag])
        second.extend(x[lag:])
    return float(np.corrcoef(first, second)[0, 1])


def resampled_rate(sessions: Sequence[np.ndarray], estimator: Estimator, pairs: int, resamples: int,
                   seed: int = 0) -> float:
    """False-call rate on sessions built from couples drawn at random from all sessions, each flipped at random."""
    couples = np.array([d[i:i + PAIRS_PER_UNIT] for d in sessions for i in range(0, d.size - 1, PAIRS_PER_UNIT)])
    rng = np.random.default_rng(seed)
    calls = 0
    for _ in range(resamples):
        drawn = couples[rng.integers(0, len(couples), pairs // PAIRS_PER_UNIT)]
        drawn = drawn if rng.random() < 0.5 else -drawn
        _, low, high = estimator(drawn.reshape(-1))
        calls += low > 0 or high < 0
    return calls / resamples


def page(store_dir: Path, resamples: int) -> str:
    sessions = sessions_of(ResultsStore(store_dir))
    if not sessions:
        raise SystemExit(f"error: no ab session with 6 or more pairs in {store_dir}")
    pairs = int(np.median([d.size for d in sessions]))
    lines = [f"Store: `{store_dir}`: {len(sessions)} A/A sessions, median {pairs} pairs; metric synthesis time.", "",
             "| estimator | A/A called different | median half-width | p90 half-width | centres' SD / implied SD | "
             f"resampled couples: A/A calls ({resamples} sessions of {pairs} pairs) |",
             "|---|--:|--:|--:|--:|--:|"]
    for name, estimator in ESTIMATORS.items():
        j = judge(name, estimator, sessions)
        rate = resampled_rate(sessions, estimator, pairs, resamples)
        lines.append(f"| {name} | {j.called} of {j.sessions} | ±{math.expm1(j.median_half):.2%} | "
                     f"±{math.expm1(j.p90_half):.2%} | {j.centre_sd:.2%} / {j.implied_sd:.2%} = "
                     f"{j.centre_sd / j.implied_sd:.2f} | {rate:.1%} |")
    lags = ", ".join(f"lag {k}: {lag_correlation(sessions, k):+.3f}" for k in (1, 2, 3))
    couples = [_couples(d) for d in sessions]
    lines += ["", f"Correlation of a pair's log ratio with a later pair's in the same session: {lags} "
              f"(each about -1/{pairs - 1} from centring alone). Between consecutive couples: "
              f"{lag_correlation(couples, 1):+.3f}."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("store", type=Path)
    parser.add_argument("--resamples", type=int, default=8000)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    if not (args.store / "runs.sqlite").exists():
        parser.exit(2, f"error: no results store at {args.store}\n")
    text = page(args.store, args.resamples)
    if args.out:
        args.out.write_text(text)
    print(text, end="")


if __name__ == "__main__":
    main()
