"""The Streaming tab: a measured stream played live in the browser, its timeline, and the sweep.

Engines listed are those whose capabilities say they stream; device choices and knobs come
from the same capabilities. The stream runs in a worker thread; each chunk is handed to the
browser as soon as the runner sees it, so what you hear is the measured stream.
"""

from __future__ import annotations

import math
import queue
import threading
from collections.abc import Iterator, Mapping
from typing import Any

import gradio as gr
import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.context import DashboardContext
from dashboard.controls import EngineView, KnobPanel, device_choices, engine_views, find_view, timing_control
from dashboard.lane import LANE_ID
from dashboard.messages import ERROR_PREFIX, OK_PREFIX, one_line
from dashboard.sessions import cancel_handler
from dashboard.trace_download import no_trace, trace_button, trace_update
from engines.base import AudioChunk
from engines.chunking import ChunkingSettings
from engines.errors import InputError
from profiling import api
from profiling.api import validate_request
from profiling.api.figures import timeline_figure
from profiling.api.inputs import parse_sizes, parse_values
from profiling.api.types import BenchRequest, BenchResult, RunRecord, RunStatus, SweepResult

DEFAULT_TEXT = (
    "Streaming speech synthesis starts speaking before the whole text is ready. "
    "The first chunk decides how soon we hear anything, and every later chunk must arrive "
    "before the player runs dry. Too small a first chunk and the second one is late; too large "
    "and the listener waits. The pre-buffer trades a little delay for a smooth stream."
)
CHUNKERS = api.CHUNKERS
_DEFAULT_CHUNKING = ChunkingSettings()
JOIN_COLUMNS = ["join", "repeat corr", "repeat", "jump", "jump ratio", "click"]
CHUNK_COLUMNS = ["chunk", "text", "synthesis ms", "ready ms", "duration s"]
SWEEP_COLUMNS = ["first chunk", "pre-buffer ms", "TTFA ms", "first audible ms", "stall median ms", "stall max ms",
                 "runs with underrun"]


def streaming_views() -> list[EngineView]:
    return [v for v in engine_views() if v.available and v.capabilities is not None and v.capabilities.streaming]


# --- requests ----------------------------------------------------------------------------


def _whole(name: str, value: object, minimum: int) -> int:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if not number.is_integer() or number < minimum:
        raise InputError(f"{name} must be a whole number of at least {minimum}, got {value!r}")
    return int(number)


def _number(name: str, value: object) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise InputError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(number):
        raise InputError(f"{name} must be a finite number, got {value!r}")
    return number


def build_request(
    engine: str, device: str | None, text: str, chunker: str, first_chunk: object, max_chars: object,
    sentence_only_after_s: object, prebuffer_ms: object, audio_block_ms: object,
    knobs: Mapping[str, object], max_text_chars: int, repeats: int = 1, warmup: int = 0, timing: str = "sync",
) -> BenchRequest:
    """The runner's STREAM request from the form's values (through the API); every bad value is one InputError."""
    if chunker not in CHUNKERS:
        raise InputError(f"chunker '{chunker}' is not one of {', '.join(CHUNKERS)}")
    lab = chunker == "lab"  # the sliders always send values: the engine's own streaming ignores them
    return api.stream_request(
        engine or "", text or "", chunker=chunker,
        first_chunk_max_chars=_whole("first chunk max chars", first_chunk, 1) if lab else None,
        max_chars_per_chunk=_whole("max chars per chunk", max_chars, 1) if lab else None,
        sentence_only_after_s=_number("sentence-only after", sentence_only_after_s) if lab else None,
        prebuffer_ms=_number("pre-buffer", prebuffer_ms), audio_block_ms=_number("audio block", audio_block_ms),
        repeats=repeats, warmup=warmup, device=device or "cpu", knobs=dict(knobs), max_chars=max_text_chars,
        label="dashboard stream", timing=timing or "sync",
    )


# --- what the tab shows --------------------------------------------------------------------


def chunk_table(record: RunRecord) -> pd.DataFrame:
    rows, previous = [], 0.0
    for chunk in record.chunks:
        rows.append({"chunk": chunk.index, "text": chunk.text.strip(),
                     "synthesis ms": round((chunk.ready_s - previous) * 1000, 1),
                     "ready ms": round(chunk.ready_s * 1000, 1), "duration s": round(chunk.audio_s, 3)})
        previous = chunk.ready_s
    return pd.DataFrame(rows, columns=CHUNK_COLUMNS)


def joins_table(record: RunRecord) -> pd.DataFrame:
    rows = [{"join": f"{j.left}→{j.right}", "repeat corr": round(j.repeat_score, 3), "repeat": j.repeated,
             "jump": round(j.click_jump, 4), "jump ratio": round(j.click_ratio, 1), "click": j.click}
            for j in record.joins]
    return pd.DataFrame(rows, columns=JOIN_COLUMNS)


def _ms(seconds: float) -> str:
    return "—" if not math.isfinite(seconds) else f"{seconds * 1000:.1f} ms"


def summary_markdown(record: RunRecord) -> str:
    report = record.playback
    if report is None:
        return ""
    rows = [
        ("TTFA (first chunk ready)", _ms(report.ttfa_s)),
        ("first audible", f"{_ms(report.first_audible_s)} (leading silence {_ms(report.leading_silence_s)})"),
        ("underruns", str(report.underrun_count)),
        ("total stall", _ms(report.total_stall_s)),
        ("real-time safe", "yes" if report.realtime_safe else "**no**"),
        ("stall-free start", _ms(report.stall_free_start_s)),
        ("inter-chunk latency p50 / p95 / p99",
         f"{_ms(report.itl_p50_s)} / {_ms(report.itl_p95_s)} / {_ms(report.itl_p99_s)}"),
        ("joins with a repeat / a click",
         f"{sum(j.repeated for j in record.joins)} / {sum(j.click for j in record.joins)} of {len(record.joins)}"),
        ("RTF", f"{record.rtf:.3f}"),
        ("stage timing", record.timing_mode),
    ]
    lines = ["| metric | value |", "|---|---|", *(f"| {name} | {value} |" for name, value in rows)]
    lines += [f"\n*chunker warning:* {w}" for w in record.chunk_warnings]
    return "\n".join(lines)


def sweep_figures(result: SweepResult) -> tuple[go.Figure, go.Figure]:
    """TTFA and first audible against the first-chunk size; stall against the pre-buffer."""
    points, best = result.points, result.best()
    sizes = sorted({p.first_chunk_max_chars for p in points})
    prebuffers = sorted({p.prebuffer_ms for p in points})
    latency = go.Figure()
    ttfa = {p.first_chunk_max_chars: p.ttfa_median_s for p in points}
    latency.add_scatter(x=sizes, y=[ttfa[s] * 1000 for s in sizes], name="TTFA (first chunk ready)",
                        mode="lines+markers", line={"width": 3, "color": "black"})
    for prebuffer in prebuffers:
        row = sorted((p for p in points if p.prebuffer_ms == prebuffer), key=lambda p: p.first_chunk_max_chars)
        latency.add_scatter(
            x=[p.first_chunk_max_chars for p in row], y=[p.first_audible_median_s * 1000 for p in row],
            mode="lines+markers", line={"dash": "dash"}, name=f"first audible, pre-buffer {prebuffer:g} ms",
            marker={"symbol": ["circle" if p.no_underrun else "x" for p in row], "size": 9},
        )
    stall = go.Figure()
    for size in sizes:
        row = sorted((p for p in points if p.first_chunk_max_chars == size), key=lambda p: p.prebuffer_ms)
        stall.add_scatter(x=[p.prebuffer_ms for p in row], y=[p.stall_median_s * 1000 for p in row],
                          mode="lines+markers", name=f"first chunk {size} chars")
    if best is not None:
        latency.add_scatter(x=[best.first_chunk_max_chars], y=[best.first_audible_median_s * 1000], mode="markers",
                            marker={"symbol": "star", "size": 18, "color": "gold"}, name="best with no underrun")
        stall.add_scatter(x=[best.prebuffer_ms], y=[best.stall_median_s * 1000], mode="markers",
                          marker={"symbol": "star", "size": 18, "color": "gold"}, name="best with no underrun")
    latency.update_layout(title="TTFA and first audible vs first-chunk size (x = had an underrun)",
                          xaxis_title="first_chunk_max_chars", yaxis_title="ms", height=380)
    stall.update_layout(title="Total stall vs pre-buffer (median over runs)", xaxis_title="prebuffer_ms",
                        yaxis_title="stall ms", height=380)
    return latency, stall


def sweep_table(result: SweepResult) -> pd.DataFrame:
    rows = [{"first chunk": p.first_chunk_max_chars, "pre-buffer ms": p.prebuffer_ms,
             "TTFA ms": round(p.ttfa_median_s * 1000, 1), "first audible ms": round(p.first_audible_median_s * 1000, 1),
             "stall median ms": round(p.stall_median_s * 1000, 1), "stall max ms": round(p.stall_max_s * 1000, 1),
             "runs with underrun": f"{p.underrun_runs}/{p.runs}"} for p in result.points]
    return pd.DataFrame(rows, columns=SWEEP_COLUMNS)


def best_markdown(result: SweepResult) -> str:
    best = result.best()
    if best is None:
        return f"{OK_PREFIX} sweep {result.sweep_id}: no setting played without an underrun — try larger pre-buffers."
    return (
        f"{OK_PREFIX} sweep {result.sweep_id} stored. Lowest first audio with no underrun: **first chunk "
        f"{best.first_chunk_max_chars} chars, pre-buffer {best.prebuffer_ms:g} ms** — TTFA {_ms(best.ttfa_median_s)}, "
        f"first audible {_ms(best.first_audible_median_s)} (median of {best.runs} runs)."
    )


def cut_line(result: SweepResult) -> str:
    """What a cancel cut from the sweep ("" when nothing)."""
    if not result.cut:
        return ""
    done = len({p.first_chunk_max_chars for p in result.points})
    sizes = ", ".join(str(size) for size in result.cut)
    return (f" **Cancelled:** {done} first-chunk size{'s' if done != 1 else ''} finished; cut: {sizes} "
            "(every run that finished is stored).")


# --- handlers ----------------------------------------------------------------------------------


def _pcm(chunk: AudioChunk) -> tuple[int, np.ndarray]:
    # int16, because Gradio peak-normalises float arrays (each chunk would get its own gain).
    return chunk.audio.sample_rate, chunk.audio.to_int16()


def stream_events(ctx: DashboardContext, request: BenchRequest) -> Iterator[tuple[str, Any]]:
    """("chunk", AudioChunk) as each is ready, then ("done", BenchResult) or ("error", message)."""
    try:
        validate_request(request)
    except InputError as error:
        yield "error", one_line(error)
        return
    chunks: queue.Queue[AudioChunk | None] = queue.Queue()
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            with ctx.lane.hold(f"stream on {request.settings.engine}"):
                outcome["result"] = api.run_request(request, store=ctx.store, pool=ctx.pool,
                                                    on_chunk=chunks.put).result
        except Exception as error:  # shown as one line, never a trace
            outcome["error"] = one_line(error)
        finally:
            chunks.put(None)

    worker = threading.Thread(target=work, name="ttsperf-stream", daemon=True)
    worker.start()
    while (chunk := chunks.get()) is not None:
        yield "chunk", chunk
    worker.join()
    if "error" in outcome:
        yield "error", outcome["error"]
        return
    yield "done", outcome["result"]


def _result_record(result: BenchResult) -> tuple[RunRecord | None, str]:
    failed = next((r for r in result.records if r.status is RunStatus.ERROR), None)
    if failed is not None:
        return None, f"{ERROR_PREFIX} synthesis failed: {failed.error} (run stored, batch {result.batch_id[:8]})"
    record = result.records[-1]
    return record, f"{OK_PREFIX} {len(record.chunks)} chunks streamed; run stored (batch {result.batch_id[:8]})"


def build(ctx: DashboardContext) -> None:
    views = streaming_views()
    if not views:
        gr.Markdown("No installed engine streams.")
        return
    first_view = views[0]
    gr.Markdown(
        "Stream a text chunk by chunk, hear it as it is made, and see when each chunk was ready against "
        "when the player needed it. Only engines that stream are listed."
    )
    with gr.Row():
        with gr.Column(scale=2):
            text = gr.Textbox(value=DEFAULT_TEXT, lines=4, label="Text")
            with gr.Row():
                engine = gr.Dropdown([(v.title, v.name) for v in views], value=first_view.name, label="Engine")
                devices = device_choices(first_view)
                device = gr.Dropdown(devices, value=devices[0] if devices else None, label="Device")
                chunker = gr.Radio(list(CHUNKERS), value="lab", label="Chunker",
                                   info="lab: the lab's chunker, one synthesis per chunk; engine: its own stream()")
            with gr.Row():
                first_chunk = gr.Slider(1, 200, value=_DEFAULT_CHUNKING.first_chunk_max_chars, step=1,
                                        label="first_chunk_max_chars")
                max_chars = gr.Slider(10, 500, value=_DEFAULT_CHUNKING.max_chars, step=1, label="max chars per chunk")
                sentence_after = gr.Slider(0, 30, value=_DEFAULT_CHUNKING.sentence_only_after_s, step=0.5,
                                           label="sentence ends only after (s of audio)")
            with gr.Row():
                prebuffer = gr.Slider(0, 3000, value=0, step=10, label="prebuffer_ms")
                block = gr.Slider(5, 200, value=20, step=1, label="audio_block_ms")
            timing = timing_control("stream-timing")
        with gr.Column(scale=1):
            knob_panel = KnobPanel(views, first_view.name)
    stream_button = gr.Button("Stream", variant="primary")
    status = gr.Markdown(elem_id="stream-status")
    player = gr.Audio(streaming=True, autoplay=True, label="Live stream", interactive=False)
    timeline = gr.Plot(label="Timeline")
    with gr.Row():
        summary = gr.Markdown()
        joins = gr.Dataframe(pd.DataFrame(columns=JOIN_COLUMNS), label="Joins", interactive=False)
    chunks = gr.Dataframe(pd.DataFrame(columns=CHUNK_COLUMNS), label="Chunks", interactive=False)
    trace = trace_button("stream-trace")

    gr.Markdown("### Sweep: first chunk size × pre-buffer")
    with gr.Row():
        sweep_sizes = gr.Textbox(value="10, 20, 40, 80", label="first_chunk_max_chars values")
        sweep_prebuffers = gr.Textbox(value="0, 100, 250, 500, 1000", label="prebuffer_ms values")
        sweep_repeats = gr.Number(value=2, precision=0, minimum=1, label="repeats per size")
    with gr.Row():
        sweep_button = gr.Button("Run sweep", elem_id="stream-sweep-run")
        sweep_cancel = gr.Button("Cancel", variant="stop", elem_id="stream-sweep-cancel")
    sweep_status = gr.Markdown(elem_id="sweep-status")
    with gr.Row():
        sweep_latency = gr.Plot(label="TTFA vs first chunk")
        sweep_stall = gr.Plot(label="Stall vs pre-buffer")
    sweep_frame = gr.Dataframe(pd.DataFrame(columns=SWEEP_COLUMNS), label="Sweep", interactive=False)

    form = [text, engine, device, chunker, first_chunk, max_chars, sentence_after, prebuffer, block, timing]

    def request_from(values: Mapping[Any, Any], repeats: int = 1, warmup: int = 0) -> BenchRequest:
        name = values[engine]
        return build_request(
            name, values[device], values[text], values[chunker], values[first_chunk], values[max_chars],
            values[sentence_after], values[prebuffer], values[block], knob_panel.values_for(name, values),
            ctx.max_chars, repeats=repeats, warmup=warmup, timing=values[timing],
        )

    def on_engine(name: str) -> list[Any]:
        view = find_view(views, name)
        choices = device_choices(view) if view else []
        return [gr.update(choices=choices, value=choices[0] if choices else None), *knob_panel.visibility(name)]

    engine.change(on_engine, engine, [device, *knob_panel.groups])

    # Lists, not sets, as inputs: the API's parameter order must not change between launches.
    stream_inputs = [*form, *knob_panel.components]
    sweep_inputs = [*stream_inputs, sweep_sizes, sweep_prebuffers, sweep_repeats]

    def on_stream(*args: Any) -> Iterator[tuple[Any, ...]]:
        values = dict(zip(stream_inputs, args, strict=True))
        skip = gr.skip()
        try:
            request = request_from(values)
        except InputError as error:
            yield skip, f"{ERROR_PREFIX} {one_line(error)}", skip, skip, skip, skip, no_trace()
            return
        for kind, payload in stream_events(ctx, request):
            if kind == "chunk":
                if len(payload.audio.samples):
                    yield _pcm(payload), f"chunk {payload.index} ready…", skip, skip, skip, skip, skip
            elif kind == "error":
                yield skip, f"{ERROR_PREFIX} {payload}", skip, skip, skip, skip, no_trace()
            else:
                record, message = _result_record(payload)
                if record is None:
                    yield skip, message, skip, skip, skip, skip, trace_update(ctx, "stream", payload.batch_id)
                else:
                    yield (skip, message, timeline_figure(record), summary_markdown(record),
                           joins_table(record), chunk_table(record), trace_update(ctx, "stream", payload.batch_id))

    streamed = stream_button.click(
        on_stream, inputs=stream_inputs,
        outputs=[player, status, timeline, summary, joins, chunks, trace], api_name="stream",
        concurrency_id=LANE_ID,
    )

    # The session first: Gradio fills in a gr.Request only among the leading positional parameters.
    def on_sweep(request: gr.Request, *args: Any,
                 progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:  # noqa: B008
        values = dict(zip(sweep_inputs, args, strict=True))
        skip = gr.skip()
        try:
            repeats = _whole("repeats per size", values[sweep_repeats], 1)
            base = request_from(values, repeats=repeats, warmup=1)
            if base.chunking is None:
                raise InputError("the sweep varies the lab chunker's first chunk: choose the lab chunker")
            sizes = parse_sizes(values[sweep_sizes] or "")
            prebuffers = parse_values(values[sweep_prebuffers] or "", "pre-buffers")
            validate_request(base)

            def step(done: int, total: int, _record: RunRecord) -> None:
                progress(done / total, desc=f"run {done}/{total}")

            with ctx.cancels.running(request, "the streaming sweep") as cancel, \
                    ctx.lane.hold(f"streaming sweep on {base.settings.engine}"):
                result = api.stream_sweep(base, sizes, prebuffers, store=ctx.store, pool=ctx.pool, progress=step,
                                          cancel=cancel)
        except InputError as error:
            return f"{ERROR_PREFIX} {one_line(error)}", skip, skip, skip
        latency, stall = sweep_figures(result)
        head = best_markdown(result) if result.points else f"{OK_PREFIX} sweep {result.sweep_id}:"
        return head + cut_line(result), latency, stall, sweep_table(result)

    swept = sweep_button.click(
        on_sweep, inputs=sweep_inputs,
        outputs=[sweep_status, sweep_latency, sweep_stall, sweep_frame], api_name="stream_sweep",
        concurrency_id=LANE_ID,
    )
    sweep_cancel.click(cancel_handler(ctx.cancels), None, sweep_status, api_name="cancel_stream_sweep",
                       concurrency_limit=None)
    ctx.storing += [streamed, swept]

