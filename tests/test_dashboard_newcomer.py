"""The dashboard as a newcomer first sees it: an empty store offers the next step, one click runs it."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
from gradio_client import Client

from profiling.store.results import ResultsStore
from profiling.store.sweeps import list_sweeps, sweep_runs_dataframe
from tests.chromium import TIMEOUT_MS, screenshot
from tests.dashboard_server import DashboardServer, running_dashboard

PLACEHOLDER_HEADERS = ["1", "2", "3"]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardServer]:
    # Its own server: a newcomer's store is empty (the shared ones hold other modules' runs).
    with running_dashboard(tmp_path_factory.mktemp("newcomer"), hidden_packages=("torch",)) as running:
        yield running


def _config(server: DashboardServer) -> dict[str, Any]:
    with urllib.request.urlopen(f"{server.url}config", timeout=30) as response:
        return json.loads(response.read())


def _components(server: DashboardServer) -> dict[str, dict[str, Any]]:
    return {c["props"].get("elem_id") or f"#{c['id']}": c for c in _config(server)["components"]}


def _shown_ids(config: dict[str, Any]) -> set[int]:
    """Components a fresh page shows: neither they nor any block around them is hidden (tabs aside)."""
    hidden = {c["id"] for c in config["components"] if c["props"].get("visible") is False}
    shown: set[int] = set()

    def walk(node: dict[str, Any]) -> None:
        if node["id"] in hidden:
            return
        shown.add(node["id"])
        for child in node.get("children", []):
            walk(child)

    walk(config["layout"])
    return shown


def test_fresh_start_shows_the_next_step_not_placeholder_tables(server: DashboardServer) -> None:
    components = _components(server)
    for tab in ("compare", "history"):
        assert components[f"{tab}-empty"]["props"]["visible"] is True
        assert components[f"{tab}-results"]["props"]["visible"] is False
        assert components[f"{tab}-example-sweep"]["props"]["value"] == "Run the example sweep on Piper"
    config = _config(server)
    shown = _shown_ids(config)
    placeholder = [c["props"].get("label") for c in config["components"] if c.get("type") == "dataframe"
                   and c["id"] in shown and (c["props"].get("value") or {}).get("headers") == PLACEHOLDER_HEADERS]
    assert not placeholder, f"tables headed 1 2 3: {placeholder}"


def test_one_click_example_sweep_fills_compare_and_history(server: DashboardServer) -> None:
    client = Client(server.url, verbose=False)
    result = client.predict(api_name="/example_sweep")
    status = result[0] if isinstance(result, (list, tuple)) else result
    assert status.startswith("**Example sweep finished:**") and "(0 errors)" in status, status
    store = ResultsStore(server.data_dir)
    (name,) = list(list_sweeps(store)["name"])
    runs = sweep_runs_dataframe(store, name)
    assert runs["config_key"].nunique() == 4 and (runs["status"] == "ok").all()

    view = client.predict(name, api_name="/sweep_view")
    assert f"**{name}**" in view[0] and view[3] is not None  # status line and the RTF box plot
    # History on the same store: the sweep's configurations are run groups; a second click resumes (no new runs).
    before = store.count_runs()
    again = client.predict("all", "all", "", api_name="/history_example_sweep")
    assert "Example sweep finished" in again[0] and store.count_runs() == before
    selectors = [row[0] for row in again[1]["data"]]
    assert sum(s.startswith(f"sweep:{name}/") for s in selectors) == 4


@pytest.fixture()
def fresh_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardServer]:
    # A second empty store: the module's server holds the example sweep once the API test has run it.
    with running_dashboard(tmp_path_factory.mktemp("newcomer-browser"), hidden_packages=("torch",)) as running:
        yield running


@pytest.mark.browser
def test_a_newcomer_clicks_the_example_sweep_and_sees_results(
    fresh_server: DashboardServer, browser: object
) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    page.set_default_timeout(TIMEOUT_MS * 2)
    page.goto(fresh_server.url)
    page.get_by_role("tab", name="Sweeps").click()
    button = page.locator("#compare-example-sweep")
    button.wait_for(state="visible")
    assert page.locator("#compare-results").is_hidden()
    screenshot(page, "newcomer-compare-empty.png")
    button.click()
    page.locator("#compare-box-plot .js-plotly-plot").wait_for(state="visible")
    assert page.locator("#compare-empty").is_hidden()
    assert "graph_optimization" in page.locator("#compare-config-table").inner_text()
    screenshot(page, "newcomer-compare-after.png")
    page.close()
