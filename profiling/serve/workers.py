"""N engine replicas, each a thread with its own loaded engine, behind one bounded queue.

Threads, not processes: Piper's ONNX Runtime and torch release the GIL inside inference, and a
measurement on this machine (docs/benchmarks/piper-serving-cpu.md) found two thread replicas as fast
as two process replicas, without a copy of every chunk through a pipe. Each replica has its own
EnginePool, so replicas never share a model or a lock.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

from engines.base import Audio, Engine, SynthesisSettings, Voice
from engines.convert.base import Converter
from engines.errors import InputError
from profiling.core.timer import StageTimer
from profiling.run.runner import EnginePool, seed_everything
from profiling.serve.protocol import ApiError
from profiling.serve.timeline import ChunkEvent, ServerTimeline

log = logging.getLogger(__name__)

#: What a worker hands back to the request's event loop: ("chunk", pcm16 bytes), ("end", None), ("error", ApiError).
Event = tuple[str, object]


@dataclass
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


def asyncio_emitter(loop: asyncio.AbstractEventLoop, out: asyncio.Queue[Event]) -> Callable[[Event], None]:
    """A thread-safe ``emit`` that lands events in ``out`` on ``loop``."""
    def emit(event: Event) -> None:
        try:
            loop.call_soon_threadsafe(out.put_nowait, event)
        except RuntimeError:  # the loop closed (server shutting down): nobody is listening
            pass
    return emit


class WorkerPool:
    """``workers`` replicas of one engine, each pinned to a device in ``devices`` (round robin)."""

    def __init__(self, settings: SynthesisSettings, workers: int, queue_size: int,
                 devices: tuple[str, ...] = (), conversion: SynthesisSettings | None = None) -> None:
        if workers < 1:
            raise InputError(f"workers must be at least 1, got {workers}")
        if queue_size < 0:
            raise InputError(f"queue size must be 0 or more, got {queue_size}")
        self.settings = settings
        self.devices = devices or (settings.device,)
        self.worker_settings = [replace(settings, device=self.devices[i % len(self.devices)]) for i in range(workers)]
        # A post-synthesis stage (voice conversion) per replica, on the replica's device.
        self.conversion = conversion
        self.worker_conversion = [replace(conversion, device=s.device) if conversion else None
                                  for s in self.worker_settings]
        self._converters: list[Converter | None] = []
        # maxsize 0 would mean unbounded to queue.Queue: a queue of 0 refuses whatever finds no idle worker.
        self._jobs: queue.Queue[Job | None] = queue.Queue(maxsize=max(queue_size, 1))
        self._queue_size = queue_size
        self._engines: list[Engine] = []
        self._threads: list[threading.Thread] = []
        self._busy = 0
        self._busy_lock = threading.Lock()
        self.load_s: list[float] = []

    @property
    def workers(self) -> int:
        return len(self.worker_settings)

    def start(self) -> None:
        """Load every replica (in parallel) and start the workers; load errors raise InputError."""
        def load(index: int) -> tuple[Engine, Converter | None, float]:
            pool = EnginePool()
            engine, load_s = pool.acquire(self.worker_settings[index])
            conversion = self.worker_conversion[index]
            if conversion is None:
                return engine, None, load_s or 0.0
            converter, converted = pool.converters.acquire(conversion)
            return engine, converter, (load_s or 0.0) + (converted.load_s or 0.0)

        with ThreadPoolExecutor(max_workers=self.workers) as executor:
            loaded = list(executor.map(load, range(self.workers)))
        self._engines = [engine for engine, _, _ in loaded]
        self._converters = [converter for _, converter, _ in loaded]
        self.load_s = [seconds for _, _, seconds in loaded]
        for index, engine in enumerate(self._engines):
            thread = threading.Thread(target=self._run, args=(index, engine), name=f"tts-worker-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    @property
    def sample_rate(self) -> int:
        """The rate of the audio the server sends: the engine's, or the conversion stage's output."""
        converter, conversion = self._converters[0] if self._converters else None, self.worker_conversion[0]
        if converter is not None and conversion is not None:
            return converter.output_sample_rate(conversion)
        return self._engines[0].sample_rate

    def submit(self, job: Job) -> None:
        """Queue ``job`` or raise ApiError(429) when the queue is full."""
        with self._busy_lock:
            idle = self.workers - self._busy - self._jobs.qsize()
            if self._queue_size == 0 and idle <= 0:
                raise ApiError(429, "all workers are busy and this server keeps no queue", "queue_full")
            try:
                self._jobs.put_nowait(job)
            except queue.Full:
                raise ApiError(429, f"the queue is full ({self._queue_size} requests waiting)", "queue_full") from None

    def depth(self) -> tuple[int, int]:
        """(requests waiting, requests being synthesised)."""
        return self._jobs.qsize(), self._busy

    def close(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join(timeout=30)
        for engine in self._engines:
            engine.unload()
        for converter in self._converters:
            if converter is not None:
                converter.unload()
        self._threads.clear()

    def _run(self, index: int, engine: Engine) -> None:
        settings = self.worker_settings[index]
        while True:
            job = self._jobs.get()
            if job is None:
                return
            with self._busy_lock:
                self._busy += 1
            try:
                self._serve(index, engine, settings, job)
            finally:
                with self._busy_lock:
                    self._busy -= 1

    def _serve(self, index: int, engine: Engine, settings: SynthesisSettings, job: Job) -> None:
        timeline = job.timeline
        timeline.worker = index
        timeline.queue_wait_s = job.since_received()
        if job.cancelled.is_set():
            timeline.status = "cancelled"
            return
        if time.perf_counter() > job.deadline:
            self._fail(job, ApiError(504, "the request timed out in the queue", "timeout"), "timeout")
            return
        timeline.status, timeline.start_s = "running", job.since_received()
        offset = job.since_received()  # the timer's origin, in the timeline's time
        timer = StageTimer()
        seed_everything(settings.seed)
        converter, conversion = self._converters[index], self.worker_conversion[index]
        try:
            for chunk in engine.stream(job.text, job.voice, settings, timer):
                audio: Audio = chunk.audio
                if converter is not None and conversion is not None:  # the listener hears converted audio
                    with timer.stage(converter.name):
                        audio = converter.convert(audio, conversion, timer)
                pcm = audio.to_int16().tobytes()
                ready = job.since_received()
                timeline.chunks.append(ChunkEvent(chunk.index, ready, audio.duration_s, len(pcm)))
                timeline.audio_s += audio.duration_s
                if timeline.first_chunk_s is None:
                    timeline.first_chunk_s = ready
                job.emit(("chunk", pcm))
                if job.cancelled.is_set():
                    timeline.status = "cancelled"
                    return
                if time.perf_counter() > job.deadline:
                    raise TimeoutError
        except TimeoutError:
            self._fail(job, ApiError(504, "the request timed out during synthesis", "timeout"), "timeout")
            return
        except InputError as error:
            self._fail(job, ApiError(400, str(error)), "error")
            return
        except Exception as error:  # an engine crash fails this request, never the worker
            log.exception("worker %d: synthesis failed", index)
            reason = f"synthesis failed: {type(error).__name__}: {error}"
            self._fail(job, ApiError(500, reason, "server_error"), "error")
            return
        finally:
            timeline.add_stages(timer, offset)
            timeline.annotations.update(timer.annotations)  # voice_cache hit|miss, reference_cached, ...
            timeline.end_s = job.since_received()
        timeline.status = "ok"
        job.emit(("end", None))

    @staticmethod
    def _fail(job: Job, error: ApiError, status: str) -> None:
        job.timeline.status, job.timeline.error, job.timeline.http_status = status, error.message, error.status
        job.timeline.end_s = job.since_received()
        job.emit(("error", error))
