"""Serving and load on real parts: the lab server (real Piper audio) and the null/fault target as real
subprocesses on loopback, real HTTP, real SQLite. No absolute time is a pass/fail condition: only
relations that hold on any machine (nested intervals, more faults -> more failures).
"""

from __future__ import annotations

import io
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import soundfile

from engines.base import SynthesisSettings, Voice
from engines.errors import InputError
from profiling.cli.main import main
from profiling.loadgen.client import ClientOptions, RateRun, RequestRow, run_rate
from profiling.loadgen.metrics import Distribution, Slo, capacity, rate_metrics
from profiling.loadgen.null_target import FaultSettings
from profiling.loadgen.runner import LoadTest, run_load_test
from profiling.loadgen.schedule import arrival_schedule, closed_loop, parse_rates
from profiling.loadgen.targets import Target, TargetSpec, running_target
from profiling.serve.protocol import ApiError
from profiling.serve.scheduler import Job
from profiling.serve.timeline import ServerTimeline
from profiling.serve.workers import WorkerPool
from profiling.store.load import LoadStore
from profiling.store.results import ResultsStore
from tests.conftest import REPO_ROOT

TEXTS = [("t-0", "Turn left here."), ("t-1", "The lab measures speech. Every stage is timed.")]
PIPER_KNOBS = (("deterministic", "true"), ("intra_op_threads", "1"))


@pytest.fixture(scope="module")
def piper_target() -> Iterator[Target]:
    spec = TargetSpec(kind="lab", engine="piper", workers=1, knobs=PIPER_KNOBS, queue_size=8)
    with running_target(spec) as target:
        yield target


@pytest.fixture(scope="module")
def null_target() -> Iterator[Target]:
    with running_target(TargetSpec(kind="null", faults=FaultSettings(audio_s=0.6, chunk_ms=100))) as target:
        yield target


def faults(settings: FaultSettings, **options: object) -> ClientOptions:
    return ClientOptions(warmup=0, headers=(("X-Faults", settings.to_json()),), **options)  # type: ignore[arg-type]


def burst(rate: float, duration: float, seed: int = 1) -> object:
    return arrival_schedule(rate, duration, seed)


# --- the schedule (pure) ---------------------------------------------------------------------------
def test_poisson_schedule_has_its_mean_rate_and_spread_for_a_fixed_seed() -> None:
    schedule = arrival_schedule(10.0, 200.0, seed=7)
    gaps = np.diff((0.0, *schedule.offsets_s))
    assert abs(len(gaps) / 200.0 - 10.0) < 0.5  # ~2000 arrivals: the rate within 5 %
    assert abs(gaps.std() / gaps.mean() - 1.0) < 0.08  # exponential gaps: coefficient of variation 1
    assert arrival_schedule(10.0, 200.0, seed=7) == schedule  # seeded: the same instants again
    assert arrival_schedule(10.0, 200.0, seed=8).offsets_s != schedule.offsets_s
    bursty = np.diff(arrival_schedule(10.0, 200.0, seed=7, burstiness=0.25).offsets_s)
    assert abs(bursty.std() / bursty.mean() - 2.0) < 0.3  # gamma shape 0.25: CV 1/sqrt(0.25)
    assert len(arrival_schedule(10.0, 200.0, seed=7, max_requests=5).offsets_s) == 5


@pytest.mark.parametrize("call", [
    lambda: arrival_schedule(0.0, 10, 0), lambda: arrival_schedule(-1.0, 10, 0),
    lambda: arrival_schedule(1.0, 1e9, 0), lambda: arrival_schedule(1.0, 10, 0, burstiness=0),
    lambda: closed_loop(100_000, 10, 0), lambda: parse_rates("1,x"), lambda: parse_rates("2,-1"),
    lambda: Slo(ttfa_ms=-5),
])
def test_bad_load_settings_are_input_errors(call: object) -> None:
    with pytest.raises(InputError):
        call()  # type: ignore[operator]


# --- metrics (pure) ----------------------------------------------------------------------------------
def test_distribution_is_nearest_rank_and_counts_missing() -> None:
    dist = Distribution.of("x", [0.1 * i for i in range(1, 21)] + [None, float("nan")])
    assert (dist.samples, dist.missing) == (20, 2)
    assert dist.p50 == pytest.approx(1.0) and dist.p95 == pytest.approx(1.9) and dist.p99 == pytest.approx(2.0)
    assert Distribution.of("x", [None]).samples == 0


def _run(rate: float, ttfa: float, underruns: int = 0) -> RateRun:
    schedule = arrival_schedule(rate, 10.0, 0)
    rows = tuple(RequestRow(f"r{i}", i, False, "t", 5, t, dispatch_s=t, lag_s=0.0, audible_ttfa_s=ttfa, e2e_s=1.0,
                            audio_s=2.0, underruns=underruns) for i, t in enumerate(schedule.offsets_s))
    return RateRun(schedule, rows, 11.0, 0.1, None, 0.0)


def test_capacity_is_the_highest_rate_below_the_first_miss() -> None:
    slo = Slo(ttfa_ms=500)
    metrics = [rate_metrics(_run(1, 0.2), slo), rate_metrics(_run(2, 0.3), slo),
               rate_metrics(_run(4, 0.9), slo), rate_metrics(_run(8, 0.2), slo)]
    assert [m.slo_met for m in metrics] == [True, True, False, True]
    found = capacity(metrics, slo)
    assert found.rate_per_s == 2 and "4/s" in (found.first_miss or "")
    assert rate_metrics(_run(1, 0.2, underruns=1), slo).slo_met is False
    assert capacity([rate_metrics(_run(1, 0.9), slo)], slo).rate_per_s is None


# --- the lab server with real Piper audio --------------------------------------------------------------
def test_piper_server_streams_real_audio_and_client_and_server_timelines_join(piper_target: Target) -> None:
    run = run_rate(piper_target, arrival_schedule(3.0, 1.5, seed=3, max_requests=4), TEXTS,
                   ClientOptions(warmup=0))
    assert run.rows and all(r.ok for r in run.rows), [r.error for r in run.rows]
    for row in run.rows:
        # Nested instants: bytes before playable before audible before the end.
        assert 0 <= row.ttfb_s <= row.first_playable_s <= row.audible_ttfa_s <= row.e2e_s
        assert 0.5 < row.audio_s < 10 and row.leading_silence_s < row.audio_s
        assert row.underruns is not None and row.rtf and row.rtf > 0
        timeline = run.server[row.request_id]  # joined by the id the client sent
        assert timeline["status"] == "ok" and timeline["worker"] == 0
        # The server's interval [receipt, first chunk ready] lies inside the client's [dispatch, first byte].
        assert timeline["queue_wait_s"] <= timeline["first_chunk_s"] <= row.ttfb_s
        assert sum(c["bytes"] for c in timeline["chunks"]) == row.bytes
        assert {"phonemization", "model_inference"} <= {s["path"] for s in timeline["stages"]}
    metrics = rate_metrics(run, Slo(ttfa_ms=60_000))
    assert metrics.joined == len(run.rows) and metrics.queue_wait_p50_s is not None


def test_piper_server_answers_wav_health_models_and_refuses_bad_input(piper_target: Target) -> None:
    base = piper_target.base_url
    assert httpx.get(base + "/health").json()["status"] == "ok"
    assert [m["id"] for m in httpx.get(base + "/v1/models").json()["data"]] == ["piper"]
    answer = httpx.post(base + "/v1/audio/speech", json={"input": "Hello there.", "response_format": "wav",
                                                         "stream": False}, timeout=60)
    assert answer.status_code == 200 and answer.headers["x-request-id"]
    samples, rate = soundfile.read(io.BytesIO(answer.content), dtype="float32")
    # OpenAI's rate by default (Piper's 22050 resampled), the engine's own when asked for.
    assert rate == 24000 and answer.headers["x-sample-rate"] == "24000"
    assert len(samples) > rate * 0.3 and float(np.abs(samples).max()) > 0.1
    native = httpx.post(base + "/v1/audio/speech", json={"input": "Hello there.", "response_format": "wav",
                                                         "stream": False, "sample_rate": "native"}, timeout=60)
    native_samples, native_rate = soundfile.read(io.BytesIO(native.content), dtype="float32")
    assert native_rate == 22050 and native.headers["x-sample-rate"] == "22050"
    assert abs(len(native_samples) / native_rate - len(samples) / rate) < 0.001
    bad = [
        (b"{not json", "not valid JSON"), (json.dumps({"input": "  "}).encode(), "empty"),
        (json.dumps({"input": "x" * 3000}).encode(), "over this server's limit"),
        (json.dumps({"input": "a\x00b"}).encode(), "control characters"),
        (json.dumps({"input": "hi", "voice": "nobody"}).encode(), "unknown voice"),
        (json.dumps({"input": "hi", "response_format": "mp3"}).encode(), "unsupported response_format"),
        (json.dumps({"input": "hi", "model": "tts-9"}).encode(), "unknown model"),
        (json.dumps(["input"]).encode(), "JSON object"),
        (json.dumps({"input": "hi", "sample_rate": 12345}).encode(), "'sample_rate' must be"),
        (json.dumps({"input": "hi", "first_chunk_chars": 0}).encode(), "'first_chunk_chars' must be"),
        (json.dumps({"input": "hi", "chunker": "magic"}).encode(), "'chunker' must be"),
    ]
    for body, reason in bad:
        response = httpx.post(base + "/v1/audio/speech", content=body, headers={"content-type": "application/json"})
        assert response.status_code == 400 and reason in response.json()["error"]["message"], response.text
    assert httpx.get(base + "/v1/timelines/nope").status_code == 404


def test_a_full_queue_answers_429_with_a_reason() -> None:
    pool = WorkerPool(SynthesisSettings("piper"), workers=1, queue_size=0)  # not started: nothing is taken
    job = lambda: Job("hi", Voice(), ServerTimeline("r", 0.0, 2), 0.0, 0.0, lambda e: None)  # noqa: E731
    pool.submit(job())  # the idle worker's slot
    with pytest.raises(ApiError) as refused:
        pool.submit(job())
    assert refused.value.status == 429 and "busy" in refused.value.message


# --- faults: each one counted where it belongs ------------------------------------------------------------
def test_faults_are_counted_never_crash(null_target: Target) -> None:
    schedule = arrival_schedule(20.0, 0.5, seed=2, max_requests=6)
    clean = run_rate(null_target, schedule, TEXTS, ClientOptions(warmup=0))
    assert all(r.ok and r.underruns == 0 for r in clean.rows)
    stalled = run_rate(null_target, schedule, TEXTS, faults(FaultSettings(audio_s=0.6, stall_after=0, stall_ms=300)))
    assert all(r.ok for r in stalled.rows) and all(r.underruns >= 1 for r in stalled.rows)
    assert min(r.gap_max_s for r in stalled.rows) > max(r.gap_max_s or 0 for r in clean.rows)
    failing = run_rate(null_target, schedule, TEXTS, faults(FaultSettings(error_every=1)))
    assert {r.status for r in failing.rows} == {"http_5xx"} and all("injected" in r.error for r in failing.rows)
    for fault, kind in [(FaultSettings(non_audio=True), "not_audio"), (FaultSettings(malformed_pcm=True),
                        "malformed_pcm"), (FaultSettings(break_after=2), "broken_stream")]:
        rows = run_rate(null_target, schedule, TEXTS, faults(fault)).rows
        assert {r.status for r in rows} == {kind}, [r.error for r in rows]
    # A stall longer than the client's stall timeout is a failure of its own kind.
    cut = run_rate(null_target, arrival_schedule(5.0, 0.2, seed=2, max_requests=1), TEXTS,
                   faults(FaultSettings(stall_after=0, stall_ms=1500), stall_timeout_s=0.3))
    assert [r.status for r in cut.rows] == ["stall"]
    hanging = run_rate(null_target, schedule, TEXTS, faults(FaultSettings(stall_after=0, stall_ms=3000), drain_s=0.3))
    assert len(hanging.rows) == len(schedule.offsets_s) and {r.status for r in hanging.rows} == {"timeout"}
    assert rate_metrics(failing, Slo()).errors == {"http_5xx": len(schedule.offsets_s)}


def test_closed_loop_users_never_exceed_their_count(null_target: Target) -> None:
    run = run_rate(null_target, closed_loop(2, 0.6, seed=0, max_requests=8), TEXTS, ClientOptions(warmup=0))
    assert 2 <= len(run.rows) <= 8 and all(r.ok for r in run.rows)
    spans = [(r.dispatch_s, r.dispatch_s + r.e2e_s) for r in run.rows]
    for start, _ in spans:  # at each dispatch, at most the two users' requests are open
        assert sum(s <= start < e for s, e in spans) <= 2
    assert rate_metrics(run, Slo()).users == 2


def test_slow_accept_shows_as_scheduling_lag(null_target: Target) -> None:
    schedule = arrival_schedule(20.0, 0.4, seed=4, max_requests=6)
    quick = run_rate(null_target, schedule, TEXTS, faults(FaultSettings(), connections=1))
    slow = run_rate(null_target, schedule, TEXTS, faults(FaultSettings(accept_delay_ms=300), connections=1))
    lag = lambda run: max(r.lag_s for r in run.rows)  # noqa: E731
    # Each held connection delays every later dispatch by at least the hold: lag grows with the queue.
    assert lag(slow) > lag(quick) + 0.3


# --- whole tests: stored rate by rate, CLI lines --------------------------------------------------------
def test_load_test_stores_every_rate_and_a_killed_test_keeps_earlier_rates(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    test = LoadTest(target=TargetSpec(kind="null", faults=FaultSettings(audio_s=0.3)), rates=(5.0, 10.0),
                    duration_s=0.6, seed=3, client=ClientOptions(warmup=1))

    def die_after_first(_: object) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_load_test(test, store, on_rate=die_after_first)
    result = run_load_test(test, store)
    loads = LoadStore(store)
    tests = loads.tests()
    assert list(tests["rates"]) == [1, 2]  # the killed test kept its first rate
    rates = loads.rates(result.test_id)
    assert list(rates["label"]) == ["5/s", "10/s"]
    schedule = json.loads(rates["schedule_json"][0])
    assert schedule["seed"] == 3 and tuple(schedule["offsets_s"]) == arrival_schedule(5.0, 0.6, 3).offsets_s
    requests = loads.requests(result.test_id)
    assert len(requests) == sum(len(r.rows) for r in result.runs) and requests["warmup"].sum() == 2
    assert (requests["status"] == "ok").all()


def _cli(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "profiling", *args, "--data-dir", str(data_dir)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)


def test_load_cli_prints_the_table_and_the_capacity(tmp_path: Path) -> None:
    result = _cli("load", "--null", "--rates", "4,8", "--duration", "0.8", "--quiet", data_dir=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "4/s" in result.stdout and "8/s" in result.stdout and "capacity:" in result.stdout
    assert len(LoadStore(ResultsStore(tmp_path)).tests()) == 1


@pytest.mark.parametrize(("args", "message"), [
    (("load", "--rates", "0"), "each rate must be in"),
    (("load", "--rates", "1", "--duration", "1e9"), "--duration must be in"),
    (("load", "--users", "5000"), "users must be between"),
    (("load", "--url", "http://127.0.0.1:9/", "--rates", "1"), "cannot reach"),
    (("load", "--url", "http://example.com/"), "not loopback"),
    (("load", "--null", "--faults", "{\"nope\": 1}"), "unknown fault settings"),
    (("load", "--max-in-flight", "0", "--null"), "max in flight"),
    (("serve", "--workers", "0"), "workers must be between"),
    (("serve", "--knob", "length_scale=99"), "above its maximum"),
])
def test_bad_input_is_one_line_exit_2(args: tuple[str, ...], message: str, capsys: pytest.CaptureFixture[str],
                                      tmp_path: Path) -> None:
    extra = ("--data-dir", str(tmp_path)) if args[0] == "load" else ()
    assert main([*args, *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_serve_refuses_a_port_in_use_before_loading(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        assert main(["serve", "--port", str(taken.getsockname()[1])]) == 2
    assert "in use" in capsys.readouterr().err
