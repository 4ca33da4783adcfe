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
from dashboard.controls import (
    EngineView,
    KnobPanel,
    capability_note,
    device_choices,
    engine_views,
    find_view,
    knobs_from_named,
    precision_choices,
)
from dashboard.lane import LANE_ID
from dashboard.messages import ERROR_PREFIX, OK_PREFIX, one_line
from dashboard.sessions import cancel_handler
from dashboard.trace_download import trace_button, trace_update
from engines.base import KnobKind, KnobSpec
from engines.errors import InputError
from profiling import api
from profiling.api.figures import latency_vs_load, request_timeline, throughput_vs_load, ttfa_distribution
from profiling.api.inputs import parse_knobs, parse_rates, text_set_names
from profiling.api.types import (
    CapacitySearch,
    ClientOptions,
    LoadResult,
    LoadStore,
    LoadTest,
    RateMetrics,
    RequestRow,
    SearchSettings,
    Slo,
    TargetSpec,
)

TARGET_KINDS = ("lab engine", "null target", "URL")
POLICY_CHOICES = ("fifo", "round-robin", "window:2", "window:4", "edf")
TABLE_COLUMNS = ["load", "sent", "ok", "TTFA p50 ms", "TTFA p95 ms", "TTFA p99 ms", "TTFA tb p95 ms", "E2E p95 ms",
                 "lag p95 ms", "req/min", "goodput/min", "good %", "good % admitted", "503", "underruns", "C100 %",
                 "underrun p95 ms", "underrun p99 ms", "gap p99 ms", "errors", "queue p50 ms", "client CPU", "SLO"]
#: What the table's TTFA columns mean (shown under it).
TABLE_NOTE = ("TTFA = audible TTFA by the lab's rule (first sample over 0.02 full scale); TTFA tb = tts_bench's rule "
              "(two 20 ms frames at -45 dBFS or more). C100 = streams whose longest underrun is at most 100 ms; "
              "underrun p95/p99 = each stream's longest underrun; good % over every request, good % admitted over "
              "those not refused (503). Definitions: `docs/load_methodology.md`.")


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


def streaming_views() -> list[EngineView]:
    """The engines a lab server can stream, as the controls see them (knobs, devices, precisions)."""
    return [v for v in engine_views() if v.available and v.capabilities is not None and v.capabilities.streaming]


def streaming_engines() -> list[str]:
    return [v.name for v in streaming_views()]


def _knob_text(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def changed_knobs(specs: tuple[KnobSpec, ...], values: dict[str, object]) -> dict[str, str]:
    """The engine's own knobs the form changed from their defaults, as serve's ``--knob`` text.

    Only the chosen engine's knobs arrive here, and only changed ones are sent: the server keeps every
    other knob's default (and a knob of another engine is never sent).
    """
    changed = {}
    for spec in specs:
        if spec.name not in values:
            continue
        value = values[spec.name]
        if spec.kind is KnobKind.INT and isinstance(value, float) and value.is_integer():
            value = int(value)  # a number box gives floats
        if value != spec.default:
            changed[spec.name] = _knob_text(value)
    return changed


def build_test(kind: str, engine: str, workers: float, knobs: str, url: str, rates: str, users: str,
               duration: float, max_requests: float, slo_ms: float, text_set: str, *, device: str | None = None,
               precision: str | None = None, policy: str | None = "fifo", chunker: str | None = "lab",
               first_chunk_chars: float | None = 20, ttfa_target_ms: float | None = 500.0,
               admit: str | None = "none", voice: str | None = "default", find_capacity: bool = False,
               min_requests: float | None = 100, max_steps: float | None = 8, slo_c100: float | None = 0.99,
               panel_knobs: dict[str, str] | None = None) -> LoadTest:
    """The form as a ``LoadTest``; every bad value an InputError (one line on the page).

    ``knobs``: extra NAME=VALUE lines over the knob panel's values (``panel_knobs``, the engine's own).
    """
    if kind not in TARGET_KINDS:
        raise InputError(f"unknown target {kind!r}")
    target_kind = {"lab engine": "lab", "null target": "null", "URL": "url"}[kind]
    serving: dict[str, Any] = {}
    if target_kind == "lab":
        view = find_view(streaming_views(), engine or "")
        if view is None or view.capabilities is None:
            raise InputError(f"engine {engine!r} cannot be served here (not installed, or it does not stream)")
        if precision and precision not in view.capabilities.precisions:
            raise InputError(f"{view.name} has no precision {precision!r} "
                             f"(it has {', '.join(view.capabilities.precisions)})")
        if first_chunk_chars is None or ttfa_target_ms is None:
            raise InputError("enter the first chunk's characters and the TTFA target")
        serving = dict(device=device or "cpu", precision=precision or "fp32", policy=(policy or "fifo").strip(),
                       chunker=chunker or "lab", first_chunk_chars=int(first_chunk_chars),
                       ttfa_target_ms=float(ttfa_target_ms), admit=admit or "none")
    all_knobs = {**(panel_knobs or {}), **parse_knobs([k for k in (knobs or "").splitlines() if k.strip()])}
    target = TargetSpec(kind=target_kind, engine=engine, workers=int(workers or 1),
                        knobs=tuple(all_knobs.items()), url=(url or "").strip(), **serving)
    if target.kind == "lab" and not 1 <= target.workers <= 16:
        raise InputError(f"workers must be between 1 and 16, got {target.workers}")
    if target.kind == "url" and not target.url:
        raise InputError("enter the URL of a server speaking POST /v1/audio/speech")
    voice_name = (voice or "").strip()
    if not voice_name:
        raise InputError("enter a voice name (default: default)")
    user_counts: tuple[int, ...] = ()
    if users and users.strip():
        try:
            user_counts = tuple(int(u) for u in users.split(",") if u.strip())
        except ValueError:
            raise InputError(f"users must be whole numbers separated by commas, got {users!r}") from None
    rate_values = () if user_counts else parse_rates(rates or "") if (rates or "").strip() or not find_capacity \
        else ()
    if not (duration and 0 < duration <= 600):
        raise InputError(f"duration must be in (0, 600] seconds here, got {duration}")
    search = None
    if find_capacity:
        if min_requests is None or max_steps is None:
            raise InputError("enter the capacity search's minimum requests per step and its maximum steps")
        search = SearchSettings(min_requests=int(min_requests), max_steps=int(max_steps), max_step_s=600.0,
                                budget_s=1800.0)
    slo = Slo(ttfa_ms=float(slo_ms), min_c100=0.99 if slo_c100 is None else float(slo_c100))
    test = LoadTest(target=target, rates=rate_values, users=user_counts, duration_s=float(duration),
                    max_requests=int(max_requests or 1000), text_set=text_set, slo=slo,
                    client=ClientOptions(warmup=1, voice=voice_name), find_capacity=search)
    test.check()
    return test


def rate_table(metrics: list[RateMetrics]) -> pd.DataFrame:
    def ms(value: float | None) -> float | None:
        return None if value is None or not np.isfinite(value) else round(value * 1000, 1)

    def pct(value: float) -> float | None:
        return None if not np.isfinite(value) else round(value * 100, 1)

    def plain(value: float) -> float | None:
        return None if not np.isfinite(value) else round(value, 1)

    rows = []
    for m in metrics:
        ttfa, e2e, underrun = m.dist("audible_ttfa_s"), m.dist("e2e_s"), m.dist("underrun_max_ms")
        verdict = "met" if m.slo_met else f"missed: {m.slo_reason}"
        rows.append([m.label, m.sent, m.ok, ms(ttfa.p50), ms(ttfa.p95), ms(ttfa.p99),
                     ms(m.dist("audible_ttfa_tb_s").p95), ms(e2e.p95), ms(m.dist("lag_s").p95),
                     round(m.throughput_per_min, 1), round(m.goodput_per_min, 1), pct(m.good_fraction),
                     pct(m.admitted_good_fraction), m.refused, m.underruns, pct(m.c100), plain(underrun.p95),
                     plain(underrun.p99), ms(m.gap_p99_s),
                     ", ".join(f"{k}: {v}" for k, v in m.errors.items()) or "",
                     ms(m.queue_wait_p50_s), round(m.client_cpu_fraction, 2), verdict])
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def search_markdown(search: CapacitySearch | None) -> str:
    """The capacity search's answer and its steps (empty when the test did not search)."""
    if search is None:
        return ""
    lines = [f"**{search.describe()}**", "", "| step | load | seed | sent | TTFA | C100 | verdict |",
             "|---|---|---|---|---|---|---|"]
    for index, step in enumerate(search.steps):
        ttfa = "—" if step.ttfa_s != step.ttfa_s else f"{step.ttfa_s * 1000:.0f} ms"
        c100 = "—" if step.c100 != step.c100 else f"{step.c100:.0%}"
        verdict = ("met" if step.met else f"missed: {step.reason}") + (" (retry, new seed)" if step.retry else "")
        lines.append(f"| {index + 1} | {step.label} | {step.seed} | {step.measured} | {ttfa} | {c100} | {verdict} |")
    return "\n".join(lines)


def result_outputs(ctx: DashboardContext, test: LoadTest, result: LoadResult) -> tuple[Any, ...]:
    loads = LoadStore(ctx.store)
    rates, requests = loads.rates(result.test_id), loads.requests(result.test_id)
    if len(rates) == len(result.metrics):  # the stored table keeps the lab rule's TTFA; add tts_bench's
        rates["ttfa_tb_p95_s"] = [m.dist("audible_ttfa_tb_s").p95 for m in result.metrics]
    rates = rates.sort_values(["users", "offered_per_s"], kind="stable")  # a search runs loads out of order
    cap = result.capacity.rate_per_s if result.capacity.rate_per_s is not None else result.capacity.users
    answer = result.search.describe() if result.search is not None else result.capacity.describe()
    status = f"{OK_PREFIX} {test.target.label}: {answer} (stored as {result.test_id})"
    if cut := result.cut_line():
        status += f" **{cut[0].upper()}{cut[1:]}.**"
    return (status, rate_table(result.metrics), latency_vs_load(rates, test.slo.ttfa_ms, cap),
            throughput_vs_load(rates), ttfa_distribution(requests), request_timeline(requests),
            search_markdown(result.search), trace_update(ctx, "load", result.test_id))


def build(ctx: DashboardContext) -> None:
    views = streaming_views()
    names = [v.name for v in views]
    selected = "piper" if "piper" in names else (names[0] if names else "")
    view = find_view(views, selected)
    devices = device_choices(view) if view else []
    precisions = precision_choices(view, devices[0] if devices else None) if view else []
    gr.Markdown("Load test a speech server: open-loop Poisson rates (or closed-loop users), percentiles, "
                "continuity, goodput under the SLO, and capacity. Methodology: `docs/load_methodology.md`.")
    with gr.Row():
        kind = gr.Radio(list(TARGET_KINDS), value=TARGET_KINDS[0], label="Target", elem_id="load-kind")
        engine = gr.Dropdown(names, value=selected or None, label="Engine (lab server)", elem_id="load-engine")
        workers = gr.Number(1, precision=0, label="Workers (replicas)")
        url = gr.Textbox(label="URL (loopback)", placeholder="http://127.0.0.1:8000")
    with gr.Row():
        device = gr.Dropdown(devices, value=devices[0] if devices else None, label="Device")
        precision = gr.Dropdown(precisions, value=precisions[0] if precisions else None, label="Precision")
        voice = gr.Textbox("default", label="Voice name", info="the speech request's voice (serve --voice NAME)")
    caps_md = gr.Markdown(capability_note(view, devices[0] if devices else None) if view else "")
    with gr.Accordion("Server scheduling (lab server)", open=False):
        with gr.Row():
            policy = gr.Dropdown(list(POLICY_CHOICES), value="fifo", allow_custom_value=True, label="Policy",
                                 info="fifo, round-robin, window:K (K streams per worker) or edf")
            chunker = gr.Radio(["lab", "engine"], value="lab", label="Chunker")
            first_chunk = gr.Number(20, precision=0, label="First chunk chars", info="lab chunker")
            ttfa_target = gr.Number(500, label="TTFA target ms", info="EDF's first deadline, admission's bound")
            admit = gr.Radio(["none", "slo"], value="none", label="Admission",
                             info="slo: refuse up front (503) what would miss the target")
    with gr.Accordion("Engine knobs (the chosen engine's own)", open=False):
        panel = KnobPanel(views, selected)
        knobs = gr.Textbox(label="More knobs, one NAME=VALUE a line (over the controls above)", lines=2, value="")
    with gr.Row():
        rates = gr.Textbox("0.5,1,2", label="Rates (requests/s)", elem_id="load-rates")
        users = gr.Textbox("", label="or users (closed loop)")
        duration = gr.Number(10, label="Duration per load (s)", elem_id="load-duration")
        max_requests = gr.Number(200, precision=0, label="Max requests per load")
        slo_ms = gr.Number(800, label="SLO: audible TTFA p95 (ms)")
        slo_c100 = gr.Number(0.99, label="SLO: C100 at least", info="share of streams never starved > 100 ms")
        text_set = gr.Dropdown(list(text_set_names()), value="medium", label="Texts")
    with gr.Row():
        find = gr.Checkbox(False, label="Find capacity", info="search the largest load meeting the SLO; the first "
                           "rate (or user count) is the start")
        min_requests = gr.Number(100, precision=0, label="Min requests per step")
        max_steps = gr.Number(8, precision=0, label="Max steps")
    with gr.Row():
        run_button = gr.Button("Run load test", variant="primary", elem_id="load-run")
        cancel_button = gr.Button("Cancel", variant="stop", elem_id="load-cancel")
    status = gr.Markdown(elem_id="load-status")
    capacity_md = gr.Markdown(elem_id="load-capacity")
    trace = trace_button("load-trace")
    table = gr.Dataframe(headers=TABLE_COLUMNS, interactive=False, label="Per load")
    gr.Markdown(TABLE_NOTE)
    with gr.Row():
        latency_plot, throughput_plot = gr.Plot(label="Latency vs load"), gr.Plot(label="Throughput vs load")
    with gr.Row():
        ttfa_plot, timeline_plot = gr.Plot(label="TTFA per load"), gr.Plot(label="Per-request timeline")
    outputs = [status, table, latency_plot, throughput_plot, ttfa_plot, timeline_plot, capacity_md, trace]

    def on_engine(name: str | None) -> list[Any]:
        chosen = find_view(views, name or "")
        if chosen is None:
            return [gr.update(), gr.update(), "", *panel.visibility("")]
        choices = device_choices(chosen)
        first = choices[0] if choices else None
        kinds = precision_choices(chosen, first)
        return [gr.update(choices=choices, value=first), gr.update(choices=kinds, value=kinds[0] if kinds else None),
                capability_note(chosen, first), *panel.visibility(chosen.name)]

    def on_device(name: str | None, device_name: str | None) -> list[Any]:
        chosen = find_view(views, name or "")
        if chosen is None:
            return [gr.update(), ""]
        kinds = precision_choices(chosen, device_name)
        return [gr.update(choices=kinds, value=kinds[0] if kinds else None), capability_note(chosen, device_name)]

    engine.change(on_engine, inputs=engine, outputs=[device, precision, caps_md, *panel.groups],
                  api_visibility="private")
    device.change(on_device, inputs=[engine, device], outputs=[precision, caps_md], api_visibility="private")

    def run(kind: str, engine: str, workers: float, knobs: str, url: str, rates: str, users: str, duration: float,
            max_requests: float, slo_ms: float, text_set: str, device: str | None = None,
            precision: str | None = None, policy: str | None = "fifo", chunker: str | None = "lab",
            first_chunk_chars: float | None = 20, ttfa_target_ms: float | None = 500.0,
            admit: str | None = "none", voice: str | None = "default", find_capacity: bool = False,
            min_requests: float | None = 100, max_steps: float | None = 8, slo_c100: float | None = 0.99,
            request: gr.Request = None,  # type: ignore[assignment]
            **knob_values: Any) -> Iterator[tuple[Any, ...]]:
        """The form by name; the engines' knob controls arrive as ``<engine>__<knob>`` (only the chosen
        engine's are used)."""
        skip = tuple(gr.skip() for _ in outputs[1:])
        try:
            chosen = find_view(views, engine or "")
            own = knobs_from_named(engine, knob_values)
            panel_knobs = changed_knobs(chosen.capabilities.knobs, own) if chosen and chosen.capabilities else {}
            test = build_test(kind, engine, workers, knobs, url, rates, users, duration, max_requests, slo_ms,
                              text_set, device=device, precision=precision, policy=policy, chunker=chunker,
                              first_chunk_chars=first_chunk_chars, ttfa_target_ms=ttfa_target_ms, admit=admit,
                              voice=voice, find_capacity=bool(find_capacity), min_requests=min_requests,
                              max_steps=max_steps, slo_c100=slo_c100, panel_knobs=panel_knobs)
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

        def work(cancel: threading.Event) -> None:
            try:
                # In the lane: a load test must not share the cores with another measured run.
                with ctx.lane.hold("a load test"):
                    box["result"] = api.run_load(test, store=ctx.store, progress=on_progress, on_rate=on_rate,
                                                 cancel=cancel).result
            except Exception as error:  # shown as one line; rates finished so far stay stored
                box["error"] = error

        with ctx.cancels.running(request, "the load test") as cancel:
            thread = threading.Thread(target=work, args=(cancel,), daemon=True)
            thread.start()
            yield ("Starting the target…", *skip)
            while thread.is_alive():
                thread.join(timeout=1.0)
                if thread.is_alive():
                    yield (progress.line() + (" — cancelling after this load" if cancel.is_set() else ""), *skip)
        if "error" in box:
            yield (f"{ERROR_PREFIX} {one_line(box['error'])}", *skip)
            return
        yield result_outputs(ctx, test, box["result"])

    form = {"kind": kind, "engine": engine, "workers": workers, "knobs": knobs, "url": url, "rates": rates,
            "users": users, "duration": duration, "max_requests": max_requests, "slo_ms": slo_ms,
            "text_set": text_set, "device": device, "precision": precision, "policy": policy, "chunker": chunker,
            "first_chunk_chars": first_chunk, "ttfa_target_ms": ttfa_target, "admit": admit, "voice": voice,
            "find_capacity": find, "min_requests": min_requests, "max_steps": max_steps, "slo_c100": slo_c100}
    ctx.storing.append(run_button.click(run, inputs_kwargs={**form, **panel.named_inputs()}, outputs=outputs,
                                        api_name="load_test", concurrency_id=LANE_ID))
    # Outside the lane and the queue's limit, so it lands while the test runs; only this session's test.
    cancel_button.click(cancel_handler(ctx.cancels), None, status, api_name="cancel_load", concurrency_limit=None)
