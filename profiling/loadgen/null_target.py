"""The built-in null target: answers the speech endpoint at once with PCM, or with faults injected.

With no faults it measures the generator itself (its scheduling lag and highest sustainable rate,
since the server costs next to nothing). Faults, set as data: a fixed capacity (slots x service time),
a stall after some chunk, a 500 every n-th request, a slow answer (the connection is held before the
status line), a non-audio body, malformed PCM (an odd byte count), a stream that breaks mid-way, leading silence.
Run as ``python -m profiling.loadgen.null_target --port 0 [--faults JSON]``; it prints the lab server's ready line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
from collections.abc import AsyncIterator, Sequence
from dataclasses import asdict, dataclass, fields

import numpy as np
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from engines.errors import InputError

READY_PREFIX = "ttsperf-serve ready"  # the same line as profiling.serve.server, so one launcher reads both
SAMPLE_RATE = 22050


@dataclass(frozen=True)
class FaultSettings:
    audio_s: float = 1.0
    chunk_ms: float = 200.0
    #: Pause before each chunk after the first (0 = as fast as the socket takes it).
    chunk_interval_ms: float = 0.0
    leading_silence_ms: float = 0.0
    #: Pause of ``stall_ms`` after chunk ``stall_after`` (-1 = never).
    stall_after: int = -1
    stall_ms: float = 0.0
    #: Every n-th request (1-based count) answers 500 (0 = never).
    error_every: int = 0
    #: The connection is held this long before the status line.
    accept_delay_ms: float = 0.0
    non_audio: bool = False
    malformed_pcm: bool = False
    #: The body stops after this many chunks without its end (-1 = never).
    break_after: int = -1
    #: A server with a capacity: each request holds one of ``slots`` for ``service_ms`` before its status line
    #: (0 slots = unlimited). Above slots / service seconds requests/s a queue builds: a known capacity.
    slots: int = 0
    service_ms: float = 0.0

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> FaultSettings:
        try:
            data = json.loads(text) if text else {}
            known = {f.name for f in fields(cls)}
            unknown = set(data) - known
            if unknown:
                raise InputError(f"unknown fault settings: {', '.join(sorted(unknown))}")
            return cls(**data)
        except (json.JSONDecodeError, TypeError) as error:
            raise InputError(f"fault settings must be a JSON object of FaultSettings fields: {error}") from None


def tone_pcm(settings: FaultSettings) -> bytes:
    """Leading silence then a 220 Hz tone at a third of full scale, PCM16."""
    silence = np.zeros(int(settings.leading_silence_ms / 1000 * SAMPLE_RATE), dtype=np.float32)
    t = np.arange(int(settings.audio_s * SAMPLE_RATE)) / SAMPLE_RATE
    tone = (0.33 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    return (np.concatenate([silence, tone]) * 32767).astype("<i2").tobytes()


FAULTS_HEADER = "X-Faults"


def create_null_app(defaults: FaultSettings) -> FastAPI:
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    count = {"n": 0}
    slots: dict[int, asyncio.Semaphore] = {}  # one pool per slot count (faults may come per request)

    @app.get("/health")
    async def health() -> dict[str, object]:
        return {"status": "ok", "engine": "null", "workers": 0, "sample_rate": SAMPLE_RATE}

    @app.get("/v1/models")
    async def models() -> dict[str, object]:
        return {"object": "list", "data": [{"id": "null", "object": "model", "owned_by": "ttsperf"}]}

    @app.post("/v1/audio/speech")
    async def speech(request: Request) -> Response:
        count["n"] += 1
        n = count["n"]
        await request.body()
        try:  # faults per request (header) over the target's own: one target serves every fault test
            settings = FaultSettings.from_json(request.headers[FAULTS_HEADER]) if FAULTS_HEADER in request.headers \
                else defaults
        except InputError as error:
            return JSONResponse({"error": {"message": str(error), "type": "invalid_request_error"}}, status_code=400)
        pcm = tone_pcm(settings)
        chunk_bytes = max(2, int(settings.chunk_ms / 1000 * SAMPLE_RATE) * 2)
        request_id = request.headers.get("X-Request-Id", f"null-{n}")
        headers = {"X-Request-Id": request_id, "X-Sample-Rate": str(SAMPLE_RATE)}
        if settings.accept_delay_ms:
            await asyncio.sleep(settings.accept_delay_ms / 1000)
        if settings.slots > 0:
            async with slots.setdefault(settings.slots, asyncio.Semaphore(settings.slots)):
                await asyncio.sleep(settings.service_ms / 1000)
        if settings.error_every and n % settings.error_every == 0:
            return JSONResponse({"error": {"message": "injected fault", "type": "server_error"}},
                                status_code=500, headers=headers)
        if settings.non_audio:
            return Response("<html>not audio</html>", media_type="text/html", headers=headers)

        async def body() -> AsyncIterator[bytes]:
            pieces = [pcm[i : i + chunk_bytes] for i in range(0, len(pcm), chunk_bytes)]
            if settings.malformed_pcm:
                pieces[-1] = pieces[-1] + b"\x00"
            for index, piece in enumerate(pieces):
                if index and settings.chunk_interval_ms:
                    await asyncio.sleep(settings.chunk_interval_ms / 1000)
                if index == settings.break_after:
                    raise RuntimeError("injected broken stream")
                yield piece
                if index == settings.stall_after:
                    await asyncio.sleep(settings.stall_ms / 1000)

        return StreamingResponse(body(), media_type="audio/pcm", headers=headers)

    return app


def main(argv: Sequence[str] | None = None) -> int:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m profiling.loadgen.null_target")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--faults", default="", help="FaultSettings as JSON")
    args = parser.parse_args(argv)
    try:
        settings = FaultSettings.from_json(args.faults)
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as error:
        print(f"error: cannot listen on {args.host}:{args.port}: {error.strerror}", file=sys.stderr)
        return 2
    sock.listen(2048)
    host, port = sock.getsockname()[:2]
    server = uvicorn.Server(uvicorn.Config(create_null_app(settings), log_level="error", access_log=False))
    print(f"{READY_PREFIX} http://{host}:{port} engine=null workers=0", flush=True)
    server.run(sockets=[sock])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
