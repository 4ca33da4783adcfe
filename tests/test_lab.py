"""JupyterLab (the ``notebooks`` extra, what ``make lab`` starts) driven by a real Chromium.

The server is the .venv's own ``jupyter lab`` on a free port, rooted in a temporary directory that holds a copy
of a real notebook with its quick settings injected (as tests/test_notebooks.py runs it). Chromium opens it,
runs every cell (the Run menu's command) and waits for the plots in the output area; the notebook is then saved from
the page and read back. A second test runs ``dashboard.show()`` in a JupyterLab kernel and sees the dashboard
inside the output's iframe. Jupyter's config, data, runtime and workspace directories are temporary, so
nothing lands in the home directory. Never runs ``playwright install``: it drives /usr/bin/chromium.
"""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from tests.chromium import screenshot
from tests.conftest import REPO_ROOT
from tests.dashboard_server import free_port
from tests.test_notebooks import TEST_PARAMETERS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(importlib.util.find_spec("jupyterlab") is None,
                       reason="jupyterlab is not installed (the notebooks extra: make lab, or make test)"),
]

#: The cheapest notebook (tests/test_notebooks.py's timings), on its test settings cut further to one text and no
#: warm-up: here the point is that JupyterLab runs it and draws its plots, not what the plots show.
NOTEBOOK = "streaming_latency_chunking"
LAB_PARAMETERS = f"{TEST_PARAMETERS[NOTEBOOK]}\nTEXTS = TEXTS[:1]\nWARMUP = 0"
PLOTLY_MIME = "application/vnd.plotly.v1+json"
TIMEOUT_MS = 90_000


@dataclass(frozen=True)
class Lab:
    url: str
    token: str
    root: Path
    data_dir: Path

    def page_url(self, path: str) -> str:
        return f"{self.url}/lab/tree/{path}?token={self.token}&reset"


def _wait_ready(url: str, token: str, process: subprocess.Popen, log: Path, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"jupyter lab exited ({process.returncode}):\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=5):
                return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"jupyter lab did not answer in {timeout_s:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    home = tmp_path_factory.mktemp("lab")
    root, data_dir = home / "notebooks", home / "store"
    root.mkdir()
    # The real notebook with quick settings after the parameters cell, as tests/test_notebooks.py runs it.
    notebook = nbformat.read(REPO_ROOT / "notebooks" / f"{NOTEBOOK}.ipynb", as_version=4)
    position = next(i for i, c in enumerate(notebook.cells) if "parameters" in c.metadata.get("tags", []))
    notebook.cells.insert(position + 1, nbformat.v4.new_code_cell(LAB_PARAMETERS))
    nbformat.write(notebook, root / f"{NOTEBOOK}.ipynb")

    # Every cell in the DOM (JupyterLab 4 may leave off-screen cells out: windowing), so the prompts and plots
    # below can be counted.
    settings = home / "settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    port, token = free_port(), secrets.token_hex(16)
    env = dict(os.environ, TTSPERF_DATA_DIR=str(data_dir), JUPYTER_CONFIG_DIR=str(home / "config"),
               JUPYTER_DATA_DIR=str(home / "data"), JUPYTER_RUNTIME_DIR=str(home / "runtime"),
               IPYTHONDIR=str(home / "ipython"), JUPYTER_PLATFORM_DIRS="1")
    log = home / "jupyter.log"
    # The flags of `make lab` (LAB_FLAGS), with a free port, a known token and temporary settings.
    command = [
        sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}", "--ServerApp.port_retries=0", f"--ServerApp.root_dir={root}",
        f"--IdentityProvider.token={token}", "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.expose_app_in_browser=True",
        f"--LabApp.user_settings_dir={home / 'settings'}", f"--LabApp.workspaces_dir={home / 'workspaces'}",
    ] + (["--allow-root"] if os.geteuid() == 0 else [])
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=home, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, token, process, log)
        yield Lab(url, token, root, data_dir)
    finally:
        # The server shuts its kernels down on SIGTERM; its process group (kernels, a dashboard) goes after.
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def _kernel_idle(lab: Lab, name: str, timeout_s: float = 90) -> None:
    """The server has the page's kernel for ``name`` started and idle (the DOM indicator says idle early)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"{lab.url}/api/sessions?token={lab.token}", timeout=10) as response:
            sessions = json.loads(response.read())
        if any(s.get("path", "").endswith(name) and (s.get("kernel") or {}).get("execution_state") == "idle"
               for s in sessions):
            return
        time.sleep(0.3)
    raise AssertionError(f"no idle kernel for {name} after {timeout_s:.0f} s")


def _open(chromium: object, lab: Lab, name: str) -> object:
    page = chromium.new_page(viewport={"width": 1400, "height": 1000})  # type: ignore[attr-defined]
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(lab.page_url(name))
    page.locator(".jp-NotebookPanel .jp-Notebook .jp-Cell").first.wait_for(state="visible")
    _kernel_idle(lab, name)
    # ... and the page is connected to it: the toolbar's indicator names the kernel idle.
    page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").first.wait_for(state="attached")
    return page


def _run_all(page: object) -> None:
    # The command the Run menu's "Run All Cells" runs (the app is exposed with --LabApp.expose_app_in_browser).
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")  # type: ignore[attr-defined]


def _wait_all_ran(page: object, cells: int) -> None:
    """Every code cell has an execution count (no ``[*]`` or blank prompt left)."""
    page.wait_for_function(  # type: ignore[attr-defined]
        "n => { const p = [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]"
        ".map(e => e.textContent.trim()); return p.length === n && p.every(t => /^\\[\\d+\\]:$/.test(t)); }",
        arg=cells, timeout=TIMEOUT_MS)


def test_jupyterlab_runs_a_notebook_and_shows_its_plots(lab: Lab, browser: object) -> None:
    started = time.monotonic()
    page = _open(browser, lab, f"{NOTEBOOK}.ipynb")
    code_cells = sum(c.cell_type == "code" for c in nbformat.read(lab.root / f"{NOTEBOOK}.ipynb", 4).cells)
    _run_all(page)
    _wait_all_ran(page, code_cells)
    output = page.locator(".jp-Notebook .jp-OutputArea-output")
    # Drawn by plotly.js (plotly's JupyterLab renderer) as SVG in the output area.
    plots = page.locator(".jp-Notebook .jp-OutputArea-output .plot-container")
    screenshot(page, "jupyterlab.png")
    plots.first.wait_for(state="attached")
    assert plots.count() >= 3, "the notebook draws a timeline and the TTFA and RTF plots"
    assert page.locator(".jp-Notebook .jp-OutputArea-output .plot-container svg.main-svg").count() >= 3
    assert "Traceback" not in "\n".join(output.all_inner_texts())
    screenshot(page, "jupyterlab.png")

    # Saved from the page, the notebook on disk has the outputs: plotly figures and no error.
    page.keyboard.press("Control+s")  # type: ignore[attr-defined]
    path = lab.root / f"{NOTEBOOK}.ipynb"
    deadline = time.monotonic() + 30
    outputs: list = []
    while time.monotonic() < deadline:
        try:
            saved = nbformat.read(path, as_version=4)
        except nbformat.reader.NotJSONError:  # read mid-save: the server rewrites the file in place
            time.sleep(0.2)
            continue
        outputs = [o for c in saved.cells if c.cell_type == "code" for o in c.get("outputs", [])]
        if outputs:
            break
        time.sleep(0.5)
    assert not [o for o in outputs if o.get("output_type") == "error"]
    assert sum(PLOTLY_MIME in o.get("data", {}) for o in outputs) >= 3
    # The kernel was the .venv's python: the runs landed in this test's store.
    assert (lab.data_dir / "runs.sqlite").exists()
    page.close()
    print(f"JupyterLab: opened, ran and saved {NOTEBOOK} in {time.monotonic() - started:.1f} s")


def test_dashboard_show_renders_inside_jupyterlab(lab: Lab, browser: object) -> None:
    port = free_port()
    cell = nbformat.v4.new_code_cell(f"import dashboard\napp = dashboard.show(port={port}, height=700)")
    nbformat.write(nbformat.v4.new_notebook(cells=[cell], metadata={"kernelspec": {
        "name": "python3", "display_name": "Python 3", "language": "python"}}), lab.root / "show.ipynb")
    page = _open(browser, lab, "show.ipynb")
    _run_all(page)
    _wait_all_ran(page, 1)
    frame = page.frame_locator(".jp-OutputArea-output iframe")
    # The whole app, served from the kernel: its first tab and its Synthesize button.
    frame.get_by_role("tab", name="Synthesize").wait_for(state="visible")
    frame.locator("#synth-run").wait_for(state="visible")
    screenshot(page, "jupyterlab-dashboard.png")
    page.close()
