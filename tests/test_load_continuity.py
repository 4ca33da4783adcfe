"""Continuity metrics, both audible-TTFA rules, the warm-up plan and the capacity search.

Pure parts on hand-made rows and synthetic audio (exact values); the search end to end against the null
target (a real HTTP server on loopback with a known capacity: slots x service time).
"""

from __future__ import annotations

import math
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from engines.errors import InputError
from profiling import api
from profiling.cli.main import main
from profiling.loadgen.audible import TbOnsetDetector, first_loud_sample, tb_onset
from profiling.loadgen.capacity_search import SearchSettings, search_capacity, step_schedule
from profiling.loadgen.client import ClientOptions, RateRun, RequestRow, warmup_waves
from profiling.loadgen.metrics import Distribution, RateMetrics, Slo, rate_metrics
from profiling.loadgen.null_target import FaultSettings
from profiling.loadgen.schedule import arrival_schedule
from profiling.loadgen.targets import Target, TargetSpec
from profiling.store.load import LoadStore
from profiling.store.results import ResultsStore

RATE = 24000


# --- continuity metrics ------------------------------------------------------------------------------


def _row(index: int, *, status: str = "ok", longest_ms: float = 0.0, reads: tuple[float, ...] = (),
         ttfa_s: float = 0.2) -> RequestRow:
    ok = status == "ok"
    return RequestRow(request_id=f"r{index}", index=index, warmup=False, text_id="t", text_chars=10,
                      ideal_s=float(index), status=status, dispatch_s=float(index) if ok else None,
                      e2e_s=1.0 if ok else None, audible_ttfa_s=ttfa_s if ok else None,
                      audio_s=2.0 if ok else 0.0, underruns=int(longest_ms > 0) if ok else None,
                      underrun_max_ms=longest_ms if ok else None, underrun_total_ms=longest_ms if ok else None,
                      reads=tuple((t, 100) for t in reads))


def _run(rows: list[RequestRow]) -> RateRun:
    return RateRun(arrival_schedule(1.0, 10.0, seed=0), tuple(rows), wall_s=10.0, client_cpu_s=0.1,
                   server_cpu_s=None, started_unix=0.0)


def test_c100_underrun_percentiles_pooled_gaps_and_refusals_on_hand_made_rows() -> None:
    rows = [_row(0, reads=(0.0, 0.1, 0.3)), _row(1, longest_ms=50.0, reads=(0.0, 0.05)),
            _row(2, longest_ms=150.0, reads=(0.0, 0.4, 0.5, 1.0)), _row(3), _row(4, status="http_503")]
    m = rate_metrics(_run(rows), Slo(max_underruns=None, min_c100=0.0))
    assert m.c100 == 3 / 4  # 150 ms is the only longest underrun over 100 ms
    underrun = m.dist("underrun_max_ms")
    assert (underrun.samples, underrun.missing) == (4, 1)  # the refused request has no stream
    assert underrun.p95 == underrun.p99 == 150.0 and underrun.p50 == 0.0  # nearest rank over 0, 0, 50, 150
    # Gaps pooled over every ok request: 0.1 0.2 0.05 0.4 0.1 0.5 -> p99 by nearest rank is the largest.
    assert math.isclose(m.gap_p99_s, 0.5) and math.isclose(m.gap_max_s, 0.5)
    assert m.refused == 1 and m.errors == {"http_503": 1}
    assert m.good_fraction == 4 / 5 and m.admitted_good_fraction == 1.0  # goodput both ways
    assert m.late_chunk_share is None  # no server timelines
    timelines = {"r0": {"chunks": [{"slack_s": 0.2}, {"slack_s": -0.05}]}, "r1": {"chunks": [{"ready_s": 1.0}]},
                 "r2": {"chunks": [{"slack_s": None}, {"slack_s": 0.0}]}}
    served = replace(_run(rows), server=timelines)
    assert rate_metrics(served, Slo()).late_chunk_share == 1 / 3  # one late of three chunks with a deadline


def test_slo_continuity_term_and_its_label() -> None:
    assert Slo().label == "audible TTFA p95 <= 800 ms, underruns <= 0, C100 >= 99%"
    rows = [_row(i, longest_ms=150.0 if i == 0 else 0.0) for i in range(10)]
    loose = rate_metrics(_run(rows), Slo(max_underruns=None))  # C100 90 % < 99 %
    assert not loose.slo_met and "C100 90.0%" in loose.slo_reason and "underruns" not in loose.slo_reason
    assert rate_metrics(_run(rows), Slo(max_underruns=None, min_c100=0.9)).slo_met
    strict = Slo(max_underruns=None, min_c100=0.0, max_underrun_ms=100.0)
    assert not strict.good(rows[0]) and strict.good(rows[1])
    assert "longest underrun <= 100 ms" in strict.label and "underruns: any" in strict.label
    for bad in (lambda: Slo(min_c100=1.5), lambda: Slo(max_underrun_ms=-1), lambda: Slo(max_underruns=-1)):
        with pytest.raises(InputError):
            bad()


# --- audible TTFA, two rules ---------------------------------------------------------------------------


def _tone(silence_s: float, amplitude: float, tone_s: float = 0.3) -> np.ndarray:
    t = np.arange(int(tone_s * RATE)) / RATE
    tone = amplitude * np.sin(2 * np.pi * 220 * t)
    return (np.concatenate([np.zeros(int(silence_s * RATE)), tone]) * 32767).astype(np.int16)


def test_tts_bench_onset_finds_a_tone_after_known_silence_fed_in_any_pieces() -> None:
    samples = _tone(0.5, 0.3)
    start, frame = int(0.5 * RATE), int(0.02 * RATE)
    onset = tb_onset(samples, RATE)
    assert onset is not None and start - frame < onset <= start and onset % int(0.01 * RATE) == 0
    rng = np.random.default_rng(0)
    cuts = np.sort(rng.choice(len(samples), size=40, replace=False))
    detector = TbOnsetDetector(RATE)
    found = [detector.feed(piece) for piece in np.split(samples, cuts)]
    assert next(f for f in found if f is not None) == onset  # read by read, the same onset
    assert len(detector.pending) == 0  # nothing kept once found
    assert first_loud_sample(samples) is not None and first_loud_sample(samples) >= start


def test_the_two_rules_differ_on_a_quiet_tone_and_agree_on_silence() -> None:
    quiet = _tone(0.2, 0.015)  # RMS about -39.5 dBFS: over tts_bench's -45, under the lab's 0.02 peak
    assert tb_onset(quiet, RATE) is not None and first_loud_sample(quiet) is None
    assert tb_onset(np.zeros(RATE, dtype=np.int16), RATE) is None
    dc = np.full(RATE, 3000, dtype=np.int16)  # an offset, not sound: the mean is removed
    assert tb_onset(dc, RATE) is None and first_loud_sample(dc) == 0


# --- warm-up -------------------------------------------------------------------------------------------

TEXTS = [("a", "short"), ("b", "the longest prompt of them all"), ("c", "middle one")]


def test_warmup_reaches_every_worker_with_the_longest_prompt_first() -> None:
    lab = Target("http://127.0.0.1:1", TargetSpec(kind="lab", workers=3))
    assert warmup_waves(ClientOptions(warmup=4), lab, TEXTS) == [[1, 1, 1], [0]]
    url = Target("http://127.0.0.1:1", TargetSpec(kind="url"))
    assert warmup_waves(ClientOptions(warmup=5, warmup_concurrency=2), url, TEXTS) == [[1, 1], [0], [1], [2]]
    assert warmup_waves(ClientOptions(warmup=0), lab, TEXTS) == []


# --- capacity search (pure) ----------------------------------------------------------------------------


def _figures(label: str, met: bool, *, achieved: float = 1.0) -> RateMetrics:
    ttfa = Distribution("audible_ttfa_s", 1, 0, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2)
    return RateMetrics(label=label, offered_per_s=achieved, users=0, sent=100, ok=100, errors={}, window_s=100,
                       throughput_per_min=achieved * 60, audio_s_per_s=2 * achieved, goodput_per_min=0,
                       good_fraction=1.0, error_rate=0.0, underruns=0, sustainable=True, unsustainable_reason="",
                       client_limited=False, slo_met=met, slo_reason="" if met else "TTFA p95 900 ms",
                       client_cpu_fraction=0.1, server_cpu_fraction=None, mean_audio_s=2.0,
                       distributions={"audible_ttfa_s": ttfa}, c100=1.0)


def _threshold(limit: float, outliers: set[tuple[float, int]] = frozenset()) -> tuple[list, object]:  # type: ignore[assignment]
    calls: list[tuple[float, int]] = []

    def measure(load: float, seed: int) -> RateMetrics:
        calls.append((load, seed))
        return _figures(f"{load:g}/s", load <= limit and (load, seed) not in outliers, achieved=load)

    return calls, measure


def test_search_brackets_then_bisects_to_the_resolution() -> None:
    calls, measure = _threshold(3.0)
    settings = SearchSettings(max_steps=20, resolution=0.05)
    result = search_capacity(settings, False, 0.5, Slo(), measure, cores=2)
    assert result.capacity is not None and 3.0 / 1.05 <= result.capacity <= 3.0
    assert result.first_missed is not None and result.first_missed.load > 3.0
    assert (result.first_missed.load - result.capacity) / result.capacity <= 0.05
    assert result.stopped == "resolution reached"
    assert [load for load, _ in calls[:6]] == [0.5, 0.75, 1.12, 1.68, 2.52, 3.78]
    assert calls[6] == (3.78, 1006)  # the first miss is confirmed once with a new seed
    assert math.isclose(result.streams_per_core, result.capacity * 2.0 / 2)
    assert "streams per core" in result.describe() and "last met" in result.describe()


def test_one_slow_request_at_the_lowest_load_does_not_decide() -> None:
    calls, measure = _threshold(3.0, outliers={(0.5, 0)})
    result = search_capacity(SearchSettings(max_steps=8), False, 0.5, Slo(), measure)
    assert result.steps[0].met is False and result.steps[1].retry and result.steps[1].met
    assert result.capacity is not None and result.capacity > 0.5
    assert len(result.steps) == 8 and result.stopped.startswith("max steps")


def test_search_steps_down_when_the_start_misses_and_counts_users_in_closed_loop() -> None:
    _, measure = _threshold(0.2)
    down = search_capacity(SearchSettings(max_steps=12), False, 1.0, Slo(), measure)
    assert down.capacity is not None and down.capacity <= 0.2 < down.first_missed.load
    _, users = _threshold(5)
    closed = search_capacity(SearchSettings(max_steps=12), True, 1, Slo(), users)
    assert closed.capacity == 5 and closed.first_missed.load == 6 and closed.stopped == "adjacent user counts"
    _, never = _threshold(0.0)
    none = search_capacity(SearchSettings(max_steps=4), True, 1, Slo(), never)
    assert none.capacity is None and "no load tried met" in none.describe()


def test_search_step_runs_for_at_least_min_requests_and_settings_are_checked() -> None:
    step = step_schedule(2.0, False, 0, 5.0, 1.0, SearchSettings(min_requests=30))
    assert len(step.offsets_s) == 30  # max(5 s x 2/s, 30) arrivals, the count ending the step
    long = step_schedule(2.0, False, 0, 60.0, 1.0, SearchSettings(min_requests=30))
    assert len(long.offsets_s) == 120
    for bad in ({"min_requests": 0}, {"max_steps": 0}, {"resolution": 0}, {"factor": 1.0}, {"budget_s": -1}):
        with pytest.raises(InputError):
            SearchSettings(**bad)


# --- capacity search on the null target (real HTTP on loopback) ---------------------------------------


def test_capacity_search_on_a_null_target_with_a_known_capacity(tmp_path: Path) -> None:
    # One slot held 100 ms per request: at most 10 req/s served. At 15 req/s the 20th request of a step waits
    # about 20 x (1/10 - 1/15) = 0.7 s: far over the SLO, whatever the machine.
    faults = FaultSettings(audio_s=0.2, chunk_ms=50, slots=1, service_ms=100)
    store = ResultsStore(tmp_path / "results.db")
    run = api.find_capacity(null_target=True, faults=faults, start=5.0, min_requests=20, max_steps=5, budget_s=120,
                            duration_s=1.0, text_set="short", slo_ttfa_ms=500, warmup=1, store=store)
    result, search = run.result, run.capacity_search
    assert search is not None and search.capacity is not None, search and search.describe()
    assert 1.0 <= search.capacity < 15.0
    assert search.first_missed is None or search.first_missed.load > search.capacity
    assert all(s.measured >= 20 for s in search.steps)
    assert math.isclose(search.streams_per_core, search.capacity * search.last_met.mean_audio_s / os.cpu_count())
    assert result.capacity.rate_per_s == search.capacity
    frame = run.to_dataframe()
    assert len(frame) == len(search.steps) and {"c100", "ttfa_tb_p95_s", "gap_p99_s", "refused_503"} <= set(frame)
    loads = LoadStore(store)
    stored = loads.capacity(result.test_id)
    assert stored is not None and stored["capacity"] == search.capacity
    assert len(loads.rates(result.test_id)) == len(search.steps)
    tests = loads.tests()
    assert tests["capacity"].iloc[0] == search.capacity and tests["capacity_unit"].iloc[0] == "req/s"
    rows = [r for run in result.runs for r in run.rows if r.ok and not r.warmup]
    assert all(r.audible_ttfa_tb_s is not None and r.underrun_max_ms is not None for r in rows)


# --- CLI refusals --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("args", "message"), [
    (("--null", "--find-capacity", "--min-requests", "0"), "min requests"),
    (("--null", "--find-capacity", "--max-steps", "0"), "max steps"),
    (("--null", "--find-capacity", "--resolution", "2"), "resolution"),
    (("--policy", "lifo"), "unknown policy"),
    (("--first-chunk-chars", "0"), "first chunk chars"),
    (("--ttfa-target-ms", "-1"), "TTFA target"),
    (("--null", "--slo-c100", "1.5"), "C100"),
    (("--null", "--slo-max-underrun-ms", "-3"), "longest underrun"),
    (("--null", "--policy", "edf"), "apply to the lab server"),
    (("--null", "--warmup-concurrency", "0"), "warm-up concurrency"),
    (("--min-requests", "5", "--null"), "--min-requests"),
])
def test_load_cli_refuses_bad_flags_in_one_line_exit_2(args: tuple[str, ...], message: str,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["load", *args, "--no-store"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err


def test_a_store_from_before_the_capacity_table_still_reads(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path / "old.db")
    loads = LoadStore(store)
    test_id = loads.start_test("old", "null target", 0, {}, {})
    with store.connect() as conn:  # as a store written before the capacity search existed
        conn.execute("DROP TABLE load_capacity")
    reopened = LoadStore(store)
    assert reopened.capacity(test_id) is None
    tests = reopened.tests()
    assert list(tests["test_id"]) == [test_id] and tests["capacity"].isna().all()


def test_load_cli_finds_capacity_prints_the_steps_and_stores_it(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["load", "--null", "--find-capacity", "--rates", "40", "--min-requests", "10", "--max-steps", "2",
                 "--duration", "0.2", "--slo-underruns", "any", "--quiet", "--data-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "capacity:" in out and "last met" in out and "underruns: any, C100 >= 99%" in out, out
    assert "C100" in out and "tb p95" in out and "gap p99" in out
    tests = LoadStore(ResultsStore(tmp_path)).tests()
    assert len(tests) == 1 and tests["capacity"].iloc[0] >= 40
