"""A real Chromium (Debian's, through Playwright) clicks Synthesize and sees the results.

Never runs ``playwright install``: it drives /usr/bin/chromium. Set TTSPERF_SCREENSHOT_DIR
to keep screenshots of the page.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from engines.registry import list_engines
from profiling.store.results import ResultsStore
from tests.dashboard_server import DashboardServer, running_dashboard

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("TTSPERF_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
TIMEOUT_MS = 90_000
HIDDEN = ("torch",)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardServer]:
    # torch hidden: the torch engines show as not installed, and the server starts fast.
    with running_dashboard(tmp_path_factory.mktemp("browser-data"), hidden_packages=HIDDEN) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists() and shutil.which(CHROMIUM) is None:
        pytest.skip(f"no chromium at {CHROMIUM} (install the chromium package)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _screenshot(page: object, name: str) -> None:
    directory = os.environ.get("TTSPERF_SCREENSHOT_DIR")
    if directory:
        Path(directory).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(directory) / name), full_page=True)  # type: ignore[attr-defined]


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
    _screenshot(page, "dashboard.png")

    page.locator("#synth-text textarea").fill("")
    page.locator("#synth-run").click()
    page.get_by_text("text is empty").wait_for(state="visible")
    assert "Error" in status.inner_text()
    assert "Traceback" not in page.content()
    assert ResultsStore(server.data_dir).count_runs() == before + 3
    _screenshot(page, "dashboard-error.png")
    page.close()


def test_selecting_an_unavailable_engine_shows_its_install_hint(server: DashboardServer, browser: object) -> None:
    missing = [s for s in list_engines() if not s.available or set(HIDDEN) & set(s.entry.requires)]
    assert missing, "hiding torch should leave an engine unavailable"
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
