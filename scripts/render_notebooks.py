"""Executes every notebook on its quick settings and writes the rendered pages to docs/notebooks/.

    make notebooks-reference          (= .venv/bin/python scripts/render_notebooks.py)

Each notebook in notebooks/ runs top to bottom in a fresh kernel (the .venv's python) against an empty results
store in a temporary directory, with the small parameters tests/test_notebooks.py runs it with (a cell injected
after the parameters cell, as papermill does). Plotly figures are drawn to PNG by Chromium with the plotly.js of
the installed plotly package (offline; no kaleido, no CDN), so each page opens in any browser without a kernel or
a network. The template's stylesheet (about 260 kB, the same on every page) is written once, as notebook.css
beside the pages, rather than inlined in each. A first cell on each page says the machine, the date, the
commit and the command; docs/notebooks/README.md lists the pages. The notebooks in notebooks/ stay without
outputs.
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import shlex
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import nbformat
import plotly
from nbclient import NotebookClient
from nbconvert import HTMLExporter

from engines.registry import available_engines
from profiling.core.environment import capture_environment

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
OUT_DIR = ROOT / "docs" / "notebooks"
PLOTLY_MIME = "application/vnd.plotly.v1+json"
#: The template's stylesheet, written once beside the pages.
STYLESHEET = "notebook.css"
CHROMIUM = os.environ.get("TTSPERF_CHROMIUM", "/usr/bin/chromium")
COMMAND = "make notebooks-reference"


def quick_parameters() -> dict[str, str]:
    """TEST_PARAMETERS of tests/test_notebooks.py, read without importing the test module."""
    tree = ast.parse((ROOT / "tests" / "test_notebooks.py").read_text())
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else (node.targets[0] if isinstance(node, ast.Assign)
                                                                       else None)
        if isinstance(target, ast.Name) and target.id == "TEST_PARAMETERS":
            return ast.literal_eval(node.value)
    raise SystemExit("tests/test_notebooks.py has no TEST_PARAMETERS")


def machine_line() -> tuple[str, str]:
    env = capture_environment()
    gpu = f"GPU {env.gpu_name} (driver {env.gpu_driver})" if env.gpu_name else "no GPU"
    machine = (f"{env.cpu_model}, {env.logical_cores} logical cores, {env.memory_gib} GiB; {gpu}; "
               f"Python {env.python} on {env.platform}")
    commit = env.git_commit[:10] + (" (with uncommitted changes)" if env.git_dirty else "") if env.git_commit else "?"
    return machine, f"commit {commit}, uv.lock sha256 {env.lock_sha256[:12]}"


def execute(path: Path, parameters: str | None, data_dir: Path) -> tuple[nbformat.NotebookNode, float]:
    notebook = nbformat.read(path, as_version=4)
    if parameters:
        position = next(i for i, c in enumerate(notebook.cells) if "parameters" in c.metadata.get("tags", []))
        cell = nbformat.v4.new_code_cell("# Reference run: the quick settings of tests/test_notebooks.py\n"
                                         + parameters)
        cell.metadata["tags"] = ["injected-parameters"]
        notebook.cells.insert(position + 1, cell)
    # The kernel inherits the environment: its own empty store, and figures as plotly JSON only (no inline
    # plotly.js in the outputs; the PNGs below replace them).
    os.environ["TTSPERF_DATA_DIR"] = str(data_dir)
    os.environ["PLOTLY_RENDERER"] = "plotly_mimetype"
    started = time.monotonic()
    NotebookClient(notebook, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK_DIR)}}).execute()
    return notebook, time.monotonic() - started


def figures_to_png(notebook: nbformat.NotebookNode, page: object) -> int:
    """Replaces each plotly output with a PNG drawn by plotly.js in Chromium; returns how many."""
    count = 0
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if PLOTLY_MIME not in data:
                continue
            figure = data[PLOTLY_MIME]
            layout = figure.get("layout", {})
            width, height = int(layout.get("width") or 960), int(layout.get("height") or 480)
            url = page.evaluate(  # type: ignore[attr-defined]
                "async ([fig, w, h]) => await Plotly.toImage({data: fig.data, layout: fig.layout},"
                " {format: 'png', width: w, height: h, scale: 1})",
                [figure, width, height],
            )
            title = (layout.get("title") or {}).get("text", "") if isinstance(layout.get("title"), dict) else ""
            output["data"] = {"image/png": url.split(",", 1)[1],
                              "text/plain": f"<plotly figure{': ' + title if title else ''} (rendered to PNG)>"}
            output.setdefault("metadata", {})
            count += 1
    return count


def share_head_styles(body: str, css_path: Path) -> str:
    """Moves the ``<style>`` blocks of the page's ``<head>`` (the template's, identical on every page) into
    ``css_path`` and links it instead; styles inside the body (cell outputs) stay where they are."""
    head_end = body.index("</head>")
    head = body[:head_end]
    blocks = re.findall(r"<style[^>]*>(.*?)</style>", head, flags=re.S)
    css_path.write_text("\n".join(block.strip() for block in blocks) + "\n", encoding="utf-8")
    head = re.sub(r"\s*<style[^>]*>.*?</style>", "", head, flags=re.S)
    return f'{head}\n<link rel="stylesheet" href="{css_path.name}">\n{body[head_end:]}'


def header_cell(machine: str, revision: str, when: str, parameters: str | None, elapsed: float,
                engines: list[str], figures: int) -> nbformat.NotebookNode:
    settings = ("the quick settings of `tests/test_notebooks.py` (the cell after the parameters cell)"
                if parameters else "its default parameters")
    return nbformat.v4.new_markdown_cell(
        f"> **Reference run**, not live: executed by `{COMMAND}` (`scripts/render_notebooks.py`) on {when}, "
        f"{revision}, against an empty results store, with {settings}; {elapsed:.0f} s, {figures} figures "
        f"(drawn to PNG).\n>\n> **Machine:** {machine}. Engines installed: {', '.join(engines)}. Torch engines run "
        "their tiny random-weight models: their timings are real, their audio is noise. The machine is shared: "
        "compare rows within this page, not with other machines.\n>\n"
        f"> To run it yourself: `make lab`, open `notebooks/`, Run All."
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="notebook stems (default: all of notebooks/)")
    parser.add_argument("--out", type=Path, default=OUT_DIR)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    paths = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
    if args.names:
        paths = [p for p in paths if p.stem in args.names]
    quick = quick_parameters()
    machine, revision = machine_line()
    engines = sorted(available_engines())
    when = f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC"
    args.out.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter(template_name="lab")
    plotly_js = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    rows = []
    with sync_playwright() as playwright, tempfile.TemporaryDirectory(prefix="ttsperf-nb-") as tmp:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page()
        page.set_content("<html><body></body></html>")
        page.add_script_tag(path=str(plotly_js))
        for path in paths:
            print(f"{path.name}: executing", flush=True)
            notebook, elapsed = execute(path, quick.get(path.stem), Path(tmp) / path.stem)
            errors = [o for c in notebook.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
            if errors:
                raise SystemExit(f"{path.name}: {errors[0].get('ename')}: {errors[0].get('evalue')}")
            figures = figures_to_png(notebook, page)
            notebook.cells.insert(0, header_cell(machine, revision, when, quick.get(path.stem), elapsed, engines,
                                                 figures))
            body, _ = exporter.from_notebook_node(notebook)
            target = args.out / f"{path.stem}.html"
            target.write_text(share_head_styles(body, args.out / STYLESHEET))
            size = target.stat().st_size
            rows.append((path, elapsed, figures, size))
            print(f"{path.name}: {elapsed:.0f} s, {figures} figures -> {target.relative_to(ROOT)} "
                  f"({size / 1e6:.2f} MB)", flush=True)
        browser.close()
    write_index(args.out, rows, machine, revision, when, " ".join(shlex.quote(a) for a in sys.argv[1:]))


def write_index(out: Path, rows: list, machine: str, revision: str, when: str, extra: str) -> None:
    lines = [
        "# Notebooks: reference outputs",
        "",
        "Each page is a notebook from `notebooks/` executed top to bottom, with its outputs and plots (PNG), "
        "readable in any browser without a kernel or a network. The notebooks themselves are committed without "
        "outputs; `make lab` opens them live. The pages share one stylesheet, `notebook.css` (keep it beside them).",
        "",
        f"- Command: `{COMMAND}`{f' (scripts/render_notebooks.py {extra})' if extra else ''}",
        f"- Date: {when}; {revision}",
        f"- Machine: {machine}",
        "- Settings: the quick ones `tests/test_notebooks.py` runs each notebook with (shown in each page, in the "
        "cell after the parameters cell), on an empty results store",
        "",
        "| notebook | page | executed in | figures | size |",
        "|---|---|---|---|---|",
    ]
    lines += [f"| `notebooks/{p.name}` | [{p.stem}.html]({p.stem}.html) | {elapsed:.0f} s | {figures} | "
              f"{size / 1e3:.0f} kB |" for p, elapsed, figures, size in rows]
    (out / "README.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
