"""Launch the real dashboard in a subprocess on a free port, for the UI tests.

``hidden_packages`` starts the server as if those packages were not installed (a
``sitecustomize`` on its PYTHONPATH makes them unimportable), so the unavailable-engine
path is exercised even on a machine that has every extra.

A start costs 8-30 s on a busy 2-core machine, so :class:`DashboardServers` keeps one server per launch settings
for the whole pytest session (one per xdist worker). Modules on a shared server count only what they stored
themselves (before/after differences, or their own ids), never the whole store.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from profiling.loadgen.targets import stop_process

REPO_ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT_S = 180.0

_HIDING_SITECUSTOMIZE = """\
import importlib.abc
import sys

_HIDDEN = {hidden!r}


class _HidePackages(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in _HIDDEN:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, _HidePackages())
"""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class LaunchSettings:
    """What ``python app.py`` is started with; servers are shared between modules that ask for equal settings."""

    max_chars: int | None = None
    hidden_packages: tuple[str, ...] = ()


#: ``python app.py`` as a user starts it.
DEFAULT = LaunchSettings()
SHORT_MAX_CHARS = 300
#: A short text limit and F5 missing, so that one engine is always unavailable (test_dashboard, test_browser).
LIMITED_NO_F5 = LaunchSettings(max_chars=SHORT_MAX_CHARS, hidden_packages=("f5_tts",))


@dataclass(frozen=True)
class DashboardServer:
    url: str
    data_dir: Path
    log_path: Path
    process: subprocess.Popen[bytes]

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def alive(self) -> bool:
        return self.process.poll() is None


def _wait_until_serving(server: DashboardServer) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if not server.alive():
            raise RuntimeError(f"dashboard exited with {server.process.returncode}:\n{server.log()}")
        try:
            with urllib.request.urlopen(server.url, timeout=5) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise TimeoutError(f"dashboard did not serve {server.url} in {START_TIMEOUT_S:.0f} s:\n{server.log()}")


@contextmanager
def running_dashboard(
    data_dir: Path, max_chars: int | None = None, hidden_packages: tuple[str, ...] = ()
) -> Iterator[DashboardServer]:
    """``python app.py`` (the Spaces entry) on 127.0.0.1:<free port> with its own store; stopped on exit."""
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command = [sys.executable, str(REPO_ROOT / "app.py"), "--port", str(port), "--data-dir", str(data_dir)]
    if max_chars is not None:
        command += ["--max-chars", str(max_chars)]
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", "TTSPERF_DATA_DIR": str(data_dir)}
    if hidden_packages:
        site_dir = data_dir / "hide-packages"
        site_dir.mkdir(exist_ok=True)
        (site_dir / "sitecustomize.py").write_text(
            _HIDING_SITECUSTOMIZE.format(hidden=set(hidden_packages)), encoding="utf-8"
        )
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(site_dir), env.get("PYTHONPATH")]))
    log_path = data_dir / "dashboard.log"
    with open(log_path, "wb") as log_file:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    server = DashboardServer(f"http://127.0.0.1:{port}/", data_dir, log_path, process)
    try:
        _wait_until_serving(server)
        yield server
    finally:
        stop_process(process)


class DashboardServers:
    """The running dashboards of one pytest session, one per :class:`LaunchSettings`, each with its own store under
    ``root``; started on first use and stopped together by :meth:`close`."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._stack = ExitStack()
        self._running: dict[LaunchSettings, DashboardServer] = {}
        self._started = 0

    def get(self, settings: LaunchSettings = DEFAULT) -> DashboardServer:
        server = self._running.get(settings)
        if server is None or not server.alive():  # one module's crash must not fail the next module's tests
            self._started += 1
            data_dir = self._root / f"dashboard-{self._started}"
            server = self._stack.enter_context(running_dashboard(data_dir, settings.max_chars,
                                                                 settings.hidden_packages))
            self._running[settings] = server
        return server

    def close(self) -> None:
        self._stack.close()
        self._running.clear()
