"""How the two sides were run decides the interval: paired A/B on real Piper, A/A noise floors, separate batches."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engines.base import SynthesisSettings
from profiling.analysis.compare import (
    NO_DIFFERENCE,
    UNCALIBRATED,
    Arrangement,
    arrangement,
    compare_selections,
    ratio,
    select_runs,
)
from profiling.analysis.noise import aa_checks
from profiling.run.ab import AbRequest, run_ab
from profiling.run.calibrate import calibrate
from profiling.run.runner import BenchRequest, EnginePool, run_bench
from profiling.store.results import ResultsStore
from tests.conftest import REPO_ROOT

TEXT = "Turn left here."


def _piper(**knobs: object) -> SynthesisSettings:
    return SynthesisSettings("piper", knobs={"deterministic": True, **knobs})


@pytest.mark.alone  # A/A and a 2x slowdown, in timings
def test_ab_of_identical_settings_covers_one_and_detects_a_real_difference(isolated_data_dir: Path) -> None:
    store = ResultsStore(isolated_data_dir)
    # 12 pairs: 6 couples of adjacent pairs, the fewest whose signed-rank interval reaches 95 % (97 % at 6)
    same = run_ab(AbRequest(_piper(), _piper(), TEXT, pairs=12, name="aa"), store)
    assert same.order == "ABBA" * 6 and same.both_loaded and same.loads == 1
    for r in same.ratios:
        assert r.ci_low <= 1.0 <= r.ci_high, r  # A/A: no difference may be named
        assert r.verdict == NO_DIFFERENCE
    longer = "Take an umbrella if you plan to walk home."
    slow = run_ab(AbRequest(_piper(length_scale=1.0), _piper(length_scale=2.0), longer, pairs=5, name="ls"), store)
    synth = next(r for r in slow.ratios if r.metric == "synth_s")
    assert synth.ci_low > 1.05 and "slower" in synth.verdict  # twice the frames to generate
    # stored as a pair: compare recognises the session and uses the per-pair interval
    a, b = select_runs(store, "ls:A"), select_runs(store, "ls:B")
    assert arrangement(a.runs, b.runs) is Arrangement.PAIRED
    comparison = compare_selections(store, a.runs, b.runs)
    assert "paired" in comparison.describe()
    assert next(r for r in comparison.ratios if r.metric == "synth_s").ci_low > 1.05


def test_ab_cli_prints_pairs_and_order(isolated_data_dir: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    result = subprocess.run(
        [sys.executable, "-m", "profiling", "ab", "--knob", "deterministic=true", "--a", "length_scale=1.0",
         "--b", "length_scale=2.0", "--pairs", "3", "--text", TEXT, "--name", "cli", "--no-progress",
         "--data-dir", str(isolated_data_dir)], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "order: ABBAAB" in result.stdout and "B/A (pairs)" in result.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "profiling", "ab", "--b", "length_scale=99", "--data-dir", str(isolated_data_dir)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr


def _frame(times: list[int], batch: str) -> pd.DataFrame:
    return pd.DataFrame({"created_at": [f"2026-11-30T00:00:{t:02d}" for t in times], "batch_id": batch,
                         "repeat_index": range(len(times)), "status": "ok", "warmup": False, "rtf": 1.0})


def test_arrangement_is_read_from_batches_and_start_times() -> None:
    assert arrangement(_frame([0, 2, 4, 6], "a"), _frame([1, 3, 5, 7], "b")) is Arrangement.INTERLEAVED
    assert arrangement(_frame([0, 1, 2, 3], "a"), _frame([4, 5, 6, 7], "b")) is Arrangement.SEPARATE
    assert arrangement(_frame([0, 2], "s"), _frame([1, 3], "s")) is Arrangement.PAIRED


def test_aa_checks_see_between_batch_drift_that_resampling_misses() -> None:
    rng = np.random.default_rng(5)
    # twelve batches whose level moves by ~6 % from batch to batch, 2 % noise inside each
    batches = [list(np.exp(rng.normal(0, 0.06)) * rng.normal(1.0, 0.02, 5)) for _ in range(12)]
    checks, sigma = aa_checks(batches)
    within = np.mean([c.within_flagged for c in checks])
    widened = np.mean([c.widened_flagged for c in checks])
    assert sigma > 0.03 and within > 0.3 and widened < within and widened <= 0.15
    # widening only ever makes an interval wider
    plain, wide = ratio("rtf", batches[0], batches[1]), ratio("rtf", batches[0], batches[1], between_sigma=sigma)
    assert wide.ci_high - wide.ci_low > plain.ci_high - plain.ci_low and wide.detectable > plain.detectable


def test_separate_batches_refuse_until_calibrated_then_widen(isolated_data_dir: Path) -> None:
    store = ResultsStore(isolated_data_dir)
    pool = EnginePool()
    for label in ("first", "second"):
        run_bench(BenchRequest(_piper(), TEXT, repeats=3, warmup=1, label=label), pool, store)
    a, b = select_runs(store, "first"), select_runs(store, "second")
    before = compare_selections(store, a.runs, b.runs)
    assert before.arrangement is Arrangement.SEPARATE and before.floor is None
    assert all(r.refused == UNCALIBRATED for r in before.ratios) and "not named" in before.describe()
    assert all(r.verdict in (NO_DIFFERENCE,) or r.verdict.startswith("not called") for r in before.ratios)
    floor = calibrate(_piper(), TEXT, store, batches=4, repeats=3, warmup=1, pool=pool)
    assert floor.batches == 4 and floor.pairs == 6 and floor.between_sigma >= 0
    assert 0 <= floor.false_positive_widened <= floor.false_positive_within <= 1
    after = compare_selections(store, a.runs, b.runs)
    assert after.floor is not None and after.floor.machine == floor.machine
    assert "separate batches: interval widened" in after.describe() and "A/A false-positive rate" in after.noise_line()
    rtf_before = next(r for r in before.ratios if r.metric == "rtf")
    rtf_after = next(r for r in after.ratios if r.metric == "rtf")
    assert rtf_after.ci_high - rtf_after.ci_low >= rtf_before.ci_high - rtf_before.ci_low - 1e-12
    assert not rtf_after.refused
