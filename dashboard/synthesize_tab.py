"""The Synthesize tab: pick engine and settings, run measured synthesis, see audio and stages.

Every control comes from the engines' declared capabilities (see dashboard.controls).
Two API endpoints run the same code: ``/synthesize`` takes the form's controls as
named parameters, ``/synthesize_json`` one JSON object (see dashboard.synth_form.SynthForm).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import gradio as gr

from dashboard.context import DashboardContext
from dashboard.controls import (
    EngineView,
    KnobPanel,
    capability_note,
    cloning_note,
    converter_note,
    converter_views,
    default_engine,
    device_choices,
    engine_note,
    engine_views,
    find_view,
    knobs_from_named,
    precision_choices,
    streaming_note,
    timing_control,
)
from dashboard.lane import LANE_ID
from dashboard.messages import error_status, one_line, run_status, summary_markdown, weights_banner
from dashboard.synth_form import CHUNKER_ENGINE, CHUNKER_LAB, SynthForm
from dashboard.tables import empty_stage_table, stage_table
from dashboard.trace_download import no_trace, trace_button, trace_update
from engines.chunking import ChunkingSettings
from engines.errors import InputError
from profiling import api
from profiling.api.figures import gpu_figure, rtf_figure, stage_breakdown_figure, ttfa_figure
from profiling.api.inputs import DEFAULT_TEXT
from profiling.api.tables import summarize_series
from profiling.api.types import BenchResult, PlaybackSettings, RunMode, RunRecord

log = logging.getLogger(__name__)

#: API parameter names of the conversion stages' knobs: ``convert_rvc__f0_method``.
CONVERT_PREFIX = "convert_"



@dataclass
class Outputs:
    """The tab's result components, in the order every run handler returns them."""

    status: gr.Markdown
    banner: gr.HTML
    audio: gr.Audio
    summary: gr.Markdown
    stage_plot: gr.Plot
    rtf_plot: gr.Plot
    ttfa_plot: gr.Plot
    stages: gr.Dataframe
    details: gr.JSON
    gpu_plot: gr.Plot
    trace: gr.DownloadButton

    def components(self) -> list[gr.Component]:
        return [self.status, self.banner, self.audio, self.summary, self.stage_plot,
                self.rtf_plot, self.ttfa_plot, self.stages, self.details, self.gpu_plot, self.trace]


def error_outputs(message: str) -> tuple[Any, ...]:
    """A visible one-line error; every result output cleared so no stale result looks current."""
    return (error_status(message), "", None, "", None, None, None, empty_stage_table(), {"error": message}, None,
            no_trace())


def _details(result: BenchResult) -> dict[str, Any]:
    """Machine-readable facts about the batch (handy for API clients)."""
    rtf = next((m for m in result.metric_summary if m.name == "rtf"), None)
    ttfa = next((m for m in result.metric_summary if m.name == "ttfa_s"), None)
    return {
        "batch_id": result.batch_id,
        "runs_stored": len(result.records),
        "run_ids": [r.run_id for r in result.records],
        "load_s": result.load_s,
        "model_reused": result.load_s is None,
        "random_weights": any(r.random_weights for r in result.records),
        "rtf_median": rtf.median if rtf else None,
        "rtf_p95": rtf.p95 if rtf else None,
        "ttfa_median_s": ttfa.median if ttfa else None,
        "ttfa_p95_s": ttfa.p95 if ttfa else None,
        "errors": [r.error for r in result.records if r.error],
        "timing_mode": result.records[0].timing_mode if result.records else None,
        "load_stages_s": {t.name: t.inclusive_s for t in result.load_stages},
        "environment": asdict(result.records[0].environment) if result.records else None,
    }


def result_outputs(result: BenchResult, trace: str | None = None) -> tuple[Any, ...]:
    """Every output in ``Outputs`` order; ``trace``: the path the "Download trace" button holds."""
    records: list[RunRecord] = result.records
    stages = result.stage_summary
    synth = next((m for m in result.metric_summary if m.name == "synth_s"), None)
    rtf = next((m for m in result.metric_summary if m.name == "rtf"), None)
    ttfa = next((m for m in result.metric_summary if m.name == "ttfa_s"), None)
    audio = (result.audio.sample_rate, result.audio.to_int16()) if result.audio is not None else None
    measured_any = synth is not None
    return (
        run_status(result),
        weights_banner(records),
        audio,
        summary_markdown(result),
        stage_breakdown_figure(stages, synth) if measured_any else None,
        rtf_figure(records, rtf) if measured_any else None,
        ttfa_figure(records, ttfa) if measured_any else None,
        stage_table(stages, summarize_series(records), result.load_stages),
        _details(result),
        gpu_figure(records) if measured_any else None,  # CPU runs: one "no GPU data" note
        trace,
    )


def make_runner(ctx: DashboardContext) -> Callable[[SynthForm, gr.Progress | None], tuple[Any, ...]]:
    """The one code path behind both endpoints: validate, run, store, render, never raise."""

    def run(form: SynthForm, progress: gr.Progress | None = None) -> tuple[Any, ...]:
        try:
            request = form.to_request(ctx.max_chars)

            def report(done: int, total: int, record: RunRecord) -> None:
                if progress is not None:
                    kind = "warm-up" if record.warmup else "run"
                    progress((done, total), desc=f"{kind} {done}/{total}")

            with ctx.lane.hold(f"synthesis on {request.settings.engine}"):
                result = api.run_request(request, store=ctx.store, pool=ctx.pool, progress=report).result
        except InputError as error:
            return error_outputs(one_line(error))
        except Exception as error:  # the app keeps serving; the log has the traceback
            log.exception("synthesis request failed")
            return error_outputs(one_line(error))
        return result_outputs(result, trace_update(ctx, None, result.batch_id))

    return run


def _engine_updates(view: EngineView, panel: KnobPanel) -> list[Any]:
    """Everything that follows the engine choice, as updates in _engine_outputs order."""
    caps = view.capabilities
    devices = device_choices(view)
    device = devices[0] if devices else None
    precisions = precision_choices(view, device)
    streams = caps is not None and caps.streaming
    clones = caps is not None and caps.voice_cloning
    return [
        engine_note(view),
        gr.update(choices=devices, value=device, interactive=bool(devices)),
        gr.update(choices=precisions, value=precisions[0] if precisions else None, interactive=bool(precisions)),
        capability_note(view, device),
        gr.update(value=RunMode.BATCH.value, interactive=streams),
        streaming_note(view),
        gr.update(visible=False),
        gr.update(open=clones),
        cloning_note(view),
        gr.update(interactive=clones, value=None),
        gr.update(interactive=clones),
        gr.update(interactive=view.available),
        *panel.visibility(view.name),
    ]


def build(ctx: DashboardContext) -> None:
    views = engine_views()
    selected = default_engine(views)
    view = find_view(views, selected)
    assert view is not None
    caps = view.capabilities
    devices = device_choices(view)
    first_device = devices[0] if devices else None
    precisions = precision_choices(view, first_device)
    chunk_defaults, playback_defaults = ChunkingSettings(), PlaybackSettings()

    with gr.Row(equal_height=False):
        with gr.Column(scale=1, min_width=340):
            engine = gr.Dropdown(choices=[(v.label, v.name) for v in views], value=selected, label="Engine",
                                 elem_id="synth-engine")
            engine_md = gr.Markdown(engine_note(view), elem_id="synth-engine-note")
            with gr.Row():
                device = gr.Dropdown(choices=devices, value=first_device, label="Device")
                precision = gr.Dropdown(choices=precisions, value=precisions[0] if precisions else None,
                                        label="Precision")
            caps_md = gr.Markdown(capability_note(view, first_device), elem_id="synth-capability-note")
            mode = gr.Radio(choices=[m.value for m in RunMode], value=RunMode.BATCH.value, label="Mode",
                            info="batch: whole text at once (TTFA = all audio); stream: first chunk = TTFA",
                            interactive=caps is not None and caps.streaming)
            mode_md = gr.Markdown(streaming_note(view), elem_id="synth-mode-note")
            timing = timing_control("synth-timing")
            with gr.Group(visible=False) as stream_group:
                chunker = gr.Radio(
                    choices=[("engine's own streaming", CHUNKER_ENGINE), ("lab chunker", CHUNKER_LAB)],
                    value=CHUNKER_ENGINE, label="Chunker",
                )
                with gr.Row():
                    first_chunk = gr.Number(chunk_defaults.first_chunk_max_chars, precision=0,
                                            label="first chunk max chars", info="lab chunker only")
                    chunk_max = gr.Number(chunk_defaults.max_chars, precision=0, label="chunk max chars",
                                          info="lab chunker only")
                prebuffer = gr.Number(playback_defaults.prebuffer_ms, label="prebuffer ms",
                                      info="audio the simulated player buffers before it starts")
            with gr.Accordion("Engine knobs", open=True):
                panel = KnobPanel(views, selected)
            with gr.Accordion("Voice conversion (after synthesis)", open=False):
                stages_available = converter_views()
                convert = gr.Dropdown(choices=[("none", ""), *((v.label, v.name) for v in stages_available)],
                                      value="", label="Conversion stage", elem_id="synth-convert",
                                      info="every run's audio (each chunk, when streaming) goes through it")
                convert_md = gr.Markdown(converter_note(""), elem_id="synth-convert-note")
                convert_panel = KnobPanel(stages_available, "", prefix=CONVERT_PREFIX)
            with gr.Accordion("Voice", open=caps is not None and caps.voice_cloning) as voice_box:
                voice_md = gr.Markdown(cloning_note(view), elem_id="synth-voice-note")
                clones = caps is not None and caps.voice_cloning
                ref_audio = gr.Audio(type="filepath", sources=["upload"], label="Reference audio",
                                     interactive=clones, elem_id="synth-ref-audio")
                ref_text = gr.Textbox("", label="Reference text", placeholder="transcript of the reference audio",
                                      interactive=clones)
        with gr.Column(scale=2):
            text = gr.Textbox(DEFAULT_TEXT, lines=4, label=f"Text (up to {ctx.max_chars} characters)",
                              elem_id="synth-text")
            with gr.Row():
                repeats = gr.Number(3, precision=0, label="Repeats", info="measured runs", elem_id="synth-repeats")
                warmup = gr.Number(1, precision=0, label="Warm-up runs", info="stored, flagged, not summarised",
                                   elem_id="synth-warmup")
                seed = gr.Number(0, precision=0, label="Seed")
            run_button = gr.Button("Synthesize", variant="primary", elem_id="synth-run",
                                   interactive=view.available)
            status = gr.Markdown("Ready: pick the settings and press **Synthesize**.", label="status",
                                 elem_id="synth-status")
            banner = gr.HTML(label="weights", elem_id="synth-weights")
            audio = gr.Audio(type="numpy", label="Audio (last run)", interactive=False, elem_id="synth-audio")
            summary = gr.Markdown(label="summary", elem_id="synth-summary")
            stage_plot = gr.Plot(label="Stage breakdown", elem_id="synth-stage-plot")
            with gr.Row():
                rtf_plot = gr.Plot(label="RTF", elem_id="synth-rtf-plot")
                ttfa_plot = gr.Plot(label="TTFA", elem_id="synth-ttfa-plot")
            gpu_plot = gr.Plot(label="GPU memory and utilisation", elem_id="synth-gpu-plot")
            stages = gr.Dataframe(value=empty_stage_table(), label="Stages (ms)", interactive=False,
                                  elem_id="synth-stage-table")
            trace = trace_button("synth-trace")
            details = gr.JSON(label="Run details", visible=False)
            outputs = Outputs(status, banner, audio, summary, stage_plot, rtf_plot, ttfa_plot, stages, details,
                              gpu_plot, trace)
            # JSON endpoint only: hidden, no place in the page.
            json_settings = gr.Textbox(visible=False)
            json_button = gr.Button(visible=False)

    engine_outputs = [engine_md, device, precision, caps_md, mode, mode_md, stream_group, voice_box, voice_md,
                      ref_audio, ref_text, run_button, *panel.groups]

    def on_engine(name: str) -> list[Any]:
        chosen = find_view(views, name)
        if chosen is None:  # cannot come from the dropdown; keep the page as it is
            return [gr.update() for _ in engine_outputs]
        return _engine_updates(chosen, panel)

    def on_device(name: str, device_name: str | None) -> list[Any]:
        chosen = find_view(views, name)
        if chosen is None:
            return [gr.update(), ""]
        choices = precision_choices(chosen, device_name)
        return [gr.update(choices=choices, value=choices[0] if choices else None),
                capability_note(chosen, device_name)]

    engine.change(on_engine, inputs=engine, outputs=engine_outputs, api_visibility="private")
    device.change(on_device, inputs=[engine, device], outputs=[precision, caps_md], api_visibility="private")
    mode.change(lambda m: gr.update(visible=m == RunMode.STREAM.value), inputs=mode, outputs=stream_group,
                api_visibility="private")
    convert.change(lambda name: [converter_note(name or ""), *convert_panel.visibility(name or "")], inputs=convert,
                   outputs=[convert_md, *convert_panel.groups], api_visibility="private")

    runner = make_runner(ctx)
    form_inputs: dict[str, gr.Component] = {
        "text": text, "engine": engine, "device": device, "precision": precision, "mode": mode,
        "repeats": repeats, "warmup": warmup, "seed": seed, "chunker": chunker,
        "first_chunk_max_chars": first_chunk, "chunk_max_chars": chunk_max, "prebuffer_ms": prebuffer,
        "reference_audio": ref_audio, "reference_text": ref_text, "timing": timing, "convert": convert,
    }
    knob_inputs = {**panel.named_inputs(), **convert_panel.named_inputs()}

    def synthesize(
        text: str | None, engine: str | None, device: str | None, precision: str | None, mode: str,
        repeats: float, warmup: float, seed: float, chunker: str, first_chunk_max_chars: float,
        chunk_max_chars: float, prebuffer_ms: float, reference_audio: str | None = None,
        reference_text: str | None = "", timing: str | None = "sync", convert: str | None = "",
        progress: gr.Progress = gr.Progress(),  # noqa: B008
        **knob_values: Any,
    ) -> tuple[Any, ...]:
        """The form's controls by name; knobs arrive as ``<engine>__<knob>`` for every engine, and the
        conversion stages' as ``convert_<stage>__<knob>``."""
        knobs = knobs_from_named(engine, knob_values)
        convert_knobs = knobs_from_named(f"{CONVERT_PREFIX}{convert}", knob_values) if convert else {}
        form = SynthForm(
            text=text or "", engine=engine or "", device=device or "", precision=precision or "", mode=mode,
            repeats=repeats, warmup=warmup, seed=seed, chunker=chunker,
            first_chunk_max_chars=first_chunk_max_chars, chunk_max_chars=chunk_max_chars,
            prebuffer_ms=prebuffer_ms, reference_audio=reference_audio, reference_text=reference_text or "",
            knobs=knobs, timing=timing or "sync", convert=convert or "", convert_knobs=convert_knobs,
        )
        return runner(form, progress)

    def synthesize_json(settings: str, progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:  # noqa: B008
        try:
            form = SynthForm.from_json(settings)
        except InputError as error:
            return error_outputs(one_line(error))
        except TypeError as error:  # a field of the wrong shape for the dataclass
            return error_outputs(f"bad settings: {one_line(error)}")
        return runner(form, progress)

    ctx.storing += [
        run_button.click(synthesize, inputs_kwargs={**form_inputs, **knob_inputs}, outputs=outputs.components(),
                         api_name="synthesize", concurrency_id=LANE_ID),
        json_button.click(synthesize_json, inputs=json_settings, outputs=outputs.components(),
                          api_name="synthesize_json", concurrency_id=LANE_ID),
    ]


def example_settings() -> str:
    """A JSON settings object for /synthesize_json (documentation and tests)."""
    return json.dumps({"engine": "piper", "text": DEFAULT_TEXT, "repeats": 1, "warmup": 0,
                       "knobs": {"deterministic": True}})
