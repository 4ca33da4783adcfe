"""Trace export on real runs: Piper (deterministic, short text) through profiling.api into an isolated store,
the lab server and the null target on loopback, real SQLite. Each trace is checked against the Chrome trace
event format's documented fields (no offline trace viewer runs here: Debian's Chromium has chrome://tracing
disabled, and Perfetto's UI and trace processor are fetched from the network), and by the rules the viewers
rely on: times in microseconds and non-negative, slices on one track nested or disjoint, every process and
thread named. No absolute time is asserted; only relations that hold on any machine.
"""

from __future__ import annotations

import copy
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from engines.registry import available_engines
from profiling import api
from profiling.audio.playback import PlaybackSettings, simulate_playback
from profiling.cli.main import main
from profiling.core.records import RunRecord
from profiling.loadgen.client import ClientOptions
from profiling.loadgen.runner import LoadTest
from profiling.loadgen.targets import TargetSpec
from profiling.store.results import ResultsStore
from profiling.trace import TraceBuilder, resolve_kind, runs_trace, trace_for
from profiling.trace.profiles import merge_torch_trace

TEXT = "Hello there. This is a short test of the lab."
PIPER = {"deterministic": True, "intra_op_threads": 1}
#: Rounding slack when comparing microsecond floats (the writer keeps whole nanoseconds).
EPS_US = 0.002
METADATA = {"process_name": "name", "thread_name": "name", "process_sort_index": "sort_index",
            "thread_sort_index": "sort_index"}


# --- the format's rules, checked on any trace ------------------------------------------------------------------
def check_trace(trace: dict[str, Any]) -> list[dict[str, Any]]:
    """Every rule of the format the viewers rely on; returns the timed events."""
    json.dumps(trace, allow_nan=False)  # plain JSON: no NaN, no objects
    assert isinstance(trace["traceEvents"], list) and trace.get("displayTimeUnit") in ("ms", "ns")
    timed, named_pids, named_threads = [], set(), set()
    for event in trace["traceEvents"]:
        assert isinstance(event["name"], str) and isinstance(event["pid"], int) and isinstance(event["tid"], int)
        assert isinstance(event["args"], dict)
        if event["ph"] == "M":
            key = METADATA[event["name"]]
            assert isinstance(event["args"][key], str if key == "name" else int)
            if event["name"] == "process_name":
                named_pids.add(event["pid"])
            elif event["name"] == "thread_name":
                named_threads.add((event["pid"], event["tid"]))
            continue
        assert event["ph"] in ("X", "i"), event
        assert isinstance(event["cat"], str) and event["cat"]
        assert isinstance(event["ts"], int | float) and event["ts"] >= 0
        if event["ph"] == "X":
            assert isinstance(event["dur"], int | float) and event["dur"] >= 0
        else:
            assert event["s"] in ("t", "p", "g")
        timed.append(event)
    used = {(e["pid"], e["tid"]) for e in timed}
    assert {pid for pid, _ in used} <= named_pids, "a process without a name"
    assert used <= named_threads, "a thread without a name"
    check_nesting([e for e in timed if e["ph"] == "X"])
    return timed


def check_nesting(slices: list[dict[str, Any]]) -> None:
    """On one track, a slice starting inside another ends inside it too (no partial overlap)."""
    tracks: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    for event in slices:
        tracks[(event["pid"], event["tid"])].append(event)
    for key, events in tracks.items():
        stack: list[float] = []
        for event in sorted(events, key=lambda e: (e["ts"], -e["dur"])):
            start, end = event["ts"], event["ts"] + event["dur"]
            while stack and stack[-1] <= start + EPS_US:
                stack.pop()
            assert not stack or end <= stack[-1] + EPS_US, f"{event['name']} overlaps its neighbour on {key}"
            stack.append(end)


def threads(trace: dict[str, Any]) -> dict[tuple[int, int], str]:
    return {(e["pid"], e["tid"]): e["args"]["name"] for e in trace["traceEvents"] if e["name"] == "thread_name"}


def processes(trace: dict[str, Any]) -> dict[int, str]:
    return {e["pid"]: e["args"]["name"] for e in trace["traceEvents"] if e["name"] == "process_name"}


def inside(inner: dict[str, Any], outer: dict[str, Any]) -> bool:
    end = inner["ts"] + inner.get("dur", 0)
    return outer["ts"] - EPS_US <= inner["ts"] and end <= outer["ts"] + outer["dur"] + EPS_US


# --- the track allocator --------------------------------------------------------------------------------------
def test_a_partial_overlap_opens_a_second_track_and_nested_slices_share_one() -> None:
    builder = TraceBuilder("allocator")
    lane = builder.lane(builder.process("p"), "work")
    outer = lane.add("outer", "t", 0.0, 1.0)
    assert lane.add("inner", "t", 0.2, 0.3) == outer
    assert lane.add("after", "t", 1.0, 0.5) == outer  # touching is not overlapping
    assert lane.add("straddles", "t", 0.9, 0.4) != outer
    assert lane.add("no time", "t", float("nan"), 1.0) is None
    trace = builder.to_dict()
    check_trace(trace)
    assert sorted(threads(trace).values()) == ["work", "work (2)"]


def test_any_order_of_slices_keeps_every_track_properly_nested() -> None:
    import random

    rng = random.Random(7)
    for trial in range(300):
        builder = TraceBuilder("random")
        lane = builder.lane(builder.process("p"), "work")
        slices = [(rng.randint(0, 50) / 10, rng.randint(0, 20) / 10) for _ in range(rng.randint(1, 40))]
        if trial % 3 == 0:
            slices.sort(key=lambda s: (s[0], -s[1]))  # the usual order: parents first
        elif trial % 3 == 1:
            slices.sort(key=lambda s: s[0])
        for start, duration in slices:
            lane.add("slice", "t", start, duration)
        check_trace(builder.to_dict())


def test_a_run_after_a_long_batch_is_placed_without_rescanning_the_track() -> None:
    builder = TraceBuilder("long")
    lane = builder.lane(builder.process("p"), "runs")
    for run in range(3000):  # in start order, as runs and their stages arrive: one track, nothing rescanned
        lane.add("run", "run", run * 1.0, 0.9)
        for stage in range(6):
            lane.add("stage", "stage", run + stage * 0.1, 0.1)
    assert len(threads(builder.to_dict())) == 1
    assert all(track._ordered for track in lane._tracks)


# --- runs and batches -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> ResultsStore:
    return ResultsStore(tmp_path_factory.mktemp("trace-store"))


@pytest.fixture(scope="module")
def benched(store: ResultsStore) -> api.BenchRun:
    api.shared_pool().clear()  # a fresh load: the first run carries the load and its stages
    return api.run_request(api.bench_request("piper", TEXT, repeats=2, warmup=1, knobs=PIPER), store=store)


def test_a_batch_trace_nests_every_stage_in_its_run_with_the_load_before(benched: api.BenchRun) -> None:
    trace = benched.trace()
    timed = check_trace(trace)
    runs = [e for e in timed if e["cat"] == "run"]
    assert len(runs) == len(benched.records) == 3
    for record, event in zip(sorted(benched.records, key=lambda r: r.created_at), runs, strict=True):
        assert event["args"]["run_id"] == record.run_id
        assert abs(event["dur"] - record.synth_s * 1e6) <= 1.0  # microseconds
    stages = [e for e in timed if e["cat"] == "stage"]
    assert len(stages) == sum(len(r.spans) for r in benched.records) > 0
    for stage in stages:
        assert sum(inside(stage, run) and stage["tid"] == run["tid"] for run in runs) == 1
    (load,) = [e for e in timed if e["cat"] == "load"]
    assert load["ts"] + load["dur"] <= runs[0]["ts"] + EPS_US
    load_stages = [e for e in timed if e["cat"] == "load.stage"]
    assert load_stages and all(inside(s, load) for s in load_stages)
    assert {e["args"]["path"] for e in load_stages} >= {s.name for s in benched.records[0].load_stages}


def test_a_run_stored_before_spans_were_kept_shows_its_totals_nested(benched: api.BenchRun) -> None:
    old = copy.deepcopy(benched.records[1])
    old.spans, old.load_spans = [], []
    timed = check_trace(runs_trace([old]))
    (run,) = [e for e in timed if e["cat"] == "run"]
    totals = [e for e in timed if e["cat"] == "stage.totals"]
    assert len(totals) == len(old.stages) and all(inside(t, run) for t in totals)


def test_cli_writes_a_trace_for_a_run_id_a_batch_id_and_a_prefix(
    benched: api.BenchRun, store: ResultsStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record = benched.records[-1]
    out = tmp_path / "run.json"
    assert main(["trace", record.run_id, "-o", str(out), "--data-dir", str(store.data_dir)]) == 0
    one = json.loads(out.read_text())
    assert [e["args"]["run_id"] for e in check_trace(one) if e["cat"] == "run"] == [record.run_id]
    assert str(out) in capsys.readouterr().out
    out = tmp_path / "batch.json"
    assert main(["trace", benched.batch_id[:10], "--kind", "run", "-o", str(out),
                 "--data-dir", str(store.data_dir)]) == 0
    assert sum(e.get("cat") == "run" for e in check_trace(json.loads(out.read_text()))) == 3


def test_cli_unknown_id_is_one_line_and_exit_2(
    store: ResultsStore, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["trace", "no-such-id", "-o", str(tmp_path / "x.json"), "--data-dir", str(store.data_dir)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1 and "no-such-id" in err
    assert not (tmp_path / "x.json").exists()


# --- streams ----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def streamed(store: ResultsStore) -> api.StreamRun:
    request = api.stream_request("piper", TEXT, first_chunk_max_chars=20, repeats=1, warmup=0, knobs=PIPER)
    run = api.run_request(request, store=store)
    assert isinstance(run, api.StreamRun)
    return run


def test_a_stream_trace_draws_each_chunk_beside_its_playback(streamed: api.StreamRun, store: ResultsStore) -> None:
    (record,) = streamed.records
    assert len(record.chunks) >= 2 and record.playback is not None
    assert resolve_kind(record.batch_id, store) == "stream"
    trace = trace_for(None, record.run_id, store)
    timed = check_trace(trace)
    names = threads(trace)
    chunks = [e for e in timed if e["cat"] == "chunk"]
    plays = [e for e in timed if e["cat"] == "playback" and e["ph"] == "X"]
    assert [e["args"]["index"] for e in chunks] == [c.index for c in record.chunks]
    assert {names[(e["pid"], e["tid"])] for e in chunks} == {"chunk synthesis"}
    assert {names[(e["pid"], e["tid"])] for e in plays} == {"player"}
    (run,) = [e for e in timed if e["cat"] == "run"]
    for chunk, event in zip(record.chunks, chunks, strict=True):
        assert abs(event["ts"] + event["dur"] - (run["ts"] + chunk.ready_s * 1e6)) <= 1.0
        # a chunk plays only once it is ready
        assert all(p["ts"] >= event["ts"] + event["dur"] - EPS_US for p in plays if p["args"]["index"] == chunk.index)
    played = sum(p["dur"] for p in plays) / 1e6
    assert abs(played - record.playback.audio_s) <= 1e-3
    assert not [e for e in timed if e["cat"] == "underrun"] or record.playback.underruns


def test_underruns_are_instants_on_the_player_lane(streamed: api.StreamRun) -> None:
    record: RunRecord = copy.deepcopy(streamed.records[0])
    # The same chunks, the second made late: the player must run dry once.
    ready = [c.ready_s for c in record.chunks]
    ready[1:] = [r + record.chunks[0].audio_s + 1.0 for r in ready[1:]]
    record.playback = simulate_playback(ready, [c.audio_s for c in record.chunks], PlaybackSettings())
    for chunk, at in zip(list(record.chunks), ready, strict=True):
        record.chunks[chunk.index] = type(chunk)(chunk.index, chunk.text, at, chunk.audio_s)
    timed = check_trace(runs_trace([record]))
    instants = [e for e in timed if e["cat"] == "underrun" and e["ph"] == "i"]
    stalls = [e for e in timed if e["cat"] == "underrun" and e["ph"] == "X"]
    assert len(instants) == len(stalls) == record.playback.underrun_count >= 1
    assert all(s["dur"] > 0 for s in stalls)


# --- profiles ---------------------------------------------------------------------------------------------------
def test_a_profile_trace_has_the_plain_and_profiled_runs(store: ResultsStore) -> None:
    profiled = api.run_profile_request(
        api.profile_request("piper", "Profile me.", profilers="cprofile", repeats=1, warmup=0, knobs=PIPER),
        store=store)
    trace = profiled.trace()
    timed = check_trace(trace)
    names = sorted(processes(trace).values())
    assert names[0].startswith("plain (no profiler)") and names[1].startswith("profiler cprofile")
    run_id = profiled.report.result("cprofile").run_id
    assert run_id is not None and resolve_kind(run_id, store) == "profile"
    assert sum(e.get("cat") == "run" for e in check_trace(trace_for(None, run_id, store))) == 1
    assert sum(e["cat"] == "run" for e in timed) == 2


@pytest.mark.torch
@pytest.mark.skipif("f5" not in available_engines(), reason="the f5 extra is not installed")
def test_torch_profilers_trace_is_merged_on_the_lab_clock(store: ResultsStore, one_torch_thread: None) -> None:
    import torch

    torch.set_num_threads(1)
    profiled = api.run_profile_request(api.profile_request(
        "f5", "Hello there.", profilers="torch", repeats=1, warmup=0,
        knobs={"weights": "random-tiny", "nfe_step": 2}), store=store)
    trace = profiled.trace()
    timed = check_trace(trace)
    (merged,) = trace["otherData"]["torch_traces"]
    anchor = merged["anchor_stage"]
    assert anchor, "torch's trace has the lab's stage ranges"
    assert any(name.startswith("torch: ") for name in processes(trace).values())
    lab = next(e for e in timed if e["cat"] == "stage" and e["args"]["path"] == anchor
               and any(r["args"]["run_id"] == merged["run_id"] and inside(e, r) for r in timed if r["cat"] == "run"))
    torch_anchor = min((e for e in timed if e["name"] == f"stage:{anchor}"), key=lambda e: e["ts"])
    assert abs(torch_anchor["ts"] - lab["ts"]) <= 1.0  # the common anchor: same microsecond
    # torch's own ranges of the lab's stages lie (nearly) where the lab measured them
    ranges = [e for e in timed if e["name"].startswith("stage:")]
    run = next(r for r in timed if r["cat"] == "run" and r["args"]["run_id"] == merged["run_id"])
    assert all(run["ts"] - 1000 <= e["ts"] <= run["ts"] + run["dur"] + 1000 for e in ranges)
    # from the store, by the profiled run's id: the same merge
    stored = trace_for(None, merged["run_id"], store)
    assert [m["anchor_stage"] for m in stored["otherData"]["torch_traces"]] == [anchor]
    assert sum(e["name"].startswith("stage:") for e in check_trace(stored)) == len(ranges)


def test_merging_needs_the_anchor_on_both_sides(benched: api.BenchRun) -> None:
    builder = TraceBuilder("no anchor")
    events = [{"ph": "X", "name": "aten::mm", "ts": 5.0, "dur": 1.0, "pid": 1, "tid": 1}]
    assert merge_torch_trace(builder, events, benched.records[1], 0.0) is None
    assert builder.events == []


# --- load tests -------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def loaded(store: ResultsStore) -> api.LoadRun:
    """Three users at once on one worker that keeps no queue: the first is served, the others mostly refused."""
    target = TargetSpec(kind="lab", engine="piper", workers=1, queue_size=0,
                        knobs=tuple((k, str(v).lower()) for k, v in PIPER.items()))
    test = LoadTest(target=target, users=(3,), duration_s=2.0, max_requests=10, client=ClientOptions(warmup=0))
    return api.run_load(test, store=store)


def test_a_load_trace_lines_up_client_and_server_per_request(loaded: api.LoadRun, store: ResultsStore) -> None:
    test_id = loaded.result.test_id
    assert resolve_kind(test_id, store) == "load"
    trace = trace_for("load", test_id, store)
    assert trace == json.loads(json.dumps(loaded.trace()))  # stored and in-memory draw the same
    timed = check_trace(trace)
    procs = processes(trace)
    names = threads(trace)
    client = next(pid for pid, name in procs.items() if name.startswith("client"))
    workers = {pid for pid, name in procs.items() if name.startswith("server worker")}
    assert len(workers) == 1  # one process per worker; this server has one
    rows = [r for run in loaded.result.runs for r in run.rows]
    ok = [r for r in rows if r.ok]
    assert ok and all(r.ok or r.http_status == 429 for r in rows)
    for row in ok:
        lane = {tid for (pid, tid), name in names.items() if pid == client and row.request_id[:12] in name}
        mine = [e for e in timed if e["pid"] == client and e["tid"] in lane]
        (request,) = [e for e in mine if e["cat"] == "client.request"]
        assert abs(request["dur"] - row.e2e_s * 1e6) <= 1.0
        assert len([e for e in mine if e["cat"] == "client.read"]) == len(row.reads)
        (ttfb,) = [e for e in mine if e["cat"] == "client.ttfb"]
        assert inside(ttfb, request)
        server = [e for e in timed if e["pid"] in workers and e["args"].get("request_id") == row.request_id]
        (serve,) = [e for e in server if e["cat"] == "server.serve"]
        first_chunk = min(e["ts"] for e in server if e["cat"] == "server.chunk_ready")
        # the server's first chunk lies within the client's dispatch .. end
        assert request["ts"] - EPS_US <= first_chunk <= request["ts"] + request["dur"] + EPS_US
        assert request["ts"] - EPS_US <= serve["ts"] <= request["ts"] + request["dur"]
        stages = [e for e in server if e["cat"] == "server.stage"]
        assert stages and all(inside(s, serve) for s in stages)
        queue = [e for e in server if e["cat"] == "server.queue"]
        assert len(queue) == 1 and queue[0]["ts"] + queue[0]["dur"] <= serve["ts"] + EPS_US


def test_refusals_are_instants_on_both_sides(loaded: api.LoadRun) -> None:
    trace = loaded.trace()
    timed = check_trace(trace)
    refused = [r for run in loaded.result.runs for r in run.rows if r.http_status == 429]
    assert refused, "three users on a worker without a queue: someone is refused"
    client = [e for e in timed if e["cat"] == "refusal" and e["pid"] == 1]
    assert sorted(e["args"]["request_id"] for e in client) == sorted(r.request_id for r in refused)
    assert all(e["ph"] == "i" and e["name"] == "refused (429)" for e in client)
    door = [pid for pid, name in processes(trace).items() if name.startswith("server: refused")]
    server = [e for e in timed if e["cat"] == "refusal" and e["pid"] in door]
    assert sorted(e["args"]["request_id"] for e in server) == sorted(r.request_id for r in refused)


def test_a_null_target_load_trace_has_client_lanes_only(tmp_path: Path) -> None:
    run = api.load(null_target=True, rates=(4.0,), duration_s=1.5, max_requests=6, warmup=0, data_dir=tmp_path)
    trace = run.trace(tmp_path / "null.json")
    assert json.loads((tmp_path / "null.json").read_text()) == json.loads(json.dumps(trace))
    timed = check_trace(trace)
    assert list(processes(trace).values()) == ["client (load generator)"]
    sent = sum(len(r.rows) for r in run.result.runs)
    assert sum(e["cat"] == "client.request" for e in timed) == sent > 0


# --- sweeps -----------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def swept(store: ResultsStore) -> api.SweepRun:
    return api.sweep({"name": "trace-test", "engines": [{"engine": "piper", "knobs": {"deterministic": True},
                                                         "grid": {"length_scale": [1.0, 1.3]}}],
                      "texts": {"inline": ["Turn left here."]}, "repeats": 1, "warmup": 1, "save_audio": False},
                     store=store)


def test_a_sweep_trace_has_one_lane_per_unit(swept: api.SweepRun, store: ResultsStore) -> None:
    assert resolve_kind("trace-test", store) == "sweep"
    trace = swept.trace()
    assert trace == trace_for(None, "sweep:trace-test", store)
    timed = check_trace(trace)
    frame = swept.to_dataframe()
    units = set(frame["unit"])
    lanes = {name for name in threads(trace).values() if name.startswith("unit ")}
    assert lanes == {f"unit {u}" for u in units}
    runs = [e for e in timed if e["cat"] == "run"]
    assert {e["args"]["run_id"] for e in runs} >= set(frame["run_id"])
    assert any(e["name"].endswith("warm-up") for e in runs)


def test_trace_for_refuses_a_kind_that_does_not_match(store: ResultsStore, swept: api.SweepRun) -> None:
    from engines.errors import InputError

    with pytest.raises(InputError, match="no load test"):
        trace_for("load", "trace-test", store)
    with pytest.raises(InputError, match="not one of"):
        trace_for("movie", "trace-test", store)


def test_only_the_api_and_the_cli_import_the_trace_package() -> None:
    import ast

    from tests.conftest import REPO_ROOT

    allowed = ("profiling/trace/", "profiling/api/", "profiling/cli/")
    wrong = []
    for path in sorted((REPO_ROOT / "profiling").rglob("*.py")) + sorted((REPO_ROOT / "dashboard").rglob("*.py")):
        relative = path.relative_to(REPO_ROOT).as_posix()
        if relative.startswith(allowed):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            wrong += [f"{relative} imports {n}" for n in names if n == "profiling.trace" or
                      n.startswith("profiling.trace.")]
    assert not wrong, wrong
