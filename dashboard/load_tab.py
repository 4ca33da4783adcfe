"""The Load tab: a load test against a lab engine (workers, knobs), the null target or a loopback URL.

Endpoint ``/load_test`` runs it (live progress while it runs: sent, done, failed, current p95); the
result is stored like the CLI's (``python -m profiling load``) and drawn from the store: latency
percentiles against offered load with the SLO line and the capacity, throughput, TTFA per load, and a
per-request timeline (lag, server queue, synthesis to the first chunk, streaming, underruns in red).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import gradio as gr
import numpy as np
import pandas as pd

from dashboard.context import DashboardContext
from dashboard.lane import LANE_ID
from dashboard.messages import ERROR_PREFIX, OK_PREFIX, one_line
from engines.errors import InputError
from engines.registry import available_engines, capabilities
from profiling import api
from profiling.analysis.load_plots import latency_vs_load, request_timeline, throughput_vs_load, ttfa_distribution
from profiling.loadgen.client import ClientOptions, RequestRow
from profiling.loadgen.metrics import RateMetrics, Slo
from profiling.loadgen.runner import LoadResult, LoadTest
from profiling.loadgen.schedule import parse_rates
from profiling.loadgen.targets import TargetSpec
from profiling.run.inputs import parse_knobs
from profiling.store.load import LoadStore
from profiling.texts.textsets import text_set_names

TARGET_KINDS = ("lab engine", "null target", "URL")
TABLE_COLUMNS = ["load", "sent", "ok", "TTFA p50 ms", "TTFA p95 ms", "TTFA p99 ms", "E2E p95 ms", "lag p95 ms",
                 "req/min", "goodput/min", "underruns", "errors", "queue p50 ms", "client CPU", "SLO"]


@dataclass
class _Progress:
    label: str = ""
    done: int = 0
    planned: int = 0
    failed: int = 0
    p95_ms: float | None = None
    finished: list[str] = field(default_factory=list)

    def line(self) -> str:
        p95 = "—" if self.p95_ms is None else f"{self.p95_ms:.0f} ms"
        past = "; ".join(self.finished)
        return (f"Running {self.label}: {self.done}/{self.planned} done, {self.failed} failed, "
                f"current TTFA p95 {p95}" + (f" (finished: {past})" if past else ""))


def streaming_engines() -> list[str]:
    return [name for name in available_engines() if capabilities(name).streaming]


def build_test(kind: str, engine: str, workers: float, knobs: str, url: str, rates: str, users: str,
               duration: float, max_requests: float, slo_ms: float, text_set: str) -> LoadTest:
    if kind not in TARGET_KINDS:
        raise InputError(f"unknown target {kind!r}")
    target = TargetSpec(kind={"lab engine": "lab", "null target": "null", "URL": "url"}[kind], engine=engine,
                        workers=int(workers or 1),
                        knobs=tuple(parse_knobs([k for k in (knobs or "").splitlines() if k.strip()]).items()),
                        url=(url or "").strip())
    if target.kind == "lab" and not 1 <= target.workers <= 16:
        raise InputError(f"workers must be between 1 and 16, got {target.workers}")
    if target.kind == "url" and not target.url:
        raise InputError("enter the URL of a server speaking POST /v1/audio/speech")
    user_counts: tuple[int, ...] = ()
    if users and users.strip():
        try:
            user_counts = tuple(int(u) for u in users.split(",") if u.strip())
        except ValueError:
            raise InputError(f"users must be whole numbers separated by commas, got {users!r}") from None
    rate_values = () if user_counts else parse_rates(rates or "")
    if not (duration and 0 < duration <= 600):
        raise InputError(f"duration must be in (0, 600] seconds here, got {duration}")
    return LoadTest(target=target, rates=rate_values, users=user_counts, duration_s=float(duration),
                    max_requests=int(max_requests or 1000), text_set=text_set, slo=Slo(ttfa_ms=float(slo_ms)),
                    client=ClientOptions(warmup=1))


def rate_table(metrics: list[RateMetrics]) -> pd.DataFrame:
    def ms(value: float | None) -> float | None:
        return None if value is None or not np.isfinite(value) else round(value * 1000, 1)

    rows = []
    for m in metrics:
        ttfa, e2e = m.dist("audible_ttfa_s"), m.dist("e2e_s")
        verdict = "met" if m.slo_met else f"missed: {m.slo_reason}"
        rows.append([m.label, m.sent, m.ok, ms(ttfa.p50), ms(ttfa.p95), ms(ttfa.p99), ms(e2e.p95),
                     ms(m.dist("lag_s").p95), round(m.throughput_per_min, 1), round(m.goodput_per_min, 1),
                     m.underruns, ", ".join(f"{k}: {v}" for k, v in m.errors.items()) or "",
                     ms(m.queue_wait_p50_s), round(m.client_cpu_fraction, 2),
                     verdict])
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def result_outputs(ctx: DashboardContext, test: LoadTest, result: LoadResult) -> tuple[Any, ...]:
    loads = LoadStore(ctx.store)
    rates, requests = loads.rates(result.test_id), loads.requests(result.test_id)
    cap = result.capacity.rate_per_s if result.capacity.rate_per_s is not None else result.capacity.users
    status = f"{OK_PREFIX} {test.target.label}: {result.capacity.describe()} (stored as {result.test_id})"
    return (status, rate_table(result.metrics), latency_vs_load(rates, test.slo.ttfa_ms, cap),
            throughput_vs_load(rates), ttfa_distribution(requests), request_timeline(requests))


def build(ctx: DashboardContext) -> None:
    engines = streaming_engines()
    gr.Markdown("Load test a speech server: open-loop Poisson rates (or closed-loop users), percentiles, "
                "goodput under the SLO, and capacity. Methodology: `docs/load_methodology.md`.")
    with gr.Row():
        kind = gr.Radio(list(TARGET_KINDS), value=TARGET_KINDS[0], label="Target")
        engine = gr.Dropdown(engines, value=engines[0] if engines else None, label="Engine (lab server)")
        workers = gr.Number(1, precision=0, label="Workers (replicas)")
        url = gr.Textbox(label="URL (loopback)", placeholder="http://127.0.0.1:8000")
    knobs = gr.Textbox(label="Knobs, one NAME=VALUE a line", lines=2, value="deterministic=true")
    with gr.Row():
        rates = gr.Textbox("0.5,1,2", label="Rates (requests/s)")
        users = gr.Textbox("", label="or users (closed loop)")
        duration = gr.Number(10, label="Duration per load (s)")
        max_requests = gr.Number(200, precision=0, label="Max requests per load")
        slo_ms = gr.Number(800, label="SLO: audible TTFA p95 (ms)")
        text_set = gr.Dropdown(list(text_set_names()), value="medium", label="Texts")
    run_button = gr.Button("Run load test", variant="primary")
    status = gr.Markdown()
    table = gr.Dataframe(headers=TABLE_COLUMNS, interactive=False, label="Per load")
    with gr.Row():
        latency_plot, throughput_plot = gr.Plot(label="Latency vs load"), gr.Plot(label="Throughput vs load")
    with gr.Row():
        ttfa_plot, timeline_plot = gr.Plot(label="TTFA per load"), gr.Plot(label="Per-request timeline")
    outputs = [status, table, latency_plot, throughput_plot, ttfa_plot, timeline_plot]

    def run(*values: Any) -> Iterator[tuple[Any, ...]]:
        skip = tuple(gr.skip() for _ in outputs[1:])
        try:
            test = build_test(*values)
            test.schedules()
        except InputError as error:
            yield (f"{ERROR_PREFIX} {one_line(error)}", *skip)
            return
        progress = _Progress()
        box: dict[str, Any] = {}

        def on_progress(label: str, rows: list[RequestRow], planned: int) -> None:
            ttfa = [r.audible_ttfa_s for r in rows if r.ok and r.audible_ttfa_s is not None]
            progress.label, progress.done, progress.planned = label, len(rows), planned
            progress.failed = sum(not r.ok for r in rows)
            progress.p95_ms = float(np.percentile(ttfa, 95)) * 1000 if ttfa else None

        def on_rate(m: RateMetrics) -> None:
            progress.finished.append(f"{m.label} {'met' if m.slo_met else 'missed'}")

        def work() -> None:
            try:
                # In the lane: a load test must not share the cores with another measured run.
                with ctx.lane.hold("a load test"):
                    box["result"] = api.run_load(test, store=ctx.store, progress=on_progress, on_rate=on_rate).result
            except Exception as error:  # shown as one line; rates finished so far stay stored
                box["error"] = error

        thread = threading.Thread(target=work, daemon=True)
        thread.start()
        yield ("Starting the target…", *skip)
        while thread.is_alive():
            thread.join(timeout=1.0)
            if thread.is_alive():
                yield (progress.line(), *skip)
        if "error" in box:
            yield (f"{ERROR_PREFIX} {one_line(box['error'])}", *skip)
            return
        yield result_outputs(ctx, test, box["result"])

    inputs = [kind, engine, workers, knobs, url, rates, users, duration, max_requests, slo_ms, text_set]
    run_button.click(run, inputs, outputs, api_name="load_test", concurrency_id=LANE_ID)
