"""The playback simulator on hand-made timelines (every number worked out by hand)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engines.errors import InputError
from profiling.audio.playback import PlaybackSettings, simulate_playback
from profiling.core.audio_report import PlaySegment, Underrun

DEFAULT = PlaybackSettings()


def test_no_underrun_when_chunks_arrive_before_they_are_needed() -> None:
    report = simulate_playback([0.1, 0.5, 0.9], [1.0, 1.0, 1.0], DEFAULT)
    assert report.ttfa_s == pytest.approx(0.1)
    assert report.first_audible_s == pytest.approx(0.1)
    assert report.underruns == () and report.total_stall_s == 0.0 and report.realtime_safe
    assert report.playback_start_s == pytest.approx(0.1) and report.playback_end_s == pytest.approx(3.1)
    assert report.segments == (PlaySegment(0.1, pytest.approx(3.1), 0.0),)
    assert report.audio_s == pytest.approx(3.0)


def test_one_underrun_when_the_second_chunk_is_late() -> None:
    report = simulate_playback([0.1, 2.0], [1.0, 1.0], DEFAULT)
    # Plays 0.1..1.1, runs dry at 1.1 with 1.0 s played, resumes when chunk 2 lands at 2.0.
    assert report.underruns == (Underrun(pytest.approx(1.1), pytest.approx(0.9), pytest.approx(1.0)),)
    assert report.total_stall_s == pytest.approx(0.9)
    assert not report.realtime_safe
    assert report.playback_end_s == pytest.approx(3.0)
    assert report.stall_free_start_s == pytest.approx(1.0)  # 2.0 ready - 1.0 s of audio ahead of it
    assert [s.audio_start_s for s in report.segments] == [0.0, pytest.approx(1.0)]


def test_prebuffer_delays_the_start_and_removes_the_underrun() -> None:
    report = simulate_playback([0.1, 1.0, 1.9], [1.0, 1.0, 1.0], PlaybackSettings(prebuffer_ms=1500))
    # 1.5 s buffered only once chunk 2 arrives (2.0 s at 1.0); then chunk 3 lands at 1.9 < 3.0.
    assert report.playback_start_s == pytest.approx(1.0)
    assert report.first_audible_s == pytest.approx(1.0)
    assert report.ttfa_s == pytest.approx(0.1)  # TTFA is when audio exists, not when it plays
    assert report.realtime_safe
    without = simulate_playback([0.1, 1.0, 1.9], [0.5, 1.0, 1.0], DEFAULT)
    assert without.underrun_count == 1  # dry 0.6..1.0; chunk 3 (1.9) lands before chunk 2 ends (2.0)
    assert without.underruns[0] == Underrun(pytest.approx(0.6), pytest.approx(0.4), pytest.approx(0.5))


def test_prebuffer_larger_than_all_the_audio_starts_when_the_stream_ends() -> None:
    report = simulate_playback([0.2, 0.4, 0.6], [0.3, 0.3, 0.3], PlaybackSettings(prebuffer_ms=10_000))
    assert report.playback_start_s == pytest.approx(0.6)
    assert report.first_audible_s == pytest.approx(0.6)
    assert report.realtime_safe and report.total_stall_s == 0.0
    assert report.playback_end_s == pytest.approx(1.5)


def test_zero_length_chunks_do_not_count_as_first_audio() -> None:
    report = simulate_playback([0.1, 0.2, 0.3], [0.0, 0.5, 0.0], DEFAULT)
    assert report.ttfa_s == pytest.approx(0.2)
    assert report.playback_start_s == pytest.approx(0.2)
    assert report.playback_end_s == pytest.approx(0.7)
    assert report.realtime_safe
    assert report.itl_count == 2  # empty chunks are still chunks for inter-chunk latency


def test_a_late_empty_last_chunk_is_not_an_underrun() -> None:
    report = simulate_playback([0.0, 0.1, 5.0], [0.5, 0.5, 0.0], DEFAULT)
    assert report.realtime_safe and report.playback_end_s == pytest.approx(1.0)


def test_only_empty_chunks_have_no_audio() -> None:
    report = simulate_playback([0.1, 0.2], [0.0, 0.0], DEFAULT)
    assert math.isnan(report.ttfa_s) and math.isnan(report.first_audible_s)
    assert report.underruns == () and report.segments == ()


def test_no_chunks_at_all() -> None:
    report = simulate_playback([], [], DEFAULT)
    assert math.isnan(report.ttfa_s) and report.itl_count == 0 and report.audio_s == 0.0


def test_single_chunk() -> None:
    report = simulate_playback([0.3], [2.0], DEFAULT)
    assert report.ttfa_s == pytest.approx(0.3) and report.playback_end_s == pytest.approx(2.3)
    assert report.realtime_safe
    assert (report.itl_p50_s, report.itl_p95_s, report.itl_p99_s, report.itl_count) == (0.0, 0.0, 0.0, 0)


def test_the_player_needs_whole_blocks_until_the_stream_ends() -> None:
    # 50 ms then a late chunk: with 20 ms blocks only 40 ms can play before the stall.
    report = simulate_playback([0.0, 1.0], [0.05, 1.0], PlaybackSettings(audio_block_ms=20))
    assert report.underruns == (Underrun(pytest.approx(0.04), pytest.approx(0.96), pytest.approx(0.04)),)
    coarse = simulate_playback([0.0, 1.0], [0.05, 1.0], PlaybackSettings(audio_block_ms=50))
    assert coarse.underruns[0].at_s == pytest.approx(0.05)
    # A chunk shorter than one block cannot start the player until more arrives.
    short = simulate_playback([0.0, 0.3], [0.01, 1.0], PlaybackSettings(audio_block_ms=20))
    assert short.playback_start_s == pytest.approx(0.3) and short.realtime_safe


def test_resume_waits_for_the_resume_buffer() -> None:
    timeline = ([0.0, 1.0, 1.5], [0.5, 0.2, 1.0])
    strict = simulate_playback(*timeline, PlaybackSettings(resume_ms=300))
    assert strict.underruns == (Underrun(pytest.approx(0.5), pytest.approx(1.0), pytest.approx(0.5)),)
    eager = simulate_playback(*timeline, DEFAULT)  # resume after one block: stutters twice
    assert [u.at_s for u in eager.underruns] == [pytest.approx(0.5), pytest.approx(1.2)]
    assert eager.total_stall_s == pytest.approx(0.5 + 0.3)


def test_leading_silence_delays_the_first_audible_time_across_an_underrun() -> None:
    report = simulate_playback([0.0, 2.0], [0.5, 1.0], DEFAULT, leading_silence_s=0.7)
    assert report.first_audible_s == pytest.approx(2.2)  # 0.5 s silent, stall, then 0.2 s more
    assert simulate_playback([0.0], [0.5], DEFAULT, leading_silence_s=0.5).first_audible_s != 0.0


def test_inter_chunk_latency_percentiles() -> None:
    report = simulate_playback([0.0, 1.0, 2.0, 4.0, 8.0], [1.0] * 5, DEFAULT)
    # Gaps 1, 1, 2, 4 (linear interpolation between ranks, as numpy and vLLM do).
    assert report.itl_p50_s == pytest.approx(1.5)
    assert report.itl_p95_s == pytest.approx(3.7)
    assert report.itl_p99_s == pytest.approx(3.94)


def test_bad_timelines_and_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="durations"):
        simulate_playback([0.1, 0.2], [1.0], DEFAULT)
    with pytest.raises(ValueError, match="in order"):
        simulate_playback([0.5, 0.2], [1.0, 1.0], DEFAULT)
    with pytest.raises(ValueError, match="0 or more"):
        simulate_playback([0.1], [-1.0], DEFAULT)
    with pytest.raises(InputError, match="prebuffer_ms"):
        PlaybackSettings(prebuffer_ms=-1)
    with pytest.raises(InputError, match="audio_block_ms"):
        PlaybackSettings(audio_block_ms=0)


TIMELINES = st.lists(
    st.tuples(st.floats(0, 2, allow_nan=False), st.floats(0, 2, allow_nan=False)), min_size=1, max_size=12
)


@settings(max_examples=300, deadline=None)
@given(TIMELINES, st.floats(0, 3000), st.sampled_from([1.0, 20.0, 64.0]))
def test_every_second_of_audio_plays_once_and_stalls_account_for_the_rest(
    steps: list[tuple[float, float]], prebuffer_ms: float, block_ms: float
) -> None:
    ready, total = [], 0.0
    for gap, _ in steps:
        total += gap
        ready.append(total)
    durations = [d for _, d in steps]
    report = simulate_playback(ready, durations, PlaybackSettings(prebuffer_ms, block_ms))
    if math.isnan(report.playback_start_s):  # no audio worth a sample
        return
    played = sum(s.end_s - s.start_s for s in report.segments)
    assert played == pytest.approx(report.audio_s, abs=1e-6)
    span = report.playback_end_s - report.playback_start_s
    assert span == pytest.approx(report.audio_s + report.total_stall_s, abs=1e-6)
    assert report.first_audible_s >= report.ttfa_s - 1e-9
    assert all(u.duration_s > 0 for u in report.underruns)
    if prebuffer_ms / 1000 >= report.audio_s:
        assert report.realtime_safe  # everything was buffered before the first sample played
