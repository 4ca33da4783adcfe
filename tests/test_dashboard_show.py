"""``dashboard.show()`` in a real Jupyter kernel: the app inline, served like ``make dashboard``."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from tests.dashboard_server import DashboardServer, free_port

#: What must match between the notebook's app and ``python app.py``'s: theme, CSS, queue, footer, title.
SHARED_CONFIG = ("css", "theme", "theme_hash", "footer_links", "enable_queue", "title")


def _config(url: str) -> dict:
    with urllib.request.urlopen(f"{url.rstrip('/')}/config", timeout=30) as response:
        return json.loads(response.read())


def test_show_renders_the_full_app_inline_with_the_same_launch_settings(
    server: DashboardServer, tmp_path: Path
) -> None:
    port = free_port()
    cell = nbformat.v4.new_code_cell(
        "import dashboard\n"
        f"demo = dashboard.show({str(tmp_path / 'store')!r}, port={port})\n"
        "print('concurrency', demo._queue.default_concurrency_limit)"
    )
    notebook = nbformat.v4.new_notebook(cells=[cell])
    # The kernel runs outside the checkout: the installed package is what it imports.
    client = NotebookClient(notebook, timeout=180, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    with client.setup_kernel():
        client.execute_cell(cell, 0)
        inline = _config(f"http://127.0.0.1:{port}")
    served = _config(server.url)
    html = "".join(o["data"]["text/html"] for o in cell.outputs if "text/html" in o.get("data", {}))
    assert "<iframe" in html and f"127.0.0.1:{port}" in html
    assert "concurrency 1" in "".join(o.get("text", "") for o in cell.outputs)
    for key in SHARED_CONFIG:
        assert inline[key] == served[key], key
    assert ".ttsperf-random-weights" in inline["css"] and inline["theme"] == "soft"
    tabs = {c["props"].get("label") for c in inline["components"] if c.get("type") == "tabitem"}
    assert {"Synthesize", "Streaming", "Sweeps", "History", "Profile"} <= tabs
