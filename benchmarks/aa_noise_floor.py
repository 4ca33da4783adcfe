"""A/A on Piper: how often does compare call two runs of the SAME settings different?

Before: separate batches judged with the within-batch bootstrap interval (compare as it was).
After:  the same pairs with the interval widened by the batch-to-batch spread (leave-one-batch-out),
        and A/A sessions of the `ab` command (same settings on both sides, paired interval).

    python benchmarks/aa_noise_floor.py --batches 12 --repeats 5 --sessions 10 --pairs 6 \
        --out docs/benchmarks/piper-aa-noise-floor.md
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engines.base import SynthesisSettings  # noqa: E402
from profiling.core.environment import capture_environment  # noqa: E402
from profiling.run.ab import AbRequest, run_ab  # noqa: E402
from profiling.run.calibrate import calibrate  # noqa: E402
from profiling.store.results import ResultsStore  # noqa: E402

TEXT = "The quick brown fox jumps over the lazy dog."


def loadavg() -> str:
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--pairs", type=int, default=6)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    settings = SynthesisSettings("piper", knobs={"deterministic": True})
    load_before, started = loadavg(), time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        store = ResultsStore(tmp)
        floor = calibrate(settings, TEXT, store, args.batches, args.repeats, warmup=1)
        sessions = [run_ab(AbRequest(settings, settings, TEXT, pairs=args.pairs), store) for _ in range(args.sessions)]
    wall = time.monotonic() - started
    load_after = loadavg()
    rtf = [next(r for r in s.ratios if r.metric == "rtf") for s in sessions]
    flagged = [not (r.ci_low <= 1.0 <= r.ci_high) for r in rtf]
    env = capture_environment()
    lines = [
        f"# A/A noise floor for Piper on this machine ({datetime.now(timezone.utc):%Y-%m-%d})",
        "",
        f"Command: `python benchmarks/aa_noise_floor.py --batches {args.batches} --repeats {args.repeats} "
        f"--sessions {args.sessions} --pairs {args.pairs}` under the exclusive CPU lock ({wall:.0f} s).",
        f"Device: {env.cpu_model}, {env.logical_cores} logical cores, {env.memory_gib} GiB; Python {env.python}; "
        f"onnxruntime {env.packages.get('onnxruntime', '?')}, piper-tts {env.packages.get('piper-tts', '?')}; "
        f"commit {env.git_commit}. Load average (1/5/15 min) before {load_before}, after {load_after}.",
        f"Settings: piper fp32, deterministic, text \"{TEXT}\"; median RTF {floor.median_rtf:.4f}.",
        "",
        f"## Separate batches: {floor.batches} batches x {floor.runs_per_batch} runs (1 warm-up, model reloaded "
        f"per batch), all {floor.pairs} pairs compared",
        "",
        "| interval | A/A pairs flagged \"different\" at 95 % |",
        "|---|--:|",
        f"| before: within-batch bootstrap (compare as it was) | {floor.false_positive_within:.0%} |",
        f"| after: widened by the batch-to-batch spread (leave-one-batch-out) | {floor.false_positive_widened:.0%} |",
        "",
        f"Batch medians (RTF, in run order): {', '.join(f'{m:.4f}' for m in floor.batch_medians)}.",
        f"Batch-to-batch spread beyond within-batch noise: ±{floor.between_pct:.1f}% (one SD of a batch median).",
        "",
        f"## A/B sessions with identical sides (`ab`, {args.pairs} pairs each, paired interval)",
        "",
        f"{sum(flagged)} of {len(flagged)} sessions flagged a difference in RTF at 95 %.",
        "",
        "| session | B/A (median of pairs) | 95% CI | smallest detectable |",
        "|--:|--:|--:|--:|",
        *[f"| {i + 1} | {r.ratio:.3f} | {r.ci_low:.3f}-{r.ci_high:.3f} | ±{r.detectable:.1%} |"
          for i, r in enumerate(rtf)],
        "",
    ]
    args.out.write_text("\n".join(lines), encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
