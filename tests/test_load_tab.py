"""The Load tab through gradio_client on the real dashboard: a load test on the null target, stored and drawn."""

from __future__ import annotations

from typing import Any

import pandas as pd
from gradio_client import Client

from dashboard.messages import ERROR_PREFIX, OK_PREFIX
from profiling.store.load import LoadStore
from profiling.store.results import ResultsStore
from tests.dashboard_server import DashboardServer

STATUS, TABLE, LATENCY, THROUGHPUT, TTFA, TIMELINE = range(6)


def load_test(client: Client, **changes: Any) -> tuple[Any, ...]:
    values = {"kind": "null target", "engine": "piper", "workers": 1, "knobs": "", "url": "", "rates": "5,10",
              "users": "", "duration": 0.8, "max_requests": 50, "slo_ms": 800, "text_set": "short", **changes}
    return client.predict(*values.values(), api_name="/load_test")


def test_load_tab_runs_stores_and_draws_a_test(server: DashboardServer, client: Client) -> None:
    loads = LoadStore(ResultsStore(server.data_dir))
    before = len(loads.tests())  # the shared server's store holds other modules' load tests
    result = load_test(client)
    assert result[STATUS].startswith(OK_PREFIX) and "capacity" in result[STATUS], result[STATUS]
    table = result[TABLE]
    assert [row[0] for row in table["data"]] == ["5/s", "10/s"]
    assert all(row[2] > 0 for row in table["data"])  # requests completed at every load
    for index in (LATENCY, THROUGHPUT, TTFA, TIMELINE):
        assert result[index] is not None and "plot" in str(result[index])
    tests = loads.tests()
    assert len(tests) == before + 1 and tests["rates"].iloc[-1] == 2  # the newest: this one, at two loads


def test_load_tab_bad_input_is_one_visible_line(server: DashboardServer, client: Client) -> None:
    for changes, reason in [({"rates": "0"}, "each rate must be in"), ({"kind": "URL", "url": ""}, "enter the URL"),
                            ({"kind": "URL", "url": "http://127.0.0.1:9"}, "cannot reach"),
                            ({"duration": 5000}, "duration must be in")]:
        status = load_test(client, **changes)[STATUS]
        assert status.startswith(ERROR_PREFIX) and reason in status and "\n" not in status, status


CAPACITY = 6


def test_load_tab_finds_capacity_and_shows_the_search(server: DashboardServer, client: Client) -> None:
    loads = LoadStore(ResultsStore(server.data_dir))
    searched = int(loads.tests()["capacity"].notna().sum())
    result = client.predict(kind="null target", engine="piper", workers=1, knobs="", url="", rates="20", users="",
                            duration=0.3, max_requests=50, slo_ms=800, text_set="short", find_capacity=True,
                            min_requests=8, max_steps=2, api_name="/load_test")
    assert result[STATUS].startswith(OK_PREFIX) and "capacity" in result[STATUS], result[STATUS]
    assert "last met" in result[CAPACITY] and result[CAPACITY].count("| met") >= 1, result[CAPACITY]
    header = result[TABLE]["headers"]
    assert {"C100 %", "TTFA tb p95 ms", "gap p99 ms", "503", "good % admitted"} <= set(header)
    stored = loads.tests()
    assert stored["capacity"].notna().sum() == searched + 1 and pd.notna(stored["capacity"].iloc[-1])


def test_load_tab_refuses_bad_serving_settings_visibly(server: DashboardServer, client: Client) -> None:
    base = {"kind": "lab engine", "engine": "piper", "workers": 1, "knobs": "", "url": "", "rates": "1",
            "users": "", "duration": 1, "max_requests": 5, "slo_ms": 800, "text_set": "short"}
    for changes, reason in [({"policy": "lifo"}, "unknown policy"), ({"voice": " "}, "enter a voice name"),
                            ({"first_chunk_chars": 0}, "first chunk chars"),
                            ({"find_capacity": True, "min_requests": 0}, "min requests"),
                            ({"slo_c100": 2}, "C100")]:
        status = client.predict(**{**base, **changes}, api_name="/load_test")[STATUS]
        assert status.startswith(ERROR_PREFIX) and reason in status and "\n" not in status, status


def test_each_engine_gets_only_its_own_changed_knobs() -> None:
    from dashboard.controls import knobs_from_named
    from dashboard.load_tab import changed_knobs, streaming_views

    views = {v.name: v for v in streaming_views()}
    named = {"piper__deterministic": True, "piper__length_scale": 1.0, "piper__intra_op_threads": 1.0}
    piper = views["piper"].capabilities.knobs
    assert changed_knobs(piper, knobs_from_named("piper", named)) == {"deterministic": "true", "intra_op_threads": "1"}
    for name, view in views.items():
        if name != "piper":  # Piper's knobs never reach another engine
            assert changed_knobs(view.capabilities.knobs, knobs_from_named(name, named)) == {}
