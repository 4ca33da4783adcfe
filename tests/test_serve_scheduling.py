"""The serving scheduler: policies, deadlines, backpressure and admission (pure), and on a real Piper server:
interleaving, cancellation (queued and running, streamed or not), timeouts, several workers, the rate sent.

Relations only: which chunk came before which, never how long anything took.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from engines.base import Voice
from profiling.loadgen.targets import Target, TargetSpec, running_target
from profiling.serve.protocol import ApiError
from profiling.serve.scheduler import Job, Scheduler, Stream
from profiling.serve.scheduling import SchedulingSettings
from profiling.serve.timeline import ServerTimeline

PIPER_KNOBS = (("deterministic", "true"), ("intra_op_threads", "1"))
LONG = ("The lab measures speech, one chunk at a time. Every stage is timed and stored. "
        "A server that streams must keep every listener fed, while new listeners wait for their first words. "
        "Scheduling decides who goes next, and this test watches the order. ") * 2
SHORT = "Turn left here, then stop."


# --- the scheduler alone -----------------------------------------------------------------------------------
def stream(text: str = SHORT, arrival: float = 0.0, chunker: str = "lab") -> Stream:
    job = Job(text, Voice(), ServerTimeline("id", 0.0, len(text)), received=arrival, deadline=arrival + 60,
              emit=lambda event: None)
    return Stream(job=job, chunker=chunker, output_rate=0)


def scheduler(policy: str, workers: int = 1, **options: object) -> Scheduler:
    return Scheduler(SchedulingSettings(policy=policy, **options), workers, queue_size=8)  # type: ignore[arg-type]


def step(s: Scheduler, worker: int = 0, audio_s: float = 1.0) -> Stream:
    """One chunk of the stream ``s`` picks for ``worker``: sent and released."""
    chosen = s.next_for(worker)
    assert chosen is not None
    chosen.started = True
    s.sent(chosen, audio_s)
    s.release(chosen)
    return chosen


def test_fifo_finishes_the_oldest_before_starting_the_next() -> None:
    now = time.perf_counter()
    s = scheduler("fifo")
    a, b = stream(arrival=now - 2), stream(arrival=now - 1)
    s.submit(a)
    s.submit(b)
    assert [step(s) for _ in range(3)] == [a, a, a]


def test_round_robin_alternates_and_a_window_holds_the_rest() -> None:
    now = time.perf_counter()
    rr = scheduler("round-robin")
    a, b = stream(arrival=now - 2), stream(arrival=now - 1)
    rr.submit(a)
    rr.submit(b)
    assert [step(rr) for _ in range(4)] == [a, b, a, b]
    window = scheduler("window:1")
    c, d = stream(arrival=now - 2), stream(arrival=now - 1)
    window.submit(c)
    window.submit(d)
    assert [step(window) for _ in range(3)] == [c, c, c]  # d waits until c leaves the window
    window.finish(c)
    assert step(window) is d


def test_edf_puts_a_new_first_chunk_before_audio_that_is_still_buffered() -> None:
    now = time.perf_counter()
    s = scheduler("edf", ttfa_target_ms=500)
    a = stream(arrival=now - 1)
    s.submit(a)
    step(s, audio_s=5.0)  # a has 5 s of audio at the client: its next chunk is due in about 5 s
    b = stream(arrival=now)
    s.submit(b)
    assert step(s) is b  # due in 0.5 s
    assert s.deadline(a) > s.deadline(b) or b.first_sent is not None


def test_a_slow_reader_is_skipped_until_it_reads() -> None:
    now = time.perf_counter()
    s = scheduler("round-robin", max_unread_chunks=2)
    a, b = stream(arrival=now - 2), stream(arrival=now - 1)
    s.submit(a)
    s.submit(b)
    picks = []
    for _ in range(6):
        picks.append(step(s))
        if picks[-1] is b:
            s.read(b)  # b's client reads each chunk; a's reads nothing
    assert [p is a for p in picks] == [True, False, True, False, False, False]
    assert a.unread == 2
    s.read(a)
    assert a.unread == 1 and step(s) is a


def test_engine_streams_stay_on_their_worker_and_lab_streams_move() -> None:
    now = time.perf_counter()
    s = scheduler("round-robin", workers=2)
    pinned, free = stream(arrival=now - 2, chunker="engine"), stream(arrival=now - 1)
    s.submit(pinned)
    s.submit(free)
    assert step(s, worker=0) is pinned and pinned.worker == 0
    assert step(s, worker=1) is free and free.worker is None
    assert step(s, worker=1) is free  # worker 1 may not take the stream pinned to worker 0
    assert step(s, worker=0) is pinned


def test_admission_refuses_what_would_miss_the_target_with_retry_after() -> None:
    now = time.perf_counter()
    s = scheduler("fifo", admit="slo", ttfa_target_ms=200)
    s.submit(stream(LONG, arrival=now))  # nothing timed yet: admitted
    s._learn(0.5, 10)  # 50 ms per character, as a very slow engine would take
    with pytest.raises(ApiError) as refused:
        s.submit(stream(LONG, arrival=now))
    assert refused.value.status == 503 and "misses the 200 ms target" in refused.value.message
    assert int(refused.value.headers()["Retry-After"]) >= 1


def test_bad_scheduling_settings_say_what_is_wrong() -> None:
    for options, reason in [({"policy": "lifo"}, "unknown policy"), ({"policy": "window:0"}, "between 1"),
                            ({"chunker": "x"}, "unknown chunker"), ({"first_chunk_chars": 0}, "first chunk"),
                            ({"admit": "all"}, "unknown admission"), ({"output_rate": 12345}, "output rate")]:
        with pytest.raises(Exception, match=reason):
            SchedulingSettings(**options)  # type: ignore[arg-type]


# --- a real server -----------------------------------------------------------------------------------------
def serve(**options: object) -> Iterator[Target]:
    spec = TargetSpec(kind="lab", engine="piper", knobs=PIPER_KNOBS, queue_size=8, **options)  # type: ignore[arg-type]
    with running_target(spec) as target:
        yield target


@pytest.fixture(scope="module")
def edf_server() -> Iterator[Target]:
    yield from serve(policy="edf", first_chunk_chars=20, chunk_chars=40, request_timeout_s=30)


@pytest.fixture(scope="module")
def fifo_server() -> Iterator[Target]:
    yield from serve(policy="fifo", first_chunk_chars=20, chunk_chars=40, request_timeout_s=30)


def timelines(target: Target) -> dict[str, dict]:
    return {t["request_id"]: t for t in httpx.get(target.base_url + "/v1/timelines").json()}


def speak(target: Target, request_id: str, text: str, results: dict[str, int], **fields: object) -> None:
    with httpx.stream("POST", target.speech_url, json={"input": text, **fields},
                      headers={"X-Request-Id": request_id}, timeout=60) as response:
        results[request_id] = sum(len(b) for b in response.iter_raw()) if response.status_code == 200 else -1


def long_then_short(target: Target, prefix: str) -> tuple[dict, dict]:
    """A long stream, and a short request sent once the long one's first audio has arrived."""
    results: dict[str, int] = {}
    with httpx.stream("POST", target.speech_url, json={"input": LONG},
                      headers={"X-Request-Id": f"{prefix}-long"}, timeout=60) as response:
        pieces = response.iter_raw()
        total = len(next(pieces))
        short = threading.Thread(target=speak, args=(target, f"{prefix}-short", SHORT, results))
        short.start()
        total += sum(len(b) for b in pieces)
        short.join(timeout=60)
    found = timelines(target)
    assert results[f"{prefix}-short"] > 0 and total > 0
    return found[f"{prefix}-long"], found[f"{prefix}-short"]


def absolute(timeline: dict, seconds: float) -> float:
    return timeline["received_unix"] + seconds


def test_edf_serves_a_new_request_inside_a_long_stream_and_says_why(edf_server: Target) -> None:
    long, short = long_then_short(edf_server, "edf")
    assert long["status"] == short["status"] == "ok" and long["policy"] == "edf"
    assert long["chunker"].startswith("lab:20/40") and len(long["chunks"]) > 4
    # The short request's first chunk came before the long one's last: the worker switched streams.
    assert absolute(short, short["first_chunk_s"]) < absolute(long, long["chunks"][-1]["ready_s"])
    for chunk in long["chunks"]:
        assert chunk["deadline_s"] is not None and chunk["slack_s"] == pytest.approx(
            chunk["deadline_s"] - chunk["ready_s"], abs=1e-6)
    assert {"phonemization", "resample"} <= {s["path"].split("/")[0] for s in long["stages"]}


def test_fifo_finishes_the_long_stream_first(fifo_server: Target) -> None:
    long, short = long_then_short(fifo_server, "fifo")
    assert absolute(short, short["first_chunk_s"]) > absolute(long, long["chunks"][-1]["ready_s"])


def test_a_client_that_leaves_mid_stream_stops_the_synthesis(fifo_server: Target) -> None:
    with httpx.stream("POST", fifo_server.speech_url, json={"input": LONG},
                      headers={"X-Request-Id": "leaves-running"}, timeout=60) as response:
        next(response.iter_raw())
    # Closing the connection is all the server sees; it stops at the next chunk boundary.
    for _ in range(100):
        left = timelines(fifo_server)["leaves-running"]
        if left["status"] != "running":
            break
        time.sleep(0.05)
    assert left["status"] == "cancelled"
    planned = len(LONG) // 40
    assert 1 <= len(left["chunks"]) < planned


def test_a_client_that_leaves_while_queued_or_unstreamed_costs_no_synthesis(fifo_server: Target) -> None:
    results: dict[str, int] = {}
    first = threading.Thread(target=speak, args=(fifo_server, "queue-holder", LONG, results))
    first.start()
    time.sleep(0.2)
    with pytest.raises(httpx.ReadTimeout):  # waits behind the long stream (fifo, one worker) and gives up
        httpx.post(fifo_server.speech_url, json={"input": LONG, "stream": False},
                   headers={"X-Request-Id": "leaves-queued"}, timeout=httpx.Timeout(60, read=0.3))
    first.join(timeout=60)
    for _ in range(100):
        queued = timelines(fifo_server)["leaves-queued"]
        if queued["status"] not in ("queued", "running"):
            break
        time.sleep(0.05)
    assert queued["status"] == "cancelled" and len(queued["chunks"]) <= 1


def test_a_timeout_mid_stream_ends_it_as_failed_once() -> None:
    for target in serve(chunk_chars=30, request_timeout_s=0.4):
        with httpx.stream("POST", target.speech_url, json={"input": LONG * 3},
                          headers={"X-Request-Id": "too-slow"}, timeout=60) as response:
            assert response.status_code == 200
            with pytest.raises(httpx.RemoteProtocolError):
                for _ in response.iter_raw():
                    pass
        timeline = timelines(target)["too-slow"]
        assert timeline["status"] == "timeout" and timeline["http_status"] == 504
        assert "during synthesis" in timeline["error"]


def test_two_workers_serve_two_streams_at_once_and_each_is_warmed() -> None:
    for target in serve(workers=2, chunker="engine", request_timeout_s=30):
        assert "chunker=engine" in target.ready_line
        results: dict[str, int] = {}
        threads = [threading.Thread(target=speak, args=(target, f"two-{i}", LONG, results)) for i in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        found = timelines(target)
        assert {found["two-0"]["worker"], found["two-1"]["worker"]} == {0, 1}
        assert found["two-0"]["chunker"] == "engine" and results["two-0"] == results["two-1"] > 0
