"""Reference voices the server offers cloning engines: given at start (``serve --voice``), uploaded
(``POST /v1/voices``), or the default (the lab's offline reference with its exact transcript).

A speech request's ``voice`` names one; the engine's conditioning for it (XTTS speaker latents, F5's
preprocessed reference) is cached per engine instance, so per voice and worker. Engines that do not
clone (Piper) keep their fixed names (``default`` and the engine's) and take no references.

Every refusal of an upload is an ApiError with its reason (400 bad audio or name, 404 unknown voice,
409 name taken or not deletable, 413 too large, 415 not WAV/FLAC); a bad ``--voice`` is an InputError
before any model loads.
"""

from __future__ import annotations

import asyncio
import importlib.util
import io
import re
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from engines.base import Voice
from engines.errors import InputError
from profiling.serve.protocol import DEFAULT_VOICE_NAME, ApiError

VOICE_NAME = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
MAX_REFERENCE_S = 30.0
MIN_REFERENCE_S = 0.5
MAX_REFERENCE_BYTES = 10 * 1024 * 1024
MAX_TRANSCRIPT_CHARS = 2000
MAX_VOICES = 64
#: soundfile's names for the containers accepted (WAVEX: WAV with a channel mask).
_FORMATS = {"WAV": "wav", "WAVEX": "wav", "FLAC": "flac"}
#: Content types an upload may declare (none declared is fine: the bytes decide).
AUDIO_CONTENT_TYPES: tuple[str, ...] = (
    "audio/wav", "audio/x-wav", "audio/wave", "audio/vnd.wave", "audio/flac", "audio/x-flac",
    "application/octet-stream",
)
#: Below this peak the reference is silence: nothing to clone.
_SILENT_PEAK = 1e-4


@dataclass(frozen=True)
class ReferenceInfo:
    """What a valid reference is: its container ("wav" or "flac"), length, rate and channels."""

    format: str
    seconds: float
    sample_rate: int
    channels: int


@dataclass(frozen=True)
class VoiceEntry:
    name: str
    path: Path
    transcript: str | None
    seconds: float
    sample_rate: int
    source: str  # "option" (serve --voice) | "upload" (POST /v1/voices) | "default"

    def voice(self) -> Voice:
        return Voice(reference_audio=self.path, reference_text=self.transcript)

    def to_dict(self) -> dict[str, object]:
        return {"name": self.name, "seconds": round(self.seconds, 3), "sample_rate": self.sample_rate,
                "source": self.source, "transcript": self.transcript}


def check_voice_name(name: str) -> str:
    """``name`` when usable as a voice name (it becomes a URL path segment), else ApiError(400)."""
    if not isinstance(name, str) or not VOICE_NAME.match(name):
        raise ApiError(400, f"bad voice name {str(name)[:80]!r}: use 1-64 letters, digits, '.', '_' or '-'")
    return name


def check_transcript(text: str | None) -> str | None:
    """The stripped transcript (None when not given), or ApiError(400)."""
    if text is None:
        return None
    stripped = text.strip()
    if not stripped:
        raise ApiError(400, "the transcript is empty: leave it out or give the words the reference says")
    if len(stripped) > MAX_TRANSCRIPT_CHARS:
        raise ApiError(400, f"the transcript is {len(stripped)} characters, over the limit of {MAX_TRANSCRIPT_CHARS}")
    if any(ord(c) < 32 and c not in "\t\n\r" for c in stripped) or any(0xD800 <= ord(c) <= 0xDFFF for c in stripped):
        raise ApiError(400, "the transcript contains control characters or lone surrogates")
    return stripped


def check_reference_audio(data: bytes) -> ReferenceInfo:
    """What ``data`` holds when it is a usable reference (WAV or FLAC, 0.5-30 s, mono or stereo, any rate,
    at most 10 MB, decodable to the end, not silent); otherwise ApiError(400/413) with the reason."""
    import soundfile

    if len(data) > MAX_REFERENCE_BYTES:
        raise ApiError(413, f"the reference is {len(data)} bytes, over the limit of {MAX_REFERENCE_BYTES} (10 MB)",
                       "too_large")
    if not data:
        raise ApiError(400, "the reference is empty: send WAV or FLAC bytes as the body")
    try:
        with soundfile.SoundFile(io.BytesIO(data)) as handle:
            container, rate, channels, frames = handle.format, handle.samplerate, handle.channels, handle.frames
            if container not in _FORMATS:
                raise ApiError(400, f"the reference is {container}, not WAV or FLAC")
            if channels not in (1, 2):
                raise ApiError(400, f"the reference has {channels} channels: send mono or stereo")
            if rate <= 0 or frames / rate > MAX_REFERENCE_S:
                raise ApiError(400, f"the reference is {frames / max(rate, 1):.1f} s, over the limit of "
                               f"{MAX_REFERENCE_S:g} s")
            samples = handle.read(dtype="float32", always_2d=True)
    except ApiError:
        raise
    except (RuntimeError, ValueError, TypeError, OSError) as error:  # LibsndfileError is a RuntimeError
        first = (str(error).strip().splitlines() or [type(error).__name__])[0]
        first = re.sub(r"^Error opening <[^>]*>: ", "", first)
        raise ApiError(400, f"the reference is not readable WAV or FLAC audio ({first[:200]})") from None
    seconds = len(samples) / rate
    if len(samples) < frames:
        raise ApiError(400, f"the reference is cut short: {len(samples)} of {frames} frames decode")
    if seconds < MIN_REFERENCE_S:
        raise ApiError(400, f"the reference is {seconds:.2f} s: at least {MIN_REFERENCE_S:g} s is needed "
                       "(3-10 s clones best)")
    if not np.isfinite(samples).all():
        raise ApiError(400, "the reference holds NaN or infinite samples")
    if float(np.abs(samples).max()) < _SILENT_PEAK:
        raise ApiError(400, "the reference is silent: nothing to clone")
    return ReferenceInfo(_FORMATS[container], seconds, int(rate), int(channels))


def parse_voice_option(option: str) -> tuple[str, Path, str | None]:
    """``NAME=PATH[,text=TRANSCRIPT]`` as (name, path, transcript or None); InputError for every bad case."""
    name, sep, rest = option.partition("=")
    name = name.strip()
    if not sep or not rest.strip():
        raise InputError(f"--voice {option!r}: expected NAME=PATH[,text=TRANSCRIPT]")
    try:
        check_voice_name(name)
    except ApiError as error:
        raise InputError(f"--voice {option!r}: {error.message}") from None
    path_text, has_text, text = rest.partition(",text=")
    path = Path(path_text.strip()).expanduser()
    try:
        transcript = check_transcript(text) if has_text else None
    except ApiError as error:
        raise InputError(f"--voice {name}: {error.message}") from None
    if not path.is_file():
        raise InputError(f"--voice {name}: reference audio not found: {path}")
    return name, path, transcript


def read_reference_file(name: str, path: Path) -> ReferenceInfo:
    """A ``--voice`` file checked like an upload; InputError naming the option."""
    try:
        size = path.stat().st_size
        if size > MAX_REFERENCE_BYTES:
            raise InputError(f"--voice {name}: {path} is {size} bytes, over the limit of {MAX_REFERENCE_BYTES}")
        return check_reference_audio(path.read_bytes())
    except ApiError as error:
        raise InputError(f"--voice {name}: {path}: {error.message}") from None
    except OSError as error:
        raise InputError(f"--voice {name}: cannot read {path}: {error.strerror or error}") from None


def default_reference(work_dir: Path) -> VoiceEntry:
    """The lab's offline reference: F5's shipped ``basic_ref_en.wav`` with its exact transcript, or,
    without f5-tts, a few seconds of Piper's bundled voice reading Harvard sentences."""
    if importlib.util.find_spec("f5_tts") is not None:
        from engines.f5.reference import DEFAULT_REFERENCE_TEXT, default_reference_audio

        path, text = default_reference_audio(), DEFAULT_REFERENCE_TEXT
    else:
        from profiling.audio.reference_voices import piper_references

        made = piper_references(work_dir, targets=(6.0,))[0]
        path, text = made.path, made.text
    info = read_reference_file(DEFAULT_VOICE_NAME, path)
    return VoiceEntry(DEFAULT_VOICE_NAME, path, text, info.seconds, info.sample_rate, "default")


class VoiceLibrary:
    """The voices one server offers, by name (thread-safe). Uploads live in a temp directory the library
    owns and deletes on ``close()``.

    ``cloning`` False (Piper, Kokoro): only ``fixed_names``, each the engine's own voice, and ``speakers``
    (the engine's named speakers, e.g. Kokoro's style vectors); nothing can be added.
    ``check`` refuses a voice the engine cannot use (e.g. F5 without a transcript) with InputError.
    """

    def __init__(self, cloning: bool, fixed_names: tuple[str, ...] = (DEFAULT_VOICE_NAME,),
                 check: Callable[[Voice], None] | None = None, max_voices: int = MAX_VOICES,
                 engine: str = "", speakers: tuple[str, ...] = ()) -> None:
        self.cloning = cloning
        self.engine = engine
        self._speakers = speakers
        self._fixed = tuple(dict.fromkeys((*fixed_names, *speakers))) if not cloning else ()
        self._entries: dict[str, VoiceEntry] = {}
        self._check = check or (lambda voice: None)
        self._max = max_voices
        self._lock = threading.Lock()
        self._dir: Path | None = None

    @property
    def directory(self) -> Path:
        """Where uploads (and a Piper-made default) are kept; made on first use."""
        with self._lock:
            if self._dir is None:
                self._dir = Path(tempfile.mkdtemp(prefix="ttsperf-voices-"))
            return self._dir

    # --- building ----------------------------------------------------------------------------
    def add_option(self, option: str) -> VoiceEntry:
        """A ``serve --voice`` option, checked (InputError) and added."""
        if not self.cloning:
            raise InputError(f"--voice: engine '{self.engine}' does not clone voices (it takes no reference audio)")
        name, path, transcript = parse_voice_option(option)
        info = read_reference_file(name, path)
        entry = VoiceEntry(name, path.resolve(), transcript, info.seconds, info.sample_rate, "option")
        try:
            self._check(entry.voice())
        except InputError as error:
            raise InputError(f"--voice {name}: {error}") from None
        try:
            self._insert(entry)
        except ApiError as error:
            raise InputError(f"--voice {name}: {error.message}") from None
        return entry

    def ensure_default(self) -> None:
        """A cloning library answers ``default``: the first ``--voice`` given, else the lab's reference."""
        if not self.cloning:
            return
        with self._lock:
            if DEFAULT_VOICE_NAME in self._entries:
                return
            first = next((e for e in self._entries.values() if e.source == "option"), None)
        if first is not None:
            entry = VoiceEntry(DEFAULT_VOICE_NAME, first.path, first.transcript, first.seconds, first.sample_rate,
                               "default")
        else:
            entry = default_reference(self.directory)
        with self._lock:
            self._entries[DEFAULT_VOICE_NAME] = entry

    # --- serving ---------------------------------------------------------------------------------
    def add(self, name: str, data: bytes, transcript: str | None = None) -> VoiceEntry:
        """An uploaded reference, validated, stored and offered; ApiError (4xx) with the reason otherwise."""
        if not self.cloning:
            raise ApiError(400, f"engine '{self.engine}' does not clone voices: it takes no reference audio")
        check_voice_name(name)
        transcript = check_transcript(transcript)
        self._refuse_taken(name)
        info = check_reference_audio(data)
        path = self.directory / f"{name}-{uuid.uuid4().hex[:8]}.{info.format}"
        path.write_bytes(data)
        entry = VoiceEntry(name, path, transcript, info.seconds, info.sample_rate, "upload")
        try:
            self._check(entry.voice())
            self._insert(entry)
        except InputError as error:
            path.unlink(missing_ok=True)
            raise ApiError(400, str(error)) from None
        except ApiError:
            path.unlink(missing_ok=True)
            raise
        return entry

    def remove(self, name: str) -> VoiceEntry:
        """Forget an uploaded voice and delete its file; 404 unknown, 409 not an upload."""
        with self._lock:
            entry = self._entries.get(name)
            if entry is None:
                if name in self._fixed:
                    raise ApiError(409, f"voice {name!r} is the engine's own: it cannot be deleted", "conflict")
                raise ApiError(404, f"no voice named {name[:80]!r}", "not_found")
            if entry.source != "upload":
                raise ApiError(409, f"voice {name!r} was given when the server started ({entry.source}): only "
                               "uploaded voices can be deleted", "conflict")
            del self._entries[name]
        # A request already holding the path fails with a 400 (cannot read reference audio), never a 5xx.
        entry.path.unlink(missing_ok=True)
        return entry

    def get(self, name: str) -> Voice:
        """The engine's Voice for ``name``; ApiError(400) when there is none."""
        with self._lock:
            if name in self._fixed:
                return Voice(speaker=name) if name in self._speakers else Voice()
            entry = self._entries.get(name)
        if entry is None:
            raise ApiError(400, f"unknown voice {str(name)[:80]!r} (this server has: {', '.join(self.names())})")
        return entry.voice()

    def names(self) -> tuple[str, ...]:
        with self._lock:
            return (*self._fixed, *self._entries)

    def entries(self) -> list[VoiceEntry]:
        with self._lock:
            return list(self._entries.values())

    def describe(self) -> list[dict[str, object]]:
        """One dict per voice: name, seconds, sample_rate, source, transcript (fixed voices: source "engine")."""
        fixed: list[dict[str, object]] = [{"name": n, "seconds": None, "sample_rate": None, "source": "engine",
                                           "transcript": None} for n in self._fixed]
        return [*fixed, *(entry.to_dict() for entry in self.entries())]

    def close(self) -> None:
        with self._lock:
            directory, self._dir = self._dir, None
            self._entries = {n: e for n, e in self._entries.items() if e.source != "upload"}
        if directory is not None:
            shutil.rmtree(directory, ignore_errors=True)

    # --- internals ---------------------------------------------------------------------------------
    def _refuse_taken(self, name: str) -> None:
        with self._lock:
            if name in self._entries or name in self._fixed:
                raise ApiError(409, f"voice {name!r} already exists (delete it first, or pick another name)",
                               "conflict")
            if len(self._entries) >= self._max:
                raise ApiError(409, f"this server holds {self._max} voices, its limit: delete one first", "conflict")

    def _insert(self, entry: VoiceEntry) -> None:
        with self._lock:
            if entry.name in self._entries or entry.name in self._fixed:
                raise ApiError(409, f"voice {entry.name!r} already exists (delete it first, or pick another name)",
                               "conflict")
            if len(self._entries) >= self._max:
                raise ApiError(409, f"this server holds {self._max} voices, its limit: delete one first", "conflict")
            self._entries[entry.name] = entry


def build_library(engine: str, cloning: bool, options: tuple[str, ...],
                  check: Callable[[Voice], None] | None = None, speakers: tuple[str, ...] = ()) -> VoiceLibrary:
    """The server's library: every ``--voice`` checked (InputError, before any model loads) and, for a
    cloning engine, ``default``; the engine's named ``speakers`` for one that does not clone."""
    library = VoiceLibrary(cloning, (DEFAULT_VOICE_NAME, engine), check, engine=engine, speakers=speakers)
    try:
        for option in options:
            library.add_option(option)
        library.ensure_default()
    except BaseException:
        library.close()
        raise
    return library


def voices_router(library: VoiceLibrary) -> APIRouter:
    """``POST /v1/voices?name=NAME[&text=TRANSCRIPT]`` (raw WAV/FLAC body), ``GET /v1/voices``,
    ``DELETE /v1/voices/NAME``, as a FastAPI APIRouter."""
    router = APIRouter()

    @router.get("/v1/voices")
    async def list_voices() -> dict[str, object]:
        return {"object": "list", "data": library.describe()}

    @router.post("/v1/voices")
    async def upload(request: Request) -> JSONResponse:
        name = request.query_params.get("name", "")
        text = request.query_params.get("text")
        check_voice_name(name)
        check_transcript(text)
        content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
        if content_type and content_type not in AUDIO_CONTENT_TYPES:
            raise ApiError(415, f"content type {content_type[:80]!r} is not audio: send WAV or FLAC bytes "
                           "(audio/wav or audio/flac)", "unsupported_media_type")
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > MAX_REFERENCE_BYTES:
            raise ApiError(413, f"the body is {declared} bytes, over the limit of {MAX_REFERENCE_BYTES} (10 MB)",
                           "too_large")
        data = await read_capped(request, MAX_REFERENCE_BYTES)
        entry = await asyncio.to_thread(library.add, name, data, text)  # decoding is CPU work
        return JSONResponse(entry.to_dict(), status_code=201)

    @router.delete("/v1/voices/{name}")
    async def delete(name: str) -> dict[str, object]:
        entry = library.remove(name)
        return {"name": entry.name, "deleted": True}

    return router


async def read_capped(request: Request, limit: int) -> bytes:
    """The body, read as it streams in and abandoned at ``limit`` + 1 bytes: ApiError(413)."""
    body = bytearray()
    async for piece in request.stream():
        body += piece
        if len(body) > limit:
            raise ApiError(413, f"the body is over the limit of {limit} bytes (10 MB)", "too_large")
    return bytes(body)
