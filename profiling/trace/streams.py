"""A streamed run's chunks beside the simulated player: what was synthesised when, and what played when.

Chunk ``i`` is drawn from the moment chunk ``i-1`` was handed over (0 for the first) to its own ready
time: the stream generator resumes synthesis when the previous chunk has been taken. The player lane
is the simulation stored with the run (``PlaybackReport``): each chunk's audio over the intervals it
played, stalls as slices and every underrun as an instant.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from profiling.core.audio_report import PlaybackReport
from profiling.core.records import RunRecord
from profiling.trace.events import Lane, TraceBuilder


@dataclass(frozen=True)
class StreamLanes:
    chunks: Lane
    player: Lane

    @classmethod
    def open(cls, trace: TraceBuilder, pid: int) -> StreamLanes:
        return cls(trace.lane(pid, "chunk synthesis", 1), trace.lane(pid, "player", 2))


def chunk_play_intervals(report: PlaybackReport, audio_from: float, audio_to: float) -> list[tuple[float, float]]:
    """Wall-clock intervals (seconds since the request) in which audio ``[audio_from, audio_to)`` played."""
    out = []
    for segment in report.segments:
        length = segment.end_s - segment.start_s
        low = max(audio_from, segment.audio_start_s)
        high = min(audio_to, segment.audio_start_s + length)
        if high > low:
            offset = segment.start_s - segment.audio_start_s
            out.append((offset + low, offset + high))
    return out


def add_stream(lanes: StreamLanes, record: RunRecord, at_s: float) -> None:
    previous = 0.0
    position = 0.0
    report = record.playback
    for chunk in record.chunks:
        lanes.chunks.add(f"chunk {chunk.index}", "chunk", at_s + previous, chunk.ready_s - previous,
                         {"index": chunk.index, "text": chunk.text, "ready_s": chunk.ready_s,
                          "audio_s": chunk.audio_s, "run_id": record.run_id})
        if report is not None:
            for start, end in chunk_play_intervals(report, position, position + chunk.audio_s):
                lanes.player.add(f"play chunk {chunk.index}", "playback", at_s + start, end - start,
                                 {"index": chunk.index, "audio_from_s": position, "run_id": record.run_id})
        previous = chunk.ready_s
        position += chunk.audio_s
    if report is None:
        return
    for underrun in report.underruns:
        lanes.player.add("stall", "underrun", at_s + underrun.at_s, underrun.duration_s,
                         {"duration_s": underrun.duration_s, "audio_position_s": underrun.audio_position_s})
        lanes.player.instant("underrun", "underrun", at_s + underrun.at_s,
                             {"duration_s": underrun.duration_s, "audio_position_s": underrun.audio_position_s,
                              "run_id": record.run_id})
    if math.isfinite(report.first_audible_s):
        lanes.player.instant("first audible", "playback", at_s + report.first_audible_s,
                             {"first_audible_s": report.first_audible_s, "ttfa_s": report.ttfa_s})
