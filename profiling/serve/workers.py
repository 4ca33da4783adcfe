"""N engine replicas, each a thread with its own loaded engine, advancing streams a chunk at a time.

Threads, not processes: Piper's ONNX Runtime and torch release the GIL inside inference, and a
measurement on this machine (docs/benchmarks/piper-serving-cpu.md) found two thread replicas as fast
as two process replicas, without a copy of every chunk through a pipe. Each replica has its own
EnginePool, so replicas never share a model, a lock or a voice cache. Which stream a free worker
advances is the scheduler's choice (profiling/serve/scheduler.py).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np

from engines.base import DEFAULT_VOICE, Audio, Engine, SynthesisSettings, Voice
from engines.chunking import chunk_text
from engines.convert.base import Converter
from engines.errors import InputError
from profiling.audio.resample import StreamResampler
from profiling.core.timer import StageTimer
from profiling.run.runner import EnginePool
from profiling.serve.protocol import ApiError, StreamOverrides
from profiling.serve.randomness import RANDOM_INIT_LOCK, seed_process
from profiling.serve.scheduler import Event, Job, Scheduler, Stream
from profiling.serve.scheduling import SchedulingSettings
from profiling.serve.timeline import ChunkEvent

log = logging.getLogger(__name__)
DEFAULT_SCHEDULING = SchedulingSettings()
NO_OVERRIDES = StreamOverrides()

__all__ = ["Event", "Job", "WorkerPool", "asyncio_emitter"]

#: Text every replica speaks once before the server says it is ready (first calls are slow everywhere).
WARMUP_TEXT = "Warming up, one two three. This sentence reaches the engine's usual chunk length, and then some."


def asyncio_emitter(loop: asyncio.AbstractEventLoop, out: asyncio.Queue[Event]) -> Callable[[Event], None]:
    """A thread-safe ``emit`` that lands events in ``out`` on ``loop``."""
    def emit(event: Event) -> None:
        try:
            loop.call_soon_threadsafe(out.put_nowait, event)
        except RuntimeError:  # the loop closed (server shutting down): nobody is listening
            pass
    return emit


@dataclass(frozen=True)
class _Step:
    """One chunk as a worker produced it."""

    audio: Audio
    chars: int
    last: bool


class WorkerPool:
    """``workers`` replicas of one engine, each pinned to a device in ``devices`` (round robin)."""

    def __init__(self, settings: SynthesisSettings, workers: int, queue_size: int,
                 devices: tuple[str, ...] = (), conversion: SynthesisSettings | None = None,
                 scheduling: SchedulingSettings = DEFAULT_SCHEDULING) -> None:
        if workers < 1:
            raise InputError(f"workers must be at least 1, got {workers}")
        if queue_size < 0:
            raise InputError(f"queue size must be 0 or more, got {queue_size}")
        self.settings = settings
        self.scheduling = scheduling
        self.devices = devices or (settings.device,)
        self.worker_settings = [replace(settings, device=self.devices[i % len(self.devices)]) for i in range(workers)]
        # A post-synthesis stage (voice conversion) per replica, on the replica's device.
        self.conversion = conversion
        self.worker_conversion = [replace(conversion, device=s.device) if conversion else None
                                  for s in self.worker_settings]
        self._converters: list[Converter | None] = []
        self._engines: list[Engine] = []
        self._threads: list[threading.Thread] = []
        self.scheduler = Scheduler(scheduling, workers, queue_size)
        self.load_s: list[float] = []
        self.warmup_s: list[float] = []

    @property
    def workers(self) -> int:
        return len(self.worker_settings)

    def start(self, warmup: bool = True, warmup_voice: Voice = DEFAULT_VOICE) -> None:
        """Load every replica (in parallel), warm each one up in ``warmup_voice`` (for a cloning engine its
        conditioning is then cached too), start the workers; load errors raise InputError."""
        def load(index: int) -> tuple[Engine, Converter | None, float]:
            pool = EnginePool()
            # One at a time from one seed: replicas built in parallel would draw different random weights.
            with RANDOM_INIT_LOCK:
                seed_process(self.settings.seed)
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
        # Seeded once, before any worker runs: reseeding the process-wide generators per request would race
        # between worker threads (docs/serving.md, "Random state").
        seed_process(self.settings.seed)
        if warmup:
            self.warmup_s = [self._warm(index, warmup_voice) for index in range(self.workers)]
        for index, engine in enumerate(self._engines):
            thread = threading.Thread(target=self._run, args=(index, engine), name=f"tts-worker-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def _warm(self, index: int, voice: Voice) -> float:
        """One synthesis on replica ``index``; an engine that refuses the text or voice is simply not warmed."""
        engine, settings = self._engines[index], self.worker_settings[index]
        start = time.perf_counter()
        try:
            engine.synthesize(WARMUP_TEXT, voice, settings)
        except InputError:
            return 0.0
        return time.perf_counter() - start

    @property
    def native_rate(self) -> int:
        """The rate the engine (or the conversion stage after it) produces."""
        converter, conversion = self._converters[0] if self._converters else None, self.worker_conversion[0]
        if converter is not None and conversion is not None:
            return converter.output_sample_rate(conversion)
        return self._engines[0].sample_rate

    def output_rate(self, overrides: StreamOverrides) -> int:
        """The rate a request's audio is sent at: what it asked for, else the server's setting (0 = native)."""
        wanted = overrides.sample_rate if overrides.sample_rate is not None else self.scheduling.output_rate
        return wanted or self.native_rate

    @property
    def sample_rate(self) -> int:
        """The rate sent when a request asks for nothing."""
        return self.output_rate(NO_OVERRIDES)

    def submit(self, job: Job, overrides: StreamOverrides = NO_OVERRIDES) -> Stream:
        """Queue ``job``; ApiError 429 (queue full) or 503 (admission) when it is refused."""
        chunker = overrides.chunker or self.scheduling.chunker
        stream = Stream(job=job, chunker=chunker, output_rate=self.output_rate(overrides))
        if chunker == "lab":
            settings = replace(
                self.scheduling,
                first_chunk_chars=overrides.first_chunk_chars or self.scheduling.first_chunk_chars,
                chunk_chars=overrides.chunk_chars or self.scheduling.chunk_chars,
                sentence_only_after_s=(self.scheduling.sentence_only_after_s if overrides.sentence_only_after_s
                                       is None else overrides.sentence_only_after_s))
            stream.plan = chunk_text(job.text, settings.chunking())
            job.timeline.chunker = (f"lab:{settings.first_chunk_chars}/{settings.chunk_chars}/"
                                    f"{settings.sentence_only_after_s:g}")
        else:
            job.timeline.chunker = "engine"
        job.timeline.policy = self.scheduling.policy
        job.timeline.sample_rate = stream.output_rate
        self.scheduler.submit(stream)
        return stream

    def depth(self) -> tuple[int, int]:
        """(requests waiting to start, requests started and not finished)."""
        return self.scheduler.depth()

    def close(self) -> None:
        self.scheduler.close()
        for thread in self._threads:
            thread.join(timeout=30)
        for engine in self._engines:
            engine.unload()
        for converter in self._converters:
            if converter is not None:
                converter.unload()
        self._threads.clear()

    # --- a worker --------------------------------------------------------------------------------
    def _run(self, index: int, engine: Engine) -> None:
        while True:
            stream = self.scheduler.next_for(index)
            if stream is None:
                return
            try:
                self._advance(index, engine, stream)
            except Exception:  # never lose a worker: the stream fails, the worker goes on
                log.exception("worker %d: unexpected failure", index)
                self._fail(stream, ApiError(500, "internal error while serving", "server_error"), "error")

    def _advance(self, index: int, engine: Engine, stream: Stream) -> None:
        """One step of ``stream`` on worker ``index``: its next chunk, or its end."""
        job, timeline = stream.job, stream.job.timeline
        if job.cancelled.is_set():
            self._end(stream, "cancelled")
            return
        if time.perf_counter() > job.deadline:
            where = "during synthesis" if stream.started else "in the queue"
            self._fail(stream, ApiError(504, f"the request timed out {where}", "timeout"), "timeout")
            return
        settings = self.worker_settings[index]
        if not stream.started:
            stream.started = True
            timeline.worker, timeline.queue_wait_s = index, job.since_received()
            timeline.status, timeline.start_s = "running", job.since_received()
            stream.timer_offset_s = job.since_received()  # the timer's origin, in the timeline's time
            stream.timer = StageTimer()
            if stream.output_rate != self.native_rate:
                stream.resampler = StreamResampler(self.native_rate, stream.output_rate)
            if stream.plan is None:
                stream.chunks = engine.stream(job.text, job.voice, settings, stream.timer)
        timer = stream.timer
        assert timer is not None
        deadline = self.scheduler.deadline(stream)
        began = job.since_received()
        try:
            step = self._synthesize(engine, settings, stream, timer)
            if step is not None:
                audio = self._post_process(index, stream, step.audio, timer, last=step.last)
        except InputError as error:
            self._fail(stream, ApiError(400, str(error)), "error")
            return
        except Exception as error:  # an engine crash fails this request, never the worker
            log.exception("worker %d: synthesis failed", index)
            self._fail(stream, ApiError(500, f"synthesis failed: {type(error).__name__}: {error}", "server_error"),
                       "error")
            return
        if step is None:  # the engine's own stream ended
            tail = self._flush(stream, timer)
            if tail is not None:
                self._send(stream, tail, deadline, began, 0)
            self._end(stream, "ok")
            return
        spent = job.since_received() - began
        self._send(stream, audio, deadline, began, step.chars)
        if step.last:
            self._end(stream, "ok", spent, step.chars)
        else:
            self.scheduler.release(stream, spent, step.chars)

    def _synthesize(self, engine: Engine, settings: SynthesisSettings, stream: Stream,
                    timer: StageTimer) -> _Step | None:
        """The stream's next chunk of audio (None: the engine's stream has ended)."""
        job = stream.job
        if stream.plan is None:
            assert stream.chunks is not None
            chunk = next(stream.chunks, None)
            if chunk is None:
                return None
            stream.next_index += 1
            return _Step(chunk.audio, len(chunk.text), last=False)
        text = stream.plan.chunks[stream.next_index]
        stream.next_index += 1
        last = stream.next_index >= len(stream.plan.chunks)
        try:
            audio = engine.synthesize(text, job.voice, settings, timer)
            stream.spoke = True
        except InputError:
            # A chunk with nothing to say (only punctuation) is silent; a stream with nothing at all fails.
            if last and not stream.spoke:
                raise
            audio = Audio(np.zeros(0, dtype=np.float32), engine.sample_rate)
        return _Step(audio, len(text), last)

    def _post_process(self, index: int, stream: Stream, audio: Audio, timer: StageTimer, last: bool) -> Audio:
        converter, conversion = self._converters[index], self.worker_conversion[index]
        if converter is not None and conversion is not None:  # the listener hears converted audio
            with timer.stage(converter.name):
                audio = converter.convert(audio, conversion, timer)
        if stream.resampler is not None:
            with timer.stage("resample"):
                samples = stream.resampler.process(audio.samples)
                if last:
                    samples = np.concatenate([samples, stream.resampler.flush()])
                audio = Audio(samples, stream.output_rate)
        return audio

    @staticmethod
    def _flush(stream: Stream, timer: StageTimer) -> Audio | None:
        if stream.resampler is None:
            return None
        with timer.stage("resample"):
            tail = stream.resampler.flush()
        return Audio(tail, stream.output_rate) if tail.size else None

    def _send(self, stream: Stream, audio: Audio, deadline: float, began: float, chars: int) -> None:
        job, timeline = stream.job, stream.job.timeline
        pcm = audio.to_int16().tobytes()
        ready = job.since_received()
        due = deadline - job.received
        timeline.chunks.append(ChunkEvent(len(timeline.chunks), ready, audio.duration_s, len(pcm), deadline_s=due,
                                     slack_s=due - ready, chars=chars, start_s=began))
        timeline.audio_s += audio.duration_s
        if timeline.first_chunk_s is None:
            timeline.first_chunk_s = ready
        self.scheduler.sent(stream, audio.duration_s)
        job.emit(("chunk", pcm))

    def _close_timer(self, stream: Stream) -> None:
        timeline = stream.job.timeline
        if stream.chunks is not None:
            close = getattr(stream.chunks, "close", None)
            if close is not None:
                try:
                    close()  # a generator stopped early runs its cleanup now, not at garbage collection
                except Exception:  # noqa: BLE001 - cleanup of a stream that is over anyway
                    log.debug("closing a stream's iterator failed", exc_info=True)
        if stream.timer is not None:
            timeline.add_stages(stream.timer, stream.timer_offset_s)
            timeline.annotations.update(stream.timer.annotations)  # voice_cache hit|miss, reference_cached, ...
        timeline.end_s = stream.job.since_received()

    def _end(self, stream: Stream, status: str, chunk_s: float | None = None, chars: int = 0) -> None:
        self._close_timer(stream)
        stream.job.timeline.status = status
        self.scheduler.finish(stream, chunk_s, chars)
        if status == "ok":
            stream.job.emit(("end", None))
        elif status == "cancelled":
            stream.job.emit(("cancelled", None))

    def _fail(self, stream: Stream, error: ApiError, status: str) -> None:
        timeline = stream.job.timeline
        self._close_timer(stream)
        timeline.status, timeline.error, timeline.http_status = status, error.message, error.status
        self.scheduler.finish(stream)
        stream.job.emit(("error", error))


