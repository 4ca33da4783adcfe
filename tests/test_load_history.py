"""Load tests are first-class: listed, reopened, compared (API, CLI, the dashboard), and cancelled per session.

Null-target tests (real loopback server, real HTTP, real SQLite): the candidate's server holds each connection
150 ms before answering, so its TTFA p95 is higher by construction and the comparison must call it.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from gradio_client import Client

from dashboard.messages import ERROR_PREFIX, OK_PREFIX
from dashboard.sessions import NOTHING_RUNNING
from engines.errors import InputError
from profiling import api
from profiling.loadgen.null_target import FaultSettings
from profiling.store.load import LoadStore
from profiling.store.results import ResultsStore
from tests.cli_in_process import run_main
from tests.conftest import REPO_ROOT
from tests.dashboard_server import DashboardServer

RATE = 20.0


def _null_test(store: ResultsStore, rates: tuple[float, ...] = (RATE,), delay_ms: float = 0.0) -> api.LoadRun:
    return api.load(null_target=True, rates=rates, duration_s=2.0, max_requests=40, warmup=0, store=store,
                    faults=FaultSettings(accept_delay_ms=delay_ms))


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> tuple[ResultsStore, str, str, str]:
    """A baseline, a slower candidate at the same load, and a test at another load."""
    store = ResultsStore(tmp_path_factory.mktemp("load-history"))
    fast = _null_test(store).result.test_id
    slow = _null_test(store, delay_ms=150.0).result.test_id
    other = _null_test(store, rates=(7.0,)).result.test_id
    return store, fast, slow, other


def test_load_tests_are_listed_newest_first_and_reopen(stored: tuple[ResultsStore, str, str, str]) -> None:
    store, fast, slow, other = stored
    listed = api.load_tests(store=store)
    assert list(listed["test_id"]) == [other, slow, fast]
    assert list(listed.columns) == api.LOAD_LIST_COLUMNS
    assert set(listed["engine"]) == {"null"} and set(listed["loads"]) >= {"20/s", "7/s"}
    test = api.load_test(fast, store=store)
    assert [m.label for m in test.metrics] == ["20/s"] and test.metrics[0].ok > 0
    assert test.slo.ttfa_ms == 800.0 and len(test.requests) == test.metrics[0].sent
    figures = test.figures()
    assert len(figures) == 4 and all(figure.data for figure in figures)
    with pytest.raises(InputError, match="no load test"):
        api.load_test("load-nosuch", store=store)


def test_a_slower_candidate_is_called_and_different_loads_are_not(
    stored: tuple[ResultsStore, str, str, str]
) -> None:
    store, fast, slow, other = stored
    comparison = api.compare_load(fast, slow, store=store)
    assert comparison.common_loads == ("20/s",)
    rows = {(r.metric, r.load): r for r in comparison.rows}
    ttfa = rows[("TTFA p95 (s)", "20/s")]
    assert ttfa.candidate > ttfa.baseline and ttfa.ci_low is not None and ttfa.ci_high is not None
    assert 1 < ttfa.ci_low <= ttfa.ci_high  # the whole interval says slower
    assert ttfa.verdict == "candidate slower"
    assert rows[("capacity", "req/s")].verdict.startswith("shown, not called")
    assert rows[("throughput (req/min)", "20/s")].verdict.startswith("shown, not called")
    assert "not A/A-calibrated" in comparison.describe() and "candidate slower" in comparison.describe()
    assert list(comparison.table().columns) == api.LOAD_COMPARE_COLUMNS
    apart = api.compare_load(fast, other, store=store)
    assert apart.common_loads == () and "not called — the tests ran at different loads" in apart.describe()
    assert [r.metric for r in apart.rows] == ["capacity"]


def test_cli_lists_and_compares_load_tests(stored: tuple[ResultsStore, str, str, str],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    store, fast, slow, _ = stored
    # The comparison through a real process (what the user types); the listing and the refusal through `main`.
    compared = subprocess.run([sys.executable, "-m", "profiling", "compare-load", fast, slow, "--data-dir",
                               str(store.data_dir)], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300)
    assert compared.returncode == 0, compared.stderr
    assert "TTFA p95" in compared.stdout and "candidate slower" in compared.stdout
    listed = run_main("compare-load", "--list", "--data-dir", str(store.data_dir), capsys=capsys)
    assert listed.returncode == 0 and fast in listed.stdout and slow in listed.stdout, listed.stderr
    refused = run_main("compare-load", fast, "load-nosuch", "--data-dir", str(store.data_dir), capsys=capsys)
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "no load test" in refused.stderr


# --- the dashboard ------------------------------------------------------------------------------------------------

STATUS, TRACE = 0, 7


def _dashboard_load(client: Client, rates: str = "20", duration: float = 1.0) -> tuple[object, ...]:
    return client.predict(kind="null target", engine="piper", workers=1, knobs="", url="", rates=rates, users="",
                          duration=duration, max_requests=30, slo_ms=800, text_set="short", api_name="/load_test")


def _trace_events(path: object) -> list[dict[str, object]]:
    data = json.loads(Path(str(path)).read_text(encoding="utf-8"))
    return data["traceEvents"]


def test_history_lists_reopens_and_compare_compares_load_tests(server: DashboardServer, client: Client) -> None:
    loads = LoadStore(ResultsStore(server.data_dir))
    earlier = set(loads.tests()["test_id"])  # the shared server's store holds other modules' load tests
    first, second = _dashboard_load(client), _dashboard_load(client)
    assert first[STATUS].startswith(OK_PREFIX) and second[STATUS].startswith(OK_PREFIX), first[STATUS]
    assert any(e.get("cat") == "client.request" for e in _trace_events(first[TRACE]))
    stored = list(loads.tests()["test_id"])
    table = client.predict(api_name="/history_load_tests")[0]
    assert [row[0] for row in table["data"]] == stored[::-1]  # every stored test, newest first
    ids = [test_id for test_id in stored if test_id not in earlier]  # this test's two, oldest first
    assert len(ids) == 2

    status, capacity, rates, latency, throughput, ttfa, timeline, trace = client.predict(
        ids[0], api_name="/open_load_test")
    assert status.startswith(OK_PREFIX) and ids[0] in status and "Capacity:" in capacity
    assert [row[0] for row in rates["data"]] == ["20/s"]
    assert all(plot is not None for plot in (latency, throughput, ttfa, timeline))
    assert _trace_events(trace)
    bad = client.predict("load-nosuch", api_name="/open_load_test")[0]
    assert bad.startswith(ERROR_PREFIX) and "no load test" in bad and "\n" not in bad

    said, compared = client.predict(ids[0], ids[1], api_name="/compare_load")
    assert "20/s" in said and "not A/A-calibrated" in said and compared["data"]
    assert {row[0] for row in compared["data"]} >= {"capacity", "TTFA p95 (s)", "C100 (share)"}
    assert client.predict(ids[0], None, api_name="/compare_load")[0] == "Pick two load tests."


def _wait_until_measuring(job: Any) -> None:
    """Until the test reports its first load's progress (a load is being measured)."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not job.done():
        if any(re.match(r"Running \d", str(output[0])) for output in job.outputs()):  # a load has a label
            return
        time.sleep(0.05)
    raise AssertionError("the load test never reported progress")


def test_only_the_session_that_started_a_load_test_can_cancel_it(server: DashboardServer) -> None:
    owner, other = Client(server.url, verbose=False), Client(server.url, verbose=False)
    loads = LoadStore(ResultsStore(server.data_dir))
    rates = "4,6,8"

    job = owner.submit(kind="null target", engine="piper", workers=1, knobs="", url="", rates=rates, users="",
                       duration=1.0, max_requests=30, slo_ms=800, text_set="short", api_name="/load_test")
    _wait_until_measuring(job)
    assert other.predict(api_name="/cancel_load") == NOTHING_RUNNING
    finished = job.result(timeout=300)
    assert finished[STATUS].startswith(OK_PREFIX) and "Cancelled" not in finished[STATUS], finished[STATUS]
    assert loads.tests()["rates"].iloc[-1] == 3  # another session's cancel cut nothing

    job = owner.submit(kind="null target", engine="piper", workers=1, knobs="", url="", rates=rates, users="",
                       duration=1.0, max_requests=30, slo_ms=800, text_set="short", api_name="/load_test")
    _wait_until_measuring(job)
    assert "Cancelling the load test" in owner.predict(api_name="/cancel_load")
    cut = job.result(timeout=300)
    stored = int(loads.tests()["rates"].iloc[-1])
    assert "Cancelled" in cut[STATUS] and "not run:" in cut[STATUS], cut[STATUS]
    assert 1 <= stored < 3 and f"{stored} load" in cut[STATUS]  # the load running finished and was stored
    assert owner.predict(api_name="/cancel_load") == NOTHING_RUNNING  # nothing left to cancel
