"""Streaming runs end to end on real Piper: runner, store, CLI `stream`, the sweep and the Streaming tab."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from gradio_client import Client

from engines.base import SynthesisSettings
from engines.chunking import ChunkingSettings, chunk_text
from profiling.audio.playback import PlaybackSettings
from profiling.cli.main import main
from profiling.core.records import RunMode, RunRecord, RunStatus
from profiling.run.runner import BenchRequest, EnginePool, run_bench
from profiling.store.results import ResultsStore
from profiling.sweeps.streaming import StreamingSweep, replay, run_streaming_sweep
from tests.dashboard_server import DashboardServer

TEXT = (
    "Hello there, this is a streaming test. The lab chunker cuts the text into pieces, "
    "and the player is simulated over them."
)
PIPER = SynthesisSettings("piper", knobs={"deterministic": True})


def stream_request(**overrides: object) -> BenchRequest:
    fields: dict = dict(settings=PIPER, text=TEXT, mode=RunMode.STREAM, repeats=1, warmup=0,
                        chunking=ChunkingSettings(), playback=PlaybackSettings(prebuffer_ms=100))
    fields.update(overrides)
    return BenchRequest(**fields)


@pytest.fixture(scope="module")
def pool() -> EnginePool:
    return EnginePool()


def test_lab_chunker_stream_records_chunks_player_and_joins(pool: EnginePool, tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    record = run_bench(stream_request(), pool, store).records[0]
    assert record.status is RunStatus.OK
    plan = chunk_text(TEXT, ChunkingSettings())
    assert [c.text for c in record.chunks] == list(plan.chunks)
    assert "".join(c.text for c in record.chunks) == plan.normalized_text
    ready = [c.ready_s for c in record.chunks]
    assert ready == sorted(ready) and all(c.audio_s > 0 for c in record.chunks)
    assert record.audio_s == pytest.approx(sum(c.audio_s for c in record.chunks))
    report = record.playback
    assert report is not None and report.prebuffer_ms == 100
    assert report.ttfa_s == pytest.approx(record.ttfa_s)
    assert report.first_audible_s >= report.playback_start_s >= report.ttfa_s
    assert report.audio_s == pytest.approx(record.audio_s)
    assert len(record.joins) == len(record.chunks) - 1
    assert not any(j.repeated or j.click for j in record.joins)
    assert record.annotations["chunker"] == "lab"
    assert record.annotations["chunking.first_chunk_max_chars"] == 20
    stored = store.load_run(record.run_id)
    assert stored.playback == report and stored.joins == record.joins and stored.chunks == record.chunks


def test_engine_stream_gets_the_same_analysis(pool: EnginePool) -> None:
    record = run_bench(stream_request(chunking=None), pool, None).records[0]
    assert [c.text for c in record.chunks] == [
        "Hello there, this is a streaming test.",
        "The lab chunker cuts the text into pieces, and the player is simulated over them.",
    ]
    assert record.playback is not None and len(record.joins) == 1
    assert record.annotations["chunker"] == "engine" and record.chunk_warnings == []


def test_chunker_warnings_are_recorded(pool: EnginePool) -> None:
    text = "one two three four five six seven eight nine ten eleven twelve."
    record = run_bench(stream_request(text=text), pool, None).records[0]
    assert record.chunk_warnings and "chunk 0 ends without punctuation" in record.chunk_warnings[0]


def test_records_from_before_streaming_fields_still_load(pool: EnginePool) -> None:
    record = run_bench(stream_request(), pool, None).records[0]
    old = record.to_dict()
    for key in ("playback", "joins", "chunk_warnings"):
        old.pop(key)
    loaded = RunRecord.from_dict(json.loads(json.dumps(old)))
    assert loaded.playback is None and loaded.joins == [] and loaded.chunk_warnings == []


def test_a_small_first_chunk_is_ready_before_a_whole_first_sentence(pool: EnginePool) -> None:
    long_first = "This opening sentence is long on purpose, so that synthesising all of it takes a while. Then more."
    def ttfa(chunking: ChunkingSettings) -> float:
        result = run_bench(stream_request(text=long_first, chunking=chunking, repeats=3, warmup=1), pool, None)
        return min(r.ttfa_s for r in result.records if not r.warmup)
    # 5 characters against 88: the relation holds on any machine (min of 3 against noise).
    assert ttfa(ChunkingSettings(first_chunk_max_chars=5)) < ttfa(ChunkingSettings(first_chunk_max_chars=100))


def test_cli_stream_prints_every_figure_and_stores_the_runs(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(["stream", "--text", TEXT, "--data-dir", str(tmp_path), "--prebuffer-ms", "150",
                 "--first-chunk-max-chars", "15", "--knob", "deterministic=true", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    for needle in ("'Hello there,'", "TTFA", "first audible", "underruns", "total stall",
                   "inter-chunk latency p50", "p95", "p99", "repeat corr", "click", "stored 2 runs"):
        assert needle in out, needle
    runs = ResultsStore(tmp_path).runs_dataframe()
    assert len(runs) == 2 and set(runs["mode"]) == {"stream"}


@pytest.mark.parametrize(
    "args, message",
    [
        (["--prebuffer-ms", "-5"], "prebuffer_ms must be 0 or more"),
        (["--first-chunk-max-chars", "0"], "first_chunk_max_chars must be at least 1"),
        (["--chunker", "engine", "--max-chars-per-chunk", "40"], "only apply to --chunker lab"),
        (["--sweep-first-chunk", "ten"], "first-chunk sizes must be numbers"),
        (["--text", "  "], "text is empty"),
    ],
)
def test_cli_stream_bad_input_is_one_line_and_exit_2(
    args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert main(["stream", "--data-dir", str(tmp_path), *args]) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1
    assert ResultsStore(tmp_path).count_runs() == 0


def test_cli_sweep_names_the_best_setting(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    code = main(["stream", "--text", TEXT, "--data-dir", str(tmp_path), "--repeats", "1", "--warmup", "0",
                 "--sweep-first-chunk", "10,60", "--sweep-prebuffer", "0,100000", "--no-progress"])
    out = capsys.readouterr().out
    assert code == 0
    assert "best: first chunk" in out  # a pre-buffer longer than the audio never underruns
    assert ResultsStore(tmp_path).count_runs() == 2


def test_sweep_replays_the_player_over_the_stored_timings(pool: EnginePool, tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    sweep = StreamingSweep(stream_request(repeats=2, warmup=1), (8, 40), (0.0, 400.0, 100_000.0))
    result = run_streaming_sweep(sweep, pool, store)
    assert [(p.first_chunk_max_chars, p.prebuffer_ms) for p in result.points] == [
        (8, 0.0), (8, 400.0), (8, 100_000.0), (40, 0.0), (40, 400.0), (40, 100_000.0)]
    for size in (8, 40):
        row = [p for p in result.points if p.first_chunk_max_chars == size]
        assert len({p.ttfa_median_s for p in row}) == 1  # the player does not change when audio is ready
        assert row[-1].no_underrun and row[-1].first_audible_median_s >= row[0].first_audible_median_s
    assert store.count_runs() == 6  # (1 warm-up + 2) per size
    records = store.load_batch(result.batches[40])
    assert all(r.label == f"stream-sweep {result.sweep_id} first=40" for r in records)
    measured = [r for r in records if not r.warmup]
    stall = sorted(replay(r, PlaybackSettings(prebuffer_ms=400.0)).total_stall_s for r in measured)
    point = next(p for p in result.points if (p.first_chunk_max_chars, p.prebuffer_ms) == (40, 400.0))
    assert point.stall_max_s == pytest.approx(stall[-1])
    assert result.best() is not None


# --- the Streaming tab on a real server -------------------------------------------------------


def test_streaming_tab_plays_chunks_as_they_come_and_stores_the_run(server: DashboardServer, client: Client) -> None:
    job = client.submit(TEXT, api_name="/stream")
    updates = list(job)
    final = job.result()
    streamed = [u for u in updates if isinstance(u[0], str) and u[1].startswith("chunk ")]
    assert len(streamed) >= 2 and all(Path(u[0]).is_file() for u in streamed)  # one audio piece per chunk
    status, timeline, summary, joins, chunks, trace = final[1:]
    assert status.startswith("**Done:**")
    events = json.loads(Path(trace).read_text(encoding="utf-8"))["traceEvents"]
    tracks = {e["args"]["name"] for e in events if e["ph"] == "M" and e["name"] == "thread_name"}
    assert {"chunk synthesis", "player"} <= tracks  # "Download trace": the stream's two tracks
    figure = json.loads(timeline["plot"])
    rows = {trace.get("y", [None])[0] for trace in figure["data"]}
    assert {"synthesis", "playback"} <= rows
    assert "TTFA" in summary and "underruns" in summary
    assert chunks["headers"][:2] == ["chunk", "text"] and len(chunks["data"]) == len(streamed)
    assert len(joins["data"]) == len(streamed) - 1
    runs = ResultsStore(server.data_dir).runs_dataframe()
    stream_runs = runs[runs["mode"] == "stream"]
    assert len(stream_runs) >= 1
    record = ResultsStore(server.data_dir).load_run(stream_runs["run_id"].iloc[-1])
    assert record.playback is not None and record.annotations["chunker"] == "lab"


def test_streaming_tab_underruns_are_red_on_the_timeline() -> None:
    # Whether a live run underruns depends on the machine's speed, so the timeline is drawn from a
    # hand-made timeline: chunk 2 is ready 1 s after chunk 1, which plays for 0.3 s.
    from dashboard.streaming_tab import summary_markdown
    from profiling.analysis.run_plots import UNDERRUN_COLOR, timeline_figure
    from profiling.audio.playback import PlaybackSettings, simulate_playback
    from profiling.core.records import ChunkTiming
    from tests.test_store import make_record

    ready, durations = [0.1, 1.1], [0.3, 2.0]
    record = make_record(
        chunks=[ChunkTiming(0, "Hi, ", ready[0], durations[0]), ChunkTiming(1, "the rest.", ready[1], durations[1])],
        playback=simulate_playback(ready, durations, PlaybackSettings(prebuffer_ms=0)),
        synth_s=1.1, audio_s=2.3, ttfa_s=0.1,
    )
    assert record.playback is not None and len(record.playback.underruns) == 1
    figure = timeline_figure(record)
    red = [t for t in figure.data if getattr(t.marker, "color", None) == UNDERRUN_COLOR]
    assert red
    assert "| underruns | 0 |" not in summary_markdown(record)
    assert "| stage timing | wall |" in summary_markdown(record)  # the mode the run recorded, shown with it
    clean = make_record(
        chunks=record.chunks,
        playback=simulate_playback(ready, durations, PlaybackSettings(prebuffer_ms=2000)),
    )
    assert not [t for t in timeline_figure(clean).data if getattr(t.marker, "color", None) == UNDERRUN_COLOR]


def test_streaming_tab_bad_input_is_a_message(client: Client) -> None:
    final = client.predict("   ", api_name="/stream")
    assert final[1].startswith("**Error:**") and "text is empty" in final[1]


def test_streaming_tab_sweep_plots_and_stores(server: DashboardServer, client: Client) -> None:
    before = ResultsStore(server.data_dir).count_runs()
    api = client.view_api(return_format="dict", print_info=False)["named_endpoints"]["/stream_sweep"]
    names = {p["label"]: p["parameter_name"] for p in api["parameters"]}
    grid = {names["first_chunk_max_chars values"]: "10, 60", names["prebuffer_ms values"]: "0, 100000",
            names["repeats per size"]: 1}
    status, latency, stall, table = client.predict(**grid, api_name="/stream_sweep")
    assert status.startswith("**Done:**") and "Lowest first audio with no underrun" in status
    assert json.loads(latency["plot"])["data"] and json.loads(stall["plot"])["data"]
    assert len(table["data"]) == 4
    assert ResultsStore(server.data_dir).count_runs() == before + 2 * (1 + 1)  # warm-up + 1 repeat per size
