"""Which stream's next chunk a free worker synthesises: the scheduling policies, backpressure, admission.

Every request is a ``Stream`` advanced one chunk at a time. A free worker asks ``Scheduler.next_for``
and gets the stream whose chunk comes next under the policy:

- ``fifo``: the oldest stream first, to its end; a worker starts a new one only when none of its own can
  run (today's behaviour, chunk by chunk);
- ``round-robin``: the stream served least recently (a new request joins at its arrival);
- ``window:K``: round-robin over at most K active streams per worker; the rest wait their turn to start;
- ``edf``: the earliest deadline: a new request's first chunk is due at arrival + the TTFA target, a
  later chunk when the client's player will need it (first chunk's send time + audio already sent,
  less a margin). A new request's first chunk therefore goes before chunks with audio still buffered.

Streams cut by the lab chunker are independent ``synthesize`` calls, so any worker may take any of them
(the pool's workers are replicas of one model); a stream from the engine's own ``stream`` iterator stays
on the worker that started it. A stream whose client has ``max_unread`` chunks unread is skipped until the
client reads (backpressure: a slow reader holds a bounded number of chunks, never a worker).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

from engines.base import AudioChunk, Voice
from engines.chunking import ChunkPlan
from profiling.audio.resample import StreamResampler
from profiling.core.timer import StageTimer
from profiling.serve.protocol import ApiError
from profiling.serve.scheduling import SchedulingSettings
from profiling.serve.timeline import ServerTimeline

#: What a worker hands back to the request's event loop: ("chunk", pcm16 bytes), ("end", None), ("error", ApiError).
Event = tuple[str, object]
#: Smoothing of the per-character synthesis time admission predicts with.
_EMA = 0.2


@dataclass(eq=False)  # identity: two requests for the same text are still two requests
class Job:
    text: str
    voice: Voice
    timeline: ServerTimeline
    received: float  # perf_counter at receipt: timeline times are relative to it
    deadline: float  # perf_counter after which the worker gives up
    emit: Callable[[Event], None]
    cancelled: threading.Event = field(default_factory=threading.Event)

    def since_received(self) -> float:
        return time.perf_counter() - self.received


@dataclass(eq=False)
class Stream:
    """One request being served: where it stands, and what its next chunk needs."""

    job: Job
    chunker: str  # "lab" or "engine"
    output_rate: int  # 0: the engine's own rate
    plan: ChunkPlan | None = None  # lab chunker: the chunks, cut before the first is synthesised
    chunks: Iterator[AudioChunk] | None = None  # engine chunker: the engine's own stream
    worker: int | None = None  # the worker an engine stream is pinned to
    started: bool = False
    running: bool = False
    next_index: int = 0
    spoke: bool = False  # some chunk gave audio
    sent: int = 0
    audio_sent_s: float = 0.0
    first_sent: float | None = None  # perf_counter when the first chunk left
    last_served: float = 0.0
    unread: int = 0
    timer: StageTimer | None = None
    timer_offset_s: float = 0.0
    resampler: StreamResampler | None = None

    @property
    def arrival(self) -> float:
        return self.job.received

    @property
    def pinned(self) -> bool:
        return self.chunker == "engine"

    def remaining_chars(self) -> int:
        if self.plan is None:
            return len(self.job.text)
        return sum(len(c) for c in self.plan.chunks[self.next_index:])

    def next_chars(self, first_chunk_chars: int) -> int:
        if self.plan is not None and self.next_index < len(self.plan.chunks):
            return len(self.plan.chunks[self.next_index])
        return min(first_chunk_chars, len(self.job.text)) if not self.started else len(self.job.text) // 4 + 1


class Scheduler:
    """The streams waiting to start and those started, shared by ``workers`` worker threads."""

    def __init__(self, settings: SchedulingSettings, workers: int, queue_size: int) -> None:
        self.settings = settings
        self.workers = workers
        self.queue_size = queue_size
        self._pending: list[Stream] = []
        self._active: list[Stream] = []
        self._running = 0
        self._closed = False
        self._cond = threading.Condition()
        # Admission's estimate: seconds of synthesis per character (a moving average over served chunks).
        self._seconds_per_char: float | None = None

    # --- the request side -----------------------------------------------------------------------
    def submit(self, stream: Stream) -> None:
        """Queue ``stream``; ApiError 429 when the queue is full, 503 when admission predicts a miss."""
        with self._cond:
            idle = self.workers - self._running
            if self.queue_size == 0 and (idle <= 0 or self._pending):
                raise ApiError(429, "all workers are busy and this server keeps no queue", "queue_full")
            if len(self._pending) >= max(self.queue_size, 1):
                raise ApiError(429, f"the queue is full ({self.queue_size} requests waiting)", "queue_full")
            if self.settings.admit == "slo":
                predicted = self._predicted_first_chunk_s(stream)
                target = self.settings.ttfa_target_ms / 1000
                if predicted is not None and predicted > target:
                    raise ApiError(503, f"predicted first audio in {predicted * 1000:.0f} ms misses the "
                                        f"{self.settings.ttfa_target_ms:g} ms target: try again later",
                                   "overloaded", retry_after_s=max(1, math.ceil(predicted - target)))
            stream.last_served = stream.arrival
            self._pending.append(stream)
            self._cond.notify_all()

    def read(self, stream: Stream) -> None:
        """The client took one chunk off the wire."""
        with self._cond:
            stream.unread = max(0, stream.unread - 1)
            self._cond.notify_all()

    def wake(self) -> None:
        """Something changed outside (a client left): let waiting workers look again."""
        with self._cond:
            self._cond.notify_all()

    def depth(self) -> tuple[int, int]:
        """(requests waiting to start, requests started and not finished)."""
        with self._cond:
            return len(self._pending), len(self._active)

    # --- the worker side ------------------------------------------------------------------------
    def next_for(self, worker: int) -> Stream | None:
        """The stream ``worker`` advances next (blocks until there is one); None once closed."""
        with self._cond:
            while not self._closed:
                stream = self._pick(worker, time.perf_counter())
                if stream is not None:
                    stream.running = True
                    stream.last_served = time.perf_counter()
                    self._running += 1
                    return stream
                self._cond.wait(timeout=0.25)  # also wakes for deadlines passing with nobody to notify
            return None

    def release(self, stream: Stream, chunk_s: float | None = None, chars: int = 0) -> None:
        """``worker`` finished one step of ``stream``, which goes on."""
        with self._cond:
            stream.running = False
            self._running -= 1
            self._learn(chunk_s, chars)
            self._cond.notify_all()

    def finish(self, stream: Stream, chunk_s: float | None = None, chars: int = 0) -> None:
        """``stream`` ended (whole, failed or cancelled): it leaves the scheduler."""
        with self._cond:
            if stream.running:
                stream.running = False
                self._running -= 1
            if stream in self._active:
                self._active.remove(stream)
            if stream in self._pending:
                self._pending.remove(stream)
            self._learn(chunk_s, chars)
            self._cond.notify_all()

    def sent(self, stream: Stream, audio_s: float) -> None:
        """A chunk of ``audio_s`` seconds went to the client's queue."""
        with self._cond:
            now = time.perf_counter()
            if stream.first_sent is None:
                stream.first_sent = now
            stream.audio_sent_s += audio_s
            stream.sent += 1
            stream.unread += 1

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def deadline(self, stream: Stream) -> float:
        """When the client needs ``stream``'s next chunk (perf_counter)."""
        if stream.first_sent is None:
            return stream.arrival + self.settings.ttfa_target_ms / 1000
        return stream.first_sent + stream.audio_sent_s - self.settings.deadline_margin_ms / 1000

    # --- policy ---------------------------------------------------------------------------------
    def _pick(self, worker: int, now: float) -> Stream | None:
        # A stream whose client left or whose time ran out goes to the first free worker that may touch it
        # (an engine stream's iterator is closed by its own worker), which ends it.
        for stream in (*self._pending, *self._active):
            if (not stream.running and stream.worker in (None, worker)
                    and (stream.job.cancelled.is_set() or now > stream.job.deadline)):
                if stream in self._pending:
                    self._start(stream, worker)
                return stream
        runnable = [s for s in self._active if not s.running and s.unread < self.settings.max_unread_chunks
                    and (s.worker is None or s.worker == worker)]
        startable = self._pending if self._may_start(worker, runnable) else []
        candidates = runnable + startable
        if not candidates:
            return None
        policy = self.settings.policy
        if policy == "edf":
            choice = min(candidates, key=lambda s: (self.deadline(s), s.arrival))
        elif policy == "fifo":
            choice = min(candidates, key=lambda s: s.arrival)
        else:  # round-robin and window:K: the stream served least recently
            choice = min(candidates, key=lambda s: (s.last_served, s.arrival))
        if not choice.started and choice in self._pending:
            self._start(choice, worker)
        return choice

    def _may_start(self, worker: int, runnable: list[Stream]) -> bool:
        if self.settings.policy == "fifo":
            return not runnable
        window = self.settings.window
        if window is None:
            return True
        pinned = [s for s in self._active if s.worker == worker]
        floating = [s for s in self._active if s.worker is None]
        # Streams free to move count against the whole pool's window, pinned ones against their worker's.
        return len(pinned) < window and len(floating) < window * self.workers

    def _start(self, stream: Stream, worker: int) -> None:
        self._pending.remove(stream)
        self._active.append(stream)
        if stream.pinned:
            stream.worker = worker

    # --- admission ------------------------------------------------------------------------------
    def _learn(self, chunk_s: float | None, chars: int) -> None:
        if chunk_s is None or chars <= 0:
            return
        rate = chunk_s / chars
        self._seconds_per_char = rate if self._seconds_per_char is None else (
            (1 - _EMA) * self._seconds_per_char + _EMA * rate)

    def _predicted_first_chunk_s(self, new: Stream) -> float | None:
        """Seconds from now until ``new``'s first chunk would be ready under the policy; None before any
        chunk has been timed. The work ahead of it is spread over the workers."""
        per_char = self._seconds_per_char
        if per_char is None:
            return None
        first = self.settings.first_chunk_chars
        streams = [*self._active, *self._pending]
        policy = self.settings.policy
        if policy == "fifo":
            ahead = sum(s.remaining_chars() for s in streams)
        elif policy == "edf":
            due = new.arrival + self.settings.ttfa_target_ms / 1000
            ahead = sum(s.next_chars(first) for s in streams if self.deadline(s) <= due)
        else:
            ahead = sum(s.next_chars(first) for s in streams)
        running = min(self._running, self.workers)
        return per_char * (ahead / self.workers + min(first, len(new.job.text))) + (
            0.5 * per_char * first * running / self.workers)
