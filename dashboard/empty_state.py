"""What the Sweeps and History tabs show on an empty store: the next step, not blank tables and plots.

One button runs the example sweep (``sweeps/piper_quick.yaml``: Piper, four configurations, about a
minute on two cores) through the API, like ``python -m profiling sweep``; the tab then shows its results.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr

from dashboard.context import DashboardContext
from dashboard.messages import error_status, one_line
from dashboard.sessions import cancel_handler
from engines.errors import InputError
from profiling import api
from profiling.api.types import SweepProgress

log = logging.getLogger(__name__)

EXAMPLE_SWEEP = Path(__file__).resolve().parent.parent / "sweeps" / "piper_quick.yaml"


def store_is_empty(ctx: DashboardContext) -> bool:
    """No run and no load test stored (a store holding only load tests is not empty: History lists them)."""
    return ctx.store.count_runs() == 0 and not api.has_load_tests(ctx.store)


@dataclass
class EmptyState:
    """The "nothing stored yet" panel and the column it stands in for."""

    panel: gr.Column
    results: gr.Column
    button: gr.Button
    #: Wired by the tab to its own refresh (which also returns ``visibility``).
    refresh: gr.Button
    status: gr.Markdown
    #: Cancels the example sweep this browser session started (``wire_cancel``).
    cancel: gr.Button

    def wire_cancel(self, ctx: DashboardContext, api_name: str) -> None:
        # Outside the lane and the queue's limit: it must land while the sweep runs.
        self.cancel.click(cancel_handler(ctx.cancels), None, self.status, api_name=api_name, concurrency_limit=None)

    def visibility(self, ctx: DashboardContext) -> tuple[Any, Any]:
        """Updates for (panel, results): the panel while the store is empty, the results after."""
        empty = store_is_empty(ctx)
        return gr.update(visible=empty), gr.update(visible=not empty)


def build_empty_state(ctx: DashboardContext, elem_prefix: str, what: str) -> EmptyState:
    """The panel; the caller builds its results inside ``with state.results:`` right after."""
    empty = store_is_empty(ctx)
    with gr.Column(visible=empty, elem_id=f"{elem_prefix}-empty") as panel:
        gr.Markdown(
            f"### Nothing stored yet\n{what}\n\n"
            "Start with the example sweep: Piper with ONNX Runtime graph optimisation off and on, at two "
            "speaking rates, on short texts (about a minute). Or synthesize something in the **Synthesize** "
            "tab and press **Refresh** here."
        )
        with gr.Row():
            button = gr.Button("Run the example sweep on Piper", variant="primary",
                               elem_id=f"{elem_prefix}-example-sweep")
            refresh = gr.Button("Refresh", elem_id=f"{elem_prefix}-empty-refresh")
            cancel = gr.Button("Cancel", variant="stop", elem_id=f"{elem_prefix}-example-cancel")
        status = gr.Markdown("", elem_id=f"{elem_prefix}-example-status")
    results = gr.Column(visible=not empty, elem_id=f"{elem_prefix}-results")
    return EmptyState(panel, results, button, refresh, status, cancel)


def run_example_sweep(ctx: DashboardContext, progress: Any = None,
                      cancel: threading.Event | None = None) -> tuple[str, str]:
    """Run (or resume) the example sweep; returns (status line, sweep name or ""). ``cancel``: the session's
    token, checked between runs (a cancelled sweep resumes where it stopped)."""
    def report(update: SweepProgress) -> None:
        if progress is not None:
            progress((update.done, update.total), desc=f"example sweep: {update.done}/{update.total} runs")

    try:
        with ctx.lane.hold("the example sweep"):
            outcome = api.sweep(EXAMPLE_SWEEP, store=ctx.store, pool=ctx.pool, progress=report,
                                cancel=cancel).outcome
    except InputError as error:
        return error_status(one_line(error)), ""
    except Exception as error:  # keep serving; the log has the traceback
        log.exception("example sweep failed")
        return error_status(one_line(error)), ""
    if outcome.cancelled:
        return (f"**Example sweep cancelled:** '{outcome.name}' {outcome.completed}/{outcome.total} runs stored; "
                f"{outcome.total - outcome.completed} not run (run it again to resume)."), outcome.name
    return (f"**Example sweep finished:** '{outcome.name}' {outcome.completed}/{outcome.total} runs stored "
            f"({outcome.errors} errors)."), outcome.name
