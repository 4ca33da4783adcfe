"""Cancel tokens: one browser session cancels only what it started; each long runner stops at its boundary,
keeps what finished and says what it cut. (The dashboard side, two real sessions: tests/test_load_history.py.)"""

from __future__ import annotations

import threading
from pathlib import Path

import gradio as gr

from dashboard.sessions import NOTHING_RUNNING, SessionCancels
from profiling import api
from profiling.profilers.common import ProfilerStatus
from profiling.profilers.session import CANCELLED
from profiling.run.runner import EnginePool
from profiling.store.results import ResultsStore
from profiling.sweeps.streaming import StreamingSweep, run_streaming_sweep


def test_a_session_cancels_only_its_own_run() -> None:
    cancels = SessionCancels()
    mine, theirs = gr.Request(session_hash="mine"), gr.Request(session_hash="theirs")
    assert cancels.cancel(mine) == NOTHING_RUNNING
    with cancels.running(mine, "the profile") as token:
        assert cancels.cancel(theirs) == NOTHING_RUNNING and not token.is_set()
        assert "Cancelling the profile" in cancels.cancel(mine) and token.is_set()
    assert cancels.cancel(mine) == NOTHING_RUNNING  # finished: nothing left to cancel


def _cancelled() -> threading.Event:
    event = threading.Event()
    event.set()
    return event


def test_a_cancelled_profile_keeps_its_warm_up_and_names_what_it_cut(tmp_path: Path) -> None:
    store = ResultsStore(tmp_path)
    request = api.profile_request("piper", "Turn left here.", profilers="cprofile,memory", repeats=1, warmup=1,
                                  knobs={"deterministic": True})
    run = api.run_profile_request(request, store=store, pool=EnginePool(), cancel=_cancelled())
    assert [(r.profiler, r.status, r.message) for r in run.results] == [
        ("cprofile", ProfilerStatus.SKIPPED, CANCELLED), ("memory", ProfilerStatus.SKIPPED, CANCELLED)]
    assert store.count_runs() == 1  # the warm-up ran before the first boundary, and is stored


def test_a_cancelled_streaming_sweep_summarises_nothing_partial(tmp_path: Path) -> None:
    base = api.stream_request("piper", "Turn left here. Then right.", repeats=1, warmup=0,
                              knobs={"deterministic": True})
    sweep = StreamingSweep(base, (10, 40), (0.0,))
    result = run_streaming_sweep(sweep, EnginePool(), ResultsStore(tmp_path), cancel=_cancelled())
    assert result.cut == (10, 40) and result.points == [] and result.batches == {}
