"""The dashboard as a user's program sees it: a real server, driven through gradio_client.

The session's server with a short text limit and F5 hidden (shared with test_browser: a test counts only the
runs it stored); Piper with repeats=1 warm-up=0 and deterministic noise keeps every call well under a second.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
from gradio_client import Client
from gradio_client.exceptions import AppError

from dashboard.controls import converter_views
from dashboard.messages import ERROR_PREFIX, OK_PREFIX
from engines.piper_engine import PIPER_CAPABILITIES
from engines.registry import capabilities, engine_names, get_entry, list_engines
from profiling.store.results import ResultsStore
from tests.dashboard_server import LIMITED_NO_F5, SHORT_MAX_CHARS, DashboardServer, DashboardServers

MAX_CHARS = SHORT_MAX_CHARS
#: The server runs as if F5's package were missing, so one engine is always unavailable.
(HIDDEN,) = LIMITED_NO_F5.hidden_packages
TEXT = "The lab measures speech synthesis. Every stage is timed."
SHORT_TEXT = "Turn left here."

# Output order of both run endpoints (dashboard.synthesize_tab.Outputs).
STATUS, BANNER, AUDIO, SUMMARY, STAGE_PLOT, RTF_PLOT, TTFA_PLOT, STAGES, DETAILS, GPU_PLOT, TRACE = range(11)


@pytest.fixture(scope="module")
def server(dashboards: DashboardServers) -> DashboardServer:
    return dashboards.get(LIMITED_NO_F5)


def stored_runs(server: DashboardServer) -> int:
    return ResultsStore(server.data_dir).count_runs()


def synth_json(client: Client, **settings: Any) -> tuple[Any, ...]:
    payload = {"engine": "piper", "text": TEXT, "repeats": 1, "warmup": 0,
               "knobs": {"deterministic": True}, **settings}
    return client.predict(json.dumps(payload), api_name="/synthesize_json")


def assert_ok(result: tuple[Any, ...]) -> None:
    assert result[STATUS].startswith(OK_PREFIX), result[STATUS]


def test_piper_run_returns_audio_stages_plots_and_stores_every_run(
    server: DashboardServer, client: Client
) -> None:
    before = stored_runs(server)
    result = synth_json(client, repeats=2, warmup=1)
    assert_ok(result)

    samples, rate = soundfile.read(result[AUDIO], dtype="float32")
    assert rate == PIPER_CAPABILITIES.sample_rate
    duration = len(samples) / rate
    # ~57 characters of English: speech lasts seconds, not milliseconds or minutes.
    assert 1.5 < duration < 10.0, duration
    assert float(np.sqrt(np.mean(samples**2))) > 0.02  # real speech, not silence
    assert np.max(np.abs(samples)) <= 1.0

    table = result[STAGES]
    assert table["headers"] == ["stage", "n", "median_ms", "p95_ms", "min_ms", "max_ms"]
    rows = {row[0]: row for row in table["data"]}
    assert "model_inference" in rows
    inference = rows["model_inference"]
    assert inference[1] == 2  # two measured runs; the warm-up is left out of the summary
    assert 0 < inference[4] <= inference[2] <= inference[3] <= inference[5]  # min <= median <= p95 <= max

    stage_plot = json.loads(result[STAGE_PLOT]["plot"])
    assert result[STAGE_PLOT]["type"] == "plotly"
    assert "model_inference" in stage_plot["data"][0]["y"]
    for index, title in ((RTF_PLOT, "RTF"), (TTFA_PLOT, "Time to first audio")):
        figure = json.loads(result[index]["plot"])
        assert title in figure["layout"]["title"]["text"]
        assert len(figure["data"][0]["y"]) == 2  # median and p95 bars

    assert "RTF" in result[SUMMARY] and "model load" in result[SUMMARY]
    gpu = json.loads(result[GPU_PLOT]["plot"])  # a CPU run: the GPU plot is one note, no bars
    assert gpu["data"] == [] and gpu["layout"]["annotations"][0]["text"].startswith("no GPU data: CPU runs")
    assert result[BANNER] == ""  # trained Piper weights: no random-weights banner

    details = result[DETAILS]
    assert details["runs_stored"] == 3
    # "Download trace": the batch as Chrome trace JSON, one run slice per stored run.
    events = json.loads(Path(result[TRACE]).read_text(encoding="utf-8"))["traceEvents"]
    assert {e["args"]["run_id"] for e in events if e.get("cat") == "run"} == set(details["run_ids"])
    assert stored_runs(server) == before + 3
    records = ResultsStore(server.data_dir).load_batch(details["batch_id"])
    assert sorted(r.warmup for r in records) == [False, False, True]
    assert all(r.settings.knobs["deterministic"] is True for r in records)
    assert details["rtf_median"] == pytest.approx(
        float(np.median([r.rtf for r in records if not r.warmup])), rel=1e-9
    )


def test_second_run_reuses_the_loaded_model(server: DashboardServer, client: Client) -> None:
    synth_json(client)
    result = synth_json(client)
    assert_ok(result)
    assert result[DETAILS]["model_reused"] is True
    assert "reused" in result[SUMMARY]
    # A load-time knob changes what is loaded: the model is loaded again and the time shown.
    reloaded = synth_json(client, knobs={"deterministic": True, "graph_optimization": "basic"})
    assert_ok(reloaded)
    assert reloaded[DETAILS]["load_s"] > 0


def test_named_parameter_endpoint_takes_knobs_by_engine(server: DashboardServer, client: Client) -> None:
    before = stored_runs(server)
    result = client.predict(
        text=TEXT, repeats=1, warmup=0, piper__deterministic=True, piper__length_scale=1.5,
        api_name="/synthesize",
    )
    assert_ok(result)
    assert stored_runs(server) == before + 1
    (record,) = ResultsStore(server.data_dir).load_batch(result[DETAILS]["batch_id"])
    assert record.settings.knobs["length_scale"] == 1.5
    assert record.settings.knobs["deterministic"] is True
    slow = soundfile.info(result[AUDIO]).duration
    normal = soundfile.info(synth_json(client)[AUDIO]).duration
    assert slow > normal * 1.2  # length_scale 1.5 really reached the engine


def test_stream_mode_first_audio_comes_before_the_whole(server: DashboardServer, client: Client) -> None:
    text = "First sentence here. A second one follows. And a third to finish."
    result = synth_json(client, text=text, mode="stream", prebuffer_ms=100)
    assert_ok(result)
    (record,) = ResultsStore(server.data_dir).load_batch(result[DETAILS]["batch_id"])
    assert record.mode.value == "stream"
    assert len(record.chunks) >= 2
    assert record.ttfa_s <= record.synth_s
    assert "stream chunks" in result[SUMMARY]


def _served_engines() -> dict[str, bool]:
    """Engine name -> available, as the server (with HIDDEN missing) sees the registry."""
    return {s.name: s.available and HIDDEN not in s.entry.requires for s in list_engines()}


def test_lab_chunker_and_prebuffer_reach_the_run(server: DashboardServer, client: Client) -> None:
    text = "First sentence here, with a clause. A second one follows."
    result = synth_json(client, text=text, mode="stream", chunker="lab", first_chunk_max_chars=12,
                        chunk_max_chars=60, prebuffer_ms=250)
    assert_ok(result)
    (record,) = ResultsStore(server.data_dir).load_batch(result[DETAILS]["batch_id"])
    assert record.annotations["chunker"] == "lab"
    assert record.annotations["chunking.first_chunk_max_chars"] == 12
    assert record.annotations["playback.prebuffer_ms"] == 250
    assert len(record.chunks[0].text.strip()) <= 12  # the short first chunk the setting asked for
    engine_chunks = synth_json(client, text=text, mode="stream", chunker="engine")
    (engine_record,) = ResultsStore(server.data_dir).load_batch(engine_chunks[DETAILS]["batch_id"])
    assert engine_record.annotations["chunker"] == "engine"
    assert len(engine_record.chunks[0].text.strip()) > 12  # Piper's own streaming: a whole sentence first


def test_timing_choice_reaches_the_request() -> None:
    """Both tabs' request builders carry the chosen mode into the runner's BenchRequest."""
    from dashboard.streaming_tab import build_request
    from dashboard.synth_form import SynthForm
    from profiling.core.device import TimingMode

    assert SynthForm(text=TEXT).to_request(MAX_CHARS).timing is TimingMode.SYNC
    assert SynthForm(text=TEXT, timing="events").to_request(MAX_CHARS).timing is TimingMode.EVENTS
    stream = build_request("piper", "cpu", TEXT, "lab", 20, 100, 0, 0, 20, {}, MAX_CHARS, timing="events")
    assert stream.timing is TimingMode.EVENTS


def test_timing_control_is_offered_and_a_cpu_run_records_wall(server: DashboardServer, client: Client) -> None:
    timing = next(c for c in client.config["components"] if c["props"].get("elem_id") == "synth-timing")
    assert [value for _, value in timing["props"]["choices"]] == ["sync", "events"]
    assert timing["props"]["value"] == "sync" and "torch engines on CUDA" in timing["props"]["info"]
    for result in (synth_json(client, timing="events"),
                   client.predict(text=TEXT, repeats=1, warmup=0, timing="events", piper__deterministic=True,
                                  api_name="/synthesize")):
        assert_ok(result)
        (record,) = ResultsStore(server.data_dir).load_batch(result[DETAILS]["batch_id"])
        # Piper (ONNX Runtime) on the CPU has no device queue to wait for: events is asked, wall applies.
        assert record.timing_mode == result[DETAILS]["timing_mode"] == "wall"
        assert "stage timing: wall" in result[SUMMARY]


def test_controls_are_built_from_capabilities(client: Client) -> None:
    served = _served_engines()
    assert not all(served.values())  # the hidden package really made an engine unavailable
    components = client.config["components"]
    engine = next(c for c in components if c["props"].get("label") == "Engine")
    labels = {value: label for label, value in engine["props"]["choices"]}
    assert set(labels) == set(engine_names())  # every registry engine is listed
    assert engine["props"]["value"] == "piper"
    for name, available in served.items():
        assert ("not installed" in labels[name]) is (not available)
    # One named API parameter per knob of every available engine, none for the others.
    parameters = client.view_api(return_format="dict", print_info=False)["named_endpoints"]["/synthesize"]
    knob_parameters = {p["parameter_name"] for p in parameters["parameters"] if "__" in p["parameter_name"]}
    expected = {f"{name}__{knob}" for name, available in served.items() if available
                for knob in capabilities(name).knob_names()}
    # The conversion stages' knobs come from their capabilities too, under their own prefix.
    stages = {f"convert_{view.name}__{knob.name}" for view in converter_views() if view.capabilities
              for knob in view.capabilities.knobs}
    assert knob_parameters == expected | stages and "convert_rvc__f0_method" in stages
    by_label = {c["props"].get("label"): c for c in components}
    for spec in PIPER_CAPABILITIES.knobs:
        props = by_label[spec.name]["props"]
        assert props["value"] == spec.default
        if spec.minimum is not None and spec.maximum is not None:
            assert (props["minimum"], props["maximum"]) == (spec.minimum, spec.maximum)
        if spec.choices:
            assert [value for _, value in props["choices"]] == list(spec.choices)
    precision = by_label["Precision"]["props"]
    assert [value for _, value in precision["choices"]] == list(PIPER_CAPABILITIES.precisions)
    note = next(c for c in components if c["props"].get("elem_id") == "synth-capability-note")
    assert "fp16" in note["props"]["value"] and "fp32 ONNX graph" in note["props"]["value"]


BAD_INPUTS: list[tuple[str, dict[str, Any], str]] = [
    ("empty text", {"text": ""}, "text is empty"),
    ("blank text", {"text": "   \n "}, "text is empty"),
    ("text over the limit", {"text": "a" * (MAX_CHARS + 1)}, f"over the limit of {MAX_CHARS}"),
    ("unknown engine", {"engine": "nosuch"}, "unknown engine 'nosuch'"),
    ("knob above range", {"knobs": {"length_scale": 99}}, "above its maximum"),
    ("knob below range", {"knobs": {"intra_op_threads": -1}}, "below its minimum"),
    ("knob of wrong type", {"knobs": {"intra_op_threads": "many"}}, "expects int"),
    ("unknown knob", {"knobs": {"nosuch": 1}}, "unknown knob 'nosuch'"),
    ("precision the engine lacks", {"precision": "fp16"}, "precision 'fp16' is not supported"),
    ("device the engine lacks", {"device": "tpu"}, "device 'tpu' is not supported"),
    ("device the machine lacks", {"device": "cuda:7"}, "not present on this machine"),
    ("zero repeats", {"repeats": 0}, "repeats must be at least 1"),
    ("fractional warm-up", {"warmup": 0.5}, "whole number"),
    ("unknown mode", {"mode": "turbo"}, "mode 'turbo'"),
    ("unknown settings field", {"colour": "red"}, "unknown settings field"),
    ("unknown chunker", {"mode": "stream", "chunker": "magic"}, "chunker 'magic'"),
    ("first chunk of zero chars", {"mode": "stream", "chunker": "lab", "first_chunk_max_chars": 0}, "at least 1"),
    ("negative prebuffer", {"mode": "stream", "prebuffer_ms": -5}, "prebuffer ms must be at least 0"),
    ("NUL in the text", {"text": "Hello\u0000there."}, "control character U+0000"),
    ("terminal escape in the text", {"text": "Hello \u001b[31mthere."}, "control character U+001B"),
    ("lone surrogate in the text", {"text": "Hello \ud800 there."}, "U+D800"),
    ("NUL in a knob", {"knobs": {"model_path": "voice\u0000.onnx"}}, "control character U+0000"),
    ("NUL in the engine name", {"engine": "pi\u0000per"}, "control character U+0000"),
    ("NaN repeats", {"repeats": float("nan")}, "NaN is not a number the lab accepts"),
    ("infinite prebuffer", {"mode": "stream", "prebuffer_ms": float("inf")}, "Infinity is not a number"),
    ("repeats as words", {"repeats": "two"}, "repeats must be a whole number"),
    ("huge repeats", {"repeats": 1e300}, "repeats must be at most"),
    ("unknown timing mode", {"timing": "often"}, "timing 'often' is not one of sync, events"),
]


@pytest.mark.parametrize(("settings", "expected"), [case[1:] for case in BAD_INPUTS],
                         ids=[case[0] for case in BAD_INPUTS])
def test_bad_input_shows_one_line_error_and_stores_nothing(
    server: DashboardServer, client: Client, settings: dict[str, Any], expected: str
) -> None:
    before = stored_runs(server)
    result = synth_json(client, **settings)
    status = result[STATUS]
    assert status.startswith(ERROR_PREFIX), status
    assert expected in status
    assert "\n" not in status and "Traceback" not in status
    assert result[AUDIO] is None and result[STAGES]["data"] in ([], [[]]) and result[GPU_PLOT] is None
    assert result[TRACE] is None
    assert stored_runs(server) == before
    assert server.alive()


@pytest.mark.parametrize(("raw", "expected"), [
    ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
    ('{"text": "hi", "knobs": ' + '{"a": ' * 40 + "1" + "}" * 40 + "}", "nested too deeply"),
    ('{"text": "' + "a" * 300_000 + '"}', "over the limit"),
    ("{not json", "not valid JSON"),
], ids=["deep array", "deep knobs", "huge document", "broken JSON"])
def test_hostile_json_is_refused_up_front(server: DashboardServer, client: Client, raw: str, expected: str) -> None:
    before = stored_runs(server)
    status = client.predict(raw, api_name="/synthesize_json")[STATUS]
    assert status.startswith(ERROR_PREFIX) and expected in status, status[:300]
    assert "\n" not in status and "Traceback" not in status
    assert stored_runs(server) == before
    assert "RecursionError" not in server.log()
    assert_ok(synth_json(client))


def test_reference_audio_refused_for_an_engine_that_does_not_clone(
    server: DashboardServer, client: Client, tmp_path: Path
) -> None:
    wav = tmp_path / "ref.wav"
    soundfile.write(wav, np.zeros(2205, dtype=np.float32), 22050)
    before = stored_runs(server)
    result = synth_json(client, reference_audio=str(wav))
    assert "does not clone voices" in result[STATUS]
    assert stored_runs(server) == before


def test_unavailable_engine_shows_its_install_hint(server: DashboardServer, client: Client) -> None:
    name = next(name for name, available in _served_engines().items() if not available)
    before = stored_runs(server)
    result = synth_json(client, engine=name, knobs={})
    assert result[STATUS].startswith(ERROR_PREFIX)
    assert "not installed" in result[STATUS] and get_entry(name).install_hint in result[STATUS]
    assert stored_runs(server) == before


def test_bad_json_is_a_message_not_a_crash(client: Client) -> None:
    result = client.predict("{not json", api_name="/synthesize_json")
    assert "not valid JSON" in result[STATUS]
    result = client.predict('{"text": "hi", "knobs": [1, 2]}', api_name="/synthesize_json")
    assert "'knobs' must be an object" in result[STATUS]


def test_app_keeps_serving_after_bad_input_and_loses_nothing(server: DashboardServer, client: Client) -> None:
    first = synth_json(client)
    assert_ok(first)
    before = stored_runs(server)
    for _, settings, _ in BAD_INPUTS:
        synth_json(client, **settings)
    # The named-parameter endpoint: our validation, and Gradio's own range check on a slider.
    assert "text is empty" in client.predict(text="", api_name="/synthesize")[STATUS]
    with pytest.raises(AppError, match="maximum"):
        client.predict(text=TEXT, piper__length_scale=99, api_name="/synthesize")
    assert stored_runs(server) == before
    after = synth_json(client)
    assert_ok(after)
    assert stored_runs(server) == before + 1
    # Runs stored before the bad inputs are all still there, unchanged.
    (record,) = ResultsStore(server.data_dir).load_batch(first[DETAILS]["batch_id"])
    assert record.run_id == first[DETAILS]["run_ids"][0]


def test_result_rendering_flags_random_weights_and_nests_stages() -> None:
    """What a random-weights engine's batch looks like (no such engine need be installed)."""
    from dashboard.synthesize_tab import result_outputs
    from profiling.core.timer import StageTiming
    from profiling.run.runner import BenchResult
    from tests.test_store import make_record

    stages = [StageTiming("gpt", 1, 0.3, 0.1, 0), StageTiming("gpt/decode", 1, 0.2, 0.2, 1)]
    records = [make_record(random_weights=True, stages=stages, synth_s=0.5) for _ in range(2)]
    outputs = result_outputs(BenchResult("batch", records, audio=None, load_s=1.5))
    assert "RANDOM WEIGHTS — AUDIO IS NOISE" in outputs[BANNER]
    assert outputs[DETAILS]["random_weights"] is True
    assert "1.50 s" in outputs[SUMMARY]  # model load time shown when a load happened
    figure = outputs[STAGE_PLOT]
    assert list(figure.data[0].y) == ["gpt", "gpt/decode", "untimed"]  # full paths keep categories unique
    assert list(figure.layout.yaxis.ticktext) == ["gpt", "\u21b3 decode", "untimed"]  # child shown nested
    # "untimed" = 0.5 s synthesis - 0.3 s in top-level stages
    assert outputs[STAGE_PLOT].data[0].x[-1] == pytest.approx(200.0)
    # Stages, then the per-item series (token_s in make_record: 0.1 s and 0.2 s per token).
    assert list(outputs[STAGES]["stage"]) == ["gpt", "gpt/decode", "per item: token_s (2/run, 6.67/s)"]


def test_main_defaults_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    from dashboard import app

    monkeypatch.delenv("GRADIO_SERVER_NAME", raising=False)
    monkeypatch.setenv("GRADIO_SERVER_PORT", "7999")
    monkeypatch.setenv("TTSPERF_MAX_CHARS", "123")
    args = app.parse_args([])
    assert (args.host, args.port, args.max_chars, args.data_dir) == ("127.0.0.1", 7999, 123, None)
    assert app.parse_args(["--host", "0.0.0.0", "--port", "8000"]).port == 8000
    assert os.environ["GRADIO_ANALYTICS_ENABLED"] == "False"


def test_a_tab_that_fails_to_build_does_not_take_the_app_down(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from dashboard import app
    from dashboard.context import DashboardContext

    monkeypatch.setattr(app, "TABS", (("Broken", "dashboard.no_such_tab"),))
    demo = app.build_app(DashboardContext(store=ResultsStore(tmp_path)))
    texts = [str(c["props"].get("value") or "") for c in demo.get_config_file()["components"]]
    assert any("this tab failed to load (dashboard.no_such_tab)" in t for t in texts)


@pytest.mark.torch
def test_voice_conversion_section_converts_and_refuses_bad_knobs(server: DashboardServer, client: Client) -> None:
    stage = next(c for c in client.config["components"] if c["props"].get("elem_id") == "synth-convert")
    assert [value for _, value in stage["props"]["choices"]] == ["", "rvc"]
    note = next(c for c in client.config["components"] if c["props"].get("elem_id") == "synth-convert-note")
    assert note["props"]["value"].startswith("No conversion")
    before = stored_runs(server)
    # The cost here is the server's first conversion importing transformers (HuBERT) and librosa's resampler,
    # not the models (random-tiny: a narrow v2 synthesizer, a one-layer HuBERT); a short text keeps the rest small.
    tiny = {"weights": "random-tiny", "f0_method": "pm"}
    converted = (synth_json(client, text=SHORT_TEXT, convert="rvc", convert_knobs=tiny),
                 client.predict(text=SHORT_TEXT, repeats=1, warmup=0, piper__deterministic=True, convert="rvc",
                                convert_rvc__weights="random-tiny", convert_rvc__f0_method="pm",
                                convert_rvc__pitch=5, api_name="/synthesize"))
    for result in converted:
        assert_ok(result)
        rows = {row[0]: row for row in result[STAGES]["data"]}
        assert "model_inference" in rows and "rvc" in rows and any(name.endswith("synthesizer") for name in rows)
        assert "RTF: the conversion's part" in result[SUMMARY] and "rvc model load" in result[SUMMARY]
        assert "RANDOM WEIGHTS" in result[BANNER]  # the converted audio is noise
        _, rate = soundfile.read(result[AUDIO], dtype="float32")
        assert rate == 40_000
    records = [ResultsStore(server.data_dir).load_batch(result[DETAILS]["batch_id"])[0] for result in converted]
    assert [r.conversion.knobs["pitch"] for r in records if r.conversion] == [0, 5]
    assert stored_runs(server) == before + 2
    for knobs, message in (({**tiny, "pitch": 99}, "above its maximum 24"), ({"bogus": 1}, "unknown knob 'bogus'")):
        result = synth_json(client, convert="rvc", convert_knobs=knobs)
        assert result[STATUS].startswith(ERROR_PREFIX) and message in result[STATUS], result[STATUS]
    assert "need a conversion stage" in synth_json(client, convert_knobs=tiny)[STATUS]
    assert stored_runs(server) == before + 2
