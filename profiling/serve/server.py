"""Run the serving target: check the port, load the replicas, serve until interrupted."""

from __future__ import annotations

import errno
import signal
import socket
import sys
from dataclasses import dataclass, replace

from engines.base import SynthesisSettings
from engines.errors import InputError
from engines.registry import engine_class
from engines.validation import resolve_settings
from profiling.run.conversion import validate_conversion
from profiling.serve.app import ServeSettings, create_app
from profiling.serve.guards import DEFAULT_MAX_BODY_BYTES, GuardSettings, RequestGuard, exposure_warning
from profiling.serve.protocol import DEFAULT_VOICE_NAME
from profiling.serve.scheduling import SchedulingSettings
from profiling.serve.voices import VoiceLibrary, build_library
from profiling.serve.workers import WorkerPool

#: Ready line printed once the replicas are loaded and the socket listens (the load generator waits for it).
READY_PREFIX = "ttsperf-serve ready"


@dataclass(frozen=True)
class ServerOptions:
    settings: SynthesisSettings
    workers: int = 1
    host: str = "127.0.0.1"
    port: int = 8000
    queue_size: int = 32
    devices: tuple[str, ...] = ()
    serve: ServeSettings = ServeSettings()
    #: A post-synthesis stage every chunk goes through before it is sent (voice conversion).
    conversion: SynthesisSettings | None = None
    scheduling: SchedulingSettings = SchedulingSettings()
    #: Reference voices offered, each "NAME=PATH[,text=TRANSCRIPT]" (``--voice``).
    voices: tuple[str, ...] = ()
    #: Required as ``Authorization: Bearer KEY`` when set.
    api_key: str = ""
    #: Largest request body (413 beyond it) on every route but voice uploads (profiling.serve.guards).
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES

    @property
    def guards(self) -> GuardSettings:
        return GuardSettings(max_body_bytes=self.max_body_bytes, api_key=self.api_key)


def check_options(options: ServerOptions) -> SynthesisSettings:
    """Everything checkable before a model loads; returns the resolved engine settings."""
    if not 1 <= options.workers <= 64:
        raise InputError(f"workers must be between 1 and 64, got {options.workers}")
    if not 0 <= options.queue_size <= 100_000:
        raise InputError(f"queue size must be between 0 and 100000, got {options.queue_size}")
    if not 0 < options.serve.request_timeout_s <= 3600:
        raise InputError(f"request timeout must be in (0, 3600] s, got {options.serve.request_timeout_s}")
    if options.serve.max_chars < 1:
        raise InputError(f"max chars must be at least 1, got {options.serve.max_chars}")
    if not 0 <= options.port <= 65535:
        raise InputError(f"port must be between 0 and 65535, got {options.port}")
    _ = options.guards  # builds GuardSettings: the body cap and the key are checked now, before a model loads
    cls = engine_class(options.settings.engine)
    if not cls.capabilities.streaming:
        raise InputError(f"engine '{cls.name}' does not stream: the server sends audio chunk by chunk")
    settings = resolve_settings(cls.capabilities, options.settings, cls.machine_devices())
    for device in options.devices:
        resolve_settings(cls.capabilities, SynthesisSettings(settings.engine, device=device), cls.machine_devices())
    if options.conversion is not None:
        for device in options.devices or (settings.device,):
            validate_conversion(replace(options.conversion, device=device))
    return settings


def bind_socket(host: str, port: int) -> socket.socket:
    """The listening socket, bound now so a port in use is one clear line before any model loads."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise InputError(f"port {port} on {host} is in use (pick another with --port)") from None
        raise InputError(f"cannot listen on {host}:{port}: {error.strerror or error}") from None
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def voice_library(options: ServerOptions, settings: SynthesisSettings) -> VoiceLibrary:
    """Every ``--voice`` checked (InputError) before any model loads; ``default`` for a cloning engine."""
    cls = engine_class(settings.engine)
    return build_library(settings.engine, cls.capabilities.voice_cloning, options.voices,
                         check=lambda voice: cls.check_request(settings, voice), speakers=cls.capabilities.speakers)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(0)


def serve(options: ServerOptions) -> None:
    import uvicorn

    settings = check_options(options)
    library = voice_library(options, settings)
    if warning := exposure_warning(options.host, options.api_key):
        print(warning, file=sys.stderr, flush=True)
    try:
        sock = bind_socket(options.host, options.port)
        conversion = validate_conversion(options.conversion) if options.conversion is not None else None
        pool = WorkerPool(settings, options.workers, options.queue_size, options.devices, conversion,
                          options.scheduling)
    except BaseException:
        library.close()
        raise
    try:
        pool.start(warmup_voice=library.get(DEFAULT_VOICE_NAME))
        sample_rate = pool.sample_rate
        app = RequestGuard(create_app(pool, options.serve, sample_rate, library), options.guards)
        config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=5)
        server = uvicorn.Server(config)
        host, port = sock.getsockname()[:2]
        loads = ", ".join(f"{s:.2f}" for s in pool.load_s)
        stage = f"+{conversion.engine}" if conversion is not None else ""
        policy = options.scheduling
        print(f"{READY_PREFIX} http://{host}:{port} engine={settings.engine}{stage} workers={pool.workers} "
              f"devices={','.join(pool.devices)} load_s=[{loads}] policy={policy.policy} chunker={policy.chunker} "
              f"rate={sample_rate} voices={','.join(library.names())}", flush=True)
        # uvicorn re-raises the SIGTERM it caught once it has stopped: as SystemExit the cleanup below runs
        # (workers joined, uploaded voices deleted) instead of the process dying on the spot.
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        server.run(sockets=[sock])
    finally:
        pool.close()
        sock.close()
        library.close()
        sys.stdout.flush()
