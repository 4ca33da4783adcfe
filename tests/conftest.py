"""Shared fixtures. Every test gets its own results-store directory, never ~/.ttsperf."""

from __future__ import annotations

import gc
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests import chromium
from tests.dashboard_server import DEFAULT, DashboardServer, DashboardServers

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

if TYPE_CHECKING:
    from gradio_client import Client

REPO_ROOT = Path(__file__).resolve().parent.parent


def _cuda_present() -> bool:
    """torch sees a CUDA device; checked only when a collected test carries the gpu marker."""
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


#: The slowest test files of ``make test`` (its junit profile, 2026-12-06 12:29), heaviest first. ``make test`` runs
#: ``-n 2 --dist loadfile --no-loadscope-reorder``, so xdist hands files out in item order: these go first (longest
#: processing time first), and no heavy file is left to one core at the end while the other idles.
HEAVY_FILES = (
    "test_rvc.py", "test_notebooks.py", "test_kokoro_engine.py", "test_ab_design.py", "test_sweep_ray.py",
    "test_memory_growth.py", "test_dashboard.py", "test_trace_viewer.py", "test_xtts_engine.py", "test_lab.py",
    "test_dashboard_newcomer.py", "test_load_history.py", "test_serve_voices.py", "test_compare.py",
)


def _heaviest_first(item: pytest.Item) -> int:
    name = item.path.name
    return HEAVY_FILES.index(name) if name in HEAVY_FILES else len(HEAVY_FILES)


def pytest_configure(config: pytest.Config) -> None:
    """No cyclic garbage collection while this process collects: importing every test module (torch, gradio,
    transformers, jsonschema's grammars ...) makes the collector walk an ever larger heap. Collecting the suite
    took 17-18 s with it and 11-12 s without (2026-12-06). An xdist controller collects nothing: it keeps it."""
    if hasattr(config, "workerinput") or not getattr(config.option, "numprocesses", None):
        gc.disable()


def pytest_collection_finish(session: pytest.Session) -> None:
    gc.freeze()  # what collection imported lives for the session: later collections need not walk it
    gc.enable()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=_heaviest_first)  # stable: the other files, and the tests inside every file, keep their order
    gpu_tests = [item for item in items if "gpu" in item.keywords]
    if gpu_tests and not _cuda_present():
        skip = pytest.mark.skip(reason="needs a CUDA GPU (gpu marker)")
        for item in gpu_tests:
            item.add_marker(skip)


@contextmanager
def _cpu_turn(alone: bool) -> Iterator[None]:
    """Under pytest-xdist (``make test`` runs ``-n 2``): a test marked ``alone`` runs while no other worker runs a
    test; every other test runs beside whatever else runs. Outside xdist this is a no-op.

    A reader-writer lock on two files: ``gate`` makes a waiting ``alone`` test block new tests from starting, so it
    is not starved; ``cpu`` is held shared by ordinary tests and exclusively by ``alone`` ones.
    """
    run = os.environ.get("PYTEST_XDIST_TESTRUNUID")
    if run is None:
        yield
        return
    import fcntl

    base = Path(tempfile.gettempdir()) / f"ttsperf-pytest-{run}"
    with open(f"{base}.gate", "a") as gate, open(f"{base}.cpu", "a") as cpu:
        fcntl.flock(gate, fcntl.LOCK_EX)
        fcntl.flock(cpu, fcntl.LOCK_EX if alone else fcntl.LOCK_SH)
        if not alone:
            fcntl.flock(gate, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(cpu, fcntl.LOCK_UN)
            fcntl.flock(gate, fcntl.LOCK_UN)


def _alone(item: pytest.Item) -> bool:
    return item.get_closest_marker("alone") is not None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    """An ordinary test holds its shared turn on the CPUs through set-up, call and tear-down (module fixtures
    included), so an ``alone`` test never runs beside any part of it."""
    if _alone(item):
        yield
        return
    with _cpu_turn(alone=False):
        yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """A test that compares timings (marked ``alone``) has the two cores to itself for its call only: its set-up
    (loading a model, say) times nothing, and runs beside the other worker's tests."""
    if not _alone(item):
        yield
        return
    with _cpu_turn(alone=True):
        yield


@pytest.fixture(autouse=True)
def isolated_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    data_dir = tmp_path / "ttsperf-data"
    monkeypatch.setenv("TTSPERF_DATA_DIR", str(data_dir))
    return data_dir


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One intra-op thread for torch tests: on a shared 2-core runner two threads mostly wait on each
    other (5-10x slower here). The thread count is process-wide, so the previous count is restored."""
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def dashboards(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardServers]:
    """The real dashboards (``python app.py``) of this session (one per xdist worker), one per launch settings."""
    servers = DashboardServers(tmp_path_factory.mktemp("dashboards"))
    try:
        yield servers
    finally:
        servers.close()


@pytest.fixture(scope="module")
def server(dashboards: DashboardServers) -> DashboardServer:
    """The session's default dashboard, shared by every module that takes it: its store holds other modules' runs,
    so a test counts only its own. A module that needs other settings asks ``dashboards`` for them."""
    return dashboards.get(DEFAULT)


@pytest.fixture(scope="module")
def client(server: DashboardServer) -> Client:
    from gradio_client import Client

    return Client(server.url, verbose=False)


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the session (one per xdist worker); tests open and close their own pages."""
    reason = chromium.missing_reason()
    if reason:
        pytest.skip(reason)
    with chromium.launched_chromium() as launched:
        yield launched
