"""The Load tab through gradio_client on the real dashboard: a load test on the null target, stored and drawn."""

from __future__ import annotations

from typing import Any

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
    result = load_test(client)
    assert result[STATUS].startswith(OK_PREFIX) and "capacity" in result[STATUS], result[STATUS]
    table = result[TABLE]
    assert [row[0] for row in table["data"]] == ["5/s", "10/s"]
    assert all(row[2] > 0 for row in table["data"])  # requests completed at every load
    for index in (LATENCY, THROUGHPUT, TTFA, TIMELINE):
        assert result[index] is not None and "plot" in str(result[index])
    tests = LoadStore(ResultsStore(server.data_dir)).tests()
    assert len(tests) == 1 and tests["rates"].iloc[0] == 2


def test_load_tab_bad_input_is_one_visible_line(server: DashboardServer, client: Client) -> None:
    for changes, reason in [({"rates": "0"}, "each rate must be in"), ({"kind": "URL", "url": ""}, "enter the URL"),
                            ({"kind": "URL", "url": "http://127.0.0.1:9"}, "cannot reach"),
                            ({"duration": 5000}, "duration must be in")]:
        status = load_test(client, **changes)[STATUS]
        assert status.startswith(ERROR_PREFIX) and reason in status and "\n" not in status, status
