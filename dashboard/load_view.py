"""A stored load test as the Load tab drew it, reopened from the store (History), and two compared (Sweeps).

Everything comes through ``profiling.api``: ``load_tests``, ``load_test`` (the stored rows, figures, capacity)
and ``compare_load``; the per-load table is the Load tab's own (``rate_table``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import gradio as gr
import pandas as pd

from dashboard.context import DashboardContext
from dashboard.load_tab import TABLE_COLUMNS, TABLE_NOTE, rate_table, search_markdown
from dashboard.messages import OK_PREFIX, error_status, one_line
from dashboard.trace_download import no_trace, trace_button, trace_update
from engines.errors import InputError
from profiling import api

log = logging.getLogger(__name__)


def load_test_list(ctx: DashboardContext) -> pd.DataFrame:
    try:
        return api.load_tests(store=ctx.store)
    except Exception:  # a broken row must not blank the History tab; the log has it
        log.exception("listing load tests failed")
        return pd.DataFrame(columns=api.LOAD_LIST_COLUMNS)


def load_test_ids(ctx: DashboardContext) -> list[str]:
    return list(load_test_list(ctx)["test_id"])


@dataclass
class StoredLoadView:
    """The reopened test's components, in the order ``stored_outputs`` fills them."""

    status: gr.Markdown
    capacity: gr.Markdown
    table: gr.Dataframe
    latency: gr.Plot
    throughput: gr.Plot
    ttfa: gr.Plot
    timeline: gr.Plot
    trace: gr.DownloadButton

    def components(self) -> list[Any]:
        return [self.status, self.capacity, self.table, self.latency, self.throughput, self.ttfa, self.timeline,
                self.trace]


def build_stored_view(elem_prefix: str) -> StoredLoadView:
    status = gr.Markdown(elem_id=f"{elem_prefix}-status")
    capacity = gr.Markdown(elem_id=f"{elem_prefix}-capacity")
    trace = trace_button(f"{elem_prefix}-trace")
    table = gr.Dataframe(pd.DataFrame(columns=TABLE_COLUMNS), interactive=False, label="Per load",
                         elem_id=f"{elem_prefix}-table")
    gr.Markdown(TABLE_NOTE)
    with gr.Row():
        latency = gr.Plot(label="Latency vs load", elem_id=f"{elem_prefix}-latency")
        throughput = gr.Plot(label="Throughput vs load")
    with gr.Row():
        ttfa, timeline = gr.Plot(label="TTFA per load"), gr.Plot(label="Per-request timeline")
    return StoredLoadView(status, capacity, table, latency, throughput, ttfa, timeline, trace)


def stored_outputs(ctx: DashboardContext, test_id: str | None) -> tuple[Any, ...]:
    """The stored test's status, capacity line, per-load table, four figures and trace; one line if it fails."""
    empty = pd.DataFrame(columns=TABLE_COLUMNS)
    try:
        test = api.load_test(test_id or "", store=ctx.store)
        figures = test.figures()
    except InputError as error:
        return (error_status(one_line(error)), "", empty, None, None, None, None, no_trace())
    except Exception as error:  # keep serving; the log has the traceback
        log.exception("reopening load test %s failed", test_id)
        return (error_status(one_line(error)), "", empty, None, None, None, None, no_trace())
    when = test.created_at.replace("T", " ")[:19]
    status = f"{OK_PREFIX} {test.target}, stored {when} UTC ({test.test_id})"
    search = test.capacity_search
    capacity = search_markdown(search) if search is not None else (
        f"**Capacity: {test.capacity_text}** (the highest load meeting the SLO) under {test.slo.label}")
    return (status, capacity, rate_table(list(test.metrics)), *figures, trace_update(ctx, "load", test.test_id))


def compare_outputs(ctx: DashboardContext, baseline: str | None, candidate: str | None) -> tuple[Any, ...]:
    """The comparison's headline (what was called and how sure) and its table; one line if it fails."""
    empty = pd.DataFrame(columns=api.LOAD_COMPARE_COLUMNS)
    if not baseline or not candidate:
        return "Pick two load tests.", empty
    try:
        comparison = api.compare_load(baseline, candidate, store=ctx.store)
    except InputError as error:
        return error_status(one_line(error)), empty
    except Exception as error:
        log.exception("load comparison failed")
        return error_status(one_line(error)), empty
    return comparison.describe(), comparison.table()
