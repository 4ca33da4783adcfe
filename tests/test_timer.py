"""The stage timer: nesting, inclusive/exclusive arithmetic, CUDA-sync hook, series."""

from __future__ import annotations

import pytest

from engines.hooks import NULL_HOOK
from profiling.core.timer import StageTimer


class FakeClock:
    """A deterministic clock: the arithmetic is checked exactly, not against wall time."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def test_nested_stages_inclusive_and_exclusive() -> None:
    clock = FakeClock()
    timer = StageTimer(clock=clock)
    with timer.stage("outer"):
        clock.advance(1.0)
        with timer.stage("inner"):
            clock.advance(2.0)
        with timer.stage("inner"):
            clock.advance(0.5)
        clock.advance(0.25)
    with timer.stage("after"):
        clock.advance(4.0)
    timings = {t.name: t for t in timer.timings()}
    assert list(timings) == ["outer", "outer/inner", "after"]
    assert timings["outer"].inclusive_s == pytest.approx(3.75)
    assert timings["outer"].exclusive_s == pytest.approx(1.25)
    assert timings["outer/inner"].calls == 2
    assert timings["outer/inner"].inclusive_s == pytest.approx(2.5)
    assert timings["outer/inner"].exclusive_s == pytest.approx(2.5)
    assert timings["outer/inner"].depth == 1
    assert timings["after"].inclusive_s == pytest.approx(4.0)


def test_sync_runs_at_both_edges_of_every_stage() -> None:
    calls: list[str] = []
    timer = StageTimer(sync=lambda: calls.append("sync"))
    with timer.stage("a"):
        with timer.stage("b"):
            pass
    assert calls == ["sync"] * 4


def test_stage_closed_after_exception_is_still_recorded() -> None:
    timer = StageTimer()
    with pytest.raises(RuntimeError):
        with timer.stage("fails"):
            raise RuntimeError("boom")
    assert [t.name for t in timer.timings()] == ["fails"]


def test_series_and_annotations() -> None:
    timer = StageTimer()
    for value in (0.1, 0.2, 0.3):
        timer.observe("token_s", value)
    timer.annotate("voice_cache", "hit")
    assert timer.series == {"token_s": [0.1, 0.2, 0.3]}
    assert timer.annotations == {"voice_cache": "hit"}


def test_slash_in_stage_name_is_refused() -> None:
    with pytest.raises(ValueError):
        StageTimer().stage("a/b")


def test_null_hook_accepts_everything() -> None:
    with NULL_HOOK.stage("anything"):
        NULL_HOOK.observe("s", 1.0)
        NULL_HOOK.annotate("k", "v")
