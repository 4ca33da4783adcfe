"""The wire format: request parsing with a reason for every refusal, and PCM16 / WAV framing (pure)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

RESPONSE_FORMATS: tuple[str, ...] = ("pcm", "wav")
CONTENT_TYPES: dict[str, str] = {"pcm": "audio/pcm", "wav": "audio/wav"}
DEFAULT_VOICE_NAME = "default"
REQUEST_ID_HEADER = "X-Request-Id"
SAMPLE_RATE_HEADER = "X-Sample-Rate"
#: Client-chosen ids are kept when they are short and plain (they become URL path segments).
_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,80}$")
#: C0 controls other than tab, newline and carriage return, and DEL: never speakable text.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
#: Deeper JSON is refused before it is parsed: a speech request is one flat object.
MAX_JSON_DEPTH = 64
#: A JSON string (escapes included), removed before counting brackets so text like "[[[" is not nesting.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


class ApiError(Exception):
    """A refusal with its HTTP status and the reason the client reads."""

    def __init__(self, status: int, message: str, code: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code

    def body(self) -> dict[str, dict[str, str]]:
        # The OpenAI error shape, so OpenAI clients show the reason.
        return {"error": {"message": self.message, "type": self.code}}


@dataclass(frozen=True)
class SpeechRequest:
    text: str
    voice: str = DEFAULT_VOICE_NAME
    response_format: str = "pcm"
    stream: bool = True
    model: str | None = None


def parse_speech_request(
    body: bytes, voices: tuple[str, ...], models: tuple[str, ...], max_chars: int
) -> SpeechRequest:
    """The request in ``body`` (JSON), or ApiError(400) saying what is wrong with it."""
    data = parse_json_object(body)
    text = data.get("input")
    if not isinstance(text, str):
        raise ApiError(400, "'input' is required and must be a string")
    check_text("input", text)
    if _CONTROL.search(text):
        raise ApiError(400, "'input' contains control characters")
    text = text.strip()
    if not text:
        raise ApiError(400, "'input' is empty")
    if len(text) > max_chars:
        raise ApiError(400, f"'input' is {len(text)} characters, over this server's limit of {max_chars}")
    voice = data.get("voice", DEFAULT_VOICE_NAME)
    if not isinstance(voice, str):
        raise ApiError(400, "'voice' must be a string")
    check_text("voice", voice)
    if voice not in voices:
        raise ApiError(400, f"unknown voice {voice!r} (this server has: {', '.join(voices)})")
    fmt = data.get("response_format", "pcm")
    if not isinstance(fmt, str) or fmt not in RESPONSE_FORMATS:
        raise ApiError(400, f"unsupported response_format {fmt!r} (use one of: {', '.join(RESPONSE_FORMATS)})")
    stream = data.get("stream", True)
    if not isinstance(stream, bool):
        raise ApiError(400, "'stream' must be true or false")
    model = data.get("model")
    if model is not None and not isinstance(model, str):
        raise ApiError(400, "'model' must be a string")
    if model is not None:
        check_text("model", model)
    if model is not None and model not in models:
        raise ApiError(400, f"unknown model {model!r} (this server has: {', '.join(models)})")
    return SpeechRequest(text=text, voice=voice, response_format=fmt, stream=stream, model=model)


def json_depth_exceeds(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when ``body`` nests arrays/objects deeper than ``limit`` (stops counting once it does)."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False  # every ordinary request: no scan
    depth = 0
    for match in _BRACKET.finditer(_JSON_STRING.sub(b"", body)):
        depth += 1 if match.group() in (b"[", b"{") else -1
        if depth > limit:
            return True
    return False


def parse_json_object(body: bytes) -> dict[str, Any]:
    """``body`` as a JSON object, or ApiError(400): not UTF-8, not JSON, nested too deep, not an object."""
    if json_depth_exceeds(body):
        raise ApiError(400, f"the JSON nests deeper than {MAX_JSON_DEPTH} levels")
    try:
        data = json.loads(body)
    except RecursionError:  # a backstop: the depth check above should have refused it
        raise ApiError(400, f"the JSON nests deeper than {MAX_JSON_DEPTH} levels") from None
    except UnicodeDecodeError:
        raise ApiError(400, "the body is not valid UTF-8") from None
    except ValueError as error:  # JSONDecodeError, and ints longer than Python converts
        raise ApiError(400, f"the body is not valid JSON: {error}") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object")
    return data


def check_text(name: str, value: str) -> None:
    """ApiError(400) when ``value`` cannot be encoded as UTF-8 (a lone surrogate from a JSON escape)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ApiError(400, f"'{name}' contains a lone surrogate (text that is not valid Unicode)") from None


def request_id_from(header: str | None, fallback: str) -> str:
    """The client's id when it is usable, else ``fallback``."""
    return header if header and _ID_PATTERN.match(header) else fallback
