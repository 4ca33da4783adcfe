"""Every notebook executes top to bottom (real kernel, real sweeps, real store) and draws its plots.

Torch engines run only where the registry says they are installed, on their tiny
random-weight models; otherwise the notebooks run on Piper alone.
"""

from __future__ import annotations

import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from engines.registry import available_engines
from profiling.store.load import LoadStore
from profiling.store.results import ResultsStore
from profiling.store.sweeps import list_sweeps, sweep_runs_dataframe
from tests.conftest import REPO_ROOT

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("*.ipynb"))
PLOTLY_MIME = "application/vnd.plotly.v1+json"
#: Which engines each notebook's default parameters ask for beside Piper.
TORCH_BY_NOTEBOOK = {"rtf_engines_precisions": ("f5",), "precision_quality": ("f5",)}
#: F5's tiny model at 2 flow steps (the notebooks' 4 doubled its synthesis time, bf16 on the CPU the slowest).
TINY_TORCH_KNOBS = 'TORCH_KNOBS = {"xtts": {"weights": "random-tiny"}, "f5": {"weights": "random-tiny", "nfe_step": 2}}'
#: Smaller than the defaults so the suite stays short on 2 shared cores (injected after the parameters cell,
#: as papermill does); every code path still runs: several configurations, both precisions, WER, plots.
#: Timed per cell (2026-12-06): the sweep cells are most of a notebook (kernel start <1 s, imports 1-4 s, F5's
#: import and load 6-7 s); Kokoro's runs on a Harvard sentence took 3-4 s each, so precision_quality runs one
#: Kokoro configuration (still beside Piper's two in the WER Pareto) and no warm-up runs.
TEST_PARAMETERS = {
    "rtf_engines_precisions": f'TEXTS = ["Turn left here."]\nREPEATS = 2\nWARMUP = 0\n{TINY_TORCH_KNOBS}',
    "streaming_latency_chunking": "REPEATS = 1\nFIRST_CHUNK_MAX_CHARS = [20, 80]",
    "precision_quality": 'N_SENTENCES = 1\nREPEATS = 1\nWARMUP = 0\nPIPER_GRID = {"length_scale": [1.0, 1.3]}\n'
                         f'KOKORO_GRID = {{"speed": [1.0]}}\n{TINY_TORCH_KNOBS}',
    "serving_capacity": 'RATES = [2.0]\nDURATION_S = 1.5\nTEXT_SET = "short"\n'
                        'NULL_RATES = [10.0]\nNULL_DURATION_S = 0.5',
}
#: Notebooks that store load tests (profiling.store.load) rather than a sweep.
LOAD_NOTEBOOKS = {"serving_capacity"}


def test_the_three_notebooks_exist() -> None:
    names = {path.stem for path in NOTEBOOKS}
    assert {"rtf_engines_precisions", "streaming_latency_chunking", "precision_quality"} <= names
    for path in NOTEBOOKS:
        notebook = nbformat.read(path, as_version=4)
        tagged = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, f"{path.name} needs exactly one parameters cell"
        # On the installed API: no path manipulation, a DEVICE parameter, and what it shows up front.
        code = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
        assert "sys.path" not in code and "from profiling import" in code, path.name
        assert "\nDEVICE = " in f"\n{tagged[0].source}", path.name
        assert "What this shows" in notebook.cells[0].source, path.name


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path: Path, isolated_data_dir: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    position = next(i for i, c in enumerate(notebook.cells) if "parameters" in c.metadata.get("tags", []))
    if path.stem in TEST_PARAMETERS:
        notebook.cells.insert(position + 1, nbformat.v4.new_code_cell(TEST_PARAMETERS[path.stem]))
    started = time.monotonic()
    # The kernel inherits TTSPERF_DATA_DIR (set per test by conftest), so DATA_DIR=None lands in tmp.
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(NOTEBOOK_DIR)}}).execute()
    elapsed = time.monotonic() - started
    outputs = [o for c in notebook.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.get("output_type") == "error"]
    figures = [o for o in outputs if PLOTLY_MIME in o.get("data", {})]
    assert len(figures) >= 3, "the notebook should draw its plots"

    store = ResultsStore(isolated_data_dir)
    if path.stem in LOAD_NOTEBOOKS:
        loads = LoadStore(store)
        tests = loads.tests()
        assert len(tests) == 2 and (tests["rates"] > 0).all()
        requests = loads.requests(tests["test_id"].iloc[-1])
        assert (requests["status"] == "ok").any() and requests["server_json"].notna().any()
        print(f"{path.name}: {elapsed:.1f} s")
        return
    sweeps = list(list_sweeps(store)["name"])
    assert len(sweeps) == 1
    runs = sweep_runs_dataframe(store, sweeps[0])
    assert not runs.empty and (runs["status"] == "ok").any()
    assert (runs[runs["engine"] == "piper"]["status"] == "ok").all()
    wanted = [e for e in TORCH_BY_NOTEBOOK.get(path.stem, ()) if e in available_engines()]
    for engine in wanted:
        ran = runs[runs["engine"] == engine]
        assert not ran.empty and ran["random_weights"].all(), f"{engine} tiny model did not run"
    print(f"{path.name}: {elapsed:.1f} s, engines {sorted(set(runs['engine']))}")
