"""Sweeps on a real local Ray instance: same keys as the local executor, killed workers and drivers, bad input.

Marked ``ray`` (``pytest -m ray``). One Ray instance (2 CPUs) serves the whole module: a Ray start costs 15-40 s
on a busy 2-core runner, so the killed driver (a real ``python -m profiling`` process) joins it by address rather
than starting its own. Grids are the smallest that still put two units on two workers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engines.errors import InputError
from profiling.core.records import RunRecord
from profiling.store.results import ResultsStore
from profiling.store.sweeps import completed_keys, sweep_runs_dataframe
from profiling.sweeps.execute import ExecutorChoice, SweepProgress, run_sweep
from profiling.sweeps.ray_executor import connect
from profiling.sweeps.spec import spec_from_mapping
from tests.conftest import REPO_ROOT
from tests.test_sweep import _assert_intact, _wait_for_runs

pytestmark = pytest.mark.ray
ray = pytest.importorskip("ray")

#: Two units (graph optimisation is a session option, so each value loads its own model), two repeats each.
GRID = {
    "name": "ray-grid",
    "engines": [{"engine": "piper", "knobs": {"deterministic": True},
                 "grid": {"graph_optimization": ["basic", "all"], "length_scale": [1.0]}}],
    "texts": {"inline": ["Turn left here."]},
    "repeats": 2,
    "warmup": 1,
}
GRID_RUNS = 4
RAY2 = ExecutorChoice("ray", workers=2)


@pytest.fixture(scope="module")
def local_ray() -> Iterator[str]:
    """The executor's own start of a local instance (what ``--executor ray`` does without an address); yields
    the address a separate driver process joins it by."""
    assert connect(RAY2), "no Ray may be running in the test process before this module"
    try:
        yield str(ray.get_runtime_context().gcs_address)
    finally:
        ray.shutdown()


def _measured_keys(store: ResultsStore) -> list[str]:
    runs = store.runs_dataframe()
    return [str(store.load_run(r).annotations["sweep_run_key"]) for r in runs.loc[~runs["warmup"], "run_id"]]


def test_ray_sweep_stores_the_same_keys_as_local_and_resumes_across_executors(local_ray: str,
                                                                               tmp_path: Path) -> None:
    local_store, ray_store = ResultsStore(tmp_path / "local"), ResultsStore(tmp_path / "ray")
    half = GRID_RUNS // 2
    assert run_sweep(spec_from_mapping(GRID), local_store).completed == GRID_RUNS
    # half on the local executor, the rest on Ray: only the missing repeats run there
    first = run_sweep(spec_from_mapping({**GRID, "repeats": 1}), ray_store)
    assert (first.ran, first.executor) == (half, "local")
    rest = run_sweep(spec_from_mapping(GRID), ray_store, executor=RAY2)
    assert (rest.already_done, rest.ran, rest.errors, rest.failure) == (half, half, 0, "")
    assert completed_keys(ray_store, "ray-grid") == completed_keys(local_store, "ray-grid")
    keys = _measured_keys(ray_store)
    assert len(keys) == len(set(keys)) == GRID_RUNS
    runs = sweep_runs_dataframe(ray_store, "ray-grid")
    on_ray = runs[runs["executor"] == "ray"]
    assert len(on_ray) == half and on_ray["worker"].str.len().gt(0).all() and on_ray["node"].str.len().gt(0).all()
    record = ray_store.load_run(str(on_ray["run_id"].iloc[0]))
    assert {"placement_node", "placement_worker", "placement_pid"} <= set(record.annotations)
    assert int(record.annotations["placement_pid"]) != os.getpid()  # it really ran in a Ray worker
    assert sum(rest.per_worker.values()) == half


def test_a_worker_killed_mid_unit_is_retried_without_duplicates(local_ray: str, tmp_path: Path) -> None:
    store = ResultsStore(tmp_path / "kill")
    spec = spec_from_mapping({**GRID, "name": "ray-kill",
                              "engines": [{**GRID["engines"][0], "grid": {"length_scale": [1.0, 1.2]}}]})
    killed: list[str] = []

    def kill_once(update: SweepProgress) -> None:
        record: RunRecord | None = update.record
        if record is not None and not killed:
            killed.append(str(record.annotations["placement_pid"]))
            os.kill(int(killed[0]), signal.SIGKILL)

    outcome = run_sweep(spec, store, progress=kill_once, executor=ExecutorChoice("ray", workers=1))
    assert killed and outcome.failure == "" and outcome.completed == outcome.total == 4
    keys = _measured_keys(store)
    assert len(keys) == len(set(keys)) == 4
    pids = {store.load_run(r).annotations["placement_pid"] for r in sweep_runs_dataframe(store, "ray-kill")["run_id"]}
    assert killed[0] in pids and len(pids) == 2  # the rest ran on the replacement worker
    _assert_intact(store.db_path)


def test_unsatisfiable_resources_are_refused_and_nothing_stored_is_lost(local_ray: str, tmp_path: Path) -> None:
    store = ResultsStore(tmp_path / "res")
    run_sweep(spec_from_mapping({**GRID, "repeats": 1}), store)
    before = completed_keys(store, "ray-grid")
    with pytest.raises(InputError, match="no Ray node can give .* CPU 64"):
        run_sweep(spec_from_mapping(GRID), store, executor=ExecutorChoice("ray", cpus_per_worker=64))
    assert completed_keys(store, "ray-grid") == before and len(before) == GRID_RUNS // 2


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(REPO_ROOT), "GRADIO_ANALYTICS_ENABLED": "False"}


def _cli(*args: str, prelude: str = "") -> subprocess.CompletedProcess[str]:
    code = f"{prelude}import sys; from profiling.cli.main import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *args], cwd=REPO_ROOT, env=_env(), capture_output=True,
                          text=True, timeout=180)


def test_a_driver_killed_mid_sweep_resumes_with_nothing_lost_or_doubled(local_ray: str, tmp_path: Path) -> None:
    import yaml

    # One unit, 8 runs: the driver is killed after 2 are stored, well before it could finish.
    spec = {"name": "driver", "engines": [{"engine": "piper", "knobs": {"deterministic": True},
                                           "grid": {"length_scale": [1.0, 1.1]}}],
            "texts": {"inline": ["Turn left here."]}, "repeats": 4}
    spec_file = tmp_path / "driver.yaml"
    spec_file.write_text(yaml.safe_dump(spec))
    data_dir = tmp_path / "data"
    # A real driver process on this module's Ray (joined by host:port), as a driver on a cluster would be.
    process = subprocess.Popen(
        [sys.executable, "-m", "profiling", "sweep", str(spec_file), "--data-dir", str(data_dir), "--no-progress",
         "--executor", "ray", "--address", local_ray], cwd=REPO_ROOT, env=_env(), stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _wait_for_runs(data_dir / "runs.sqlite", at_least=2, process=process, limit_s=240)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    store = ResultsStore(data_dir)
    before = completed_keys(store, "driver")
    assert 2 <= len(before) < 8
    _assert_intact(store.db_path)
    outcome = run_sweep(spec_from_mapping(spec), store, executor=ExecutorChoice("ray"))
    assert outcome.already_done == len(before) and outcome.completed == 8
    keys = _measured_keys(store)
    assert len(keys) == len(set(keys)) == 8 and before <= completed_keys(store, "driver")


@pytest.mark.parametrize(("address", "message"), [
    ("127.0.0.1:1", "cannot reach the Ray cluster at 127.0.0.1:1"),
    ("ray://127.0.0.1:1", "cannot reach the Ray cluster"),
    ("not an address", "must be auto, ray://host:port or host:port"),
])
def test_bad_addresses_are_one_line_exit_2(tmp_path: Path, address: str, message: str) -> None:
    spec = REPO_ROOT / "sweeps" / "piper_quick.yaml"
    started = time.monotonic()
    result = _cli("sweep", str(spec), "--executor", "ray", "--address", address, "--data-dir", str(tmp_path))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and time.monotonic() - started < 120


def test_ray_missing_is_listed_unavailable_with_its_install_hint(tmp_path: Path) -> None:
    hide = "import sys; sys.modules['ray'] = None; "
    listed = _cli("sweep", "--executors", prelude=hide)
    assert listed.returncode == 0 and "ttsperf[cluster]" in listed.stdout
    refused = _cli("sweep", str(REPO_ROOT / "sweeps" / "piper_quick.yaml"), "--executor", "ray", "--data-dir",
                   str(tmp_path), prelude=hide)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "pip install" in refused.stderr
    assert not (tmp_path / "runs.sqlite").exists() or ResultsStore(tmp_path).count_runs() == 0


def test_sweeps_tab_runs_a_sweep_on_ray_and_shows_runs_per_worker(local_ray: str, tmp_path: Path) -> None:
    import threading

    import yaml

    from dashboard.context import DashboardContext
    from dashboard.sweeps_tab import executor_choices, run_sweep_text, sweep_view

    assert ("local", "local") in executor_choices() and ("ray", "ray") in executor_choices()
    ctx = DashboardContext(ResultsStore(tmp_path / "tab"))
    text = yaml.safe_dump({**GRID, "name": "tab-ray", "reference": {"graph_optimization": "all", "length_scale": 1.0}})
    status = run_sweep_text(ctx, text, threading.Event(), executor="ray", workers=2)
    assert "Sweep finished" in status and f"{GRID_RUNS}/{GRID_RUNS} runs stored" in status, status
    assert "Runs per worker (ray)" in status, status
    view = sweep_view(ctx, "tab-ray")
    assert "Runs per worker: ray" in view[0]
