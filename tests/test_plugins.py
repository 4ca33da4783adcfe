"""Plug-in engines: the example package (examples/ttsperf-espeak) installed for real, then listed,
benchmarked and offered by the dashboard; a taken name and a wrong class are clear errors."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from profiling.store.results import ResultsStore
from tests.conftest import REPO_ROOT
from tests.dashboard_server import DashboardServer, running_dashboard

EXAMPLE = REPO_ROOT / "examples" / "ttsperf-espeak"
TEXT = "Plug-ins are engines too. They stream one sentence at a time."

pytestmark = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                reason="needs the espeak-ng program (make test installs it)")


def _installer(source: Path, target: Path) -> list[str]:
    """uv (make's bootstrap, or on PATH) or pip: --no-deps, no build isolation, so nothing is downloaded."""
    uv = REPO_ROOT / ".uv" / "bin" / "uv"
    uv_path = str(uv) if uv.exists() else shutil.which("uv")
    if uv_path:
        return [uv_path, "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--python", sys.executable,
                "--target", str(target), str(source)]
    return [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--target",
            str(target), str(source)]


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Built from a copy: the build leaves build/ and .egg-info beside the sources, which stay clean.
    source = tmp_path_factory.mktemp("plugin-src") / EXAMPLE.name
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    target = tmp_path_factory.mktemp("plugin-site")
    subprocess.run(_installer(source, target), check=True, capture_output=True, text=True, timeout=300)
    assert (target / "ttsperf_espeak" / "engine.py").is_file()
    return target


def _lab(args: list[str], path: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(path), "GRADIO_ANALYTICS_ENABLED": "False"}
    return subprocess.run([sys.executable, "-m", "profiling", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_installed_plugin_is_listed_and_benchmarked(plugin_dir: Path, tmp_path: Path) -> None:
    listed = _lab(["engines", "--knobs"], plugin_dir, tmp_path)
    assert listed.returncode == 0, listed.stderr
    row = next(line for line in listed.stdout.splitlines() if line.startswith("espeak "))
    assert " yes " in row and "plug-in" in row
    assert "speed" in listed.stdout and "80..450" in listed.stdout  # its knobs, from its capabilities

    data = tmp_path / "store"
    bench = _lab(["bench", "--engine", "espeak", "--text", TEXT, "--repeats", "2", "--knob", "speed=300",
                  "--data-dir", str(data), "--no-progress"], plugin_dir, tmp_path)
    assert bench.returncode == 0, bench.stderr
    assert "espeak_ng" in bench.stdout  # the plug-in's own stage, timed by the lab
    streamed = _lab(["stream", "--engine", "espeak", "--chunker", "engine", "--text", TEXT, "--warmup", "0",
                     "--data-dir", str(data), "--no-progress"], plugin_dir, tmp_path)
    assert streamed.returncode == 0, streamed.stderr
    runs = ResultsStore(data).runs_dataframe()
    assert set(runs["engine"]) == {"espeak"} and (runs["status"] == "ok").all() and (runs["audio_s"] > 0).all()
    bench_run = ResultsStore(data).load_run(runs[runs["mode"] == "batch"]["run_id"].iloc[-1])
    assert bench_run.settings.knobs["speed"] == 300
    stream_run = ResultsStore(data).load_run(runs[runs["mode"] == "stream"]["run_id"].iloc[-1])
    assert len(stream_run.chunks) == 2  # one chunk per sentence

    refused = _lab(["bench", "--engine", "espeak", "--knob", "speed=9000"], plugin_dir, tmp_path)
    assert refused.returncode == 2 and "above its maximum" in refused.stderr and "Traceback" not in refused.stderr


@pytest.fixture(scope="module")
def plugin_server(plugin_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DashboardServer]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PYTHONPATH", str(plugin_dir))
        with running_dashboard(tmp_path_factory.mktemp("plugin-dashboard")) as server:
            yield server


def test_installed_plugin_is_offered_and_runs_in_the_dashboard(plugin_server: DashboardServer) -> None:
    from gradio_client import Client

    with urllib.request.urlopen(f"{plugin_server.url}config", timeout=30) as response:
        config = json.loads(response.read())
    engine = next(c for c in config["components"] if c["props"].get("elem_id") == "synth-engine")
    assert ["espeak (plug-in)", "espeak"] in engine["props"]["choices"]
    client = Client(plugin_server.url, verbose=False)
    result = client.predict(json.dumps({"engine": "espeak", "text": TEXT, "repeats": 1, "warmup": 0,
                                        "knobs": {"pitch": 70}}), api_name="/synthesize_json")
    details = result[8]  # the run details: dashboard.synthesize_tab.Outputs' ninth output
    assert details["runs_stored"] == 1 and not details["errors"], details
    assert ResultsStore(plugin_server.data_dir).load_run(details["run_ids"][0]).engine == "espeak"


def test_taken_name_wrong_class_and_typos_are_clear_errors(tmp_path: Path) -> None:
    """An installed package as the metadata reader sees it: a module and a .dist-info with entry points."""
    site = tmp_path / "site"
    dist_info = site / "ttsperf_bad-0.1.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: ttsperf-bad\nVersion: 0.1\n", encoding="utf-8")
    (dist_info / "entry_points.txt").write_text(
        "[ttsperf.engines]\npiper = ttsperf_bad:Anything\nnotengine = ttsperf_bad:NotAnEngine\n", encoding="utf-8"
    )
    (site / "ttsperf_bad.py").write_text("class NotAnEngine:\n    pass\n", encoding="utf-8")

    listed = _lab(["engines"], site, tmp_path)
    assert listed.returncode == 0, listed.stderr
    piper_rows = [line for line in listed.stdout.splitlines() if line.startswith("piper ")]
    assert len(piper_rows) == 2 and " yes " in piper_rows[0]  # the built-in keeps its name
    assert "duplicate engine name 'piper'" in piper_rows[1] and "ttsperf-bad" in piper_rows[1]

    wrong = _lab(["bench", "--engine", "notengine", "--repeats", "1"], site, tmp_path)
    assert wrong.returncode == 2 and "not a subclass of engines.base.Engine" in wrong.stderr
    assert "Traceback" not in wrong.stderr
    typo = _lab(["bench", "--engine", "pipr", "--repeats", "1"], site, tmp_path)
    assert typo.returncode == 2 and "did you mean 'piper'" in typo.stderr

    still = _lab(["bench", "--engine", "piper", "--text", "Still here.", "--repeats", "1", "--warmup", "0",
                  "--data-dir", str(tmp_path / "store"), "--no-progress"], site, tmp_path)
    assert still.returncode == 0, still.stderr
