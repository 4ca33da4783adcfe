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
#: Rates a request may ask for (besides "native").
SAMPLE_RATES: tuple[int, ...] = (8000, 16000, 22050, 24000, 44100, 48000)
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

    def __init__(self, status: int, message: str, code: str = "invalid_request_error",
                 retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        #: Sent as Retry-After (503 from admission, 429 from a full queue).
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {} if self.retry_after_s is None else {"Retry-After": str(self.retry_after_s)}

    def body(self) -> dict[str, dict[str, str]]:
        # The OpenAI error shape, so OpenAI clients show the reason.
        return {"error": {"message": self.message, "type": self.code}}


@dataclass(frozen=True)
class StreamOverrides:
    """The lab's optional request fields (OpenAI clients never send them); None keeps the server's setting."""

    chunker: str | None = None
    first_chunk_chars: int | None = None
    chunk_chars: int | None = None
    sentence_only_after_s: float | None = None
    #: 0 asks for the engine's native rate.
    sample_rate: int | None = None


@dataclass(frozen=True)
class SpeechRequest:
    text: str
    voice: str = DEFAULT_VOICE_NAME
    response_format: str = "pcm"
    stream: bool = True
    model: str | None = None
    overrides: StreamOverrides = StreamOverrides()


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
    return SpeechRequest(text=text, voice=voice, response_format=fmt, stream=stream, model=model,
                         overrides=_overrides(data))


def _whole(data: dict[str, object], name: str, low: int, high: int) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ApiError(400, f"'{name}' must be a whole number between {low} and {high}")
    return value


def _overrides(data: dict[str, object]) -> StreamOverrides:
    chunker = data.get("chunker")
    if chunker is not None and chunker not in ("lab", "engine"):
        raise ApiError(400, "'chunker' must be lab or engine")
    after = data.get("sentence_only_after_s")
    if after is not None and (isinstance(after, bool) or not isinstance(after, (int, float))
                              or not 0 <= after <= 3600):
        raise ApiError(400, "'sentence_only_after_s' must be a number of seconds between 0 and 3600")
    rate = data.get("sample_rate")
    if rate == "native":
        rate = 0
    elif rate is not None and rate not in SAMPLE_RATES:
        raise ApiError(400, f"'sample_rate' must be native or one of {', '.join(map(str, SAMPLE_RATES))}")
    return StreamOverrides(
        chunker=chunker if isinstance(chunker, str) else None,
        first_chunk_chars=_whole(data, "first_chunk_chars", 1, 2000),
        chunk_chars=_whole(data, "chunk_chars", 1, 2000),
        sentence_only_after_s=None if after is None else float(after),  # type: ignore[arg-type]
        sample_rate=rate if isinstance(rate, int) else None,
    )


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
