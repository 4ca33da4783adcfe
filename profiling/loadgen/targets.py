"""What a load test measures: the lab server or the null/fault target started here on loopback, or a URL.

Targets run in their own process (a subprocess the test starts and stops), so the client's event loop
and the server's GIL never stall each other. The load package never imports the server: it launches
``python -m profiling serve`` like a user would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import IO, Any
from urllib.parse import urlparse

import httpx

from engines.errors import InputError
from profiling.loadgen.null_target import READY_PREFIX, FaultSettings

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
ALLOW_REMOTE_ENV = "TTSPERF_ALLOW_REMOTE"
#: The server reads its key from here (profiling.serve.guards.API_KEY_ENV): never on a command line, so not in ps.
API_KEY_ENV = "TTSPERF_API_KEY"
SPEECH_PATH = "/v1/audio/speech"


@dataclass(frozen=True)
class TargetSpec:
    """``kind``: "lab" (an engine served here), "null" (the null/fault target) or "url"."""

    kind: str = "lab"
    engine: str = "piper"
    workers: int = 1
    knobs: tuple[tuple[str, str], ...] = ()
    device: str = "cpu"
    queue_size: int = 64
    request_timeout_s: float = 60.0
    url: str = ""
    faults: FaultSettings = field(default_factory=FaultSettings)
    ready_timeout_s: float = 180.0
    #: "lab": a post-synthesis stage the server runs on every chunk ("" = none), and its knobs.
    convert: str = ""
    convert_knobs: tuple[tuple[str, str], ...] = ()
    #: "" = the engine's first declared precision (fp32; int8 for Kokoro's shipped file).
    precision: str = ""
    #: "lab": how the server schedules and chunks (``serve --policy`` / ``--chunker``; docs/serving.md).
    policy: str = "fifo"
    chunker: str = "lab"
    first_chunk_chars: int = 20
    chunk_chars: int = 150
    sentence_only_after_s: float = 5.0
    #: The TTFA the server plans for (EDF's first-chunk deadline, ``--admit slo``'s bound), in ms.
    ttfa_target_ms: float = 500.0
    admit: str = "none"
    #: "lab": reference voices the server offers, as (name, "PATH[,text=TRANSCRIPT]").
    voices: tuple[tuple[str, str], ...] = ()
    #: The key the server requires (``serve --api-key``); the client sends it as a Bearer token.
    api_key: str = ""

    @property
    def label(self) -> str:
        if self.kind == "lab":
            knobs = "".join(f" {k}={v}" for k, v in self.knobs)
            stage = f"+{self.convert}" + "".join(f" {k}={v}" for k, v in self.convert_knobs) if self.convert else ""
            policy = "" if self.policy == "fifo" and self.chunker == "engine" else (
                f" {self.policy} {self.chunker}" + (f":{self.first_chunk_chars}" if self.chunker == "lab" else ""))
            return f"{self.engine}{stage} x{self.workers}{policy}{knobs}"
        return self.url if self.kind == "url" else "null target"


@dataclass(frozen=True)
class Target:
    """A running target: where to send, and the server's pid when it runs on this machine."""

    base_url: str
    spec: TargetSpec
    pid: int | None = None
    ready_line: str = ""

    @property
    def speech_url(self) -> str:
        return self.base_url.rstrip("/") + SPEECH_PATH

    @property
    def headers(self) -> dict[str, str]:
        """What every request to this target carries: the key, when the target has one."""
        return {"Authorization": f"Bearer {self.spec.api_key}"} if self.spec.api_key else {}


def check_url(url: str) -> str:
    parsed = urlparse(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise InputError(f"--url must be an http(s) URL with a host, got {url!r}")
    if parsed.hostname not in LOOPBACK_HOSTS and os.environ.get(ALLOW_REMOTE_ENV) != "1":
        raise InputError(f"{parsed.hostname} is not loopback: this lab sends traffic to 127.0.0.1 only "
                         f"(set {ALLOW_REMOTE_ENV}=1 to allow it)")
    base = url.rstrip("/")
    return base[: -len(SPEECH_PATH)] if base.endswith(SPEECH_PATH) else base


def check_target(spec: TargetSpec) -> None:
    """Refuse a lab target's serving settings here, before a server is started (the server checks them too)."""
    if spec.kind != "lab":
        return
    # The settings type only (pure, no server code): the load package still never imports the server.
    from profiling.serve.scheduling import SchedulingSettings

    SchedulingSettings(policy=spec.policy, chunker=spec.chunker, first_chunk_chars=spec.first_chunk_chars,
                       chunk_chars=spec.chunk_chars, sentence_only_after_s=spec.sentence_only_after_s,
                       ttfa_target_ms=spec.ttfa_target_ms, admit=spec.admit)


def server_command(spec: TargetSpec) -> list[str]:
    if spec.kind == "null":
        return [sys.executable, "-m", "profiling.loadgen.null_target", "--port", "0", "--faults", spec.faults.to_json()]
    command = [sys.executable, "-m", "profiling", "serve", "--engine", spec.engine, "--device", spec.device,
               "--workers", str(spec.workers), "--port", "0", "--queue-size", str(spec.queue_size),
               "--timeout", str(spec.request_timeout_s)]
    for name, value in spec.knobs:
        command += ["--knob", f"{name}={value}"]
    if spec.convert:
        command += ["--convert", spec.convert]
        for name, value in spec.convert_knobs:
            command += ["--convert-knob", f"{name}={value}"]
    command += ["--precision", spec.precision, "--policy", spec.policy, "--chunker", spec.chunker,
                "--first-chunk-chars", str(spec.first_chunk_chars), "--chunk-chars", str(spec.chunk_chars),
                "--sentence-only-after", f"{spec.sentence_only_after_s:g}", "--ttfa-target-ms",
                f"{spec.ttfa_target_ms:g}", "--admit", spec.admit]
    for name, voice in spec.voices:
        command += ["--voice", f"{name}={voice}"]
    return command  # the key, when there is one, goes by the environment (server_env)


def server_env(spec: TargetSpec) -> dict[str, str]:
    """The server's environment: ours, unbuffered, and the key (set or cleared) in ``TTSPERF_API_KEY``."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop(API_KEY_ENV, None)  # a key of our own environment must not protect a target whose spec has none
    if spec.api_key and spec.kind == "lab":
        env[API_KEY_ENV] = spec.api_key
    return env


def _wait_ready(process: subprocess.Popen[str], stderr: IO[str], timeout_s: float) -> str:
    """The ready line, or InputError with the server's own last line when it exits or takes too long."""
    lines: list[str] = []
    found = threading.Event()

    def read() -> None:  # reads to the end, so the server never blocks on a full pipe
        assert process.stdout is not None
        for line in process.stdout:
            if len(lines) < 100:
                lines.append(line.strip())
            if line.startswith(READY_PREFIX):
                found.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    deadline = time.monotonic() + timeout_s
    while not found.is_set():
        if process.poll() is not None:
            reader.join(timeout=1)
            stderr.seek(0)
            err = stderr.read()
            last = next((ln for ln in reversed((err or "").splitlines()) if ln.strip()), "")
            raise InputError(f"the target server exited before it was ready: {last or 'no message'}")
        if time.monotonic() > deadline:
            raise InputError(f"the target server was not ready after {timeout_s:g} s")
        found.wait(0.05)
    return next(line for line in lines if line.startswith(READY_PREFIX))


@contextmanager
def running_target(spec: TargetSpec) -> Iterator[Target]:
    """Start (or check) the target; stop what was started on exit, whatever happens."""
    if spec.kind == "url":
        base = check_url(spec.url)
        try:
            httpx.get(base + "/v1/models", timeout=5.0)
        except httpx.HTTPError as error:
            raise InputError(f"cannot reach {base}: {type(error).__name__} {error}".strip()) from None
        yield Target(base, spec)
        return
    if spec.kind not in ("lab", "null"):
        raise InputError(f"unknown target kind {spec.kind!r} (lab, null or url)")
    env = server_env(spec)
    stderr = tempfile.TemporaryFile("w+", encoding="utf-8")  # a file, not a pipe: nothing to drain
    process = subprocess.Popen(server_command(spec), stdout=subprocess.PIPE, stderr=stderr, text=True, env=env)
    try:
        line = _wait_ready(process, stderr, spec.ready_timeout_s)
        base = line.split()[2]
        yield Target(base, spec, process.pid, line)
    finally:
        stop_process(process)
        stderr.close()


def stop_process(process: subprocess.Popen[Any], grace_s: float = 15.0) -> None:
    """Terminate a server we started; kill it if it does not exit within ``grace_s``."""
    process.terminate()
    try:
        process.wait(timeout=grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=grace_s)
