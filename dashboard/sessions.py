"""Per-session cancel tokens: what a browser session started, only that session can cancel.

Gradio gives every page (and every gradio_client ``Client``) its own ``session_hash``; a long handler takes a
token keyed by it for as long as it runs, and a Cancel click from the same session sets that token. The
runners check it at their boundaries (unit, run, rate, profiler), so what finished is stored.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import gradio as gr

NOTHING_RUNNING = ("Nothing of yours is running here (a run started in another browser session can only be "
                   "cancelled from that session).")


def session_key(request: gr.Request | None) -> str:
    """The browser session's id ("" outside a Gradio request, e.g. a test calling the handler directly)."""
    return str(getattr(request, "session_hash", None) or "")


@dataclass
class _Token:
    what: str
    event: threading.Event = field(default_factory=threading.Event)


class SessionCancels:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, _Token] = {}

    @contextmanager
    def running(self, request: gr.Request | None, what: str) -> Iterator[threading.Event]:
        """A fresh token for ``what`` in this session while the block runs (a Cancel sets it)."""
        key, token = session_key(request), _Token(what)
        with self._lock:
            self._tokens[key] = token
        try:
            yield token.event
        finally:
            with self._lock:
                if self._tokens.get(key) is token:
                    del self._tokens[key]

    def cancel(self, request: gr.Request | None) -> str:
        """Set this session's token; the line to show (what stops, or that nothing of this session runs)."""
        with self._lock:
            token = self._tokens.get(session_key(request))
        if token is None:
            return NOTHING_RUNNING
        token.event.set()
        return f"Cancelling {token.what}: it stops at its next boundary; what finished stays stored."


def cancel_handler(cancels: SessionCancels) -> Callable[[gr.Request], str]:
    """A Cancel button's handler: cancels what the clicking session runs, and nothing else."""
    def cancel(request: gr.Request) -> str:
        return cancels.cancel(request)

    return cancel
