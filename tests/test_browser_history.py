"""Chromium on a fresh store: a load test then History lists it and reopens it, its trace downloads, and a
reload after a synthesis shows the new run (the page reads the store when it opens, not at server start)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from gradio_client import Client

from profiling.store.load import LoadStore
from profiling.store.results import ResultsStore
from tests.chromium import TIMEOUT_MS, screenshot
from tests.dashboard_server import DashboardServer, running_dashboard

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardServer]:
    # Its own server: the History tab must start empty and a load test alone must fill it (not the shared store).
    with running_dashboard(tmp_path_factory.mktemp("browser-history"), hidden_packages=("torch",)) as running:
        yield running


def test_a_load_test_shows_in_history_reopens_and_its_trace_downloads(
    server: DashboardServer, browser: object
) -> None:
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(server.url)
    page.get_by_role("tab", name="History").click()
    page.locator("#history-empty").wait_for(state="visible")  # a fresh store
    page.get_by_role("tab", name="Load").click()
    page.locator("#load-kind").get_by_label("null target").check()
    page.locator("#load-rates").get_by_role("textbox").fill("10")
    page.locator("#load-duration input").fill("1")
    page.locator("#load-run").click()
    page.locator("#load-status").get_by_text("Done:").wait_for(state="visible")
    with page.expect_download() as download:
        page.locator("#load-trace").click()
    events = json.loads(Path(download.value.path()).read_text(encoding="utf-8"))["traceEvents"]
    assert any(e["cat"] == "client.request" for e in events if e["ph"] != "M")

    (test_id,) = list(LoadStore(ResultsStore(server.data_dir)).tests()["test_id"])
    page.get_by_role("tab", name="History").click()
    row = page.locator("#history-load-list").get_by_text(test_id).last  # the cell's text
    row.wait_for(state="visible")  # the load test stored something: History read the store again
    assert page.locator("#history-empty").is_hidden()
    row.click()
    expect(page.locator("#history-load-pick input")).to_have_value(test_id)
    page.locator("#history-load-open").click()
    page.locator("#history-load-latency .js-plotly-plot").wait_for(state="visible")
    assert test_id in page.locator("#history-load-status").inner_text()
    assert "10/s" in page.locator("#history-load-table").inner_text()
    screenshot(page, "history-load-test.png")
    page.close()


def test_a_reload_after_a_synthesis_shows_the_new_run(server: DashboardServer, browser: object) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(server.url)
    page.get_by_role("tab", name="History").click()
    table = page.locator("#history-table")
    # Stored from another session (a script), after this page opened.
    settings = {"engine": "piper", "text": "Turn left here.", "repeats": 1, "warmup": 0,
                "knobs": {"deterministic": True}}
    result = Client(server.url, verbose=False).predict(json.dumps(settings), api_name="/synthesize_json")
    batch = result[8]["batch_id"]
    assert batch not in table.inner_text()
    page.reload()
    page.get_by_role("tab", name="History").click()
    page.locator("#history-table").get_by_text(batch).last.wait_for(state="visible")
    page.close()
