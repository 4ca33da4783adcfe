"""The FastAPI application: ``POST /v1/audio/speech`` (the OpenAI speech endpoint), health, models, timelines.

The status line waits for the first chunk, so a request that fails before any audio gets a real
4xx/5xx with its reason; after that, audio leaves as each chunk is ready (chunked PCM16), and a failure
mid-stream closes the connection without the final chunk (the client sees a broken stream).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from engines.base import Voice
from engines.registry import capabilities
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
from profiling.serve.timeline import TimelineStore
from profiling.serve.workers import Event, Job, WorkerPool, asyncio_emitter


@dataclass(frozen=True)
class ServeSettings:
    max_chars: int = 2000
    request_timeout_s: float = 60.0


def create_app(pool: WorkerPool, settings: ServeSettings, sample_rate: int) -> FastAPI:
    """The app around an already started ``pool``."""
    app = FastAPI(title="ttsperf serving target", docs_url=None, redoc_url=None, openapi_url=None)
    timelines = TimelineStore()
    engine_name = pool.settings.engine
    speakers = capabilities(engine_name).speakers
    voices = (DEFAULT_VOICE_NAME, engine_name, *speakers)
    models = (engine_name,)

    def refuse(error: ApiError, request_id: str | None = None) -> JSONResponse:
        headers = {REQUEST_ID_HEADER: request_id} if request_id else {}
        return JSONResponse(error.body(), status_code=error.status, headers=headers)

    @app.exception_handler(ApiError)
    async def api_error(_: Request, error: ApiError) -> JSONResponse:
        return refuse(error)

    @app.get("/health")
    async def health() -> dict[str, object]:
        waiting, running = pool.depth()
        return {"status": "ok", "engine": engine_name, "workers": pool.workers, "devices": list(pool.devices),
                "waiting": waiting, "running": running, "sample_rate": sample_rate}

    @app.get("/v1/models")
    async def list_models() -> dict[str, object]:
        return {"object": "list", "data": [{"id": m, "object": "model", "owned_by": "ttsperf"} for m in models]}

    @app.get("/v1/audio/voices")
    async def list_voices() -> dict[str, object]:
        return {"voices": list(voices)}

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
            speech_request = parse_speech_request(await request.body(), voices, models, settings.max_chars)
        except ApiError as error:
            return refuse(error, request_id)
        timeline = timelines.open(request_id, len(speech_request.text))
        out: asyncio.Queue[Event] = asyncio.Queue()
        voice = Voice(speaker=speech_request.voice) if speech_request.voice in speakers else Voice()
        job = Job(text=speech_request.text, voice=voice, timeline=timeline, received=received,
                  deadline=received + settings.request_timeout_s, emit=asyncio_emitter(asyncio.get_running_loop(), out))
        try:
            pool.submit(job)
        except ApiError as error:
            timeline.status, timeline.http_status, timeline.error = "refused", error.status, error.message
            return refuse(error, request_id)
        try:
            first = await asyncio.wait_for(out.get(), timeout=settings.request_timeout_s + 1.0)
        except (asyncio.TimeoutError, asyncio.CancelledError):
            job.cancelled.set()
            timeline.status, timeline.http_status = "timeout", 504
            return refuse(ApiError(504, "no audio before the request timeout", "timeout"), request_id)
        kind, payload = first
        if kind == "error":
            assert isinstance(payload, ApiError)
            return refuse(payload, request_id)
        headers = {REQUEST_ID_HEADER: request_id, SAMPLE_RATE_HEADER: str(sample_rate)}
        media_type = CONTENT_TYPES[speech_request.response_format]
        if not speech_request.stream:
            body = bytearray(payload if isinstance(payload, bytes) else b"")
            while kind == "chunk":
                kind, payload = await out.get()
                if kind == "chunk" and isinstance(payload, bytes):
                    body += payload
            if kind == "error":
                assert isinstance(payload, ApiError)
                return refuse(payload, request_id)
            if speech_request.response_format == "wav":
                body[:0] = wav_header(sample_rate, len(body))
            return Response(bytes(body), media_type=media_type, headers=headers)

        async def chunks() -> AsyncIterator[bytes]:
            try:
                if speech_request.response_format == "wav":
                    yield wav_header(sample_rate)
                current: Event = first
                while True:
                    kind, payload = current
                    if kind == "end":
                        return
                    if kind == "error":
                        # Ending the body without its last chunk tells the client the stream broke.
                        raise RuntimeError(f"stream {request_id} failed: {payload}")
                    assert isinstance(payload, bytes)
                    yield payload
                    current = await out.get()
            finally:
                job.cancelled.set()  # a client that went away stops the synthesis at the next chunk

        return StreamingResponse(chunks(), media_type=media_type, headers=headers)

    return app
