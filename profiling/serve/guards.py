"""The server's outer defences: the API key and the request body cap, as pure ASGI middleware.

Pure ASGI (not Starlette's BaseHTTPMiddleware, which buffers) so nothing is read that is refused:

- the key: every route but ``/health`` needs ``Authorization: Bearer KEY`` (compared in constant time),
  else 401 before the body is read;
- the body: a Content-Length over the route's cap is a 413 at once, unread; a body without one
  (chunked) is counted as it arrives and cut with a 413 as soon as it passes the cap, so the app never
  holds more than the cap. A refused body closes the connection (``Connection: close``): the server
  stops receiving the rest instead of reading and dropping it.

Every refusal is JSON in the OpenAI error shape (``ApiError.body()``).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any

from engines.errors import InputError
from profiling.serve.protocol import ApiError

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]

#: The key can come from here instead of ``--api-key``, so it does not show in ``ps``.
API_KEY_ENV = "TTSPERF_API_KEY"
DEFAULT_MAX_BODY_BYTES = 1 << 20  # a speech request is a few KB of JSON
#: Voice uploads: 10 MB of audio, plus a little for a container's headers.
UPLOAD_BODY_BYTES = 10 * 1024 * 1024 + 64 * 1024
UPLOAD_PATHS: tuple[str, ...] = ("/v1/voices",)
OPEN_PATHS: tuple[str, ...] = ("/health",)
LOOPBACK_NAMES = ("localhost",)
_KEY = re.compile(r"[\x21-\x7e]{1,512}")


@dataclass(frozen=True)
class GuardSettings:
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    upload_body_bytes: int = UPLOAD_BODY_BYTES
    upload_paths: tuple[str, ...] = UPLOAD_PATHS
    #: Routes answered without the key (a health probe carries no credentials).
    open_paths: tuple[str, ...] = OPEN_PATHS
    api_key: str = ""

    def __post_init__(self) -> None:
        if not 1024 <= self.max_body_bytes <= 1 << 30:
            raise InputError(f"max body bytes must be between 1024 and 1 GiB, got {self.max_body_bytes}")
        if not 1024 <= self.upload_body_bytes <= 1 << 30:
            raise InputError(f"upload body bytes must be between 1024 and 1 GiB, got {self.upload_body_bytes}")
        if self.api_key and not _KEY.fullmatch(self.api_key):
            raise InputError("the API key must be printable ASCII without spaces (it travels in a header)")

    def body_cap(self, path: str) -> int:
        """The most bytes a request to ``path`` may send."""
        upload = any(path == p or path.startswith(p + "/") for p in self.upload_paths)
        return max(self.upload_body_bytes, self.max_body_bytes) if upload else self.max_body_bytes


def resolve_api_key(flag: str, environ: MutableMapping[str, str] | Any) -> str:
    """``--api-key`` when given, else ``TTSPERF_API_KEY`` from ``environ``, else "" (no key)."""
    return (flag or environ.get(API_KEY_ENV, "") or "").strip()


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str, api_key: str) -> str:
    """One line when the server listens beyond this machine without a key; "" otherwise."""
    if api_key or is_loopback(host):
        return ""
    return (f"warning: listening on {host} without an API key: anyone who can reach this port can use the "
            f"server (set {API_KEY_ENV} or --api-key)")


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value)
    return None


def authorized(scope: Scope, api_key: str) -> bool:
    """True when the request carries ``Authorization: Bearer <api_key>`` (constant-time compare)."""
    value = _header(scope, b"authorization") or b""
    scheme, _, token = value.partition(b" ")
    # compare_digest on the whole token: its time does not depend on where a wrong key differs.
    return scheme.lower() == b"bearer" and hmac.compare_digest(token.strip(), api_key.encode("ascii"))


async def send_error(send: Send, error: ApiError, headers: tuple[tuple[bytes, bytes], ...] = (),
                     close: bool = False) -> None:
    body = json.dumps(error.body()).encode("utf-8")
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if close:
        raw.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": error.status, "headers": raw + list(headers)})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def _too_large(cap: int) -> ApiError:
    return ApiError(413, f"the request body is over this route's limit of {cap} bytes", "request_too_large")


class RequestGuard:
    """Wraps an ASGI app: the API key, then the body cap, before the app sees a request."""

    def __init__(self, app: App, settings: GuardSettings) -> None:
        self.app = app
        self.settings = settings

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        key = self.settings.api_key
        if key and path not in self.settings.open_paths and not authorized(scope, key):
            error = ApiError(401, "this server needs an API key: send 'Authorization: Bearer KEY'",
                             "invalid_api_key")
            # Unread body: close rather than read it on the client's behalf.
            await send_error(send, error, ((b"www-authenticate", b"Bearer"),), close=_has_body(scope))
            return
        cap = self.settings.body_cap(path)
        length = _header(scope, b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                declared = -1
            if declared < 0:  # uvicorn's parser refuses most of these first; never trust one that gets here
                await send_error(send, ApiError(400, "the Content-Length header is not a number"), close=True)
                return
            if declared > cap:
                await send_error(send, _too_large(cap), close=True)
                return
        await _CappedCycle(self.app, cap).run(scope, receive, send)


def _has_body(scope: Scope) -> bool:
    length = _header(scope, b"content-length")
    return _header(scope, b"transfer-encoding") is not None or (length is not None and length.strip() != b"0")


class _CappedCycle:
    """One request: the app's ``receive`` counts body bytes and ends the request at the cap."""

    def __init__(self, app: App, cap: int) -> None:
        self.app = app
        self.cap = cap
        self.received = 0
        self.cut = False
        self.started = False

    async def run(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def capped_receive() -> Message:
            if self.cut:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                self.received += len(message.get("body", b""))
                if self.received > self.cap:
                    self.cut = True
                    if not self.started:
                        self.started = True
                        await send_error(send, _too_large(self.cap), close=True)
                    # To the app the client has gone: it stops reading and sends nothing more.
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if self.cut:
                return  # the 413 is the answer; whatever the app says after the cut is dropped
            if message["type"] == "http.response.start":
                self.started = True
            await send(message)

        try:
            await self.app(scope, capped_receive, guarded_send)
        except Exception:
            if not self.cut:
                raise
            # The app saw the client leave mid-body (Starlette's ClientDisconnect): expected after a cut.
