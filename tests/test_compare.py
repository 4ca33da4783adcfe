"""Statistics (synthetic numbers) and the regression gate on real Piper batches through the CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from gradio_client import Client

from engines.base import SynthesisSettings
from engines.errors import InputError
from profiling.analysis.compare import (
    NO_DIFFERENCE,
    bootstrap_ci,
    compare_runs,
    config_stats,
    gate,
    parse_threshold,
    per_config_table,
    ratio,
    select_runs,
)
from profiling.analysis.pareto import pareto_front
from profiling.run.runner import BenchRequest, EnginePool, run_bench
from profiling.store.results import ResultsStore
from tests.conftest import REPO_ROOT
from tests.dashboard_server import DashboardServer


def test_bootstrap_interval_brackets_the_median_and_narrows_with_more_data() -> None:
    rng = np.random.default_rng(1)
    small, large = rng.normal(1.0, 0.1, 10), rng.normal(1.0, 0.1, 400)
    low_s, high_s = bootstrap_ci(small)
    low_l, high_l = bootstrap_ci(large)
    assert low_s <= np.median(small) <= high_s
    assert low_l <= np.median(large) <= high_l
    assert high_l - low_l < high_s - low_s
    assert bootstrap_ci([2.0]) == (2.0, 2.0)
    stats = config_stats("rtf", list(small))
    assert stats.summary.n == 10 and stats.summary.p95 >= stats.summary.median
    assert stats.ci_low <= stats.median <= stats.ci_high


def test_identical_distributions_give_no_measurable_difference() -> None:
    rng = np.random.default_rng(7)
    a, b = rng.lognormal(0, 0.2, 30), rng.lognormal(0, 0.2, 30)
    result = ratio("rtf", list(a), list(b))
    assert result.ci_low <= 1.0 <= result.ci_high
    assert result.verdict == NO_DIFFERENCE
    assert gate([result], 0.05).passed


def test_a_real_difference_is_named_and_gated() -> None:
    rng = np.random.default_rng(3)
    base = rng.normal(1.0, 0.05, 20)
    slow = rng.normal(1.3, 0.05, 20)
    slower = ratio("rtf", list(base), list(slow))
    assert slower.ci_low > 1.2 and slower.verdict.startswith("candidate 1.3") and "slower" in slower.verdict
    assert slower.regressed(0.05) and not slower.regressed(0.5)
    faster = ratio("rtf", list(slow), list(base))
    assert "faster" in faster.verdict and not faster.regressed(0.0)
    assert not gate([slower, faster], 0.05).passed
    assert gate([slower, faster], 0.05).regressions == (slower,)


def test_threshold_parsing() -> None:
    assert parse_threshold("5%") == pytest.approx(0.05)
    assert parse_threshold("0.1") == pytest.approx(0.1)
    for bad in ("fast", "-5%", "nan"):
        with pytest.raises(InputError):
            parse_threshold(bad)


def test_per_config_table_and_pareto_front() -> None:
    runs = pd.DataFrame({
        "config_label": ["a"] * 5 + ["b"] * 5, "status": "ok", "warmup": [True] + [False] * 9,
        "rtf": [9.0, 1.0, 1.1, 0.9, 1.0, 2.0, 2.1, 1.9, 2.0, 2.2],
    })
    table = per_config_table(runs).set_index("config_label")
    assert table.loc["a", "n"] == 4  # the warm-up is left out
    assert table.loc["a", "median"] == pytest.approx(1.0)
    assert set(table.columns) >= {"median", "p95", "mean", "std", "ci_low", "ci_high"}
    points = pd.DataFrame({"rtf": [0.1, 0.2, 0.3, 0.15], "wer": [0.5, 0.3, 0.4, 0.6]})
    assert list(pareto_front(points, "rtf", "wer")) == [True, True, False, False]


def _piper_batches(store: ResultsStore) -> None:
    """Interleaved batches: the load of a shared CPU drifts over both equally.

    length_scale 4 makes the model generate four times as many frames for the SAME text:
    the synthesis and its model_inference stage genuinely take longer (RTF, per audio
    second, does not: that is why the gate looks at stages and latency too).
    """
    pool = EnginePool()
    text = "Take an umbrella if you plan to walk home."
    for index in range(3):
        for label, scale in (("base", 1.0), ("slow", 4.0)):
            settings = SynthesisSettings("piper", knobs={"deterministic": True, "length_scale": scale})
            request = BenchRequest(settings, text, repeats=2, warmup=1 if index == 0 else 0, label=label)
            run_bench(request, pool, store)


def _compare(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "profiling", "compare", "--data-dir", str(data_dir), *args],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )


@pytest.mark.alone  # the gate reads real timings
def test_regression_gate_on_real_piper_batches(isolated_data_dir: Path) -> None:
    store = ResultsStore(isolated_data_dir)
    _piper_batches(store)
    base, slow = select_runs(store, "base"), select_runs(store, "slow")
    assert len(base.runs) == len(slow.runs) == 7  # 6 measured + 1 warm-up each
    ratios = {r.metric: r for r in compare_runs(base.runs, slow.runs, store.stages_dataframe())}
    assert ratios["stage:model_inference"].ci_low > 1.05

    failed = _compare(isolated_data_dir, "--baseline", "base", "--candidate", "slow", "--max-regression", "5%")
    assert failed.returncode == 1, failed.stdout + failed.stderr
    assert "gate FAILED" in failed.stdout and "stage:model_inference" in failed.stdout
    assert "REGRESSION" in failed.stdout

    # the same slowdown under a threshold far above it passes
    lenient = _compare(isolated_data_dir, "--baseline", "base", "--candidate", "slow", "--max-regression", "1000%")
    assert lenient.returncode == 0, lenient.stdout
    assert "gate passed" in lenient.stdout

    # the other way round the candidate is faster: nothing is slower by 3x
    swapped = _compare(isolated_data_dir, "--baseline", "slow", "--candidate", "base", "--max-regression", "200%")
    assert swapped.returncode == 0, swapped.stdout
    assert "faster" in swapped.stdout

    # without a threshold it only reports; a batch id prefix selects a batch
    batch = base.runs["batch_id"].iloc[0]
    report = _compare(isolated_data_dir, "--baseline", batch[:10], "--candidate", "slow")
    assert report.returncode == 0 and "ratio" in report.stdout

    unknown = _compare(isolated_data_dir, "--baseline", "nothing-like-this", "--candidate", "slow")
    assert unknown.returncode == 2 and "no runs match" in unknown.stderr
    assert "Traceback" not in unknown.stderr


# --- the Sweeps and History tabs, through a real dashboard server -------------------------------------------
QUICK_SWEEP = """
name: ui-sweep
engines:
  - engine: piper
    knobs: {deterministic: true}
    grid: {length_scale: [1.0, 1.2]}
texts: {inline: [Turn left here.]}
repeats: 2
warmup: 0
reference: {length_scale: 1.0}
"""

LONG_SWEEP = """
name: ui-cancel
engines:
  - engine: piper
    knobs: {deterministic: true}
    grid: {length_scale: [1.0, 1.1, 1.2, 1.3]}
texts: medium
repeats: 10
warmup: 0
"""


def test_compare_and_history_tabs(server: DashboardServer, client: Client) -> None:
    """On the session's shared dashboard: the sweeps are this test's own; every count is of what it stored."""
    import time

    from profiling.store.sweeps import sweep_configs_dataframe, sweep_runs_dataframe

    status = client.predict(QUICK_SWEEP, api_name="/run_sweep")
    assert "Sweep finished" in status and "4/4 runs stored" in status, status
    again = client.predict(QUICK_SWEEP, api_name="/run_sweep")
    assert "4 from earlier attempts, 0 now" in again  # resumes: nothing runs twice

    view = client.predict("ui-sweep", False, api_name="/sweep_view")
    assert "4 measured runs over 2 configurations" in view[0]
    assert len(view[1]["data"]) == 2  # per-config table
    assert view[2]["data"] and "length_scale=1.2" in str(view[2]["data"])  # ratio vs reference
    assert all(figure is not None for figure in view[3:])  # box, length, ttfa, stages, pareto

    store = ResultsStore(server.data_dir)
    keys = dict(zip(*sweep_configs_dataframe(store, "ui-sweep")[["label", "config_key"]].T.values, strict=True))
    base = f"sweep:ui-sweep/{keys['piper fp32 length_scale=1.0']}"
    other = f"sweep:ui-sweep/{keys['piper fp32 length_scale=1.2']}"
    compared = client.predict(base, other, "1000%", api_name="/compare_groups")
    assert "gate passed" in compared[0] and compared[1]["data"]
    bad = client.predict("no-such-group", other, "5%", api_name="/compare_groups")
    assert bad[0].startswith("**Error:**") and "no runs match" in bad[0]

    # the shared store holds other modules' runs: the sweep's own four, exported by a filter on its name
    sweep_ids = set(sweep_runs_dataframe(store, "ui-sweep")["run_id"])
    for endpoint, suffix in (("/export_csv", ".csv"), ("/export_parquet", ".parquet")):
        path, message = client.predict("all", "all", "ui-sweep", api_name=endpoint)
        assert Path(path).suffix == suffix and "Exported" in message
        frame = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
        assert len(frame) == 4 and set(frame["run_id"]) == sweep_ids
    everything = pd.read_csv(client.predict("all", "all", "", api_name="/export_csv")[0])
    assert sweep_ids <= set(everything["run_id"]) <= set(store.runs_dataframe()["run_id"])

    # cancel lands while the sweep runs; what finished is kept
    before = store.count_runs()
    job = client.submit(LONG_SWEEP, api_name="/run_sweep")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and store.count_runs() < before + 2:
        time.sleep(0.1)
    assert "Cancelling" in client.predict(api_name="/cancel_sweep")
    cancelled = job.result(timeout=120)
    assert "Sweep cancelled" in cancelled, cancelled
    stored = store.count_runs() - before
    assert 2 <= stored < 120 and f"{stored}/120 runs stored" in cancelled  # 4 configs x 3 texts x 10
