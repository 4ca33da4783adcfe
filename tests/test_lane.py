"""One measurement lane: a stream and a synthesis sent together run one after the other, never at once."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta

from gradio_client import Client

from dashboard.lane import MeasurementLane
from profiling.store.results import ResultsStore
from tests.dashboard_server import DashboardServer

TEXT = "The lab measures speech synthesis. Every stage is timed, and every run is stored."


def _interval(runs) -> tuple[datetime, datetime]:  # type: ignore[no-untyped-def]
    starts = [datetime.fromisoformat(c) for c in runs["created_at"]]
    ends = [s + timedelta(seconds=float(d)) for s, d in zip(starts, runs["synth_s"], strict=True)]
    return min(starts), max(ends)


def test_stream_and_synthesis_sent_together_do_not_overlap(server: DashboardServer, client: Client) -> None:
    synthesis = {"engine": "piper", "text": TEXT, "repeats": 4, "warmup": 0, "knobs": {"deterministic": True}}
    store = ResultsStore(server.data_dir)
    earlier = set(store.runs_dataframe()["run_id"])  # the shared server's store holds other modules' runs
    stream_job = client.submit(TEXT, api_name="/stream")
    synth_job = client.submit(json.dumps(synthesis), api_name="/synthesize_json")
    stream_job.result(timeout=300), synth_job.result(timeout=300)
    runs = store.runs_dataframe()
    runs = runs[~runs["run_id"].isin(earlier)]
    stream_runs, synth_runs = runs[runs["mode"] == "stream"], runs[runs["mode"] == "batch"]
    assert len(stream_runs) >= 1 and len(synth_runs) == 4
    (a_start, a_end), (b_start, b_end) = _interval(stream_runs), _interval(synth_runs)
    assert a_end <= b_start or b_end <= a_start, "a stream and a synthesis were measured at the same time"
    assert "idle" in client.predict(api_name="/lane_status")


def test_the_lane_says_what_runs_and_runs_one_thing_at_a_time() -> None:
    """What the page shows while a run holds the lane, and that a second holder waits for the first."""
    lane = MeasurementLane()
    assert "idle" in lane.describe()
    order: list[str] = []
    seen: list[str] = []

    def second() -> None:
        with lane.hold("synthesis on piper"):
            order.append("2")
            seen.append(lane.describe())

    with lane.hold("stream on piper"):
        assert "busy" in lane.describe() and "stream on piper" in lane.describe()
        waiter = threading.Thread(target=second)
        waiter.start()
        waiter.join(timeout=0.3)
        assert waiter.is_alive()  # still waiting: the lane is held
        order.append("1")
    waiter.join(timeout=10)
    assert order == ["1", "2"] and "synthesis on piper" in seen[0]
    assert "idle" in lane.describe()
