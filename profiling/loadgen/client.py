"""The client: sends a schedule's requests over streaming HTTP and times each one (asyncio + httpx).

Every instant is ``time.perf_counter`` in this process; see docs/load_methodology.md for what each
metric spans. A failed request becomes a row with its kind, never an exception out of ``run_rate``.
"""

from __future__ import annotations

import asyncio
import math
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import numpy as np

from profiling.audio.pcm import WAV_HEADER_BYTES, parse_wav_header
from profiling.audio.playback import PlaybackSettings, simulate_playback
from profiling.loadgen.audible import TbOnsetDetector, first_loud_sample
from profiling.loadgen.schedule import Schedule
from profiling.loadgen.targets import Target

#: Body reads kept per request for the timeline plot (later reads are merged into the last kept one).
MAX_READS_KEPT = 400


@dataclass(frozen=True)
class ClientOptions:
    voice: str = "default"
    response_format: str = "pcm"
    model: str | None = None
    #: Warm-up requests before each load's clock starts (0 = none). The first wave is the text set's
    #: longest prompt sent concurrently, once per worker (lab target) or ``warmup_concurrency`` at once.
    warmup: int = 2
    warmup_concurrency: int = 4
    max_in_flight: int = 256
    #: HTTP connections the client may hold at once (default: max_in_flight).
    connections: int | None = None
    request_timeout_s: float = 60.0
    stall_timeout_s: float = 10.0
    connect_timeout_s: float = 5.0
    #: After the last arrival, how long in-flight requests may take before they are cut.
    drain_s: float = 30.0
    #: Used when a PCM answer does not say its sample rate (X-Sample-Rate).
    default_sample_rate: int = 24000
    playback: PlaybackSettings = field(default_factory=PlaybackSettings)
    #: Extra request headers (e.g. X-Faults for the fault target, or auth for another server).
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class RequestRow:
    """One request as the client saw it. Times in seconds; None where the request never got that far."""

    request_id: str
    index: int
    warmup: bool
    text_id: str
    text_chars: int
    ideal_s: float  # ideal arrival, from the rate's start (closed loop: when the user asked)
    status: str = "ok"  # ok, or a failure kind (docs/load_methodology.md)
    http_status: int = 0
    error: str = ""
    dispatch_s: float | None = None  # from the rate's start
    lag_s: float | None = None
    ttfb_s: float | None = None  # this and below: from dispatch
    first_playable_s: float | None = None
    audible_ttfa_s: float | None = None  # the lab's rule: first sample above 0.02 full scale
    audible_ttfa_tb_s: float | None = None  # tts_bench's rule: 2 frames of 20 ms >= -45 dBFS RMS
    leading_silence_s: float | None = None
    e2e_s: float | None = None
    audio_s: float = 0.0
    rtf: float | None = None
    xrt: float | None = None
    gap_p50_s: float | None = None
    gap_p95_s: float | None = None
    gap_p99_s: float | None = None
    gap_max_s: float | None = None
    underruns: int | None = None
    stall_s: float | None = None
    #: The longest underrun and all underruns together (ms) in the simulated player; 0 when none.
    underrun_max_ms: float | None = None
    underrun_total_ms: float | None = None
    bytes: int = 0
    #: (seconds from dispatch, bytes) per body read, for the per-request timeline.
    reads: tuple[tuple[float, int], ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == "ok"


@dataclass(frozen=True)
class RateRun:
    """Every row of one rate (or one user count) and what the machine did meanwhile."""

    schedule: Schedule
    rows: tuple[RequestRow, ...]
    wall_s: float
    client_cpu_s: float
    server_cpu_s: float | None
    started_unix: float
    #: Server timelines by request id (empty when the target keeps none).
    server: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def client_cpu_fraction(self) -> float:
        """Client CPU seconds per wall second (1.0 = one core busy all the time)."""
        return self.client_cpu_s / self.wall_s if self.wall_s > 0 else 0.0


class _Failure(Exception):
    def __init__(self, kind: str, message: str, http_status: int = 0) -> None:
        super().__init__(message)
        self.kind, self.message, self.http_status = kind, message, http_status


class _Body:
    """Turns body reads into samples: header, odd bytes and the first audible sample handled across reads."""

    def __init__(self, wav: bool, sample_rate: int | None) -> None:
        self.wav = wav
        self.sample_rate = sample_rate
        self.header = b""
        self.carry = b""
        self.samples = 0
        self.first_sample_at: float | None = None
        self.audible_at: float | None = None
        self.audible_index: int | None = None
        self.tb: TbOnsetDetector | None = None
        self.tb_at: float | None = None
        self.tb_index: int | None = None
        self.reads: list[tuple[float, int]] = []  # (time, samples) of reads that carried audio

    def feed(self, data: bytes, at: float) -> None:
        if self.wav and len(self.header) < WAV_HEADER_BYTES:
            need = WAV_HEADER_BYTES - len(self.header)
            self.header += data[:need]
            data = data[need:]
            if len(self.header) == WAV_HEADER_BYTES:
                try:
                    self.sample_rate = parse_wav_header(self.header)
                except ValueError as error:
                    raise _Failure("malformed_pcm", f"bad WAV header: {error}") from None
        data = self.carry + data
        whole = len(data) // 2 * 2
        self.carry = data[whole:]
        if not whole:
            return
        samples = np.frombuffer(data[:whole], dtype="<i2")
        if self.first_sample_at is None:
            self.first_sample_at = at
        if self.audible_at is None:
            loud = first_loud_sample(samples)
            if loud is not None:
                self.audible_at, self.audible_index = at, self.samples + loud
        self.samples += len(samples)
        self.reads.append((at, len(samples)))
        if self.tb_index is None and self.sample_rate:
            self.tb = self.tb or TbOnsetDetector(self.sample_rate)
            onset = self.tb.feed(samples)
            if onset is not None:  # the onset frame may have begun in an earlier read
                self.tb_index, self.tb_at = onset, self._read_time(onset)

    def _read_time(self, index: int) -> float:
        """Arrival of the read holding sample ``index``."""
        end = self.samples
        for at, count in reversed(self.reads):
            end -= count
            if index >= end:
                return at
        return self.reads[0][0]

    def finish(self) -> None:
        if self.wav and len(self.header) < WAV_HEADER_BYTES:
            raise _Failure("malformed_pcm", f"the body ended inside the WAV header ({len(self.header)} bytes)")
        if self.carry:
            raise _Failure("malformed_pcm", "odd byte count: the body is not whole PCM16 samples")
        if self.samples == 0:
            raise _Failure("malformed_pcm", "the body holds no audio")


def _classify(error: BaseException) -> _Failure:
    if isinstance(error, _Failure):
        return error
    if isinstance(error, httpx.ConnectTimeout | httpx.ConnectError):
        return _Failure("connect", f"cannot connect: {error}".strip())
    if isinstance(error, httpx.ReadTimeout):
        return _Failure("stall", "no byte for the stall timeout")
    if isinstance(error, httpx.RemoteProtocolError | httpx.ReadError):
        return _Failure("broken_stream", f"the stream broke: {error}".strip())
    if isinstance(error, asyncio.TimeoutError | httpx.TimeoutException):
        return _Failure("timeout", "the request timed out")
    return _Failure("client_error", f"{type(error).__name__}: {error}")


def _status_kind(status: int) -> str:
    if status in (429, 503):
        return f"http_{status}"
    return "http_4xx" if status < 500 else "http_5xx"


def _reason(response_body: bytes) -> str:
    text = response_body[:500].decode("utf-8", "replace")
    try:
        import json

        return str(json.loads(text)["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return text.strip().replace("\n", " ")[:200]


async def _one_request(client: httpx.AsyncClient, target: Target, options: ClientOptions, row: RequestRow,
                       text: str, t0: float) -> RequestRow:
    dispatched: list[float] = []

    async def trace(event: str, info: dict[str, Any]) -> None:
        if event.endswith("send_request_headers.started") and not dispatched:
            dispatched.append(time.perf_counter())

    payload: dict[str, Any] = {"input": text, "voice": options.voice,
                               "response_format": options.response_format, "stream": True}
    if options.model:
        payload["model"] = options.model
    headers = {**dict(options.headers), **target.headers, "X-Request-Id": row.request_id}
    body: _Body | None = None
    end: float | None = None
    first_byte: float | None = None
    fallback_dispatch = time.perf_counter()
    try:
        async with client.stream("POST", target.speech_url, json=payload, headers=headers,
                                 extensions={"trace": trace}) as response:
            if response.status_code != 200:
                raise _Failure(_status_kind(response.status_code), _reason(await response.aread()),
                               response.status_code)
            content_type = response.headers.get("content-type", "")
            if not content_type.startswith("audio/"):
                raise _Failure("not_audio", f"content type {content_type or 'missing'!r}, not audio", 200)
            wav = "wav" in content_type
            rate_header = response.headers.get("x-sample-rate", "")
            rate = int(rate_header) if rate_header.isdigit() and int(rate_header) > 0 else None
            body = _Body(wav, rate if rate or wav else options.default_sample_rate)
            async for data in response.aiter_raw():
                if not data:
                    continue
                now = time.perf_counter()
                first_byte = first_byte or now
                body.feed(data, now)
            end = time.perf_counter()
            body.finish()
    except BaseException as error:  # noqa: BLE001 - every failure becomes a row
        if isinstance(error, asyncio.CancelledError):
            failure = _Failure("timeout", "cut by the end of the drain")
        else:
            failure = _classify(error)
            if failure.kind == "stall" and body is None:  # nothing answered yet: waiting, not a stalled stream
                failure = _Failure("timeout", f"no answer within the {options.stall_timeout_s:g} s read timeout")
        dispatch = dispatched[0] if dispatched else fallback_dispatch
        return replace(row, status=failure.kind, http_status=failure.http_status, error=failure.message,
                       dispatch_s=dispatch - t0, lag_s=dispatch - t0 - row.ideal_s,
                       ttfb_s=None if first_byte is None else first_byte - dispatch,
                       bytes=0 if body is None else body.samples * 2)
    dispatch = dispatched[0] if dispatched else fallback_dispatch
    return _finished_row(row, body, dispatch, first_byte, end, t0, options.playback)


def _finished_row(row: RequestRow, body: _Body, dispatch: float, first_byte: float | None, end: float,
                  t0: float, playback: PlaybackSettings) -> RequestRow:
    rate = body.sample_rate or 1
    audio_s = body.samples / rate
    ready = [max(0.0, at - dispatch) for at, _ in body.reads]
    durations = [n / rate for _, n in body.reads]
    leading = body.audible_index / rate if body.audible_index is not None else audio_s
    report = simulate_playback(ready, durations, playback, leading_silence_s=leading)
    gaps = np.diff(ready)
    stalls = [u.duration_s * 1000 for u in report.underruns]
    e2e = end - dispatch
    span = end - (first_byte or end)
    reads = [(r, n * 2) for r, (_, n) in zip(ready, body.reads, strict=True)]
    if len(reads) > MAX_READS_KEPT:
        tail = (reads[MAX_READS_KEPT - 1][0], sum(n for _, n in reads[MAX_READS_KEPT - 1 :]))
        reads = reads[: MAX_READS_KEPT - 1] + [tail]
    return replace(
        row, status="ok", http_status=200, dispatch_s=dispatch - t0, lag_s=dispatch - t0 - row.ideal_s,
        ttfb_s=None if first_byte is None else first_byte - dispatch,
        first_playable_s=None if body.first_sample_at is None else body.first_sample_at - dispatch,
        audible_ttfa_s=None if body.audible_at is None else body.audible_at - dispatch,
        audible_ttfa_tb_s=None if body.tb_at is None else body.tb_at - dispatch,
        leading_silence_s=leading, e2e_s=e2e, audio_s=audio_s,
        rtf=e2e / audio_s if audio_s > 0 else None, xrt=audio_s / span if span > 0 else None,
        gap_p50_s=float(np.percentile(gaps, 50)) if gaps.size else None,
        gap_p95_s=float(np.percentile(gaps, 95)) if gaps.size else None,
        gap_p99_s=float(np.percentile(gaps, 99)) if gaps.size else None,
        gap_max_s=float(gaps.max()) if gaps.size else None,
        underruns=report.underrun_count, stall_s=report.total_stall_s, bytes=body.samples * 2,
        underrun_max_ms=max(stalls, default=0.0), underrun_total_ms=float(sum(stalls)),
        reads=tuple(reads),
    )


def _new_row(index: int, texts: Sequence[tuple[str, str]], text_index: int, ideal_s: float,
             warmup: bool = False) -> tuple[RequestRow, str]:
    text_id, text = texts[text_index % len(texts)]
    row = RequestRow(request_id=f"ld-{uuid.uuid4().hex[:16]}", index=index, warmup=warmup,
                     text_id=text_id, text_chars=len(text), ideal_s=ideal_s)
    return row, text


def warmup_waves(options: ClientOptions, target: Target, texts: Sequence[tuple[str, str]]) -> list[list[int]]:
    """Text indexes of the warm-up, wave by wave (each wave sent concurrently, waves in turn).

    The first wave is the set's longest prompt once per worker (the lab target says how many; otherwise
    ``warmup_concurrency`` at most): every worker is warm and has seen the longest input before the clock
    starts. The rest of ``warmup`` follow one at a time, in text order.
    """
    if options.warmup <= 0 or not texts:
        return []
    longest = max(range(len(texts)), key=lambda i: len(texts[i][1]))
    spec = target.spec
    first = spec.workers if spec.kind == "lab" else min(options.warmup, max(1, options.warmup_concurrency))
    rest = max(0, options.warmup - first)
    return [[longest] * first] + [[i % len(texts)] for i in range(rest)]


def _cpu_seconds(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        import psutil

        times = psutil.Process(pid).cpu_times()
        return float(times.user + times.system)
    except Exception:  # the server may be gone or not ours to read
        return None


async def _run_async(target: Target, schedule: Schedule, texts: Sequence[tuple[str, str]],
                     options: ClientOptions, progress: Any) -> tuple[list[RequestRow], float]:
    connections = options.connections or options.max_in_flight
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    timeout = httpx.Timeout(options.request_timeout_s, connect=options.connect_timeout_s,
                            read=options.stall_timeout_s, pool=None)
    rows: list[RequestRow] = []
    in_flight: set[asyncio.Task[RequestRow]] = set()
    planned: dict[asyncio.Task[RequestRow], RequestRow] = {}
    async with httpx.AsyncClient(limits=limits, timeout=timeout, trust_env=False) as client:
        t0 = time.perf_counter()

        async def bounded(row: RequestRow, text: str) -> RequestRow:
            try:
                return await asyncio.wait_for(_one_request(client, target, options, row, text, t0),
                                              options.request_timeout_s)
            except asyncio.TimeoutError:
                return replace(row, status="timeout", error=f"no end after {options.request_timeout_s:g} s")

        def finished(task: asyncio.Task[RequestRow]) -> None:
            in_flight.discard(task)
            if not task.cancelled():
                rows.append(task.result())
                if progress is not None:
                    progress(rows)

        # Warm-up first, finished before the schedule's clock starts: a warm-up still holding a worker would
        # otherwise delay the first measured requests.
        warm = 0
        for wave in warmup_waves(options, target, texts):
            planned_rows = [_new_row(warm + k, texts, text_index, time.perf_counter() - t0, warmup=True)
                            for k, text_index in enumerate(wave)]
            warm += len(wave)
            rows.extend(await asyncio.gather(*(bounded(row, text) for row, text in planned_rows)))
        t0 = time.perf_counter()  # ``bounded`` sees the new start: measured times count from here
        if schedule.kind == "closed":
            await _closed_loop(schedule, texts, options, bounded, rows, t0, progress, warm)
        else:
            for position, offset in enumerate(schedule.offsets_s):
                delay = t0 + offset - time.perf_counter()
                if delay > 0:
                    await asyncio.sleep(delay)
                row, text = _new_row(warm + position, texts, position, offset)
                if len(in_flight) >= options.max_in_flight:
                    rows.append(replace(row, status="dropped", error=f"{options.max_in_flight} already in flight",
                                        lag_s=time.perf_counter() - t0 - offset))
                    continue
                task = asyncio.create_task(bounded(row, text))
                planned[task] = row
                in_flight.add(task)
                task.add_done_callback(finished)
            if in_flight:
                done, pending = await asyncio.wait(set(in_flight), timeout=options.drain_s)
                cut = list(pending)
                for task in cut:
                    task.cancel()
                if cut:
                    results = await asyncio.gather(*cut, return_exceptions=True)
                    for task, result in zip(cut, results, strict=True):
                        if not isinstance(result, RequestRow):  # a returned row was kept by ``finished``
                            rows.append(replace(planned[task], status="timeout", error="cut by the end of the drain"))
        wall = time.perf_counter() - t0
    return sorted(rows, key=lambda r: r.index), wall


async def _closed_loop(schedule: Schedule, texts: Sequence[tuple[str, str]], options: ClientOptions, bounded: Any,
                       rows: list[RequestRow], t0: float, progress: Any, first_index: int) -> None:
    counter = {"next": 0}
    stop_at = t0 + schedule.duration_s

    async def user() -> None:
        while time.perf_counter() < stop_at and counter["next"] < schedule.max_requests:
            index = counter["next"]
            counter["next"] += 1
            row, text = _new_row(first_index + index, texts, index, time.perf_counter() - t0)
            try:
                rows.append(await bounded(row, text))
            except asyncio.CancelledError:  # the test's end: the request still ends as a row
                rows.append(replace(row, status="timeout", error="cut by the end of the test"))
                raise
            if progress is not None:
                progress(rows)

    tasks = [asyncio.create_task(user()) for _ in range(schedule.users)]
    _, pending = await asyncio.wait(tasks, timeout=schedule.duration_s + options.drain_s)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


def run_rate(target: Target, schedule: Schedule, texts: Sequence[tuple[str, str]], options: ClientOptions,
             progress: Any = None) -> RateRun:
    """Send ``schedule`` to ``target``; every request ends as a row. ``progress(rows)`` sees each finish."""
    if not texts:
        raise ValueError("no texts to send")
    started = time.time()
    cpu_before, server_before = time.process_time(), _cpu_seconds(target.pid)
    rows, wall = _run_to_end(_run_async(target, schedule, texts, options, progress))
    client_cpu = time.process_time() - cpu_before
    server_after = _cpu_seconds(target.pid)
    server_cpu = None if server_before is None or server_after is None else server_after - server_before
    return RateRun(schedule, tuple(rows), wall, client_cpu, server_cpu, started,
                   fetch_timelines(target, [r.request_id for r in rows]))


def _run_to_end(coroutine: Any) -> Any:
    """asyncio.run, or asyncio.run in a fresh thread where this thread already runs a loop (Jupyter)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1) as executor:
        return executor.submit(asyncio.run, coroutine).result()


def fetch_timelines(target: Target, request_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The server's timelines for ``request_ids`` (one call); empty when the target keeps none."""
    try:
        response = httpx.get(target.base_url + "/v1/timelines", headers=target.headers, timeout=30.0,
                             trust_env=False)
    except httpx.HTTPError:
        return {}
    if response.status_code != 200:
        return {}
    try:
        items = response.json()
    except ValueError:
        return {}
    wanted = set(request_ids)
    return {t["request_id"]: t for t in items if isinstance(t, dict) and t.get("request_id") in wanted}


def finite_or_none(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None
