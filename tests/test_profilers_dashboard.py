"""The Profile tab through a real dashboard server and gradio_client: tables, flame graph, downloads."""

from __future__ import annotations

import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path
from typing import Any

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from dashboard.messages import ERROR_PREFIX, OK_PREFIX
from profiling.store.results import ResultsStore
from tests.dashboard_server import DashboardServer

STATUS, SUMMARY, TABLE_CHOICE, TABLE, FLAME, FILES, ARTIFACTS, ZIP = range(8)
TEXT = "Profile this sentence, please."


def profile(client: Client, **overrides: Any) -> tuple[Any, ...]:
    args = {
        "engine_name": "piper", "device_name": "cpu", "precision_name": "fp32", "piper__deterministic": True,
        "text_value": TEXT, "chosen": ["cprofile", "pyspy"], "repeat_count": 1, "line_names": "",
        "rate": 200, "native": False, "memory": False, "leak": 4, **overrides,
    }
    return client.predict(**args, api_name="/profile")


def test_profile_tab_shows_tables_flame_graph_overhead_and_downloads(client: Client, server: DashboardServer) -> None:
    result = profile(client)
    assert result[STATUS].startswith(OK_PREFIX), result[STATUS]
    summary = result[SUMMARY]
    assert summary.count("overhead ") == 2 and "onnxruntime" in summary
    table = result[TABLE]
    assert "phoneme_ids_to_audio" in table["data"].__str__()
    svg = ET.fromstring(result[FLAME].removeprefix('<div style="overflow-x:auto">').removesuffix("</div>"))
    assert svg.tag.endswith("svg") and "Session.run" in ET.tostring(svg, encoding="unicode")
    files = [Path(f) for f in result[FILES]]
    names = {f.name.split("-", 1)[1] for f in files}
    assert {"cprofile.prof", "pyspy.speedscope.json", "pyspy.flamegraph.svg"} <= names
    assert all(f.is_file() and f.stat().st_size > 0 for f in files)
    # One zip holds every file, each under the run it was stored with.
    with zipfile.ZipFile(result[ZIP]) as archive:
        zipped = archive.namelist()
    assert len(zipped) == len(files)
    assert {n.split("/", 1)[1] for n in zipped} == {f.name.split("-", 1)[1] for f in files}
    # The artifacts are stored with the profiled runs and listed for any run id.
    artifacts = result[ARTIFACTS]
    run_ids = {row[-1] for row in artifacts["data"]}
    assert len(run_ids) == 2
    store = ResultsStore(server.data_dir)
    for run_id in run_ids:
        listed = client.predict(run_id, api_name="/profile_artifacts")
        assert {row[0] for row in listed["data"]} == {a.kind for a in store.artifacts(run_id)}


def test_profile_tab_switches_tables(client: Client) -> None:
    result = profile(client, chosen=["line"], line_names="engines.text.normalize_text")
    assert result[STATUS].startswith(OK_PREFIX), result[STATUS]
    choices = [c[0] for c in result[TABLE_CHOICE]["choices"]]
    lines = next(c for c in choices if c.startswith("line: Per-line"))
    shown = client.predict(lines, api_name="/profile_table")
    assert "self.session.run(" in str(shown["data"])


@pytest.mark.parametrize(("overrides", "message"), [
    ({"chosen": []}, "tick at least one profiler"),
    ({"chosen": ["torch"]}, "not a torch engine"),
    ({"chosen": ["line"], "line_names": "piper.voice.Nope"}, "has no attribute 'Nope'"),
    ({"repeat_count": 0}, "repeats must be at least 1"),
    ({"text_value": "   "}, "text is empty"),
])
def test_profile_tab_bad_input_is_one_visible_line(
    client: Client, server: DashboardServer, overrides: dict[str, Any], message: str
) -> None:
    before = ResultsStore(server.data_dir).count_runs()
    result = profile(client, **overrides)
    assert result[STATUS].startswith(ERROR_PREFIX) and message in result[STATUS]
    assert "\n" not in result[STATUS] and "Traceback" not in result[STATUS]
    assert ResultsStore(server.data_dir).count_runs() == before


def test_profile_tab_knobs_come_from_the_engine_capabilities(client: Client, server: DashboardServer) -> None:
    """The same knob panel as Synthesize: a slider with the declared range, checked before anything runs."""
    before = ResultsStore(server.data_dir).count_runs()
    with pytest.raises(AppError, match="maximum"):
        profile(client, piper__length_scale=9)
    assert ResultsStore(server.data_dir).count_runs() == before
    result = profile(client, chosen=["cprofile"], piper__length_scale=1.4)
    assert result[STATUS].startswith(OK_PREFIX), result[STATUS]
    stored = ResultsStore(server.data_dir).runs_dataframe()
    record = ResultsStore(server.data_dir).load_run(stored["run_id"].iloc[-1])
    assert record.settings.knobs["length_scale"] == 1.4
