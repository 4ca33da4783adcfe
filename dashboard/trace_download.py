"""The "Download trace" button every result carries: the stored measurement as Chrome trace JSON.

The file is written when the result is shown (``api.trace_file``, in a temporary directory Gradio may serve)
and the button's value is its path, so an API client gets the path too; with no result it holds nothing.
docs/traces.md says how to open the file (Perfetto, chrome://tracing).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Callable
from pathlib import Path

import gradio as gr

from dashboard.context import DashboardContext
from profiling import api

log = logging.getLogger(__name__)

LABEL = "Download trace (Perfetto / chrome://tracing)"


def trace_button(elem_id: str) -> gr.DownloadButton:
    return gr.DownloadButton(LABEL, value=None, size="sm", elem_id=elem_id)


def no_trace() -> None:
    """What the button holds with no result (an error, a cleared form)."""
    return None


def trace_update(ctx: DashboardContext, kind: str | None, ident: str | None) -> str | None:
    """The path of the trace of ``ident`` (``kind`` None: found from the store); None when there is none.

    A trace that fails never breaks the result it belongs to: the log says why it is missing."""
    if not ident:
        return None
    try:
        return str(api.trace_file(kind, ident, ctx.store))
    except Exception:
        log.exception("trace of %s %s failed", kind, ident)
        return None


def result_trace_update(write: Callable[[Path], object], name: str) -> str | None:
    """The path of a result's own ``.trace(path)`` (a profile: its plain and profiled runs together)."""
    path = Path(tempfile.mkdtemp(prefix="ttsperf-trace-")) / f"trace-{name}.json"
    try:
        write(path)
    except Exception:
        log.exception("trace %s failed", name)
        return None
    return str(path)
