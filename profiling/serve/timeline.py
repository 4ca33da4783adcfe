"""Each request's server-side timeline, kept (bounded) for the client to fetch by id.

Every time is in seconds since the server received the request, so a client on another
clock joins it by id alone.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import Any

from profiling.core.timer import StageTimer


@dataclass(frozen=True)
class StageEvent:
    path: str
    depth: int
    start_s: float
    duration_s: float


@dataclass(frozen=True)
class ChunkEvent:
    index: int
    ready_s: float
    audio_s: float
    bytes: int
    #: When the scheduler wanted it ready (policy's deadline) and how early it was (negative: late).
    deadline_s: float | None = None
    slack_s: float | None = None
    chars: int = 0
    #: When the worker began synthesising it.
    start_s: float | None = None


@dataclass
class ServerTimeline:
    request_id: str
    received_unix: float
    text_chars: int
    status: str = "queued"  # queued -> running -> ok | error | timeout | cancelled | refused
    http_status: int = 200
    error: str = ""
    worker: int = -1
    queue_wait_s: float | None = None
    start_s: float | None = None
    first_chunk_s: float | None = None
    end_s: float | None = None
    audio_s: float = 0.0
    chunks: list[ChunkEvent] = field(default_factory=list)
    stages: list[StageEvent] = field(default_factory=list)
    voice: str = ""
    #: The scheduling policy and chunker that served it ("lab:20/150/5" or "engine").
    policy: str = ""
    chunker: str = ""
    sample_rate: int = 0
    #: What the engine noted while serving it (voice_cache hit|miss, reference_cached, ...).
    annotations: dict[str, Any] = field(default_factory=dict)

    def add_stages(self, timer: StageTimer, offset_s: float) -> None:
        """The timer's spans, shifted from the timer's origin to the request's receipt."""
        self.stages = [
            StageEvent(s.path, s.depth, offset_s + s.start_s, s.duration_s)
            for s in sorted(timer.spans, key=lambda s: s.start_s)
        ]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ServerTimeline:
        data = dict(data)
        chunks = [ChunkEvent(**c) for c in data.pop("chunks", [])]
        stages = [StageEvent(**s) for s in data.pop("stages", [])]
        return cls(chunks=chunks, stages=stages, **data)


class TimelineStore:
    """The most recent ``capacity`` timelines by request id (oldest forgotten first)."""

    def __init__(self, capacity: int = 20000) -> None:
        self._items: OrderedDict[str, ServerTimeline] = OrderedDict()
        self._capacity = capacity
        self._lock = threading.Lock()

    def open(self, request_id: str, text_chars: int) -> ServerTimeline:
        """A new timeline under ``request_id``; ApiError(409) when one is kept under that id already.

        Refused rather than renamed: the client joins its rows to timelines by its own id, and a quiet
        new id would hand it another request's timeline. An id the store has forgotten can be reused.
        """
        from profiling.serve.protocol import ApiError  # local: this change stays inside the method

        timeline = ServerTimeline(request_id, time.time(), text_chars)
        with self._lock:
            if request_id in self._items:
                raise ApiError(409, f"request id {request_id!r} is already in use: send a new X-Request-Id "
                               "(or none, and the server picks one)", "duplicate_request_id")
            self._items[request_id] = timeline
            while len(self._items) > self._capacity:
                self._items.popitem(last=False)
        return timeline

    def get(self, request_id: str) -> ServerTimeline | None:
        with self._lock:
            return self._items.get(request_id)

    def all(self) -> list[ServerTimeline]:
        with self._lock:
            return list(self._items.values())
