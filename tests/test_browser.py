"""A real Chromium (Debian's, through Playwright) clicks Synthesize and sees the results.

The session's browser and its dashboard with F5 hidden (shared with test_dashboard: a test counts only its own
runs). Never runs ``playwright install``: see tests/chromium.py.
"""

from __future__ import annotations

import re

import pytest

from engines.registry import list_engines
from profiling.store.results import ResultsStore
from tests.chromium import TIMEOUT_MS, screenshot
from tests.dashboard_server import LIMITED_NO_F5, DashboardServer, DashboardServers

pytestmark = pytest.mark.browser

HIDDEN = LIMITED_NO_F5.hidden_packages


@pytest.fixture(scope="module")
def server(dashboards: DashboardServers) -> DashboardServer:
    return dashboards.get(LIMITED_NO_F5)


def test_click_synthesize_shows_plot_audio_and_stores_runs(server: DashboardServer, browser: object) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(server.url)
    page.locator("#synth-run").wait_for(state="visible")
    before = ResultsStore(server.data_dir).count_runs()
    # Two measured runs (so p95 differs from the median) and one warm-up: short on a busy CPU.
    page.locator("#synth-repeats input").fill("2")
    page.locator("#synth-warmup input").fill("1")
    page.locator("#synth-run").click()
    page.locator("#synth-stage-plot .js-plotly-plot").wait_for(state="visible")

    status = page.locator("#synth-status")
    assert status.inner_text().startswith("Done:")
    # The plot lists Piper's stages, the RTF and TTFA figures are drawn, audio is there.
    assert "model_inference" in page.locator("#synth-stage-plot").inner_text()
    assert page.locator("#synth-rtf-plot .js-plotly-plot").count() == 1
    assert page.locator("#synth-ttfa-plot .js-plotly-plot").count() == 1
    assert page.locator("#synth-audio audio, #synth-audio wave, #synth-audio .waveform-container").count() >= 1
    assert "model_inference" in page.locator("#synth-stage-table").inner_text()
    assert "2 measured + 1 warm-up" in status.inner_text()
    assert ResultsStore(server.data_dir).count_runs() == before + 3
    screenshot(page, "dashboard.png")

    page.locator("#synth-text textarea").fill("")
    page.locator("#synth-run").click()
    page.get_by_text("text is empty").wait_for(state="visible")
    assert "Error" in status.inner_text()
    assert "Traceback" not in page.content()
    assert ResultsStore(server.data_dir).count_runs() == before + 3
    screenshot(page, "dashboard-error.png")
    page.close()


def test_selecting_an_unavailable_engine_shows_its_install_hint(server: DashboardServer, browser: object) -> None:
    missing = [s for s in list_engines() if not s.available or set(HIDDEN) & set(s.entry.requires)]
    assert missing, "hiding F5 should leave an engine unavailable"
    page = browser.new_page(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(server.url)
    page.locator("#synth-engine input").click()
    page.get_by_role("option", name=f"{missing[0].entry.title} (not installed)").click()
    note = page.locator("#synth-engine-note")
    note.get_by_text(missing[0].entry.install_hint).wait_for(state="visible")
    assert "not available here" in note.inner_text()
    assert page.locator("#synth-run").is_disabled()
    # Back to Piper: the run button and Piper's knobs return.
    page.locator("#synth-engine input").click()
    page.get_by_role("option", name=re.compile("^Piper")).click()
    page.locator("#synth-run:not([disabled])").wait_for(state="visible")
    assert page.get_by_text("length_scale").first.is_visible()
    page.close()
