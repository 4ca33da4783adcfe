"""One measurement lane: a stream and a synthesis sent together run one after the other, never at once."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta

from gradio_client import Client

from profiling.store.results import ResultsStore
from tests.dashboard_server import DashboardServer

TEXT = "The lab measures speech synthesis. Every stage is timed, and every run is stored."


def _interval(runs) -> tuple[datetime, datetime]:  # type: ignore[no-untyped-def]
    starts = [datetime.fromisoformat(c) for c in runs["created_at"]]
    ends = [s + timedelta(seconds=float(d)) for s, d in zip(starts, runs["synth_s"], strict=True)]
    return min(starts), max(ends)


def test_stream_and_synthesis_sent_together_do_not_overlap(server: DashboardServer, client: Client) -> None:
    synthesis = {"engine": "piper", "text": TEXT, "repeats": 4, "warmup": 0, "knobs": {"deterministic": True}}
    stream_job = client.submit(TEXT, api_name="/stream")
    synth_job = client.submit(json.dumps(synthesis), api_name="/synthesize_json")
    seen_busy = ""
    deadline = time.monotonic() + 120
    while not (stream_job.done() and synth_job.done()) and time.monotonic() < deadline:
        status = client.predict(api_name="/lane_status")
        seen_busy = status if "busy" in status else seen_busy
        time.sleep(0.05)
    stream_job.result(timeout=120), synth_job.result(timeout=120)
    runs = ResultsStore(server.data_dir).runs_dataframe()
    stream_runs, synth_runs = runs[runs["mode"] == "stream"], runs[runs["mode"] == "batch"]
    assert len(stream_runs) >= 1 and len(synth_runs) == 4
    (a_start, a_end), (b_start, b_end) = _interval(stream_runs), _interval(synth_runs)
    assert a_end <= b_start or b_end <= a_start, "a stream and a synthesis were measured at the same time"
    # The page can say what a waiting run waits for.
    assert "busy" in seen_busy and ("stream on piper" in seen_busy or "synthesis on piper" in seen_busy)
    assert "idle" in client.predict(api_name="/lane_status")
