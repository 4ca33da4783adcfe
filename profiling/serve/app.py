"""The FastAPI application: ``POST /v1/audio/speech`` (the OpenAI speech endpoint), health, models, timelines.

The status line waits for the first chunk, so a request that fails before any audio gets a real
4xx/5xx with its reason; after that, audio leaves as each chunk is ready (chunked PCM16), and a failure
mid-stream closes the connection without the final chunk (the client sees a broken stream).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from profiling.audio.pcm import wav_header
from profiling.serve.protocol import (
    CONTENT_TYPES,
    DEFAULT_VOICE_NAME,
    REQUEST_ID_HEADER,
    SAMPLE_RATE_HEADER,
    ApiError,
    parse_speech_request,
    request_id_from,
)
from profiling.serve.scheduler import Event, Job
from profiling.serve.timeline import TimelineStore
from profiling.serve.voices import VoiceLibrary, voices_router
from profiling.serve.workers import WorkerPool, asyncio_emitter


@dataclass(frozen=True)
class ServeSettings:
    max_chars: int = 2000
    request_timeout_s: float = 60.0


def create_app(pool: WorkerPool, settings: ServeSettings, sample_rate: int,
               library: VoiceLibrary | None = None) -> FastAPI:
    """The app around an already started ``pool``; ``library`` holds the voices (default: the engine's own)."""
    app = FastAPI(title="ttsperf serving target", docs_url=None, redoc_url=None, openapi_url=None)
    timelines = TimelineStore()
    engine_name = pool.settings.engine
    voices = library or VoiceLibrary(cloning=False, fixed_names=(DEFAULT_VOICE_NAME, engine_name), engine=engine_name)
    models = (engine_name,)
    app.include_router(voices_router(voices))

    def refuse(error: ApiError, request_id: str | None = None) -> JSONResponse:
        headers = {REQUEST_ID_HEADER: request_id} if request_id else {}
        headers.update(error.headers())
        return JSONResponse(error.body(), status_code=error.status, headers=headers)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, error: ApiError) -> JSONResponse:
        return refuse(error)

    @app.get("/health")
    async def health() -> dict[str, object]:
        waiting, running = pool.depth()
        return {"status": "ok", "engine": engine_name, "workers": pool.workers, "devices": list(pool.devices),
                "waiting": waiting, "running": running, "sample_rate": sample_rate, "native_rate": pool.native_rate,
                "policy": pool.scheduling.policy, "chunker": pool.scheduling.chunker,
                "cpu_count": os.cpu_count() or 1}

    @app.get("/v1/models")
    async def list_models() -> dict[str, object]:
        return {"object": "list", "data": [{"id": m, "object": "model", "owned_by": "ttsperf"} for m in models]}

    @app.get("/v1/audio/voices")
    async def list_voices() -> dict[str, object]:
        return {"voices": list(voices.names())}

    @app.get("/v1/timelines/{request_id}")
    async def get_timeline(request_id: str) -> JSONResponse:
        timeline = timelines.get(request_id)
        if timeline is None:
            raise ApiError(404, f"no timeline for request id {request_id!r} (unknown or forgotten)", "not_found")
        return JSONResponse(timeline.to_dict())

    @app.get("/v1/timelines")
    async def all_timelines() -> JSONResponse:
        return JSONResponse([t.to_dict() for t in timelines.all()])

    @app.post("/v1/audio/speech")
    async def speech(request: Request) -> Response:
        received = time.perf_counter()
        request_id = request_id_from(request.headers.get(REQUEST_ID_HEADER), uuid.uuid4().hex)
        try:
            speech_request = parse_speech_request(await request.body(), voices.names(), models, settings.max_chars)
            voice = voices.get(speech_request.voice)  # the reference a cloning engine conditions on
        except ApiError as error:
            return refuse(error, request_id)
        timeline = timelines.open(request_id, len(speech_request.text))
        timeline.voice = speech_request.voice
        out: asyncio.Queue[Event] = asyncio.Queue()
        job = Job(text=speech_request.text, voice=voice, timeline=timeline, received=received,
                  deadline=received + settings.request_timeout_s, emit=asyncio_emitter(asyncio.get_running_loop(), out))
        try:
            stream = pool.submit(job, speech_request.overrides)
        except ApiError as error:
            timeline.status, timeline.http_status, timeline.error = "refused", error.status, error.message
            return refuse(error, request_id)
        # Until the response starts, a client that leaves is noticed here; after that, by the body's sender.
        watcher = asyncio.create_task(_watch_disconnect(request, job, pool))
        try:
            try:
                first = await asyncio.wait_for(out.get(), timeout=settings.request_timeout_s + 1.0)
            except (asyncio.TimeoutError, asyncio.CancelledError):
                job.cancelled.set()
                pool.scheduler.wake()
                timeline.status, timeline.http_status = "timeout", 504
                return refuse(ApiError(504, "no audio before the request timeout", "timeout"), request_id)
            kind, payload = first
            if kind == "error":
                assert isinstance(payload, ApiError)
                return refuse(payload, request_id)
            if kind == "cancelled":
                return Response(status_code=499)  # nobody is listening; the status is for the access log
            rate = stream.output_rate
            headers = {REQUEST_ID_HEADER: request_id, SAMPLE_RATE_HEADER: str(rate)}
            media_type = CONTENT_TYPES[speech_request.response_format]
            if not speech_request.stream:
                body = bytearray()
                while kind == "chunk":
                    assert isinstance(payload, bytes)
                    body += payload
                    pool.scheduler.read(stream)
                    kind, payload = await out.get()
                if kind == "error":
                    assert isinstance(payload, ApiError)
                    return refuse(payload, request_id)
                if kind == "cancelled":
                    return Response(status_code=499)
                if speech_request.response_format == "wav":
                    body[:0] = wav_header(rate, len(body))
                return Response(bytes(body), media_type=media_type, headers=headers)
        finally:
            watcher.cancel()

        async def chunks() -> AsyncIterator[bytes]:
            try:
                if speech_request.response_format == "wav":
                    yield wav_header(rate)
                current: Event = first
                while True:
                    kind, payload = current
                    if kind in ("end", "cancelled"):
                        return
                    if kind == "error":
                        # Ending the body without its last chunk tells the client the stream broke.
                        raise RuntimeError(f"stream {request_id} failed: {payload}")
                    assert isinstance(payload, bytes)
                    yield payload
                    pool.scheduler.read(stream)  # sent: the stream may run again (backpressure)
                    current = await out.get()
            finally:
                # A client that went away stops the synthesis at the next chunk boundary.
                job.cancelled.set()
                pool.scheduler.wake()

        return StreamingResponse(chunks(), media_type=media_type, headers=headers)

    return app


async def _watch_disconnect(request: Request, job: Job, pool: WorkerPool) -> None:
    """Mark ``job`` cancelled when its client disconnects (the body has been read: only disconnect is left)."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            job.cancelled.set()
            pool.scheduler.wake()
            return
